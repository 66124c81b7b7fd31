"""A learned prior over a continuous model's codes: a small RealNVP normalizing flow (Dinh et al. 2017),
fitted after training on the codes of the training images, as pythae fits its MAF and IAF samplers. The codes
are whitened (their mean and covariance's Cholesky factor), so that the untrained flow is the Gaussian that
fits them best, then affine couplings alternate which half of the dimensions they scale and shift by functions
of the other half; the flow maps a code to N(0, I) with a tractable Jacobian, and sampling runs it backwards.
FlowSampler is the sampler a trained one makes, and `fit` trains one (keras-vae train-prior).
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers, ops

from keras_vae.choices import FLOW_EPOCHS
from keras_vae.samplers.base import Sampler

COUPLINGS = 8
HIDDEN = 64
PATIENCE = 10
"""Epochs without a better held-out likelihood (a tenth of the training codes) before fitting stops at the
best."""


@keras.saving.register_keras_serializable(package="keras_vae")
class Coupling(layers.Layer):
    """An affine coupling: the dimensions outside mask are scaled (tanh-bounded log-scale) and shifted by a
    small MLP of those inside it."""

    def __init__(self, mask: list[int], hidden: int = HIDDEN, **kwargs):
        super().__init__(**kwargs)
        self.mask, self.hidden = list(mask), hidden
        dims = len(self.mask)
        self.body = [layers.Dense(hidden, activation="relu"), layers.Dense(hidden, activation="relu")]
        self.log_scale = layers.Dense(dims, kernel_initializer="zeros")
        self.shift = layers.Dense(dims, kernel_initializer="zeros")

    def build(self, input_shape):
        dims = len(self.mask)
        self.body[0].build((None, dims))
        self.body[1].build((None, self.hidden))
        self.log_scale.build((None, self.hidden))
        self.shift.build((None, self.hidden))

    def scale_and_shift(self, kept):
        free = 1.0 - ops.convert_to_tensor(self.mask, "float32")
        hidden = kept
        for layer in self.body:
            hidden = layer(hidden)
        return ops.tanh(self.log_scale(hidden)) * free, self.shift(hidden) * free

    def call(self, x):
        """x towards the noise, and the log-determinant of that step's Jacobian, per code."""
        mask = ops.convert_to_tensor(self.mask, "float32")
        kept = x * mask
        log_scale, shift = self.scale_and_shift(kept)
        return kept + (x * ops.exp(log_scale) + shift) * (1.0 - mask), ops.sum(log_scale, axis=-1)

    def inverse(self, y):
        mask = ops.convert_to_tensor(self.mask, "float32")
        kept = y * mask
        log_scale, shift = self.scale_and_shift(kept)
        return kept + (y - shift) * ops.exp(-log_scale) * (1.0 - mask)

    def get_config(self) -> dict:
        return {**super().get_config(), "mask": self.mask, "hidden": self.hidden}


@keras.saving.register_keras_serializable(package="keras_vae")
class Flow(keras.Model):
    """Codes (n, latent_dim) to their negative log-likelihood in nats, which fit minimises (compute_loss);
    `sample(noise)` runs the flow backwards. The codes' mean and the Cholesky factor of their covariance (and
    its inverse) are fixed weights, set from the training codes before fitting (whiten)."""

    def __init__(self, latent_dim: int, couplings: int = COUPLINGS, hidden: int = HIDDEN, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim, self.couplings, self.hidden = latent_dim, couplings, hidden
        halves = [int(i % 2 == 0) for i in range(latent_dim)]
        self.steps = [
            Coupling(halves if step % 2 == 0 else [1 - kept for kept in halves], hidden)
            for step in range(couplings)
        ]
        fixed = {"trainable": False, "shape": (latent_dim, latent_dim), "initializer": "identity"}
        self.center = self.add_weight(
            shape=(latent_dim,), initializer="zeros", trainable=False, name="center"
        )
        self.factor = self.add_weight(**fixed, name="factor")
        self.unfactor = self.add_weight(**fixed, name="unfactor")

    def build(self, input_shape=None):
        for step in self.steps:
            step.build((None, self.latent_dim))

    def whiten(self, codes: np.ndarray) -> None:
        """Take codes' mean and covariance (a little ridge keeps it invertible) as the fixed weights."""
        covariance = np.cov(codes.astype("float64"), rowvar=False).reshape(self.latent_dim, self.latent_dim)
        factor = np.linalg.cholesky(covariance + 1e-6 * np.eye(self.latent_dim) * np.trace(covariance))
        self.center.assign(codes.mean(axis=0))
        self.factor.assign(factor.T)  # row vectors: x @ factor.T
        self.unfactor.assign(np.linalg.inv(factor).T)

    def call(self, codes):
        x = ops.matmul(codes - self.center, self.unfactor)
        log_det = ops.sum(ops.log(ops.abs(ops.diagonal(self.unfactor))))
        for step in self.steps:
            x, step_log_det = step(x)
            log_det = log_det + step_log_det
        gaussian = 0.5 * ops.sum(ops.square(x), axis=-1) + 0.5 * self.latent_dim * math.log(2 * math.pi)
        return gaussian - log_det

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return ops.mean(y_pred)

    def sample(self, noise: np.ndarray) -> np.ndarray:
        x = ops.convert_to_tensor(noise, "float32")
        for step in reversed(self.steps):
            x = step.inverse(x)
        return np.asarray(ops.convert_to_numpy(ops.matmul(x, self.factor) + self.center), "float32")

    def get_config(self) -> dict:
        return {"latent_dim": self.latent_dim, "couplings": self.couplings, "hidden": self.hidden}


def flow_nll(flow: Flow, codes: np.ndarray) -> float:
    """The flow's mean negative log-likelihood of codes, in nats per code."""
    return float(np.mean(flow.predict(codes.astype("float32"), batch_size=4096, verbose=0)))


def train_flow(
    train_codes: np.ndarray, val_codes: np.ndarray, epochs: int, batch_size: int = 128, seed: int = 0
) -> tuple[Flow, dict]:
    """A flow fitted on training codes by Keras's own fit (their negative log-likelihood; stopped early at its
    best on a seeded random tenth of them held out), and its negative log-likelihood of the training and
    held-out codes."""
    keras.utils.set_random_seed(seed)
    # fit's validation_split holds out the last tenth as given, and the codes come in the split's fixed order,
    # which a folder of class subfolders gives sorted by class
    codes = np.random.default_rng(seed).permutation(train_codes.astype("float32"))
    flow = Flow(codes.shape[1])
    flow.build()
    flow.whiten(codes)
    flow.compile(optimizer=keras.optimizers.Adam(1e-3))
    stop = keras.callbacks.EarlyStopping(patience=PATIENCE, restore_best_weights=True)
    flow.fit(codes, batch_size=batch_size, epochs=epochs, validation_split=0.1, callbacks=[stop], verbose=0)
    return flow, {"train_nll": flow_nll(flow, codes), "val_nll": flow_nll(flow, val_codes)}


class FlowSampler(Sampler):
    """Codes drawn from a learned flow: the one given, or one `fit` trains on codes (train_flow; its negative
    log-likelihoods in `nll`)."""

    name = "flow"
    description = "flow: the learned RealNVP flow over the codes (flow.keras)"

    def __init__(
        self, flow: Flow | None = None, epochs: int = FLOW_EPOCHS, batch_size: int = 128, seed: int = 0
    ):
        self.flow, self.fitted = flow, flow is not None
        self.epochs, self.batch_size, self.seed = epochs, batch_size, seed

    def fit(self, codes: np.ndarray, held_out: np.ndarray | None = None) -> FlowSampler:
        held_out = codes if held_out is None else held_out
        self.flow, self.nll = train_flow(codes, held_out, self.epochs, self.batch_size, self.seed)
        self.fitted = True
        return self

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.flow.sample(rng.standard_normal((n, self.flow.latent_dim)).astype("float32"))
