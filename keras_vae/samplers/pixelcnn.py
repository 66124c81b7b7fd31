"""A learned prior over a VQ-VAE's codes: a small PixelCNN (van den Oord et al. 2016) over the code positions
in order, as the keras.io VQ-VAE example trains one over its code grid. A VQ-VAE's encoder gives a sequence of
latent_dim codes, so the masked convolutions are causal 1-D ones: position i sees the codes before it only.

The model takes the codes shifted right behind a start token (codebook_size) and gives, at every position, the
logits of that position's code; sampling runs it once per position. PixelCNNSampler is the sampler a trained
one makes, and `fit` trains one (keras-vae train-prior).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from keras_vae.choices import PIXELCNN_EPOCHS
from keras_vae.samplers.base import Sampler


def build_code_prior(positions: int, codebook_size: int, width: int = 128, blocks: int = 3) -> keras.Model:
    """Shifted codes (batch, positions) of 0..codebook_size (the last is the start token) to logits (batch,
    positions, codebook_size): an embedding, then causal residual convolutions whose dilation doubles each
    block."""
    shifted = keras.Input((positions,), dtype="int32", name="shifted_codes")
    x = layers.Embedding(codebook_size + 1, width)(shifted)
    for block in range(blocks):
        y = layers.Conv1D(width, 2, padding="causal", dilation_rate=2**block, activation="relu")(x)
        x = layers.Add()([x, layers.Conv1D(width, 1)(y)])
    x = layers.Activation("relu")(x)
    logits = layers.Dense(codebook_size, name="logits", dtype="float32")(x)
    return keras.Model(shifted, logits, name="code_prior")


def shift_right(codes: np.ndarray, start: int) -> np.ndarray:
    """Codes (n, positions) as the prior takes them: behind the start token, the last position dropped."""
    return np.concatenate([np.full((len(codes), 1), start, codes.dtype), codes[:, :-1]], axis=1).astype(
        "int32"
    )


def sample_codes(
    prior: keras.Model, n: int, rng: np.random.Generator, temperature: float = 1.0
) -> np.ndarray:
    """n code sequences drawn from the prior, one position after another."""
    positions, codebook_size = prior.output_shape[1:]
    shifted = np.full((n, positions), codebook_size, dtype="int32")
    codes = np.zeros((n, positions), dtype="int32")
    for position in range(positions):
        logits = (
            np.asarray(prior.predict(shifted, batch_size=1024, verbose=0), "float64")[:, position]
            / temperature
        )
        probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
        cumulative = np.cumsum(probabilities / probabilities.sum(axis=1, keepdims=True), axis=1)
        codes[:, position] = np.minimum((cumulative < rng.random((n, 1))).sum(axis=1), codebook_size - 1)
        if position + 1 < positions:
            shifted[:, position + 1] = codes[:, position]
    return codes


def code_nll(prior: keras.Model, codes: np.ndarray) -> float:
    """The prior's mean negative log-likelihood of code sequences, in nats per sequence."""
    codebook_size = prior.output_shape[-1]
    logits = np.asarray(
        prior.predict(shift_right(codes, codebook_size), batch_size=1024, verbose=0), "float64"
    )
    top = logits.max(axis=-1, keepdims=True)
    log_norm = top[..., 0] + np.log(np.exp(logits - top).sum(axis=-1))
    picked = np.take_along_axis(logits, codes[..., None].astype("int64"), axis=-1)[..., 0]
    return float(np.mean(np.sum(log_norm - picked, axis=1)))


def train_code_prior(
    train_codes: np.ndarray,
    val_codes: np.ndarray,
    codebook_size: int,
    epochs: int,
    batch_size: int = 128,
    seed: int = 0,
) -> tuple[keras.Model, dict]:
    """A prior fitted on training codes by Keras's own fit (cross-entropy of each position's code), and its
    negative log-likelihood of the training and held-out codes."""
    keras.utils.set_random_seed(seed)
    prior = build_code_prior(train_codes.shape[1], codebook_size)
    prior.compile(
        optimizer=keras.optimizers.Adam(3e-4),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    prior.fit(
        shift_right(train_codes, codebook_size),
        train_codes.astype("int32"),
        batch_size=batch_size,
        epochs=epochs,
        verbose=0,
    )
    return prior, {"train_nll": code_nll(prior, train_codes), "val_nll": code_nll(prior, val_codes)}


class PixelCNNSampler(Sampler):
    """Codes drawn from a learned prior: the one given, or one `fit` trains on codes (train_code_prior; its
    negative log-likelihoods in `nll`)."""

    name = "prior"
    description = "prior: the learned PixelCNN prior over the codes (prior.keras)"

    def __init__(
        self,
        prior: keras.Model | None = None,
        codebook_size: int = 0,
        epochs: int = PIXELCNN_EPOCHS,
        batch_size: int = 128,
        seed: int = 0,
    ):
        self.prior, self.fitted = prior, prior is not None
        self.codebook_size, self.epochs, self.batch_size, self.seed = codebook_size, epochs, batch_size, seed

    def fit(self, codes: np.ndarray, held_out: np.ndarray | None = None) -> PixelCNNSampler:
        held_out = codes if held_out is None else held_out
        self.prior, self.nll = train_code_prior(
            codes, held_out, self.codebook_size, self.epochs, self.batch_size, self.seed
        )
        self.fitted = True
        return self

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return sample_codes(self.prior, n, rng)
