"""The commands that read a trained run: explore, compare, evaluate, generate, train-prior, animate, embed,
export and info. Each hands its options to the library and prints what comes back."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cli.boundary import fail, native_stderr_captured, use_backend, user_errors
from cli.options import (
    AnimationKind,
    Backend,
    BackendOption,
    ExportFormat,
    MemoryCheckOption,
    OverwriteOption,
    RunArgument,
    Sampler,
    SamplerOption,
    SeedOption,
    Split,
    chosen_run,
    format_cell,
)
from keras_vae.choices import (
    FLOW_EPOCHS,
    MAX_FPS,
    MAX_K,
    MAX_PRIOR_EPOCHS,
    MAX_QUALITY_IMAGES,
    MAX_RADIUS,
    MIN_FPS,
    PIXELCNN_EPOCHS,
)


def explore(
    run: Optional[Path] = RunArgument,
    out: Optional[Path] = typer.Option(None, help="Where the PNGs go. Default: RUN/figures."),
    radius: float = typer.Option(
        1.5, min=0, max=MAX_RADIUS, help="The decoded latent grid spans [-radius, radius]^2 (2-D latents)."
    ),
    sampler: Optional[Sampler] = SamplerOption,
    overwrite: bool = OverwriteOption,
    backend: Backend = BackendOption,
) -> None:
    """PNGs of one run: reconstructions, the latent space, decoded grids, samples, an interpolation, KL per
    dimension."""
    use_backend(backend)
    with user_errors():
        from keras_vae.trained.explore import explore as explore_run

        for path in explore_run(chosen_run(run), out, radius, overwrite, sampler and sampler.value):
            typer.echo(path)


def compare(
    runs: list[Path] = typer.Argument(..., help="Two or more run folders."),
    out: Path = typer.Option(Path("saved_models/compare"), help="Where the PNGs and index.md go."),
    quality_images: int = typer.Option(
        1000,
        min=0,
        max=MAX_QUALITY_IMAGES,
        help="Held-out images, and as many samples per run, for the sample-quality table; 0 leaves it out.",
    ),
    overwrite: bool = OverwriteOption,
    backend: Backend = BackendOption,
) -> None:
    """The same views of several runs side by side (an AE beside a VAE), with a summary page index.md that
    holds their final losses and the quality of each run's samples (from its own sampler) in one shared
    feature space."""
    use_backend(backend, with_tensorflow=True)
    with user_errors():
        from keras_vae.trained.explore import compare as compare_runs

        for path in compare_runs(runs, out, overwrite, quality_images):
            typer.echo(path)


def evaluate(
    run: Optional[Path] = RunArgument,
    k: int = typer.Option(1000, min=1, max=MAX_K, help="Importance samples per image for the NLL bound."),
    sampler: Optional[Sampler] = SamplerOption,
    quality_images: int = typer.Option(
        2000,
        min=0,
        max=MAX_QUALITY_IMAGES,
        help="Held-out images, and as many samples, that sample quality compares; 0 leaves it out.",
    ),
    fid_weights: Optional[Path] = typer.Option(
        None,
        help="An InceptionV3 weights file without its top (keras.applications): adds the standard FID. "
        "Nothing is downloaded.",
    ),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
    seed: int = SeedOption,
    memory_check: bool = MemoryCheckOption,
    backend: Backend = BackendOption,
) -> None:
    """Test-split metrics: -ELBO, its terms, the k-sample importance-weighted NLL bound, pixel accuracy,
    active units; and sample quality: the Fréchet distance, precision and recall of samples against held-out
    images in the features of a classifier trained on the run's data (RUN/classifier.keras), its confidence
    and class shares."""
    use_backend(backend)
    with user_errors():
        from keras_vae.trained.evaluate import evaluate_run

        result = evaluate_run(
            chosen_run(run), k, seed, sampler and sampler.value, quality_images, fid_weights, memory_check
        )
    if json_output:
        import json

        typer.echo(json.dumps(result))
        return
    from rich.console import Console
    from rich.table import Table

    notes = [
        result.pop(name)
        for name in ("note", "features_note", "quality_note", "collapse_note")
        if name in result
    ]
    table = Table(title=f"keras-vae evaluate {result.pop('run')}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in result.items():
        shown = ", ".join(f"{v:.3g}" for v in value) if isinstance(value, list) else format_cell(value)
        table.add_row(name, shown)
    console = Console()
    console.print(table)
    for note in notes:
        console.print(f"Note: {note}.")


def generate(
    run: Optional[Path] = RunArgument,
    n: int = typer.Option(
        64,
        min=1,
        help="How many images: up to 10,000 in a .png grid, any number in a .npy (written in chunks).",
    ),
    out: Optional[Path] = typer.Option(
        None, help="A .png grid or a .npy array (n, H, W, C) in [0, 1]. Default: RUN/figures/generated.png."
    ),
    seed: int = SeedOption,
    label: Optional[str] = typer.Option(
        None, help="CVAE: the class to generate, as a number or a class name. Default: the classes in turn."
    ),
    sampler: Optional[Sampler] = SamplerOption,
    overwrite: bool = OverwriteOption,
    backend: Backend = BackendOption,
) -> None:
    """Decode n sampled codes into new images, and say on stderr which sampler drew them."""
    use_backend(backend)
    with user_errors():
        from keras_vae.trained.generate import generate as generate_images

        path, made_by = generate_images(
            chosen_run(run), n, seed, out, overwrite, label, sampler and sampler.value
        )
    typer.echo(path)
    typer.echo(f"keras-vae: sampler {made_by}", err=True)


def train_prior(
    run: Optional[Path] = RunArgument,
    epochs: Optional[int] = typer.Option(
        None,
        min=1,
        max=MAX_PRIOR_EPOCHS,
        help=f"Default: {PIXELCNN_EPOCHS} for a PixelCNN; {FLOW_EPOCHS} for a flow, which stops early at its "
        "best on held-out codes.",
    ),
    batch_size: int = typer.Option(128, min=1),
    seed: int = SeedOption,
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace the run's learned prior (prior.keras or flow.keras)."
    ),
    backend: Backend = BackendOption,
) -> None:
    """Train a run's learned prior over its codes: a VQ-VAE's PixelCNN into RUN/prior.keras (its --sampler
    prior), any other model's RealNVP flow into RUN/flow.keras (its --sampler flow); generate, explore and
    evaluate then sample from it, and serve (?sampler=flow) from a flow."""
    use_backend(backend, with_tensorflow=True)
    with user_errors():
        from keras_vae.trained.generate import train_prior as train_run_prior

        path, nll = train_run_prior(chosen_run(run), epochs, batch_size, seed, overwrite)
    typer.echo(
        f"{path} (code NLL, nats per image: train {nll['train_nll']:.3f}, held out {nll['val_nll']:.3f})"
    )


def animate(
    run: Optional[Path] = RunArgument,
    kind: AnimationKind = typer.Option(
        AnimationKind.latent, help="latent, samples, reconstructions: over the epochs."
    ),
    out: Optional[Path] = typer.Option(None, help="The GIF. Default: RUN/figures/KIND.gif."),
    fps: float = typer.Option(4.0, min=MIN_FPS, max=MAX_FPS, help="Frames per second."),
    overwrite: bool = OverwriteOption,
    backend: Backend = BackendOption,
) -> None:
    """A GIF: the latent space, samples or reconstructions as training went on, or a traversal or
    interpolation."""
    use_backend(backend)
    with user_errors():
        from keras_vae.trained.animate import animate as animate_run

        target, frames = animate_run(chosen_run(run), kind.value, out, fps, overwrite)
    typer.echo(f"{target} ({frames} frames)")


def embed(
    run: Optional[Path] = RunArgument,
    out: Path = typer.Option(
        ..., help="A .npy (a record per image: label, z_mean, z_log_var) or a .csv (a row per image)."
    ),
    split: Split = typer.Option(
        Split.val, help="Which split of the run's data: val is the test split where there is one."
    ),
    data_dir: Optional[Path] = typer.Option(
        None, help="Embed these images instead (as train's --data-dir), resized to the run's."
    ),
    overwrite: bool = OverwriteOption,
    backend: Backend = BackendOption,
) -> None:
    """The latent means (and log-variances, for a VAE) of every image of a split, with its label:
    deterministic codes."""
    use_backend(backend, with_tensorflow=True)
    with user_errors():
        from keras_vae.trained.embed import embed_run

        path, count = embed_run(chosen_run(run), out, split.value, data_dir, overwrite)
    typer.echo(f"{path} ({count} images)")


def export(
    run: Optional[Path] = RunArgument,
    format: ExportFormat = typer.Option(
        ExportFormat.saved_model, "--format", help="onnx: one file per endpoint."
    ),
    out: Optional[Path] = typer.Option(
        None, help="Default: RUN/export/saved_model, RUN/export/onnx or RUN/export/model.keras."
    ),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="Replace OUT if it exists: a .keras file, or a folder that keras-vae export wrote.",
    ),
    verify: bool = typer.Option(
        True, "--verify/--no-verify", help="Reload what was written and compare it with the Keras model."
    ),
) -> None:
    """Export encode, decode and reconstruct endpoints (SavedModel: serving_default = reconstruct). Runs on
    TensorFlow, which loads models trained on any backend."""
    import importlib.util

    if importlib.util.find_spec("tensorflow") is None:
        fail("keras-vae export needs TensorFlow, which is not installed: pip install tensorflow")
    use_backend("tensorflow")
    with user_errors():
        run = chosen_run(run)
    with user_errors(), native_stderr_captured():  # tf2onnx and grappler log from C++ as they convert
        from keras_vae.trained.export import export_run

        path, difference = export_run(run, format.value, out, overwrite, verify)
    typer.echo(f"{path}")
    if difference is not None:
        typer.echo(f"verified: largest absolute difference from the Keras model {difference:.3g}")


def info(backend: Backend = BackendOption) -> None:
    """The backend, its devices (GPUs too), and the versions of Keras and the frameworks."""
    use_backend(backend)
    import keras

    from keras_vae.backends import devices
    from keras_vae.training import versions

    typer.echo(f"backend: {keras.backend.backend()}")
    typer.echo(f"devices: {', '.join(devices())}")
    for package, version in versions().items():
        typer.echo(f"{package}: {version}")
