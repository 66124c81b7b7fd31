"""The `keras-vae` command. Keras and its backends are imported inside commands, never at start-up,
so `--help` is instant and `--backend` can still choose the backend."""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack, contextmanager
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from typer.core import TyperGroup

try:
    from typer._click.exceptions import ClickException, NoArgsIsHelpError  # typer >= 0.22 vendors click
except ImportError:
    from click.exceptions import ClickException, NoArgsIsHelpError

BACKENDS = ("tensorflow", "jax", "torch")
MAX_LATENT_DIM = 4096
MAX_SEED = 2**32 - 1  # numpy's seeds, which keras.utils.set_random_seed and default_rng take
MAX_RADIUS = 100.0  # in standard deviations of the prior: far past anything a decoder was trained on
MAX_K = 10_000  # evaluate decodes k images of one test image in one step
MAX_IMAGE_SIDE = 4096
MAX_STEPS_PER_EXECUTION = 10_000


class OneLineErrors(TyperGroup):
    """Click's own errors (an option out of its declared range, a missing argument) as the one line every other
    error is, instead of a usage box."""

    def main(self, args=None, *rest, standalone_mode: bool = True, **kwargs):
        args = square_image_size(list(sys.argv[1:] if args is None else args))
        if not standalone_mode:
            return super().main(args, *rest, standalone_mode=False, **kwargs)
        try:
            result = super().main(args, *rest, standalone_mode=False, **kwargs)
        except NoArgsIsHelpError as error:
            error.show()
            sys.exit(error.exit_code)
        except ClickException as error:
            typer.echo(f"keras-vae: error: {error.format_message()}", err=True)
            sys.exit(error.exit_code)
        sys.exit(result if isinstance(result, int) else 0)


def square_image_size(args: list[str]) -> list[str]:
    """`--image-size N` alone means N N: a click option takes a fixed number of values, so a lone number is
    doubled before click parses the line."""
    args = [part for arg in args for part in (arg.split("=", 1) if arg.startswith("--image-size=") else [arg])]
    if "--image-size" not in args:
        return args
    at = args.index("--image-size") + 1
    first, second = args[at : at + 1], args[at + 1 : at + 2]
    if first and first[0].isdigit() and not (second and second[0].isdigit()):
        return [*args[: at + 1], first[0], *args[at + 1 :]]
    return args


class Crop(str, Enum):
    none = "none"
    center = "center"


class DtypePolicy(str, Enum):
    float32 = "float32"
    mixed_bfloat16 = "mixed_bfloat16"
    mixed_float16 = "mixed_float16"


class Channels(str, Enum):
    grey = "1"
    rgb = "3"


app = typer.Typer(
    cls=OneLineErrors,
    name="keras-vae",
    help="Train, explore, evaluate and export autoencoders and VAEs with Keras 3 (TensorFlow, JAX or PyTorch).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

BackendOption = typer.Option(
    None, "--backend", help="tensorflow, jax or torch. Default: $KERAS_BACKEND, else tensorflow.", show_default=False
)
SeedOption = typer.Option(0, min=0, max=MAX_SEED, help="Seeds the random draws (train: weights, sampling, shuffling, the hold-out).")
OverwriteOption = typer.Option(False, "--overwrite", help="Replace --out if it exists (only a file, or an export keras-vae wrote).")


def fail(message: str, code: int = 2) -> None:
    """One line on stderr and a non-zero exit: how every bad input ends."""
    typer.echo(f"keras-vae: error: {message}", err=True)
    raise typer.Exit(code)


def use_backend(backend: Optional[str], with_tensorflow: bool = False) -> None:
    """Set KERAS_BACKEND before keras is imported (it reads the variable once, at import), then load it,
    and keep freed memory in the process for the next step to reuse (keras_vae.allocator).

    TensorFlow is started here too when it is the backend or when the command needs it anyway
    (train's TensorBoard logging), so that its native start-up lines can be kept off the terminal.
    """
    chosen = backend or os.environ.get("KERAS_BACKEND", "tensorflow")
    if chosen not in BACKENDS:
        fail(f"unknown backend {chosen!r}: use one of {', '.join(BACKENDS)}")
    if "keras" in sys.modules and sys.modules["keras"].backend.backend() != chosen:
        fail(f"keras is already running on {sys.modules['keras'].backend.backend()} in this process; cannot switch to {chosen}")
    os.environ["KERAS_BACKEND"] = chosen
    with native_stderr_silenced():
        import keras

        from keras_vae.allocator import keep_freed_memory

        keep_freed_memory()
        if with_tensorflow or keras.backend.backend() == "tensorflow":
            start_tensorflow()


def start_tensorflow() -> None:
    """Import TensorFlow, if installed, and let it look for devices: both log from C++ when they first run."""
    try:
        import tensorflow as tf
    except ImportError:
        return
    tf.config.list_physical_devices()
    tf.get_logger().setLevel("ERROR")  # retracing hints when predict sees arrays of new sizes


@contextmanager
def native_stderr_silenced():
    """Send file descriptor 2 to /dev/null for a while. TensorFlow's C++ start-up lines go through absl
    before it is initialised, which TF_CPP_MIN_LOG_LEVEL cannot silence; Python errors still propagate."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@contextmanager
def user_errors():
    """Turn the package's own errors, and a full or read-only disk, into one line on stderr and exit code 2."""
    from keras_vae.errors import KerasVAEError

    from keras_vae.files import write_error

    try:
        yield
    except KerasVAEError as error:
        fail(str(error))
    except OSError as error:  # a full or read-only disk met outside keras-vae's own writes (TensorBoard's, say)
        described = write_error(error, Path(error.filename or "."))
        if described is None:
            raise
        fail(str(described))


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"keras-vae {version('keras-vae')}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Autoencoders and variational autoencoders for Keras 3."""


@app.command()
def train(
    ctx: typer.Context,
    dataset: str = typer.Option(
        "mnist",
        help="Any tensorflow-datasets set with an image feature, labelled or not: mnist, fashion_mnist, cifar10, svhn_cropped, celeb_a, ... Offline, mnist is the MNIST test set bundled with keras-vae.",
    ),
    data_dir: Optional[Path] = typer.Option(
        None,
        help="Local data instead: a folder of images (PNG, JPEG, BMP, GIF; flat, or one subfolder per class), "
        "a folder of IDX files (*-images-idx3-ubyte[.gz] with labels) or a keras-style .npz.",
    ),
    val_fraction: float = typer.Option(0.1, help="Held out for validation when the data has no test split."),
    image_size: Optional[tuple[int, int]] = typer.Option(
        None, min=1, max=MAX_IMAGE_SIDE, metavar="H W", help="Resize every image to H x W (one number: a square). Default: as they are."
    ),
    crop: Crop = typer.Option(Crop.none, help="center: cut each image around its centre to the aspect ratio of --image-size (square without it) before resizing."),
    channels: Optional[Channels] = typer.Option(None, help="1 (grey) or 3 (RGB). Default: 1 if every image is grey, else 3."),
    model: str = typer.Option("vae", help="vae, ae, or both (an AE and a VAE, one run each)."),
    arch: str = typer.Option("conv", help="dense, conv or deep-conv."),
    latent_dim: int = typer.Option(2, min=1, max=MAX_LATENT_DIM, help="Size of the latent code."),
    epochs: int = typer.Option(10, min=1),
    batch_size: int = typer.Option(128, min=1),
    learning_rate: float = typer.Option(1e-3, help="Adam's learning rate."),
    recon_loss: str = typer.Option("bce", help="bce or mse."),
    reduction: str = typer.Option("sum", help="How the reconstruction loss reduces over pixels: sum or mean."),
    beta: float = typer.Option(1.0, help="Weight of the KL term (VAE)."),
    reconstruction_weight: float = typer.Option(1.0, help="Weight of the reconstruction term (VAE); 0 trains on the KL alone."),
    kl_warmup: int = typer.Option(0, min=0, help="Epochs over which beta ramps up linearly (VAE)."),
    seed: int = SeedOption,
    dtype_policy: DtypePolicy = typer.Option(
        DtypePolicy.float32,
        help="Keras dtype policy: mixed_bfloat16 or mixed_float16 compute in 16 bits with float32 weights, outputs and "
        "loss terms (mixed_float16 with loss scaling).",
    ),
    steps_per_execution: int = typer.Option(
        1, min=1, max=MAX_STEPS_PER_EXECUTION, help="Training steps per call into the backend (Keras's compile option; TensorFlow and JAX)."
    ),
    distribute: bool = typer.Option(
        False,
        "--distribute",
        help="Data-parallel over every device: JAX DataParallel, TensorFlow MirroredStrategy, torch DistributedDataParallel "
        "(one process per device, under torchrun). See README.",
    ),
    name: Optional[str] = typer.Option(None, help="Run folder name. Default: DATASET-ARCH-zLATENT-MODEL."),
    output_dir: Path = typer.Option(Path("saved_models"), help="Where run folders go."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the run NAME to its planned epochs with its saved options; --epochs may raise them."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace the run NAME, once the new run has finished an epoch (only a run keras-vae wrote)."
    ),
    backend: Optional[str] = BackendOption,
) -> None:
    """Train an AE, a VAE or both; each run goes to OUTPUT_DIR/NAME."""
    use_backend(backend, with_tensorflow=True)
    with user_errors(), ExitStack() as stack:
        from contextlib import nullcontext

        from rich.console import Console

        from keras_vae.backends import Processes, processes
        from keras_vae.config import ConfigError, TrainConfig
        from keras_vae.data import default_source, load_dataset
        from keras_vae.runs import Run, lock, open_run
        from keras_vae.training import resume_options

        joined = stack.enter_context(processes() if distribute else nullcontext(Processes()))
        console = Console(quiet=not joined.writes)
        data_dir, note = (data_dir, None) if resume else default_source(dataset, data_dir)
        if note:
            console.print(note, soft_wrap=True)
        kinds = ("ae", "vae") if model == "both" else (model,)
        options = config_options(locals())
        given = {key: value for key, value in options.items() if ctx.get_parameter_source(key).name != "DEFAULT"}
        configs = {kind: TrainConfig(**{**options, "model": kind}) for kind in kinds}
        base = name or f"{data_dir.stem if data_dir else dataset}-{arch}-z{latent_dim}"
        names = {kind: f"{base}-{kind}" if model == "both" or not name else name for kind in kinds}
        runs = {kind: Run(output_dir / names[kind]) for kind in kinds}
        if joined.writes:
            for kind in kinds:
                stack.enter_context(lock(output_dir, names[kind]))
            runs = {kind: open_run(output_dir, names[kind], resume, overwrite) for kind in kinds}
            if resume:
                for kind in kinds:
                    configs[kind], note = resume_options(runs[kind], {**given, "model": kind} if "model" in given else given)
                    if note:
                        console.print(note, soft_wrap=True)
        configs = joined.share(configs)
        if len({(c.dataset, c.data_dir, c.val_fraction, c.seed) for c in configs.values()}) != 1:
            raise ConfigError("the runs to resume were trained on different data: resume them one at a time")
        first = next(iter(configs.values()))
        data = load_dataset(first.dataset, first.data_dir, first.val_fraction, first.seed, first.image_options)
        if data.skipped:
            console.print(skipped_note(data.skipped, data.train.count + data.val.count), soft_wrap=True)
        summaries = [train_one(configs[kind], data, runs[kind], console, output_dir, not resume, joined) for kind in kinds]
        if joined.writes:
            print_summary(console, summaries)
        if data.skipped:
            console.print(skipped_note(data.skipped, data.train.count + data.val.count), soft_wrap=True)


def skipped_note(skipped: list[str], used: int) -> str:
    return (
        f"Skipped {len(skipped)} of {len(skipped) + used:,} image files that cannot be read as images, "
        f"e.g. {skipped[0]} (config.json lists them)"
    )


def config_options(arguments: dict) -> dict:
    """The train command's arguments that are TrainConfig fields."""
    from dataclasses import fields

    from keras_vae.config import TrainConfig

    options = {field.name: arguments[field.name] for field in fields(TrainConfig)}
    data_dir, size, channels = options["data_dir"], options["image_size"], options["channels"]
    return {
        **options,
        "data_dir": str(data_dir.resolve()) if data_dir else None,  # absolute: later commands run anywhere
        "image_size": list(size) if size else None,
        "crop": options["crop"].value,
        "channels": int(channels.value) if channels else None,
        "dtype_policy": options["dtype_policy"].value,
    }


def train_one(config, data, run, console, output_dir: Path, fresh: bool, processes) -> dict | None:
    """Train one run; a fresh one replaces an old run only once it has committed an epoch (runs.Replacing), and
    only rank 0 of several processes touches the folder. Ctrl-C or SIGTERM stops at a batch boundary and exits
    with 128 + the signal's number."""
    from keras_vae.runs import Replacing
    from keras_vae.training import train_run

    try:
        with Replacing(run, fresh and processes.writes) as replacing:
            return train_run(config, data, run, console, replacing.commit, processes)
    except KeyboardInterrupt as error:
        code = 128 + getattr(error, "signum", 2)
        if not replacing.committed:
            fail(f"interrupted before the first epoch finished: nothing was kept, and {run.root} is as it was", code)
        fail(
            f"interrupted; the last finished epoch is saved. Continue with: "
            f"keras-vae train --name {run.root.name} --output-dir {output_dir} --resume",
            code=code,
        )


def print_summary(console, summaries: list[dict]) -> None:
    """A column per run: final losses, best validation loss, time, throughput, folder."""
    from rich.table import Table

    rows = ("epochs", "loss", "reconstruction_loss", "kl_loss", "val_loss", "best_val_loss", "seconds", "images_per_s")
    table = Table(title="keras-vae train")
    table.add_column("")
    for summary in summaries:
        table.add_column(Path(summary["run"]).name, justify="right")
    for row in rows:
        table.add_row(row, *(format_cell(summary.get(row)) for summary in summaries))
    console.print(table)
    for summary in summaries:
        console.print(f"{summary['run']}/: config.json, model.keras (lowest val_loss), history.csv, logs/ (TensorBoard)")


def format_cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
    return str(value)


RunArgument = typer.Argument(..., help="A run folder written by keras-vae train, e.g. saved_models/mnist-conv-z2-vae.")


@app.command()
def explore(
    run: Path = RunArgument,
    out: Optional[Path] = typer.Option(None, help="Where the PNGs go. Default: RUN/figures."),
    radius: float = typer.Option(1.5, max=MAX_RADIUS, help="The decoded latent grid spans [-radius, radius]^2 (2-D latents)."),
    overwrite: bool = OverwriteOption,
    backend: Optional[str] = BackendOption,
) -> None:
    """PNGs of one run: reconstructions, the latent space, decoded grids, samples, an interpolation, KL per dimension."""
    use_backend(backend)
    with user_errors():
        from keras_vae.explore import explore as explore_run

        for path in explore_run(run, out, radius, overwrite):
            typer.echo(path)


@app.command()
def compare(
    runs: list[Path] = typer.Argument(..., help="Two or more run folders."),
    out: Path = typer.Option(Path("saved_models/compare"), help="Where the PNGs and index.md go."),
    overwrite: bool = OverwriteOption,
    backend: Optional[str] = BackendOption,
) -> None:
    """The same views of several runs side by side (an AE beside a VAE), with a summary page index.md."""
    use_backend(backend)
    with user_errors():
        from keras_vae.explore import compare as compare_runs

        for path in compare_runs(runs, out, overwrite):
            typer.echo(path)


@app.command()
def evaluate(
    run: Path = RunArgument,
    k: int = typer.Option(1000, max=MAX_K, help="Importance samples per image for the NLL bound."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
    seed: int = SeedOption,
    backend: Optional[str] = BackendOption,
) -> None:
    """Test-split metrics: -ELBO, its terms, the k-sample importance-weighted NLL bound, pixel accuracy, active units."""
    use_backend(backend)
    with user_errors():
        from keras_vae.metrics import evaluate_run

        result = evaluate_run(run, k, seed)
    if json_output:
        import json

        typer.echo(json.dumps(result))
        return
    from rich.console import Console
    from rich.table import Table

    note = result.pop("note", None)
    table = Table(title=f"keras-vae evaluate {run}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in result.items():
        shown = ", ".join(f"{v:.3g}" for v in value) if isinstance(value, list) else format_cell(value)
        table.add_row(name, shown)
    console = Console()
    console.print(table)
    if note:
        console.print(f"Note: {note}.")


@app.command()
def generate(
    run: Path = RunArgument,
    n: int = typer.Option(64, help="How many images: up to 10,000 in a .png grid, any number in a .npy (written in chunks)."),
    out: Optional[Path] = typer.Option(
        None, help="A .png grid or a .npy array (n, H, W, C) in [0, 1]. Default: RUN/figures/generated.png."
    ),
    seed: int = SeedOption,
    overwrite: bool = OverwriteOption,
    backend: Optional[str] = BackendOption,
) -> None:
    """Decode n draws of z ~ N(0, I) into new images."""
    use_backend(backend)
    with user_errors():
        from keras_vae.explore import generate as generate_images

        typer.echo(generate_images(run, n, seed, out, overwrite))


@app.command()
def animate(
    run: Path = RunArgument,
    kind: str = typer.Option("latent", help="latent, samples, reconstructions (over epochs), traversal or interpolation."),
    out: Optional[Path] = typer.Option(None, help="The GIF. Default: RUN/figures/KIND.gif."),
    fps: float = typer.Option(4.0, help="Frames per second, 0.01 to 100."),
    overwrite: bool = OverwriteOption,
    backend: Optional[str] = BackendOption,
) -> None:
    """A GIF: the latent space, samples or reconstructions as training went on, or a traversal or interpolation."""
    use_backend(backend)
    with user_errors():
        from keras_vae.animate import animate as animate_run

        target, frames = animate_run(run, kind, out, fps, overwrite)
    typer.echo(f"{target} ({frames} frames)")


@app.command()
def export(
    run: Path = RunArgument,
    format: str = typer.Option("saved_model", "--format", help="saved_model, onnx (one file per endpoint) or keras."),
    out: Optional[Path] = typer.Option(None, help="Default: RUN/export/saved_model, RUN/export/onnx or RUN/export/model.keras."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace OUT if it exists: a .keras file, or a folder that keras-vae export wrote."
    ),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Reload what was written and compare it with the Keras model."),
) -> None:
    """Export encode, decode and reconstruct endpoints (SavedModel: serving_default = reconstruct). Runs on TensorFlow,
    which loads models trained on any backend."""
    import importlib.util

    if importlib.util.find_spec("tensorflow") is None:
        fail("keras-vae export needs TensorFlow, which is not installed: pip install tensorflow")
    use_backend("tensorflow")
    with user_errors(), native_stderr_silenced():  # tf2onnx and grappler log from C++ as they convert
        from keras_vae.export import export_run

        path, difference = export_run(run, format, out, overwrite, verify)
    typer.echo(f"{path}")
    if difference is not None:
        typer.echo(f"verified: largest absolute difference from the Keras model {difference:.3g}")


@app.command()
def info(backend: Optional[str] = BackendOption) -> None:
    """The backend, its devices (GPUs too), and the versions of Keras and the frameworks."""
    use_backend(backend)
    import keras

    from keras_vae.backends import devices
    from keras_vae.training import versions

    typer.echo(f"backend: {keras.backend.backend()}")
    typer.echo(f"devices: {', '.join(devices())}")
    for package, version in versions().items():
        typer.echo(f"{package}: {version}")


if __name__ == "__main__":
    app()
