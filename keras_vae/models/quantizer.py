"""The discrete latent of a VQ-VAE (van den Oord et al. 2017): a codebook that replaces each encoder output
vector by its nearest code, updated by its loss term or by exponential moving averages (EMA), and the
metric that counts the codes an epoch never used."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_vae")
class VectorQuantizer(keras.layers.Layer):
    """call(z_e) gives the index of the nearest of `codes` codebook vectors for every vector along the last
    axis of z_e, and those vectors. With `ema_decay` the codebook is not trained by gradients: each training
    call moves every code to the moving average of the vectors assigned to it (Laplace-smoothed counts, as in
    Sonnet's VectorQuantizerEMA); a code whose moving count falls below `restart_below` (every code at the
    start) is restarted at one of the batch's vectors, so codes do not die (as in Jukebox, Dhariwal et al.
    2020)."""

    def __init__(
        self,
        codes: int,
        ema_decay: float | None = None,
        epsilon: float = 1e-5,
        restart_below: float = 0.03,
        **kwargs,
    ):  # pragma: no mutate block
        super().__init__(**kwargs)
        if codes < 2:
            raise ValueError(f"codebook_size must be >= 2, got {codes}")
        if ema_decay is not None and not 0 < ema_decay < 1:
            raise ValueError(f"ema_decay must lie strictly between 0 and 1, got {ema_decay}")
        self.codes, self.ema_decay, self.epsilon, self.restart_below = (
            codes,
            ema_decay,
            epsilon,
            restart_below,
        )

    def build(self, input_shape) -> None:
        dim = input_shape[-1]
        initializer = keras.initializers.RandomUniform(-1.0, 1.0)
        self.codebook = self.add_weight(
            shape=(self.codes, dim),
            initializer=initializer,
            trainable=self.ema_decay is None,
            name="codebook",
        )
        if self.ema_decay is not None:
            self.ema_count = self.add_weight(
                shape=(self.codes,), initializer="zeros", trainable=False, name="ema_count"
            )
            self.ema_sum = self.add_weight(
                shape=(self.codes, dim), initializer="zeros", trainable=False, name="ema_sum"
            )

    def call(self, z_e, training: bool = False):
        vectors = ops.reshape(ops.cast(z_e, "float32"), (-1, ops.shape(z_e)[-1]))
        codebook = ops.convert_to_tensor(self.codebook)
        distances = (
            ops.sum(ops.square(vectors), axis=1, keepdims=True)
            - 2.0 * ops.matmul(vectors, ops.transpose(codebook))
            + ops.sum(ops.square(codebook), axis=1)
        )
        flat = ops.top_k(-distances, k=1)[1][
            :, 0
        ]  # argmin, by an op ONNX has (Keras's TensorFlow argmin bitcasts)
        if training and self.ema_decay is not None:
            self.move_codes(ops.stop_gradient(vectors), flat)
        indices = ops.reshape(flat, ops.shape(z_e)[:-1])
        return indices, ops.take(codebook, indices, axis=0)

    def move_codes(self, vectors, flat) -> None:
        """One EMA step of the codes towards the mean of the vectors each was nearest to; dead codes restart
        at the batch's vectors, taken in turn, with a count of 1."""
        decay, assigned = self.ema_decay, ops.one_hot(flat, self.codes, dtype="float32")
        count = decay * self.ema_count + (1 - decay) * ops.sum(assigned, axis=0)
        sums = decay * self.ema_sum + (1 - decay) * ops.matmul(ops.transpose(assigned), vectors)
        dead = count < self.restart_below
        candidates = ops.take(vectors, ops.arange(self.codes) % ops.shape(vectors)[0], axis=0)
        count = ops.where(dead, 1.0, count)
        sums = ops.where(dead[:, None], candidates, sums)
        self.ema_count.assign(count)
        self.ema_sum.assign(sums)
        total = ops.sum(count)
        smoothed = (count + self.epsilon) / (total + self.codes * self.epsilon) * total
        self.codebook.assign(sums / smoothed[:, None])

    def lookup(self, indices):
        """The codebook vectors of code indices."""
        return ops.take(ops.convert_to_tensor(self.codebook), ops.cast(indices, "int32"), axis=0)

    def compute_output_spec(self, z_e, training: bool = False):
        return (
            keras.KerasTensor(z_e.shape[:-1], dtype="int32"),
            keras.KerasTensor(z_e.shape, dtype="float32"),
        )

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "codes": self.codes,
            "ema_decay": self.ema_decay,
            "epsilon": self.epsilon,
            "restart_below": self.restart_below,
        }


class CodebookLookup(keras.layers.Layer):
    """Code indices to their vectors in a quantizer's codebook: the start of a VQ-VAE's decode endpoint."""

    def __init__(self, quantizer: VectorQuantizer, **kwargs):  # pragma: no mutate block
        super().__init__(**kwargs)
        self.quantizer = quantizer

    def call(self, indices):
        return self.quantizer.lookup(indices)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.quantizer.codebook.shape[-1])


class DeadCodes(keras.metrics.Metric):
    """How many codes no vector was assigned to since the last reset (each epoch, in fit)."""

    def __init__(self, codes: int, name: str = "dead_codes", **kwargs):  # pragma: no mutate block
        super().__init__(name=name, **kwargs)
        self.counts = self.add_variable(shape=(codes,), initializer="zeros", name="counts")

    def update_state(self, counts, sample_weight=None) -> None:
        self.counts.assign(self.counts + ops.cast(counts, self.counts.dtype))

    def result(self):
        return ops.sum(ops.cast(ops.equal(self.counts, 0.0), "float32"))

    def reset_state(self) -> None:
        self.counts.assign(ops.zeros(self.counts.shape))
