"""A trained run as the page needs it: its fixed images' codes on a 2-D plane, and decoding of any point of
that plane (or any latent vector) into PNG images, batched, with the run's model."""

from __future__ import annotations

import base64
import io
import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from keras_vae.errors import ConfigError
from keras_vae.runs import RunError
from keras_vae.snapshots import read_epochs, to_uint8
from keras_vae.trained import LoadedRun, geometry

MAX_DECODES = 256
"""The most images one decode request may ask for."""


def png(image: np.ndarray) -> str:
    """One image in [0, 1] (H, W, C) as a data: URL of a PNG."""
    import imageio.v2 as imageio

    buffer = io.BytesIO()
    pixels = to_uint8(image)
    imageio.imwrite(buffer, pixels[..., 0] if pixels.shape[-1] == 1 else pixels, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


@dataclass
class ServedRun:
    """One run folder, loaded once (trained.LoadedRun), and the page's plane: the run's geometry.Plane of its
    fixed images' codes (the latent itself in 2-D, and in 1-D along x; else PCA, whose inverse maps a point
    back to a latent). A damaged epoch snapshot turns off the run's epoch replay, with the reason, not the
    page."""

    run: LoadedRun
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(cls, path: str | Path) -> ServedRun:
        run = LoadedRun.load(path)
        if run.model.discrete:
            raise RunError(
                f"{run.folder.root} is a vq-vae, whose codes are discrete: serve shows a continuous latent "
                "space (use explore)"
            )
        return cls(run)

    @cached_property
    def latent_plane(self) -> geometry.Plane:
        return geometry.Plane(self.run.z)

    def plane(self, z: np.ndarray) -> np.ndarray:
        """Codes as points of the page's plane: a 1-D latent along x."""
        projected = self.latent_plane.project(z)
        return np.pad(projected, ((0, 0), (0, 2 - projected.shape[1])))

    def latent(self, points: np.ndarray) -> np.ndarray:
        """Points of the plane as latent vectors."""
        return self.latent_plane.lift(points)

    @cached_property
    def replay(self) -> tuple[list[dict], str | None]:
        """The epoch snapshots, and why there are none when one is damaged."""
        try:
            return read_epochs(self.run.folder.snapshots), None
        except RunError as error:
            return [], str(error)

    @property
    def snapshots(self) -> list[dict]:
        return self.replay[0]

    @property
    def replay_error(self) -> str | None:
        return self.replay[1]

    def locked(self, method: str, *args):
        """One of the methods below, called while no other request of this run's is being answered."""
        with self.lock:
            return getattr(self, method)(*args)

    def describe(self) -> dict:
        run = self.run
        return {
            "name": run.name,
            "model": run.family,
            "latent_dim": run.latent_dim,
            "plane": "z" if self.latent_plane.pca is None else "PCA",
            "conditional": bool(run.model.conditional),
            "classes": [run.class_name(label) for label in range(run.model.classes)]
            if run.model.conditional
            else None,
            "class_names": run.class_names,
            "epochs": [int(snapshot["epoch"]) for snapshot in self.snapshots],
            "replay_error": self.replay_error,
            "images": len(run.images),
            "sampler": run.sampler().description,
        }

    def points(self, epoch: int | None = None) -> dict:
        """The fixed images on the plane (at an epoch of the snapshots, or as trained) with their labels."""
        if epoch is None:
            codes = self.run.z
        else:
            found = [snapshot for snapshot in self.snapshots if int(snapshot["epoch"]) == epoch]
            if self.replay_error is not None:
                raise ConfigError(f"epoch replay is off for {self.run.name}: {self.replay_error}", "epoch")
            if not found:
                raise ConfigError(
                    f"epoch {epoch} has no snapshot in {self.run.name}: pick one of "
                    f"{[int(s['epoch']) for s in self.snapshots]}",
                    "epoch",
                )
            codes = found[0]["latent"]
        return {
            "points": np.round(self.plane(codes).astype("float64"), 4).tolist(),
            "labels": self.run.labels.astype(int).tolist(),
        }

    def decode(
        self, points: list | None = None, z: list | None = None, label: int | None = None
    ) -> list[str]:
        """PNGs of points of the plane, or of latent vectors z; a CVAE's under label (default: the first
        class)."""
        vectors = (
            self.latent(as_matrix(points, 2, "points"))
            if z is None
            else as_matrix(z, self.run.latent_dim, "z")
        )
        if self.run.model.conditional:
            label = 0 if label is None else label
            if not 0 <= label < self.run.model.classes:
                raise ConfigError(
                    f"label must lie between 0 and {self.run.model.classes - 1}, got {label}", "label"
                )
        return [png(image) for image in self.run.decode(vectors.astype("float32"), label)]

    def samples(self, n: int, sampler: str | None = None) -> dict:
        """PNGs of n new images from a sampler (the run's own by default), and which sampler it is, in words;
        a CVAE's of the classes in turn. Each request draws afresh."""
        if not 1 <= n <= MAX_DECODES:
            raise ConfigError(f"n must lie between 1 and {MAX_DECODES}, got {n}", "n")
        images = self.run.samples(n, np.random.default_rng(), sampler=sampler)
        return {"sampler": self.run.sampler(sampler).description, "images": [png(image) for image in images]}

    def image(self, index: int) -> dict:
        """A fixed image, its reconstruction and its code."""
        if not 0 <= index < len(self.run.images):
            raise ConfigError(
                f"index must lie between 0 and {len(self.run.images) - 1}, got {index}", "index"
            )
        return {
            "input": png(self.run.images[index]),
            "reconstruction": png(self.run.reconstructions[index]),
            "z": np.round(self.run.z[index].astype("float64"), 4).tolist(),
            "label": int(self.run.labels[index]),
        }


def as_matrix(values, width: int, name: str) -> np.ndarray:
    """A JSON list of vectors of width numbers, at most MAX_DECODES of them, as a float array."""
    try:
        matrix = np.asarray(values, dtype="float64")
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{name} must be a list of lists of {width} numbers", name) from None
    if (
        matrix.ndim != 2
        or matrix.shape[1] != width
        or not 1 <= len(matrix) <= MAX_DECODES
        or not np.isfinite(matrix).all()
    ):
        raise ConfigError(
            f"{name} must be a list of 1 to {MAX_DECODES} lists of {width} finite numbers", name
        )
    return matrix
