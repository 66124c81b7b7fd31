"""Training step for the JAX backend.

The steps are pure functions of the state, so fit() can jit them: the loss terms run inside a
StatelessScope mapped onto the state Keras passes in; the updated non-trainable values (BatchNorm
statistics, and the seed state of the Sampling and Dropout layers, so the noise differs every step)
go back out with the new state. The loss is scaled by the optimizer (a LossScaleOptimizer under
mixed_float16), as Keras's own JAX trainer does.
"""

import contextlib
import os
import pickle
import sys

import jax
import keras
import numpy as np
from jax.experimental import multihost_utils

from keras_vae.backends import Parallel, Processes, check_even, inputs_of
from keras_vae.backends.lifeline import lifeline


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


CLUSTER = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
"""Where Keras reads a JAX cluster from: the coordinator's address (process 0's, host:port), with
KERAS_DISTRIBUTION_NUM_PROCESSES and KERAS_DISTRIBUTION_PROCESS_ID beside it (JAX finds them itself under
SLURM)."""


@contextlib.contextmanager
def processes():
    """Join the processes of the JAX cluster the environment describes (CLUSTER):
    keras.distribution.initialize starts jax.distributed, with gloo carrying the collectives of CPUs, and a
    lifeline to the coordinator's host ends every process in one line when one goes. Without a cluster, this
    process alone."""
    if CLUSTER not in os.environ:
        yield Processes()
        return
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    with native_stdout_to_stderr():  # gloo says "[Gloo] Rank 0 is connected to 1 peer ranks" on stdout
        keras.distribution.initialize()
    joined = Processes(jax.process_index(), jax.process_count())
    coordinator = os.environ[CLUSTER].split(",")[0].rsplit(":", 1)[0].strip("[]")
    try:
        with lifeline(joined.rank, joined.count, coordinator, joined.share):
            yield joined
    finally:
        jax.distributed.shutdown()


@contextlib.contextmanager
def native_stdout_to_stderr():
    """What native code writes to standard output goes to standard error meanwhile, so that stdout holds only
    what keras-vae prints."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def broadcast(value):
    """Process 0's value (anything pickle takes), on every process: its size first, then its bytes."""
    mine = np.frombuffer(pickle.dumps(value), np.uint8)
    size = int(multihost_utils.broadcast_one_to_all(np.int64(len(mine))))
    # The other processes' bytes only give the array its shape.
    sent = multihost_utils.broadcast_one_to_all(np.resize(mine, size))
    return pickle.loads(np.asarray(sent, np.uint8).tobytes())


@contextlib.contextmanager
def distribution(batch_sizes: set[int]):
    """keras.distribution.DataParallel over every device of every process: each batch split across them, the
    variables replicated. Of several processes, each reads its own part of every batch (shard), which Keras
    joins into the global batch, so none reads the whole data."""
    devices = keras.distribution.list_devices()
    check_even(batch_sizes, len(devices))
    previous = keras.distribution.distribution()
    parallel = keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False)
    keras.distribution.set_distribution(parallel)
    try:
        yield Parallel(len(devices), (jax.process_index(), jax.process_count()))
    finally:
        keras.distribution.set_distribution(previous)
        _local_copies.clear()


def replicate(model) -> None:
    """Nothing to do: DataParallel replicates the variables as they are made, and JAX refuses to place a value
    that is not the same on every process, so every process starts from the same seeded weights and loads the
    same resume state (callbacks.Backup.restore)."""


@contextlib.contextmanager
def alone():
    """A context for what process 0 does on its own (saving, predicting for the run folder): outside a
    distribution over several processes, whose every new variable or array would wait for all of them (Keras's
    saving makes a throwaway optimizer, and its variables would)."""
    previous = keras.distribution.distribution()
    if jax.process_count() > 1:
        keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(previous)


_local_copies: dict[int, keras.Model] = {}


def process_local(model):
    """The model itself, or where several processes train it, a copy whose variables live on this process
    alone, with the model's current weights: what process 0 encodes and decodes with on its own (a prediction
    of the shared model would need every process). Call it inside alone()."""
    if jax.process_count() == 1:
        return model
    if id(model) not in _local_copies:
        _local_copies[id(model)] = keras.models.clone_model(model)
    copy = _local_copies[id(model)]
    copy.set_weights(model.get_weights())
    return copy


def devices() -> list[str]:
    return [f"{device.platform}:{device.id} {device.device_kind}" for device in jax.devices()]
