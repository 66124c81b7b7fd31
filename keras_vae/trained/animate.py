"""GIFs of a run: the latent space, samples and reconstructions over the epochs (from snapshots),
and latent traversals and interpolations of the trained model. imageio writes them."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np

from keras_vae import plots
from keras_vae.choices import ANIMATIONS, MAX_FPS, MIN_FPS
from keras_vae.errors import ConfigError
from keras_vae.files import write_atomic
from keras_vae.runs import RunError
from keras_vae.snapshots import read_epochs, to_uint8
from keras_vae.trained import geometry
from keras_vae.trained.loaded import LoadedRun

CONTINUOUS_KINDS = ("latent", "traversal", "interpolation")


def latent_frames(run: LoadedRun, snapshots: list[dict]) -> list[np.ndarray]:
    """The latent means of the fixed subset at each epoch, on axes fixed over all epochs."""
    plane = geometry.Plane(snapshots[-1]["latent"])
    points = [plane.project(s["latent"]) for s in snapshots]
    stacked = np.concatenate(points)
    low, high = np.percentile(stacked, 0.5, axis=0), np.percentile(stacked, 99.5, axis=0)
    margin = 0.05 * (high - low + 1e-6)
    limits = list(zip(low - margin, high + margin))
    frames = []
    for snapshot, p in zip(snapshots, points):
        figure, (ax,) = plots.panels(1, 5)
        title = f"{run.name}: latent means, epoch {snapshot['epoch']}"
        plots.draw_latent(ax, p, run.labels, run.class_names, title, limits, plane.axes)
        frames.append(plots.to_rgb(figure))
    return frames


def image_frames(run: LoadedRun, snapshots: list[dict], key: str) -> list[np.ndarray]:
    """The fixed noise batch decoded (samples) or the fixed inputs over their reconstructions, per epoch."""
    frames = []
    for snapshot in snapshots:
        images = snapshot[key]
        if key == "reconstructions":
            inputs = to_uint8(run.images[: len(images)])
            picture, title = (
                plots.tile(np.concatenate([inputs, images]), len(images) // 2),
                "inputs over reconstructions",
            )
        else:
            picture, title = (
                plots.tile(images),
                "decoded codes drawn from their frequencies"
                if run.model.discrete
                else "decoded fixed z ~ N(0, I)",
            )
        figure, (ax,) = plots.panels(1, 5)
        plots.draw_image(ax, picture, f"{run.name}: {title}, epoch {snapshot['epoch']}")
        frames.append(plots.to_rgb(figure))
    return frames


def traversal_frames(
    run: LoadedRun, steps: int = 25, limit: float = 3.0, max_dims: int = 10, max_classes: int = 10
) -> list[np.ndarray]:
    """Each latent dimension swept over [-limit, limit] with the others at 0: one image per dimension; a
    CVAE's in one row per class."""
    dims = min(run.latent_dim, max_dims)
    labels = range(min(run.model.classes, max_classes)) if run.model.conditional else [None]
    frames = []
    for value in np.concatenate([np.linspace(-limit, limit, steps), np.linspace(limit, -limit, steps)[1:-1]]):
        z = np.zeros((dims, run.latent_dim), "float32")
        z[np.arange(dims), np.arange(dims)] = value
        rows = np.concatenate([run.decode(z, label) for label in labels])
        figure, (ax,) = plots.panels(1, 5)
        per_class = ", one class a row" if run.model.conditional else ""
        plots.draw_image(
            ax, plots.tile(rows, dims), f"{run.name}: z[i] = {value:+.2f}, i = 0..{dims - 1}{per_class}"
        )
        frames.append(plots.to_rgb(figure))
    return frames


def interpolation_frames(run: LoadedRun, images: int = 6, steps: int = 8) -> list[np.ndarray]:
    """A loop through the latent means of test images of different classes, decoded."""
    _, first = np.unique(run.labels, return_index=True)
    chosen = np.sort(first)[:images]
    z, labels = run.z[chosen], run.labels[chosen]
    frames = []
    for start, end, label in zip(z, np.roll(z, -1, axis=0), labels):
        decoded = run.decode(
            geometry.line(start, end, steps, endpoint=False), int(label) if run.model.conditional else None
        )
        for image in decoded[:, None]:
            figure, (ax,) = plots.panels(1, 3)
            plots.draw_image(ax, plots.tile(image), f"{run.name}: interpolation")
            frames.append(plots.to_rgb(figure))
    return frames


def animate(
    path: str | Path, kind: str, out: Path | None = None, fps: float = 4.0, overwrite: bool = False
) -> tuple[Path, int]:
    """Write the GIF of one kind to out (default RUN/figures/KIND.gif); returns where, and its number of
    frames."""
    if kind not in ANIMATIONS:
        raise ConfigError(f"kind must be one of {', '.join(ANIMATIONS)}, got {kind!r}", "kind")
    if not MIN_FPS <= fps <= MAX_FPS:
        raise ConfigError(
            f"fps must lie between {MIN_FPS} and {MAX_FPS} (a GIF's frame delay is 0.01 s to 655 s), got "
            f"{fps}",
            "fps",
        )
    run = LoadedRun.load(path)
    if run.model.discrete and kind in CONTINUOUS_KINDS:
        raise ConfigError(
            f"kind {kind} moves through a continuous latent space, and {run.name} is a vq-vae, whose codes "
            "are discrete: animate its samples or reconstructions",
            "kind",
        )
    out = run.folder.output(out, f"{kind}.gif", overwrite)
    if kind == "traversal":
        frames = traversal_frames(run)
    elif kind == "interpolation":
        frames = interpolation_frames(run)
    else:
        snapshots = read_epochs(run.folder.snapshots)
        if not snapshots:
            raise RunError(f"{run.folder.snapshots} holds no epoch snapshots to animate")
        for snapshot in snapshots:
            if snapshot["latent"].shape != (len(run.images), run.latent_dim):
                raise RunError(
                    f"{run.folder.snapshots}/epoch_{snapshot['epoch']:04d}.npz holds codes of shape "
                    f"{snapshot['latent'].shape} "
                    f"for {len(run.images)} images of a {run.latent_dim}-D latent: delete it, and the "
                    "other epochs' snapshots are used"
                )
        frames = latent_frames(run, snapshots) if kind == "latent" else image_frames(run, snapshots, kind)
    write_atomic(out, lambda temporary: imageio.mimsave(temporary, frames, duration=1000 / fps, loop=0))
    return out, len(frames)
