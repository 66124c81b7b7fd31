"""What every sampler offers."""

from __future__ import annotations

import numpy as np


class Sampler:
    """Draws codes as a model's code_decoder takes them. `fitted` says whether it can sample yet; the ones
    that need a model's codes get them through `fit`, which returns the sampler."""

    name: str
    """Its choice in choices.SAMPLERS."""
    fitted: bool = True

    @property
    def description(self) -> str:
        """What it draws from, in words, as commands print it."""
        raise NotImplementedError

    def fit(self, codes: np.ndarray) -> Sampler:
        return self

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError
