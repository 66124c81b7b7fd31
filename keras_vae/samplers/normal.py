"""The prior a variational model was trained towards: N(0, I), or a VampPrior VAE's mixture of its posteriors
at its pseudo-inputs."""

from __future__ import annotations

import numpy as np

from keras_vae.samplers.base import Sampler


class NormalSampler(Sampler):
    name = "prior"
    description = "prior: N(0, I)"

    def __init__(self, latent_dim: int):
        self.latent_dim = latent_dim

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal((n, self.latent_dim)).astype("float32")


class PseudoInputSampler(Sampler):
    """A VampPrior's codes: a component drawn uniformly from the K posteriors at the pseudo-inputs (their
    means and log-variances), then a code from it."""

    name = "prior"

    def __init__(self, means: np.ndarray, log_vars: np.ndarray):
        self.means, self.log_vars = means, log_vars

    @property
    def description(self) -> str:
        return f"prior: the VampPrior, a mixture of the posteriors at {len(self.means)} learned pseudo-inputs"

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        chosen = rng.integers(len(self.means), size=n)
        noise = rng.standard_normal((n, self.means.shape[1]))
        return (self.means[chosen] + np.exp(0.5 * self.log_vars[chosen]) * noise).astype("float32")
