"""Training step for the TensorFlow backend: one GradientTape around the loss terms."""

import keras
import tensorflow as tf


class TrainStep:
    def train_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            terms = self.compute_terms(x, training=True)
        gradients = tape.gradient(terms["loss"], self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        return self.update_trackers(terms, tf.shape(x)[0])

    def test_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self.update_trackers(self.compute_terms(x, training=False), tf.shape(x)[0])


def devices() -> list[str]:
    return [f"{device.device_type}:{device.name.rsplit(':', 1)[-1]}" for device in tf.config.list_physical_devices()]
