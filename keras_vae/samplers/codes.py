"""A VQ-VAE's codes drawn from their per-position frequencies: its stand-in prior until a learned one is
trained (pixelcnn.py), and the codes its epoch snapshots decode while it trains."""

from __future__ import annotations

import numpy as np

from keras_vae.samplers.base import Sampler


class CodeFrequencySampler(Sampler):
    """Each position of a code sequence drawn on its own from the codes found there in the fitted codes.
    images: how many images' codes it is (to be) fitted on, which its description gives."""

    name = "prior"
    fitted = False

    def __init__(self, images: int = 0):
        self.images = images

    @property
    def description(self) -> str:
        return (
            f"prior: the codes' per-position frequencies in {self.images:,} training images "
            "(no learned prior yet: keras-vae train-prior)"
        )

    def fit(self, codes: np.ndarray) -> CodeFrequencySampler:
        self.codes, self.images, self.fitted = codes, len(codes), True
        return self

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        rows = rng.integers(len(self.codes), size=(n, self.codes.shape[1]))
        return self.codes[rows, np.arange(self.codes.shape[1])]
