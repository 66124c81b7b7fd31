"""Training step for the TensorFlow backend: one GradientTape around the loss terms, the loss scaled by the
optimizer (a LossScaleOptimizer under mixed_float16) as Keras's own TensorFlow trainer does."""

import contextlib
import os

import tensorflow as tf

from keras_vae.backends import Parallel, Processes, check_even, inputs_of
from keras_vae.errors import KerasVAEError


class TrainStep:
    def train_step(self, data):
        x, batch_size = inputs_of(data)
        with tf.GradientTape() as tape:
            terms = self.compute_terms(x, training=True)
            # Replicas' gradients are summed, so each contributes its share of the global batch's mean.
            loss = self.optimizer.scale_loss(
                terms["loss"] / tf.distribute.get_strategy().num_replicas_in_sync
            )
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        return self.update_trackers(terms, batch_size)

    def test_step(self, data):
        x, batch_size = inputs_of(data)
        return self.update_trackers(self.compute_terms(x, training=False), batch_size)


@contextlib.contextmanager
def processes():
    """One process. Several workers (TF_CONFIG) are refused: under MultiWorkerMirroredStrategy, Keras's
    TensorFlow trainer reduces each step's scalar logs along an axis they do not have (reduce_per_replica's
    strategy.reduce("MEAN", v, axis=0); keras-team/keras#20585), so fit fails at its first step, whatever the
    model: tried with two workers on 127.0.0.1 (Keras 3.15.1, TensorFlow 2.21)."""
    if "TF_CONFIG" in os.environ:
        raise KerasVAEError(
            "--distribute on tensorflow runs on one machine, and TF_CONFIG describes several workers, which "
            "Keras 3 cannot train (its trainer fails to reduce their logs: keras-team/keras#20585): unset "
            "it, or train across machines with --backend jax or with --backend torch under torchrun "
            "(docs/guide/gpus.md)"
        )
    yield Processes()


@contextlib.contextmanager
def distribution(batch_sizes: set[int]):
    """MirroredStrategy over every GPU, or every logical CPU where there is none. Every batch must split
    evenly across them."""
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    strategy = tf.distribute.MirroredStrategy([device.name for device in devices])
    check_even(batch_sizes, strategy.num_replicas_in_sync)
    with strategy.scope():
        yield Parallel(strategy.num_replicas_in_sync)


def replicate(model) -> None:
    """Nothing to do: MirroredStrategy replicates the variables as they are made."""


def alone():
    """Nothing to step out of: process 0 saves and predicts on its own as it is."""
    return contextlib.nullcontext()


def process_local(model):
    """The model itself: its one process predicts with it."""
    return model


def devices() -> list[str]:
    return [
        f"{device.device_type}:{device.name.rsplit(':', 1)[-1]}"
        for device in tf.config.list_physical_devices()
    ]
