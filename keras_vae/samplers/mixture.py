"""A Gaussian mixture of a model's training codes: the sampler of an AE, which has no prior, and a second
opinion on any other model's."""

from __future__ import annotations

import numpy as np

from keras_vae.samplers.base import Sampler

MIXTURE = 10
"""Components of the Gaussian mixture."""


class MixtureSampler(Sampler):
    """scikit-learn's GaussianMixture of MIXTURE full-covariance components fitted on codes; with a VQ-VAE's
    codebook, on the code vectors its code indices stand for, each drawn vector then snapped to its nearest
    code. images: how many images' codes it is (to be) fitted on, which its description gives."""

    name = "gmm"
    fitted = False

    def __init__(self, images: int = 0, codebook: np.ndarray | None = None):
        self.images, self.codebook = images, codebook

    @property
    def description(self) -> str:
        vectors = "code vectors, snapped to the codebook" if self.codebook is not None else "codes"
        return (
            f"gmm: a {min(MIXTURE, self.images)}-Gaussian mixture fitted on {self.images:,} training "
            f"images' {vectors}"
        )

    def fit(self, codes: np.ndarray) -> MixtureSampler:
        """Its weights, means and Cholesky factors, fitted on codes (one row per image)."""
        from sklearn.mixture import GaussianMixture

        vectors = (
            self.codebook[codes].reshape(len(codes), -1)
            if self.codebook is not None
            else codes.astype("float64")
        )
        mixture = GaussianMixture(
            min(MIXTURE, len(vectors)), covariance_type="full", reg_covar=1e-5, random_state=0
        ).fit(vectors)
        self.weights = mixture.weights_ / mixture.weights_.sum()
        self.means, self.factors = mixture.means_, np.linalg.cholesky(mixture.covariances_)
        self.images, self.fitted = len(codes), True
        return self

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        component = rng.choice(len(self.weights), size=n, p=self.weights)
        noise = rng.standard_normal((n, self.means.shape[1]))
        drawn = (self.means[component] + np.einsum("nij,nj->ni", self.factors[component], noise)).astype(
            "float32"
        )
        if self.codebook is None:
            return drawn
        vectors = drawn.reshape(-1, self.codebook.shape[1])
        distances = (
            np.sum(np.square(self.codebook), axis=1) - 2 * vectors @ self.codebook.T
        )  # |v - c|², less |v|²
        return np.argmin(distances, axis=1).reshape(n, -1).astype("int32")
