"""Where codes lie and how to move between them: the 2-D plane a latent space is drawn on (explore, animate
and serve alike), t-SNE, straight lines between codes and square grids of them."""

from __future__ import annotations

import numpy as np


class Plane:
    """A latent space drawn in 2-D: codes of at most 2 dimensions as they are, larger ones by scikit-learn's
    PCA fitted on the codes given."""

    def __init__(self, codes: np.ndarray):
        self.latent_dim = codes.shape[1]
        self.pca = None
        if self.latent_dim > 2:
            from sklearn.decomposition import PCA

            self.pca = PCA(2, random_state=0).fit(codes)

    @property
    def axes(self) -> tuple[str, str]:
        return ("PC 1", "PC 2") if self.pca is not None else ("z[0]", "z[1]")

    def project(self, z: np.ndarray) -> np.ndarray:
        """Codes on the plane (a 1-D latent stays one column)."""
        return z if self.pca is None else self.pca.transform(z)

    def lift(self, points: np.ndarray) -> np.ndarray:
        """Points of the plane as codes: PCA's inverse, or the first latent_dim coordinates."""
        return points[:, : self.latent_dim] if self.pca is None else self.pca.inverse_transform(points)


def tsne(z: np.ndarray) -> np.ndarray:
    """scikit-learn's t-SNE of codes in 2-D, seeded, so the same codes give the same picture."""
    from sklearn.manifold import TSNE

    return TSNE(2, init="pca", perplexity=min(30, len(z) - 1), random_state=0).fit_transform(z)


def line(start: np.ndarray, end: np.ndarray, steps: int, endpoint: bool = True) -> np.ndarray:
    """steps codes evenly along the straight line from start to end (end itself only with endpoint),
    float32."""
    weights = np.linspace(0, 1, steps, endpoint=endpoint)[:, None]
    return ((1 - weights) * start + weights * end).astype("float32")


def grid(coordinates: np.ndarray) -> np.ndarray:
    """The 2-D codes of a square grid, row by row from high z[1] at the top, z[0] rising along each row."""
    z0, z1 = np.meshgrid(coordinates, coordinates[::-1])
    return np.stack([z0.ravel(), z1.ravel()], 1).astype("float32")
