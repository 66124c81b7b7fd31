"""What the commands share: the fixed choices (str Enums, which --help lists and the shell completes), the
limits of their numbers, the options and the run argument several commands take, and how a table cell shows a
number. Nothing here imports Keras, so --help stays instant."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

MAX_LATENT_DIM = 4096
MAX_SEED = 2**32 - 1  # numpy's seeds, which keras.utils.set_random_seed and default_rng take
MAX_RADIUS = 100.0  # in standard deviations of the prior: far past anything a decoder was trained on
MAX_K = 10_000  # evaluate decodes k images of one test image in one step
MAX_IMAGE_SIDE = 4096
MAX_STEPS_PER_EXECUTION = 10_000
MAX_CODEBOOK = 65_536
MAX_QUALITY_IMAGES = 10_000  # precision and recall find each image's neighbours among all the others
MAX_PRIOR_EPOCHS = 10_000
MAX_EPOCHS = 1_000_000
MAX_STEPS = 1_000_000_000  # past anything trainable, and far below the 64-bit counters of the backends


def choices(name: str, *values: str) -> type[Enum]:
    """A str Enum of an option's fixed values, which --help lists and the shell completes; the tests check each
    against the library's own list."""
    return Enum(name, {value.replace("-", "_"): value for value in values}, type=str)


Backend = choices("Backend", "tensorflow", "jax", "torch")
ModelKind = choices("ModelKind", "vae", "ae", "iwae", "betatc-vae", "cvae", "vq-vae", "both")
CodebookUpdate = choices("CodebookUpdate", "loss", "ema")
Arch = choices("Arch", "dense", "conv", "deep-conv")
ReconLoss = choices("ReconLoss", "bce", "mse")
Reduction = choices("Reduction", "sum", "mean")
AnimationKind = choices("AnimationKind", "latent", "samples", "reconstructions", "traversal", "interpolation")
ExportFormat = choices("ExportFormat", "saved_model", "onnx", "keras")
Crop = choices("Crop", "none", "center")
DtypePolicy = choices("DtypePolicy", "float32", "mixed_bfloat16", "mixed_float16")
Split = choices("Split", "train", "val")
Sampler = choices("Sampler", "prior", "gmm")
LrSchedule = choices("LrSchedule", "cosine", "constant")


class Channels(str, Enum):
    grey = "1"
    rgb = "3"


BackendOption = typer.Option(Backend.tensorflow, "--backend", envvar="KERAS_BACKEND", help="The Keras backend.")
SeedOption = typer.Option(0, min=0, max=MAX_SEED, help="Seeds the random draws (train: weights, sampling, shuffling, the hold-out).")
SamplerOption = typer.Option(
    None,
    help="prior: z ~ N(0, I) (a VQ-VAE: its learned prior from train-prior, else its codes' frequencies); gmm: a Gaussian "
    "mixture fitted on the training codes. Default: gmm for an AE, which has no prior, else prior.",
)
MemoryCheckOption = typer.Option(
    True, "--memory-check/--no-memory-check", help="Refuse up front what would take more than half this machine's memory (an estimate); --no-memory-check takes the risk."
)
OverwriteOption = typer.Option(False, "--overwrite", help="Replace --out if it exists (only a file, or an export keras-vae wrote).")


RunArgument = typer.Argument(
    None,
    help="A run folder written by keras-vae train, e.g. saved_models/mnist-conv-z2-vae. Default: the run under "
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
