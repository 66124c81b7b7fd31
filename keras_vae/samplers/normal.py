"""N(0, I): the prior a variational model was trained towards."""

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
