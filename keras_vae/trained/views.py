"""The figures of one trained run, each drawn into a matplotlib Axes (plots.py) from a trained.LoadedRun: the
views that compare puts side by side (VIEWS), and every figure explore writes (figures)."""

from __future__ import annotations

from collections.abc import Callable
from statistics import NormalDist

import numpy as np
from matplotlib.figure import Figure

from keras_vae import plots
from keras_vae.trained import geometry
from keras_vae.trained.loaded import LoadedRun
from keras_vae.trained.metrics import code_counts, kl_per_dimension, perplexity, pixel_accuracy

GRID = 15
"""Images along each side of a decoded latent grid."""


def draw_reconstructions(ax, run: LoadedRun, n: int = 8) -> None:
    accuracy = pixel_accuracy(run.images, run.reconstructions)
    pairs = np.concatenate([run.images[:n], run.reconstructions[:n]])
    plots.draw_image(
        ax, plots.tile(pairs, n), f"{run.name}: inputs over reconstructions\npixel accuracy {accuracy:.1%}"
    )


def draw_latent(ax, run: LoadedRun) -> None:
    plane = geometry.Plane(run.z)
    how = f" (PCA of {run.latent_dim}-D)" if plane.pca is not None else ""
    title = f"{run.name}: latent means{how}"
    plots.draw_latent(ax, plane.project(run.z), run.labels, run.class_names, title, axes=plane.axes)


def draw_samples(ax, run: LoadedRun, columns: int = 8, sampler: str | None = None) -> None:
    """Decoded draws of a sampler (the family's own by default); a CVAE's as a class x samples grid: one row
    per class, one z per column."""
    if not run.model.conditional:
        plots.draw_image(
            ax,
            plots.tile(run.samples(sampler=sampler)),
            f"{run.name}: decoded samples\n{run.sampler(sampler).description}",
        )
        return
    classes = min(run.model.classes, MAX_CLASS_ROWS)
    z = run.sample_codes(columns, np.random.default_rng(0), sampler)
    rows = np.concatenate([run.decode(z, label) for label in range(classes)])
    names = ", ".join(run.class_name(label) for label in range(classes))
    plots.draw_image(
        ax,
        plots.tile(rows, columns),
        f"{run.name}: one class a row ({names}), one z a column\n{run.sampler(sampler).description}",
    )


def draw_grid(ax, run: LoadedRun, radius: float = 1.5) -> None:
    picture = run.grid(np.linspace(-radius, radius, GRID))
    condition = f" (class {run.class_name(0)})" if run.model.conditional else ""
    plots.draw_image(
        ax, picture, f"{run.name}: decoded latent grid{condition}", extent=(-radius, radius, -radius, radius)
    )


VIEWS = {
    "reconstructions": draw_reconstructions,
    "latent": draw_latent,
    "samples": draw_samples,
    "latent_grid": draw_grid,
}
SIZES = {"reconstructions": (8, 2.6)}
CONTINUOUS_VIEWS = ("latent", "latent_grid")
"""The views of a continuous latent space, which a VQ-VAE's codes are not."""
MAX_CLASS_ROWS = 20


def applies(view: str, run: LoadedRun) -> bool:
    """Whether a view of VIEWS can be drawn for a run."""
    if view in CONTINUOUS_VIEWS and run.model.discrete:
        return False
    return view != "latent_grid" or run.latent_dim == 2


def figures(run: LoadedRun, radius: float, sampler: str | None = None) -> dict[str, Callable[[], Figure]]:
    """Every picture explore draws for this run, by file name, the samples from sampler (the family's own by
    default); each is drawn when called."""
    if run.model.discrete:
        return {
            "reconstructions": lambda: view("reconstructions", run),
            "codebook_usage": lambda: codebook_usage(run),
            "samples": lambda: view("samples", run, sampler=sampler),
        }
    drawings = {
        "reconstructions": lambda: view("reconstructions", run),
        "latent": lambda: view("latent", run),
    }
    if run.latent_dim > 2:
        drawings["latent_tsne"] = lambda: latent_tsne(run)
    if run.latent_dim == 2:
        drawings["latent_grid"] = lambda: view("latent_grid", run, radius=radius)
        drawings["latent_grid_quantiles"] = lambda: quantile_grid(run)
    drawings["samples"] = lambda: view("samples", run, sampler=sampler)
    drawings["interpolation"] = lambda: interpolation(run)
    if run.model.variational and not run.model.learned_prior:  # a learned prior's KL does not split so
        drawings["kl_per_dimension"] = lambda: kl_bars(run)
    return drawings


def view(name: str, run: LoadedRun, **options) -> Figure:
    figure, (ax,) = plots.panels(1, *SIZES.get(name, (6,)))
    VIEWS[name](ax, run, **options)
    return figure


def latent_tsne(run: LoadedRun) -> Figure:
    figure, (ax,) = plots.panels(1, 6)
    title = f"{run.name}: t-SNE of latent means"
    plots.draw_latent(
        ax, geometry.tsne(run.z), run.labels, run.class_names, title, axes=("t-SNE 1", "t-SNE 2")
    )
    return figure


def quantile_grid(run: LoadedRun) -> Figure:
    quantiles = np.array([NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, GRID)])
    figure, (ax,) = plots.panels(1, 6)
    plots.draw_image(ax, run.grid(quantiles), f"{run.name}: latent grid over Gaussian quantiles 5%-95%")
    return figure


def kl_bars(run: LoadedRun) -> Figure:
    z_mean, z_log_var, _ = (code.astype("float64") for code in run.codes)
    figure, (ax,) = plots.panels(1)
    kl = kl_per_dimension(z_mean, z_log_var).mean(0)
    plots.draw_bars(ax, kl, f"{run.name}: KL per latent dimension", "latent dimension", "mean KL (nats)")
    return figure


def codebook_usage(run: LoadedRun) -> Figure:
    """How often each code of a VQ-VAE's codebook stands for the fixed images, most used first."""
    codes = run.model.codebook_size
    counts = np.sort(code_counts(run.z, codes))[::-1]
    figure, (ax,) = plots.panels(1, 7)
    title = (
        f"{run.name}: codebook use over {len(run.z):,} images ({int(np.sum(counts > 0))} of {codes} "
        f"codes used, perplexity {perplexity(counts):.1f})"
    )
    plots.draw_bars(ax, counts / counts.sum(), title, "code, most used first", "fraction of positions")
    return figure


def interpolation(run: LoadedRun, steps: int = 10) -> Figure:
    """Decoded points on the line between the latent means of two images: of different classes, or without
    labels, the one whose code lies farthest from the first's. A CVAE's, of one class, decoded under it."""
    distances = np.sum(np.square(run.z - run.z[0]), axis=1)
    if run.model.conditional:
        other = int(np.argmax(np.where(run.labels == run.labels[0], distances, -1)))
    elif run.labels[0] >= 0:
        other = int(np.argmax(run.labels != run.labels[0]))
    else:
        other = int(np.argmax(distances))
    z = geometry.line(run.z[0], run.z[other], steps)
    decoded = run.decode(z, int(run.labels[0]) if run.model.conditional else None)
    strip = np.concatenate([run.images[:1], decoded, run.images[other : other + 1]])
    figure, ax = plots.plt.subplots(figsize=(12, 1.8))
    plots.draw_image(
        ax,
        plots.tile(strip, len(strip)),
        f"{run.name}: interpolation between two test images (ends: the inputs)",
    )
    return figure
