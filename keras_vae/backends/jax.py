"""Training step for the JAX backend: pure functions of the state, so fit() can jit them.

The loss terms run inside a StatelessScope mapped onto the state Keras passes in; the
updated non-trainable values (BatchNorm statistics, and the seed state of the Sampling
and Dropout layers, so the noise differs every step) go back out with the new state.
"""

import jax
import keras


class TrainStep:
    def _stateless_terms(self, trainable_variables, non_trainable_variables, x, training):
        mapping = [
            *zip(self.trainable_variables, trainable_variables),
            *zip(self.non_trainable_variables, non_trainable_variables),
        ]
        with keras.StatelessScope(state_mapping=mapping) as scope:
            terms = self.compute_terms(x, training=training)
        non_trainable_variables = [scope.get_current_value(v) for v in self.non_trainable_variables]
        return terms["loss"], (terms, non_trainable_variables)

    def _stateless_logs(self, metrics_variables, terms, batch_size):
        mapping = list(zip(self.metrics_variables, metrics_variables))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            logs = self.update_trackers(terms, batch_size)
        return logs, [scope.get_current_value(v) for v in self.metrics_variables]

    def train_step(self, state, data):
        trainable, non_trainable, optimizer_variables, metrics_variables = state
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        grad_fn = jax.value_and_grad(self._stateless_terms, has_aux=True)
        (_, (terms, non_trainable)), gradients = grad_fn(trainable, non_trainable, x, True)
        trainable, optimizer_variables = self.optimizer.stateless_apply(
            optimizer_variables, gradients, trainable
        )
        logs, metrics_variables = self._stateless_logs(metrics_variables, terms, x.shape[0])
        return logs, (trainable, non_trainable, optimizer_variables, metrics_variables)

    def test_step(self, state, data):
        trainable, non_trainable, metrics_variables = state
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        _, (terms, non_trainable) = self._stateless_terms(trainable, non_trainable, x, False)
        logs, metrics_variables = self._stateless_logs(metrics_variables, terms, x.shape[0])
        return logs, (trainable, non_trainable, metrics_variables)


def devices() -> list[str]:
    return [f"{device.platform}:{device.id} {device.device_kind}" for device in jax.devices()]
