"""Training step for the JAX backend.

The steps are pure functions of the state, so fit() can jit them: the loss terms run inside a
StatelessScope mapped onto the state Keras passes in; the updated non-trainable values (BatchNorm
statistics, and the seed state of the Sampling and Dropout layers, so the noise differs every step)
go back out with the new state. The loss is scaled by the optimizer (a LossScaleOptimizer under
mixed_float16), as Keras's own JAX trainer does.
"""

import contextlib

import jax
import keras

from keras_vae.backends import Parallel, check_even, inputs_of, one_machine


class TrainStep:
    def _stateless_terms(
        self, trainable_variables, non_trainable_variables, optimizer_variables, x, training
    ):
        """The loss (scaled by the optimizer when training) and, beside it, the terms and the new
        non-trainable values."""
        mapping = [
            *zip(self.trainable_variables, trainable_variables),
            *zip(self.non_trainable_variables, non_trainable_variables),
            *zip(self.optimizer.variables if training else [], optimizer_variables),
        ]
        with keras.StatelessScope(state_mapping=mapping) as scope:
            terms = self.compute_terms(x, training=training)
            loss = self.optimizer.scale_loss(terms["loss"]) if training else terms["loss"]
        non_trainable_variables = [scope.get_current_value(v) for v in self.non_trainable_variables]
        return loss, (terms, non_trainable_variables)

    def _stateless_logs(self, metrics_variables, terms, batch_size):
        mapping = list(zip(self.metrics_variables, metrics_variables))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            logs = self.update_trackers(terms, batch_size)
        return logs, [scope.get_current_value(v) for v in self.metrics_variables]

    def train_step(self, state, data):
        trainable, non_trainable, optimizer_variables, metrics_variables = state
        x, batch_size = inputs_of(data)
        grad_fn = jax.value_and_grad(self._stateless_terms, has_aux=True)
        (_, (terms, non_trainable)), gradients = grad_fn(
            trainable, non_trainable, optimizer_variables, x, True
        )
        trainable, optimizer_variables = self.optimizer.stateless_apply(
            optimizer_variables, gradients, trainable
        )
        logs, metrics_variables = self._stateless_logs(metrics_variables, terms, batch_size)
        return logs, (trainable, non_trainable, optimizer_variables, metrics_variables)

    def test_step(self, state, data):
        trainable, non_trainable, metrics_variables = state
        x, batch_size = inputs_of(data)
        _, (terms, non_trainable) = self._stateless_terms(trainable, non_trainable, [], x, False)
        logs, metrics_variables = self._stateless_logs(metrics_variables, terms, batch_size)
        return logs, (trainable, non_trainable, metrics_variables)


def processes():
    """One process: several hosts (KERAS_DISTRIBUTION_JOB_ADDRESSES) are refused. Tried on two CPU processes,
    Keras's multi-host DataParallel ran out of data in the first epoch and then hung."""
    return one_machine("KERAS_DISTRIBUTION_JOB_ADDRESSES")


@contextlib.contextmanager
def distribution(batch_sizes: set[int]):
    """keras.distribution.DataParallel over every device: each batch split across them, the variables
    replicated."""
    devices = keras.distribution.list_devices()
    check_even(batch_sizes, len(devices))
    previous = keras.distribution.distribution()
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    try:
        yield Parallel(len(devices))
    finally:
        keras.distribution.set_distribution(previous)


def replicate(model) -> None:
    """Nothing to do: DataParallel replicates the variables as they are made."""


def devices() -> list[str]:
    return [f"{device.platform}:{device.id} {device.device_kind}" for device in jax.devices()]
