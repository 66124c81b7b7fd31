"""Matplotlib drawings (Agg, off-screen). Each draw_* function fills one Axes, so a figure can show
one run (explore) or several side by side (compare), and frames of a GIF are the same drawings."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from keras_vae.files import write_atomic  # noqa: E402


def tile(images: np.ndarray, columns: int | None = None, pad: int = 1) -> np.ndarray:
    """Images (N, H, W, C) as one (rows*H, columns*W, C) picture with a thin white gap between them."""
    n, h, w, c = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    canvas = np.ones((rows * (h + pad) - pad, columns * (w + pad) - pad, c), dtype=images.dtype)
    canvas *= 255 if images.dtype == np.uint8 else 1
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        canvas[r * (h + pad) : r * (h + pad) + h, col * (w + pad) : col * (w + pad) + w] = image
    return canvas


def draw_image(ax, picture: np.ndarray, title: str = "", extent=None) -> None:
    """A tiled picture: grey for one channel, colour for three."""
    picture = picture[..., 0] if picture.shape[-1] == 1 else picture
    ax.imshow(picture, cmap="gray" if picture.ndim == 2 else None, extent=extent, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    if extent is None:
        ax.axis("off")


def draw_latent(
    ax, points: np.ndarray, labels: np.ndarray, class_names, title: str, limits=None, axes=("z[0]", "z[1]")
) -> None:
    """Latent points (or a 2-D projection of them, named by axes) coloured by label, with a legend of class
    names; in one colour without a legend when the data has no labels (all negative)."""
    labelled = bool(np.any(labels >= 0))
    classes = np.unique(labels)
    colours = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    y = (
        points[:, 1]
        if points.shape[1] > 1
        else labels + np.random.default_rng(0).uniform(-0.3, 0.3, len(labels))
    )
    for i, label in enumerate(classes):
        chosen = labels == label
        name = class_names[label] if class_names is not None and label < len(class_names) else str(label)
        ax.scatter(
            points[chosen, 0],
            y[chosen],
            s=3,
            color=colours(i % colours.N),
            label=name if labelled else None,
            alpha=0.7,
        )
    if limits is not None:
        ax.set_xlim(*limits[0])
        ax.set_ylim(*limits[1])
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(axes[0])
    ax.set_ylabel(axes[1] if points.shape[1] > 1 else "label")
    if labelled:
        ax.legend(fontsize=6, markerscale=3, loc="upper right", framealpha=0.6)


def draw_bars(ax, values, title: str, xlabel: str, ylabel: str) -> None:
    ax.bar(range(len(values)), values)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def panels(count: int, width: float = 5.0, height: float | None = None):
    """A figure with `count` panels of width x height inches (square by default) in a row."""
    figure, axes = plt.subplots(1, count, figsize=(width * count, height or width), squeeze=False)
    return figure, list(axes[0])


def save(figure, path: Path) -> Path:
    figure.tight_layout()
    write_atomic(path, lambda temporary: figure.savefig(temporary, dpi=100))
    plt.close(figure)
    return path


def to_rgb(figure) -> np.ndarray:
    """The figure's pixels (H, W, 3) uint8, for a GIF frame; closes the figure."""
    figure.canvas.draw()
    pixels = np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
    plt.close(figure)
    return pixels
