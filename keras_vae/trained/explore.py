"""`keras-vae explore` and `compare`: a run's figures as PNGs, and the views of several runs side by side with
a summary page."""

from __future__ import annotations

import math
from pathlib import Path

from keras_vae import plots
from keras_vae.errors import ConfigError
from keras_vae.files import write_text_atomic
from keras_vae.runs import claim_output
from keras_vae.trained.loaded import LoadedRun
from keras_vae.trained.quality import NEIGHBOURS, run_feature_space, run_sample_quality
from keras_vae.trained.views import SIZES, VIEWS, applies, figures


def explore(
    path: str | Path,
    out: Path | None = None,
    radius: float = 1.5,
    overwrite: bool = False,
    sampler: str | None = None,
) -> list[Path]:
    """Every picture of one run, as PNGs in out (default RUN/figures), the samples from sampler (the family's
    own by default); in a folder the user named, existing files are replaced only with overwrite, and every
    name is checked before anything is drawn."""
    if not 0 < radius < math.inf:
        raise ConfigError(f"radius must be a finite number > 0, got {radius}", "radius")
    run = LoadedRun.load(path)
    drawings = figures(run, radius, run.sampler(sampler).name)
    targets = [run.folder.output(out and out / f"{name}.png", f"{name}.png", overwrite) for name in drawings]
    return [plots.save(draw(), target) for draw, target in zip(drawings.values(), targets)]


def compare(
    paths: list[str | Path], out: Path, overwrite: bool = False, quality_images: int = 1000
) -> list[Path]:
    """The shared views of several runs side by side, and out/index.md embedding them with final metrics and
    the quality of each run's samples (none with quality_images 0); existing files in out are replaced only
    with overwrite."""
    runs = [LoadedRun.load(path) for path in paths]
    last_epochs = [run.folder.read_last_epoch() for run in runs]
    views = [v for v in VIEWS if all(applies(v, run) for run in runs)]
    targets = [
        claim_output(out / name, overwrite) for name in [*(f"{view}.png" for view in views), "index.md"]
    ]
    few = [run.name for run in runs if run.config["data"]["val_images"] <= NEIGHBOURS + 1]
    for view, target in zip(views, targets):
        figure, axes = plots.panels(len(runs), *SIZES.get(view, (5,)))
        for ax, run in zip(axes, runs):
            VIEWS[view](ax, run)
        plots.save(figure, target)
    qualities = None
    if quality_images and few:
        qualities = (
            [],
            f"Sample quality needs more than {NEIGHBOURS + 1} held-out images, and {', '.join(few)} has "
            "fewer, so it is left out.",
        )
    elif quality_images:
        qualities = compared_quality(runs, quality_images)
    write_text_atomic(targets[-1], summary_page(runs, last_epochs, views, qualities))
    return targets


def compared_quality(runs: list[LoadedRun], images: int) -> tuple[list[dict], str]:
    """Each run's sample quality from its own sampler, all in the first run's feature space when the runs
    share their data (else each in its own, and the page says the distances do not compare); and a note."""
    shared = (
        len({(run.config["data"]["source"], tuple(run.config["data"]["input_shape"])) for run in runs}) == 1
    )
    space = (
        run_feature_space(runs[0].folder.target(runs[0].folder.classifier), runs[0].dataset)
        if shared
        else None
    )
    qualities = [run_sample_quality(run, images=images, space=space) for run in runs]
    if not shared:
        return (
            qualities,
            "The runs were trained on different data, so each is measured in its own feature space: their "
            "distances do not compare.",
        )
    return (
        qualities,
        f"Every run measured in {qualities[0]['features']} (of {runs[0].name}), against "
        f"{qualities[0]['quality_images']:,} held-out images.",
    )


def summary_page(
    runs: list[LoadedRun],
    last_epochs: list[dict],
    views: list[str],
    qualities: tuple[list[dict], str] | None = None,
) -> str:
    columns = ["loss", "reconstruction_loss", "kl_loss", "val_loss"]
    lines = [
        "# keras-vae compare",
        "",
        "| run | model | arch | latent | epochs | " + " | ".join(columns) + " |",
    ]
    lines.append("|" + " --- |" * (5 + len(columns)))
    for run, last in zip(runs, last_epochs):
        options = run.config["options"]
        values = [f"{float(last[c]):.2f}" if c in last else "-" for c in columns]
        lines.append(
            f"| {run.name} | {options['model']} | {options['arch']} | {options['latent_dim']} | "
            f"{last['epoch']} | " + " | ".join(values) + " |"
        )
    lines.append("")
    if qualities:
        lines += quality_table(runs, *qualities)
    for view in views:
        lines += [f"## {view.replace('_', ' ')}", "", f"![{view}]({view}.png)", ""]
    return "\n".join(lines)


def quality_table(runs: list[LoadedRun], qualities: list[dict], note: str) -> list[str]:
    """The sample-quality section of compare's page: its note, then a row per run measured."""
    if not qualities:
        return ["## sample quality", "", note, ""]
    columns = ["frechet_distance", "precision", "recall", "confidence", "largest_class_share"]
    lines = [
        "## sample quality",
        "",
        note,
        "",
        "| run | sampler | " + " | ".join(columns) + " |",
        "|" + " --- |" * (2 + len(columns)),
    ]
    for run, quality in zip(runs, qualities):
        values = [f"{quality[column]:.3g}" if column in quality else "-" for column in columns]
        lines.append(f"| {run.name} | {quality['sampler']} | " + " | ".join(values) + " |")
    return [*lines, ""]
