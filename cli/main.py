"""The `keras-vae` command. Keras and its backends are imported inside commands, never at start-up,
so `--help` is instant and `--backend` can still choose the backend."""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import tempfile
from contextlib import ExitStack, contextmanager, suppress
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from typer.core import TyperGroup

try:
    from typer._click.exceptions import ClickException, NoArgsIsHelpError  # typer >= 0.22 vendors click
except ImportError:
    from click.exceptions import ClickException, NoArgsIsHelpError

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


app = typer.Typer(
    cls=OneLineErrors,
    name="keras-vae",
    help="Train, explore, evaluate and export autoencoders and VAEs with Keras 3 (TensorFlow, JAX or PyTorch).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

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


def fail(message: str, code: int = 2) -> None:
    """One line on stderr and a non-zero exit: how every bad input ends."""
    typer.echo(f"keras-vae: error: {message}", err=True)
    raise typer.Exit(code)


def use_backend(backend: Backend, with_tensorflow: bool = False) -> None:
    """Set KERAS_BACKEND before keras is imported (it reads the variable once, at import), then load it,
    and keep freed memory in the process for the next step to reuse (keras_vae.allocator).

    TensorFlow is started here too when it is the backend or when the command needs it anyway
    (train's TensorBoard logging), so that its native start-up lines can be kept off the terminal.
    """
    chosen = Backend(backend).value
    if "keras" in sys.modules and sys.modules["keras"].backend.backend() != chosen:
        fail(f"keras is already running on {sys.modules['keras'].backend.backend()} in this process; cannot switch to {chosen}")
    os.environ["KERAS_BACKEND"] = chosen
    with native_stderr_captured():
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
def native_stderr_captured():
    """Send file descriptor 2 to a private file for a while: TensorFlow's C++ start-up lines go through absl before
    it is initialised, which TF_CPP_MIN_LOG_LEVEL cannot silence, and tf2onnx and grappler log as they convert. When
    what runs inside fails with anything but keras-vae's own one-line errors, the captured lines are shown before
    the error; a fatal native error (a segfault in a driver) prints Python's fatal error and stack on the terminal
    (faulthandler) and leaves the captured lines in $TMPDIR/keras-vae-*.stderr. The file gets a random name,
    created exclusively and readable by its owner alone (tempfile.mkstemp): a link or a FIFO another user plants
    in $TMPDIR is never opened."""
    sys.stderr.flush()
    captured, name = tempfile.mkstemp(prefix="keras-vae-", suffix=".stderr")
    log = Path(name)
    saved = os.dup(2)
    os.dup2(captured, 2)
    os.close(captured)
    terminal = os.fdopen(os.dup(saved), "w")
    faulthandler.enable(file=terminal)
    replay = False
    try:
        yield
    except BaseException as error:
        replay = not (isinstance(error, KeyboardInterrupt) or own_error(error))
        raise
    finally:
        sys.stderr.flush()
        faulthandler.disable()
        terminal.close()
        os.dup2(saved, 2)
        os.close(saved)
        if replay:
            sys.stderr.write(log.read_text(errors="replace"))
        log.unlink(missing_ok=True)


def flagged(message: str, parameter: str | None) -> str:
    """The library's message about one of its parameters, in the flag's name: 'latent_dim must be ...' becomes
    '--latent-dim must be ...'."""
    if parameter is None or not message.startswith(parameter):
        return message
    return "--" + parameter.replace("_", "-") + message[len(parameter) :]


def own_error(error: BaseException) -> bool:
    """Whether error is one of keras-vae's one-line errors (without importing keras_vae, and with it keras, when
    nothing has yet: then it cannot be)."""
    errors = sys.modules.get("keras_vae.errors")
    return errors is not None and isinstance(error, errors.KerasVAEError)


@contextmanager
def user_errors():
    """Turn the package's own errors, and a full or read-only disk, into one line on stderr and exit code 2."""
    from keras_vae.errors import ConfigError, KerasVAEError
    from keras_vae.files import write_error

    try:
        yield
    except ConfigError as error:
        fail(flagged(str(error), error.parameter))
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
    val_fraction: float = typer.Option(0.1, help="Held out for validation when the data has no test split: strictly between 0 and 1."),
    image_size: Optional[tuple[int, int]] = typer.Option(
        None, min=1, max=MAX_IMAGE_SIDE, metavar="H W", help="Resize every image to H x W (one number: a square). Default: as they are."
    ),
    crop: Crop = typer.Option(Crop.none, help="center: cut each image around its centre to the aspect ratio of --image-size (square without it) before resizing."),
    channels: Optional[Channels] = typer.Option(None, help="1 (grey) or 3 (RGB). Default: 1 if every image is grey, else 3."),
    model: ModelKind = typer.Option(
        ModelKind.vae, help="iwae: trained on the --k-sample importance-weighted bound; betatc-vae: the KL split into "
        "--alpha mutual information, --beta total correlation, --gamma dimension-wise KL; cvae: encoder and decoder "
        "conditioned on the label (labelled data only); vq-vae: --latent-dim discrete codes from a --codebook-size "
        "codebook; both: an AE and a VAE, one run each."
    ),
    arch: Arch = typer.Option(Arch.dense, help="dense: two 400-unit layers (the default: the best samples in the first command's budget); conv: the keras.io VAE's; deep-conv: BatchNorm, LeakyReLU, pooling, dropout."),
    latent_dim: int = typer.Option(2, min=1, max=MAX_LATENT_DIM, help="Size of the latent code."),
    epochs: Optional[int] = typer.Option(None, min=1, max=MAX_EPOCHS, help="Passes over the training images. Default: as many as --steps take."),
    steps: int = typer.Option(4000, min=1, max=MAX_STEPS, help="Optimizer steps to train for, rounded up to whole epochs, when --epochs is not given."),
    batch_size: int = typer.Option(64, min=1),
    learning_rate: float = typer.Option(3e-3, min=0, help="Adam's learning rate (where a cosine schedule starts)."),
    lr_schedule: LrSchedule = typer.Option(LrSchedule.cosine, help="cosine: from --learning-rate down to 0 over the run's steps; constant."),
    recon_loss: ReconLoss = typer.Option(ReconLoss.bce, help="Binary cross-entropy or squared error."),
    reduction: Reduction = typer.Option(Reduction.sum, help="How the reconstruction loss reduces over pixels."),
    beta: float = typer.Option(1.0, min=0, help="Weight of the KL term (VAE), of the total correlation (betatc-vae)."),
    reconstruction_weight: float = typer.Option(1.0, min=0, help="Weight of the reconstruction term (VAE); 0 trains on the KL alone."),
    kl_warmup_steps: Optional[int] = typer.Option(
        None, min=0, max=MAX_STEPS, help="Optimizer steps over which the KL weight ramps up linearly to beta (VAE), at most the run's. Default: a sixth of the run's steps, at least 250 (half of a shorter run)."
    ),
    k: int = typer.Option(5, min=1, max=MAX_K, help="IWAE: importance samples per image in the training bound."),
    alpha: float = typer.Option(1.0, min=0, help="β-TCVAE: weight of the index-code mutual information."),
    gamma: float = typer.Option(1.0, min=0, help="β-TCVAE: weight of the dimension-wise KL (--beta weighs the total correlation)."),
    codebook_size: int = typer.Option(512, min=2, max=MAX_CODEBOOK, help="VQ-VAE: vectors in the codebook."),
    embedding_dim: int = typer.Option(4, min=1, max=MAX_LATENT_DIM, help="VQ-VAE: size of each codebook vector."),
    commitment: float = typer.Option(0.25, min=0, help="VQ-VAE: weight of the commitment term |z_e - sg(z_q)|²."),
    codebook_update: CodebookUpdate = typer.Option(
        CodebookUpdate.loss, help="VQ-VAE: loss trains the codes by the codebook term; ema moves them to moving averages of their vectors (dead codes restart)."
    ),
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
        False,
        "--resume",
        help="Continue the run NAME to its planned epochs with its saved options (--epochs may raise them); start it if it "
        "has not started, and do nothing if it has finished. Safe to repeat, as a preempted job does.",
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace the run NAME, once the new run has finished an epoch (only a run keras-vae wrote)."
    ),
    memory_check: bool = MemoryCheckOption,
    backend: Backend = BackendOption,
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
        if data_dir and ctx.get_parameter_source("dataset").name != "DEFAULT":
            raise ConfigError("give --dataset or --data-dir, not both")
        kinds = ("ae", "vae") if model == ModelKind.both else (model.value,)
        base = name or f"{data_dir.stem if data_dir else dataset}-{arch.value}-z{latent_dim}"
        names = {kind: f"{base}-{kind}" if model == ModelKind.both or not name else name for kind in kinds}
        runs = {kind: Run(output_dir / names[kind]) for kind in kinds}
        configs, starting, finished = {}, set(), set()
        if joined.writes:
            for kind in kinds:
                stack.enter_context(lock(output_dir, names[kind]))
            runs = {kind: open_run(output_dir, names[kind], resume, overwrite) for kind in kinds}
            starting = {kind for kind in kinds if not (resume and runs[kind].config.exists())}
            if starting:
                data_dir, note = default_source(dataset, data_dir)
                if note:
                    console.print(note, soft_wrap=True)
            options = dict(
                dataset=None if data_dir else dataset,
                data_dir=str(data_dir.resolve()) if data_dir else None,  # absolute: later commands run anywhere
                val_fraction=val_fraction,
                image_size=list(image_size) if image_size else None,
                crop=crop.value,
                channels=int(channels.value) if channels else None,
                arch=arch.value,
                latent_dim=latent_dim,
                epochs=epochs,
                steps=steps,
                batch_size=batch_size,
                learning_rate=learning_rate,
                lr_schedule=lr_schedule.value,
                recon_loss=recon_loss.value,
                reduction=reduction.value,
                beta=beta,
                reconstruction_weight=reconstruction_weight,
                kl_warmup_steps=kl_warmup_steps,
                seed=seed,
                distribute=distribute,
                dtype_policy=dtype_policy.value,
                steps_per_execution=steps_per_execution,
                k=k,
                alpha=alpha,
                gamma=gamma,
                codebook_size=codebook_size,
                embedding_dim=embedding_dim,
                commitment=commitment,
                codebook_update=codebook_update.value,
            )
            given = {key: value for key, value in options.items() if ctx.get_parameter_source(key).name != "DEFAULT"}
            for kind in kinds:
                if kind in starting:
                    configs[kind] = TrainConfig(**options, model=kind)
                    continue
                model_given = {"model": kind} if ctx.get_parameter_source("model").name != "DEFAULT" else {}
                configs[kind], note = resume_options(runs[kind], given | model_given)
                if note:
                    console.print(note, soft_wrap=True)
            finished = {kind for kind in kinds if kind not in starting and runs[kind].finished(configs[kind].epochs)}
        configs, starting, finished = joined.share((configs, starting, finished))
        for kind in finished:
            console.print(f"{runs[kind].root} already finished its {configs[kind].epochs} epochs: nothing to do", soft_wrap=True)
        training = [kind for kind in kinds if kind not in finished]
        if not training:
            return
        if len({(configs[kind].dataset, configs[kind].data_dir, configs[kind].val_fraction, configs[kind].seed) for kind in training}) != 1:
            raise ConfigError("the runs to resume were trained on different data: resume them one at a time")
        first = configs[training[0]]
        data = load_dataset(first.dataset, first.data_dir, first.val_fraction, first.seed, first.image_options)
        if data.skipped:
            console.print(skipped_note(data.skipped, data.train.count + data.val.count), soft_wrap=True)
        summaries = [train_one(configs[kind], data, runs[kind], console, output_dir, kind in starting, joined, memory_check) for kind in training]
        if joined.writes:
            print_summary(console, summaries)
        if data.skipped:
            console.print(skipped_note(data.skipped, data.train.count + data.val.count), soft_wrap=True)


def skipped_note(skipped: list[str], used: int) -> str:
    return (
        f"Skipped {len(skipped)} of {len(skipped) + used:,} image files that cannot be read as images or are too large, "
        f"e.g. {skipped[0]} (config.json lists them)"
    )


def train_one(config, data, run, console, output_dir: Path, fresh: bool, processes, memory_check: bool) -> dict | None:
    """Train one run; a fresh one replaces an old run only once it has committed an epoch (runs.Replacing), and
    only rank 0 of several processes touches the folder. Ctrl-C or SIGTERM stops at a batch boundary and exits
    with 128 + the signal's number."""
    from keras_vae.runs import Replacing
    from keras_vae.training import train_run

    try:
        with Replacing(run, fresh and processes.writes) as replacing:
            return train_run(config, data, run, console, replacing.commit, processes, memory_check)
    except KeyboardInterrupt as error:
        signum = getattr(error, "signum", signal.SIGINT)
        stopped = f"stopped by {signal.Signals(signum).name}{SENDERS.get(signum, '')}"
        if not replacing.committed:
            fail(f"{stopped} before the first epoch finished: nothing was kept, and {run.root} is as it was", 128 + signum)
        fail(
            f"{stopped}; the last finished epoch is saved. Continue with: "
            f"keras-vae train --name {run.root.name} --output-dir {output_dir} --resume",
            code=128 + signum,
        )


SENDERS = {signal.SIGTERM: " (sent by another process: a time limit such as timeout(1), a batch scheduler, or kill)"}


def print_summary(console, summaries: list[dict]) -> None:
    """A column per run: final losses, the kept epoch and its validation loss, the KL warm-up, time, throughput;
    then each run's folder and what to note of it (a collapsed posterior)."""
    from rich.table import Table

    from keras_vae.callbacks import SHORT_NAMES

    always = ("loss", "reconstruction_loss", "kl_loss")
    logged = [term for term in SHORT_NAMES if term in always or term != "val_loss" and any(term in summary for summary in summaries)]
    rows = ("epochs", *logged, "val_loss", "best_val_loss", "kept_epoch", "kl_warmup", "seconds", "images_per_s")
    table = Table(title="keras-vae train")
    table.add_column("")
    for summary in summaries:
        table.add_column(Path(summary["run"]).name, justify="right")
    for row in rows:
        table.add_row(row, *(format_cell(summary.get(row)) for summary in summaries))
    console.print(table)
    for summary in summaries:
        console.print(f"{summary['run']}/: config.json, model.keras (epoch {summary['kept_epoch']}: lowest val_loss), history.csv, logs/ (TensorBoard)")
        for note in summary["notes"]:
            console.print(f"Warning: {Path(summary['run']).name}: {note}.", soft_wrap=True, style="bold")


def format_cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
    return str(value)


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


@app.command()
def explore(
    run: Optional[Path] = RunArgument,
    out: Optional[Path] = typer.Option(None, help="Where the PNGs go. Default: RUN/figures."),
    radius: float = typer.Option(1.5, min=0, max=MAX_RADIUS, help="The decoded latent grid spans [-radius, radius]^2 (2-D latents)."),
    sampler: Optional[Sampler] = SamplerOption,
    overwrite: bool = OverwriteOption,
    backend: Backend = BackendOption,
) -> None:
    """PNGs of one run: reconstructions, the latent space, decoded grids, samples, an interpolation, KL per dimension."""
    use_backend(backend)
    with user_errors():
        from keras_vae.explore import explore as explore_run

        for path in explore_run(chosen_run(run), out, radius, overwrite, sampler and sampler.value):
            typer.echo(path)


@app.command()
def compare(
    runs: list[Path] = typer.Argument(..., help="Two or more run folders."),
    out: Path = typer.Option(Path("saved_models/compare"), help="Where the PNGs and index.md go."),
    quality_images: int = typer.Option(
        1000, min=0, max=MAX_QUALITY_IMAGES, help="Held-out images, and as many samples per run, for the sample-quality table; 0 leaves it out."
    ),
    overwrite: bool = OverwriteOption,
    backend: Backend = BackendOption,
) -> None:
    """The same views of several runs side by side (an AE beside a VAE), with a summary page index.md that holds
    their final losses and the quality of each run's samples (from its own sampler) in one shared feature space."""
    use_backend(backend, with_tensorflow=True)
    with user_errors():
        from keras_vae.explore import compare as compare_runs

        for path in compare_runs(runs, out, overwrite, quality_images):
            typer.echo(path)


@app.command()
def evaluate(
    run: Optional[Path] = RunArgument,
    k: int = typer.Option(1000, min=1, max=MAX_K, help="Importance samples per image for the NLL bound."),
    sampler: Optional[Sampler] = SamplerOption,
    quality_images: int = typer.Option(
        2000, min=0, max=MAX_QUALITY_IMAGES, help="Held-out images, and as many samples, that sample quality compares; 0 leaves it out."
    ),
    fid_weights: Optional[Path] = typer.Option(
        None, help="An InceptionV3 weights file without its top (keras.applications): adds the standard FID. Nothing is downloaded."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
    seed: int = SeedOption,
    memory_check: bool = MemoryCheckOption,
    backend: Backend = BackendOption,
) -> None:
    """Test-split metrics: -ELBO, its terms, the k-sample importance-weighted NLL bound, pixel accuracy, active units;
    and sample quality: the Fréchet distance, precision and recall of samples against held-out images in the
    features of a classifier trained on the run's data (RUN/classifier.keras), its confidence and class shares."""
    use_backend(backend)
    with user_errors():
        from keras_vae.metrics import evaluate_run

        result = evaluate_run(chosen_run(run), k, seed, sampler and sampler.value, quality_images, fid_weights, memory_check)
    if json_output:
        import json

        typer.echo(json.dumps(result))
        return
    from rich.console import Console
    from rich.table import Table

    notes = [result.pop(name) for name in ("note", "features_note", "quality_note", "collapse_note") if name in result]
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


@app.command()
def generate(
    run: Optional[Path] = RunArgument,
    n: int = typer.Option(64, min=1, help="How many images: up to 10,000 in a .png grid, any number in a .npy (written in chunks)."),
    out: Optional[Path] = typer.Option(
        None, help="A .png grid or a .npy array (n, H, W, C) in [0, 1]. Default: RUN/figures/generated.png."
    ),
    seed: int = SeedOption,
    label: Optional[str] = typer.Option(None, help="CVAE: the class to generate, as a number or a class name. Default: the classes in turn."),
    sampler: Optional[Sampler] = SamplerOption,
    overwrite: bool = OverwriteOption,
    backend: Backend = BackendOption,
) -> None:
    """Decode n sampled codes into new images, and say on stderr which sampler drew them."""
    use_backend(backend)
    with user_errors():
        from keras_vae.explore import generate as generate_images

        path, made_by = generate_images(chosen_run(run), n, seed, out, overwrite, label, sampler and sampler.value)
    typer.echo(path)
    typer.echo(f"keras-vae: sampler {made_by}", err=True)


@app.command("train-prior")
def train_prior(
    run: Optional[Path] = RunArgument,
    epochs: int = typer.Option(30, min=1, max=MAX_PRIOR_EPOCHS),
    batch_size: int = typer.Option(128, min=1),
    seed: int = SeedOption,
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the run's prior.keras."),
    backend: Backend = BackendOption,
) -> None:
    """Train a VQ-VAE run's learned prior over its codes (a small PixelCNN) into RUN/prior.keras; generate, explore
    and evaluate then sample from it."""
    use_backend(backend, with_tensorflow=True)
    with user_errors():
        from keras_vae.explore import train_prior as train_run_prior

        path, nll = train_run_prior(chosen_run(run), epochs, batch_size, seed, overwrite)
    typer.echo(f"{path} (code NLL, nats per image: train {nll['train_nll']:.3f}, held out {nll['val_nll']:.3f})")


@app.command()
def animate(
    run: Optional[Path] = RunArgument,
    kind: AnimationKind = typer.Option(AnimationKind.latent, help="latent, samples, reconstructions: over the epochs."),
    out: Optional[Path] = typer.Option(None, help="The GIF. Default: RUN/figures/KIND.gif."),
    fps: float = typer.Option(4.0, min=0.01, max=100, help="Frames per second."),
    overwrite: bool = OverwriteOption,
    backend: Backend = BackendOption,
) -> None:
    """A GIF: the latent space, samples or reconstructions as training went on, or a traversal or interpolation."""
    use_backend(backend)
    with user_errors():
        from keras_vae.animate import animate as animate_run

        target, frames = animate_run(chosen_run(run), kind.value, out, fps, overwrite)
    typer.echo(f"{target} ({frames} frames)")


@app.command()
def embed(
    run: Optional[Path] = RunArgument,
    out: Path = typer.Option(..., help="A .npy (a record per image: label, z_mean, z_log_var) or a .csv (a row per image)."),
    split: Split = typer.Option(Split.val, help="Which split of the run's data: val is the test split where there is one."),
    data_dir: Optional[Path] = typer.Option(None, help="Embed these images instead (as train's --data-dir), resized to the run's."),
    overwrite: bool = OverwriteOption,
    backend: Backend = BackendOption,
) -> None:
    """The latent means (and log-variances, for a VAE) of every image of a split, with its label: deterministic codes."""
    use_backend(backend, with_tensorflow=True)
    with user_errors():
        from keras_vae.embed import embed_run

        path, count = embed_run(chosen_run(run), out, split.value, data_dir, overwrite)
    typer.echo(f"{path} ({count} images)")


@app.command()
def export(
    run: Optional[Path] = RunArgument,
    format: ExportFormat = typer.Option(ExportFormat.saved_model, "--format", help="onnx: one file per endpoint."),
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
    with user_errors():
        run = chosen_run(run)
    with user_errors(), native_stderr_captured():  # tf2onnx and grappler log from C++ as they convert
        from keras_vae.export import export_run

        path, difference = export_run(run, format.value, out, overwrite, verify)
    typer.echo(f"{path}")
    if difference is not None:
        typer.echo(f"verified: largest absolute difference from the Keras model {difference:.3g}")


@app.command()
def serve(
    runs: list[Path] = typer.Argument(..., help="Run folders to show side by side, e.g. an AE and a VAE."),
    host: str = typer.Option("127.0.0.1", help="The address to listen on; the default is this machine only."),
    port: int = typer.Option(8000, min=1, max=65535),
    allow_host: list[str] = typer.Option(
        [], help="A name other machines reach this one by (repeat for more), answered besides the address and localhost."
    ),
    backend: Backend = BackendOption,
) -> None:
    """Explore trained latent spaces live in the browser: hover to decode, drag to interpolate, one slider per
    latent dimension, the epochs replayed from snapshots. Serves only the runs given, only to requests naming
    this machine's address (never to pages of other sites); Ctrl-C stops it."""
    use_backend(backend)
    with user_errors():
        import socket

        import uvicorn

        from keras_vae.serve import ServedRun, create_app
        from keras_vae.serve.guard import LOOPBACK, is_loopback
        from keras_vae.serve.server import server_config

        served = [ServedRun.load(run) for run in runs]
        try:
            listening = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        except OSError as error:
            fail(f"cannot listen on {host} port {port} ({error.strerror}): choose another with --port, or stop what uses it")
        if not is_loopback(host):
            typer.echo(
                f"keras-vae: warning: listening on {host}, beyond this machine: anyone who can reach it and names "
                f"{', '.join([host, *allow_host])} (--allow-host) sees the runs and decodes with their models",
                err=True,
            )
        app = create_app(served, hosts={host, *LOOPBACK, *allow_host})
        with suppress(KeyboardInterrupt):  # Ctrl-C as soon as the URL is out, or the one uvicorn raises again once shut down
            typer.echo(f"keras-vae serve: http://{host}:{port}/ ({len(served)} run{'s' * (len(served) > 1)}; Ctrl-C stops it)")
            uvicorn.Server(server_config(app)).run(sockets=[listening])


@app.command()
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


if __name__ == "__main__":
    app()
