"""`keras-vae train`: the options of a run, handed to the library, which plans and trains it."""

from __future__ import annotations

import signal
from contextlib import ExitStack, nullcontext
from pathlib import Path
from typing import Optional

import typer

from cli.boundary import fail, use_backend, user_errors
from cli.options import (
    Arch,
    Backend,
    BackendOption,
    Channels,
    CodebookUpdate,
    Crop,
    DtypePolicy,
    LrSchedule,
    MemoryCheckOption,
    ModelKind,
    ReconLoss,
    Reduction,
    SeedOption,
    format_cell,
)
from keras_vae.choices import (
    MAX_CODEBOOK,
    MAX_EPOCHS,
    MAX_IMAGE_SIDE,
    MAX_K,
    MAX_LATENT_DIM,
    MAX_PSEUDO_INPUTS,
    MAX_STEPS,
    MAX_STEPS_PER_EXECUTION,
)


def train(
    ctx: typer.Context,
    dataset: str = typer.Option(
        "mnist",
        help="Any tensorflow-datasets set with an image feature, labelled or not: mnist, fashion_mnist, "
        "cifar10, svhn_cropped, celeb_a, ... Offline, mnist is the MNIST test set bundled with "
        "keras-vae.",
    ),
    data_dir: Optional[Path] = typer.Option(
        None,
        help="Local data instead: a folder of images (PNG, JPEG, BMP, GIF; flat, or one subfolder per "
        "class), "
        "a folder of IDX files (*-images-idx3-ubyte[.gz] with labels) or a keras-style .npz.",
    ),
    val_fraction: float = typer.Option(
        0.1, help="Held out for validation when the data has no test split: strictly between 0 and 1."
    ),
    image_size: Optional[tuple[int, int]] = typer.Option(
        None,
        min=1,
        max=MAX_IMAGE_SIDE,
        metavar="H W",
        help="Resize every image to H x W (one number: a square). Default: as they are.",
    ),
    crop: Crop = typer.Option(
        Crop.none,
        help="center: cut each image around its centre to the aspect ratio of --image-size (square without "
        "it) before resizing.",
    ),
    channels: Optional[Channels] = typer.Option(
        None, help="1 (grey) or 3 (RGB). Default: 1 if every image is grey, else 3."
    ),
    model: ModelKind = typer.Option(
        ModelKind.vae,
        help="iwae: trained on the --k-sample importance-weighted bound; betatc-vae: the KL split into "
        "--alpha mutual information, --beta total correlation, --gamma dimension-wise KL; cvae: encoder "
        "and decoder "
        "conditioned on the label (labelled data only); vq-vae: --latent-dim discrete codes from a "
        "--codebook-size "
        "codebook; rae: a deterministic AE with --embedding-weight on |z|² and --decoder-decay, sampled by a "
        "Gaussian mixture (Ghosh et al. 2020); vamp-vae: a VAE whose prior is a mixture of its posteriors at "
        "--pseudo-inputs learned images (Tomczak & Welling 2018); both: an AE and a VAE, one run each.",
    ),
    arch: Arch = typer.Option(
        Arch.dense,
        help="dense: two 400-unit layers (the default: the best samples in the first command's budget); "
        "conv: the keras.io VAE's; deep-conv: BatchNorm, LeakyReLU, pooling, dropout.",
    ),
    latent_dim: int = typer.Option(2, min=1, max=MAX_LATENT_DIM, help="Size of the latent code."),
    epochs: Optional[int] = typer.Option(
        None, min=1, max=MAX_EPOCHS, help="Passes over the training images. Default: as many as --steps take."
    ),
    steps: int = typer.Option(
        4000,
        min=1,
        max=MAX_STEPS,
        help="Optimizer steps to train for, rounded up to whole epochs, when --epochs is not given.",
    ),
    batch_size: int = typer.Option(64, min=1),
    learning_rate: float = typer.Option(
        3e-3, min=0, help="Adam's learning rate (where a cosine schedule starts)."
    ),
    lr_schedule: LrSchedule = typer.Option(
        LrSchedule.cosine, help="cosine: from --learning-rate down to 0 over the run's steps; constant."
    ),
    recon_loss: ReconLoss = typer.Option(ReconLoss.bce, help="Binary cross-entropy or squared error."),
    reduction: Reduction = typer.Option(
        Reduction.sum, help="How the reconstruction loss reduces over pixels."
    ),
    beta: float = typer.Option(
        1.0, min=0, help="Weight of the KL term (VAE), of the total correlation (betatc-vae)."
    ),
    reconstruction_weight: float = typer.Option(
        1.0, min=0, help="Weight of the reconstruction term (VAE); 0 trains on the KL alone."
    ),
    kl_warmup_steps: Optional[int] = typer.Option(
        None,
        min=0,
        max=MAX_STEPS,
        help="Optimizer steps over which the KL weight ramps up linearly to beta (VAE), at most the run's. "
        "Default: a sixth of the run's steps, at least 250 (half of a shorter run).",
    ),
    k: int = typer.Option(
        5, min=1, max=MAX_K, help="IWAE: importance samples per image in the training bound."
    ),
    alpha: float = typer.Option(1.0, min=0, help="β-TCVAE: weight of the index-code mutual information."),
    gamma: float = typer.Option(
        1.0, min=0, help="β-TCVAE: weight of the dimension-wise KL (--beta weighs the total correlation)."
    ),
    pseudo_inputs: int = typer.Option(
        500,
        min=1,
        max=MAX_PSEUDO_INPUTS,
        help="VampPrior VAE: learned pseudo-inputs whose posteriors make its prior (the paper's 500).",
    ),
    embedding_weight: float = typer.Option(
        1e-4, min=0, help="RAE: weight of the L2 penalty |z|²/2 on the codes."
    ),
    decoder_decay: float = typer.Option(
        1e-7, min=0, help="RAE: weight decay of the decoder (|θ|²/2 added to the loss)."
    ),
    codebook_size: int = typer.Option(512, min=2, max=MAX_CODEBOOK, help="VQ-VAE: vectors in the codebook."),
    embedding_dim: int = typer.Option(
        4, min=1, max=MAX_LATENT_DIM, help="VQ-VAE: size of each codebook vector."
    ),
    commitment: float = typer.Option(
        0.25, min=0, help="VQ-VAE: weight of the commitment term |z_e - sg(z_q)|²."
    ),
    codebook_update: CodebookUpdate = typer.Option(
        CodebookUpdate.loss,
        help="VQ-VAE: loss trains the codes by the codebook term; ema moves them to moving averages of "
        "their vectors (dead codes restart).",
    ),
    seed: int = SeedOption,
    dtype_policy: DtypePolicy = typer.Option(
        DtypePolicy.float32,
        help="Keras dtype policy: mixed_bfloat16 or mixed_float16 compute in 16 bits with float32 weights, "
        "outputs and "
        "loss terms (mixed_float16 with loss scaling).",
    ),
    steps_per_execution: int = typer.Option(
        1,
        min=1,
        max=MAX_STEPS_PER_EXECUTION,
        help="Training steps per call into the backend (Keras's compile option; TensorFlow and JAX).",
    ),
    distribute: bool = typer.Option(
        False,
        "--distribute",
        help="Data-parallel over every device: JAX DataParallel, TensorFlow MirroredStrategy, torch "
        "DistributedDataParallel "
        "(one process per device, under torchrun). See README.",
    ),
    name: Optional[str] = typer.Option(None, help="Run folder name. Default: DATASET-ARCH-zLATENT-MODEL."),
    output_dir: Path = typer.Option(Path("saved_models"), help="Where run folders go."),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue the run NAME to its planned epochs with its saved options (--epochs may raise "
        "them); start it if it "
        "has not started, and do nothing if it has finished. Safe to repeat, as a preempted job does.",
    ),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="Replace the run NAME, once the new run has finished an epoch (only a run keras-vae wrote).",
    ),
    memory_check: bool = MemoryCheckOption,
    backend: Backend = BackendOption,
) -> None:
    """Train an AE, a VAE or both; each run goes to OUTPUT_DIR/NAME."""
    use_backend(backend, with_tensorflow=True)
    with user_errors(), ExitStack() as stack:
        from rich.console import Console

        from keras_vae.backends import Processes, processes
        from keras_vae.data import load_dataset
        from keras_vae.planning import plan_training, train_options

        joined = stack.enter_context(processes() if distribute else nullcontext(Processes()))
        console = Console(quiet=not joined.writes)
        values = {
            key: getattr(value, "value", value) for key, value in ctx.params.items()
        }  # the Enums' own strings
        given = {key for key in values if ctx.get_parameter_source(key).name != "DEFAULT"}
        plan = plan_training(
            train_options(values), given, model.value, name, output_dir, resume, overwrite, stack, joined
        )
        for note in plan.notes:
            console.print(note, soft_wrap=True)
        if not plan.training:
            return
        first = plan.data_config()
        data = load_dataset(
            first.dataset, first.data_dir, first.val_fraction, first.seed, first.image_options
        )
        if data.skipped:
            console.print(skipped_note(data.skipped, data.train.count + data.val.count), soft_wrap=True)
        summaries = [
            train_one(
                plan.configs[kind],
                data,
                plan.runs[kind],
                console,
                output_dir,
                kind in plan.starting,
                joined,
                memory_check,
            )
            for kind in plan.training
        ]
        if joined.writes:
            print_summary(console, summaries)
        if data.skipped:
            console.print(skipped_note(data.skipped, data.train.count + data.val.count), soft_wrap=True)


def skipped_note(skipped: list[str], used: int) -> str:
    return (
        f"Skipped {len(skipped)} of {len(skipped) + used:,} image files that cannot be read as images or "
        "are too large, "
        f"e.g. {skipped[0]} (config.json lists them)"
    )


def train_one(
    config, data, run, console, output_dir: Path, fresh: bool, processes, memory_check: bool
) -> dict | None:
    """Train one run; a fresh one replaces an old run only once it has committed an epoch (runs.Replacing),
    and only rank 0 of several processes touches the folder. Ctrl-C or SIGTERM stops at a batch boundary and
    exits with 128 + the signal's number."""
    from keras_vae.runs import Replacing
    from keras_vae.training import train_run

    try:
        with Replacing(run, fresh and processes.writes) as replacing:
            return train_run(config, data, run, console, replacing.commit, processes, memory_check)
    except KeyboardInterrupt as error:
        signum = getattr(error, "signum", signal.SIGINT)
        stopped = f"stopped by {signal.Signals(signum).name}{SENDERS.get(signum, '')}"
        if not replacing.committed:
            fail(
                f"{stopped} before the first epoch finished: nothing was kept, and {run.root} is as it was",
                128 + signum,
            )
        fail(
            f"{stopped}; the last finished epoch is saved. Continue with: "
            f"keras-vae train --name {run.root.name} --output-dir {output_dir} --resume",
            code=128 + signum,
        )


SENDERS = {
    signal.SIGTERM: " (sent by another process: a time limit such as timeout(1), a batch scheduler, or kill)"
}


def print_summary(console, summaries: list[dict]) -> None:
    """A column per run: final losses, the kept epoch and its validation loss, the KL warm-up, time,
    throughput; then each run's folder and what to note of it (a collapsed posterior)."""
    from rich.table import Table

    from keras_vae.callbacks import SHORT_NAMES

    always = ("loss", "reconstruction_loss", "kl_loss")
    logged = [
        term
        for term in SHORT_NAMES
        if term in always or term != "val_loss" and any(term in summary for summary in summaries)
    ]
    rows = (
        "epochs",
        *logged,
        "val_loss",
        "best_val_loss",
        "kept_epoch",
        "kl_warmup",
        "seconds",
        "images_per_s",
    )
    table = Table(title="keras-vae train")
    table.add_column("")
    for summary in summaries:
        table.add_column(Path(summary["run"]).name, justify="right")
    for row in rows:
        table.add_row(row, *(format_cell(summary.get(row)) for summary in summaries))
    console.print(table)
    for summary in summaries:
        console.print(
            f"{summary['run']}/: config.json, model.keras (epoch {summary['kept_epoch']}: lowest "
            "val_loss), history.csv, logs/ (TensorBoard)"
        )
        for note in summary["notes"]:
            console.print(f"Warning: {Path(summary['run']).name}: {note}.", soft_wrap=True, style="bold")
