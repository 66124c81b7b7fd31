"""What the commands share: the fixed choices as str Enums (which --help lists and the shell completes) made
from keras_vae.choices, the options and the run argument several commands take, and how a table cell shows a
number. Nothing here imports Keras, so --help stays instant."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from keras_vae import choices as library


def choices(name: str, values: tuple[str, ...]) -> type[Enum]:
    """A str Enum of an option's fixed values (keras_vae.choices), which --help lists and the shell
    completes."""
    return Enum(name, {value.replace("-", "_"): value for value in values}, type=str)


Backend = choices("Backend", library.BACKENDS)
ModelKind = choices("ModelKind", (*library.FAMILIES, "both"))
CodebookUpdate = choices("CodebookUpdate", library.CODEBOOK_UPDATES)
Arch = choices("Arch", library.ARCHITECTURES)
ReconLoss = choices("ReconLoss", library.RECONSTRUCTION_LOSSES)
Reduction = choices("Reduction", library.REDUCTIONS)
AnimationKind = choices("AnimationKind", library.ANIMATIONS)
ExportFormat = choices("ExportFormat", library.EXPORT_FORMATS)
Crop = choices("Crop", library.CROPS)
DtypePolicy = choices("DtypePolicy", library.DTYPE_POLICIES)
Split = choices("Split", library.SPLITS)
Sampler = choices("Sampler", library.SAMPLERS)
LrSchedule = choices("LrSchedule", library.LR_SCHEDULES)


class Channels(str, Enum):
    grey = "1"
    rgb = "3"


BackendOption = typer.Option(
    Backend.tensorflow, "--backend", envvar="KERAS_BACKEND", help="The Keras backend."
)
SeedOption = typer.Option(
    0,
    min=0,
    max=library.MAX_SEED,
    help="Seeds the random draws (train: weights, sampling, shuffling, the hold-out).",
)
SamplerOption = typer.Option(
    None,
    help="prior: z ~ N(0, I) (a VQ-VAE: its learned prior from train-prior, else its codes' frequencies); "
    "gmm: a Gaussian mixture fitted on the training codes; flow: the learned flow over the codes that "
    "train-prior fits. Default: gmm for an AE, which has no prior, else prior.",
)
MemoryCheckOption = typer.Option(
    True,
    "--memory-check/--no-memory-check",
    help="Refuse up front what would take more than half this machine's memory (an estimate); "
    "--no-memory-check takes the risk.",
)
OverwriteOption = typer.Option(
    False, "--overwrite", help="Replace --out if it exists (only a file, or an export keras-vae wrote)."
)


RunArgument = typer.Argument(
    None,
    help="A run folder written by keras-vae train, e.g. saved_models/mnist-conv-z2-vae. Default: the run "
    "under "
    "saved_models/ trained last.",
    show_default=False,
)


def chosen_run(run: Optional[Path]) -> Path:
    """The run a command was given, or else the latest under saved_models/, named on stderr."""
    if run is not None:
        return run
    from keras_vae.runs import latest_run

    latest = latest_run(Path("saved_models")).root
    typer.echo(f"keras-vae: {latest} (the run trained last)", err=True)
    return latest


def format_cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
    return str(value)
