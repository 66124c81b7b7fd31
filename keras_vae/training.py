"""One training run: options and data in, a complete run folder out."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from importlib import metadata

import keras
import numpy as np
from rich.console import Console

from keras_vae import __version__
from keras_vae.backends import Parallel, Processes, alone, distribution, process_local, replicate
from keras_vae.budget import check_training_memory
from keras_vae.callbacks import (
    Backup,
    BestModel,
    CheckFreeSpace,
    HistoryCSV,
    LossNotFinite,
    RichProgress,
    StopOnNonFinite,
    StopOnSignal,
)
from keras_vae.config import ConfigError, TrainConfig
from keras_vae.data import Dataset
from keras_vae.files import write_json_atomic
from keras_vae.models.registry import MODELS, build_model, build_options
from keras_vae.runs import RUN_FORMAT, Run, RunError, remove_temporaries
from keras_vae.snapshots import SUBSET, Snapshots, batches
from keras_vae.trained.metrics import posterior_collapse

SKIPPED_EXAMPLES = 20
"""The names of unreadable image files config.json lists; it counts them all."""
PACKAGES = ("keras-vae", "keras", "tensorflow", "jax", "jaxlib", "torch", "numpy", "tensorflow-datasets")


def versions() -> dict[str, str]:
    """Installed versions of the packages a run depends on (without importing them)."""
    found = {}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def run_metadata(config: TrainConfig, data: Dataset) -> dict:
    """config.json: every option, where the data came from, the backend and package versions."""
    return {
        "run_format": RUN_FORMAT,
        "keras_vae_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "backend": keras.backend.backend(),
        "versions": versions(),
        "options": config.to_dict(),
        "data": {
            "source": data.source,
            "input_shape": list(data.input_shape),
            "train_images": data.train.count,
            "val_images": data.val.count,
            "labelled": data.labelled,
            "class_names": data.class_names,
            "skipped_files": len(data.skipped),
            "skipped_examples": data.skipped[:SKIPPED_EXAMPLES],
        },
        "model_file": {
            "path": "model.keras",
            "holds": "the epoch with the lowest val_loss, the objective at full KL weight",
        },
    }


CHANGEABLE_ON_RESUME = ("epochs",)


def resume_options(run: Run, given: dict) -> tuple[TrainConfig, str | None]:
    """The saved options of a run to resume, with those given again on the command line: --epochs may change,
    and the note returned says so; any other option that differs from its saved value is refused."""
    saved = run.read_options()
    changed = {name: value for name, value in given.items() if value != getattr(saved, name)}
    for name in sorted(set(changed) - set(CHANGEABLE_ON_RESUME)):
        flag = "--" + name.replace("_", "-")
        raise ConfigError(
            f"{flag} {changed[name]} differs from the run's {getattr(saved, name)}: --resume keeps a run's "
            "options "
            f"(only --epochs may change); drop {flag}, or train a new run with --overwrite or another --name"
        )
    if "epochs" not in changed:
        return saved, None
    epochs, done = changed["epochs"], run.committed_epoch()
    if not done and len(run.read_history()) >= saved.epochs:
        raise RunError(
            f"{run.root} finished its {saved.epochs} epochs and keeps no resume state: train a new run with "
            f"--epochs {epochs} (--overwrite or another --name)"
        )
    if epochs <= done:
        raise ConfigError(
            f"--epochs {epochs} is not more than the {done} epochs {run.root} has finished: give more, or "
            "leave it out"
        )
    note = f"{run.root.name}: training to {epochs} epochs instead of {saved.epochs}"
    total = epochs * saved.steps_per_epoch(run.read_config()["data"]["train_images"])
    if saved.kl_warmup_steps is not None and saved.kl_warmup_steps > total:
        saved, note = (
            replace(saved, kl_warmup_steps=total),
            f"{note}, its KL warm-up cut to those {total:,} steps",
        )
    return replace(saved, epochs=epochs), note


def resume_point(run: Run, config: TrainConfig) -> int:
    """The epoch a run continues from; refuses a finished run and a history that lacks committed epochs."""
    done, rows = run.committed_epoch(), run.read_history()
    if not done and len(rows) >= config.epochs:
        raise RunError(f"{run.root} already finished its {config.epochs} epochs: nothing to resume")
    if (
        len(rows) > done + 1
    ):  # history.csv is written just before the resume state, so it leads by one at most
        raise RunError(
            f"{run.history} holds {len(rows)} epochs but the resume state only {done}: the run finished or "
            "lost "
            "backup/, so it cannot continue; train a new run with --overwrite or another --name"
        )
    kept = sorted(int(row["epoch"]) for row in rows if int(row["epoch"]) <= done)
    if kept != list(range(1, done + 1)):
        raise RunError(
            f"{run.history} holds {len(kept)} of the {done} epochs the resume state has finished, so the "
            "run's "
            "history would have gaps: train the run again with --overwrite"
        )
    return done


def write_config(run: Run, config: TrainConfig, data: Dataset) -> None:
    """config.json for a new run; for a resumed one, only when its options changed (more --epochs)."""
    if not run.config.exists():
        write_json_atomic(run.config, run_metadata(config, data))
    elif run.read_options() != config:
        write_json_atomic(run.config, {**run.read_config(), "options": config.to_dict()})


def train_run(
    config: TrainConfig,
    data: Dataset,
    run: Run,
    console: Console,
    commit: Callable[[], None] = lambda: None,
    processes: Processes = Processes(),
    memory_check: bool = True,
) -> dict | None:
    """Train one model, or continue it from its last committed epoch; return the summary of the run. Training
    that would plan for more than half the machine's memory is refused first, unless memory_check is False.
    Hold runs.lock() for the run around it; commit() is called after each epoch's resume state is committed.
    Of several processes training the run together, rank 0 alone reads and writes the run folder and returns
    the summary; the others return None."""
    config = config.resolved(data.train.count)
    if config.steps_per_execution > 1 and keras.backend.backend() == "torch":
        raise ConfigError(
            "--steps-per-execution must be 1 on the torch backend (Keras's torch trainer runs one step at "
            "a time): drop it, or use --backend jax or tensorflow"
        )
    classes = conditioning(config, data)
    if memory_check:
        check_training_memory(
            config.arch,
            data.input_shape,
            config.batch_size,
            config.k if "k" in MODELS[config.model].build_options else 1,
            classes,
        )
    done = processes.decide(lambda: resume_point(run, config))
    if processes.writes:
        remove_temporaries(run, older_than=0)
        run.check_inside()
        fixed = data.sample("val", SUBSET, config.seed)
    keras.utils.set_random_seed(config.seed)
    sizes = batch_sizes(config, data, processes)
    splitting = distribution(sizes) if config.distribute else contextlib.nullcontext(Parallel())
    with splitting as parallel, dtype_policy(config.dtype_policy):
        if processes.writes:
            write_config(run, config, data)
        if parallel.replicas > 1:
            console.print(
                f"Data-parallel over {parallel.replicas} devices: {config.batch_size // parallel.replicas} "
                "images each per step."
            )
        model = build_model(
            config.model,
            config.arch,
            config.latent_dim,
            data.input_shape,
            seed=config.seed,
            **build_options(config, data.train.count, classes),
        )
        model.compile(
            optimizer=keras.optimizers.Adam(config.learning_rate_of(data.train.count)),
            steps_per_execution=config.steps_per_execution,
        )
        backup = Backup(run.backup)
        backup.restore(model, processes)
        if config.distribute:
            replicate(model)
        callbacks = [StopOnNonFinite()]
        if processes.writes:
            callbacks += writing_callbacks(run, data, config, done, fixed, backup, console, commit)
        started = time.perf_counter()
        with StopOnSignal() as stop_on_signal:
            try:
                model.fit(
                    data.stream(
                        "train",
                        config.batch_size,
                        seed=config.seed + done,
                        shard=parallel.shard,
                        classes=classes,
                    ),
                    validation_data=data.stream(
                        "val", config.batch_size, shard=parallel.shard, classes=classes
                    ),
                    initial_epoch=done,
                    epochs=config.epochs,
                    shuffle=False,  # the stream shuffles
                    callbacks=[stop_on_signal, *callbacks],
                    verbose=0,
                )
            except LossNotFinite as error:
                raise LossNotFinite(
                    f"training stopped: {error}; {last_good_model(run)}; lower --learning-rate and train "
                    "again with --overwrite"
                ) from None
        if not processes.writes:
            return None
        with alone():
            collapsed = posterior_collapse(process_local(model), *fixed)
    return summarize(
        run, config, data.train.count, time.perf_counter() - started, [collapsed] if collapsed else []
    )


def conditioning(config: TrainConfig, data: Dataset) -> int:
    """The number of classes a conditional model is conditioned on (0 for the others); refuses unlabelled
    data."""
    if not MODELS[config.model].conditional:
        return 0
    if data.classes < 2:
        what = "no labels" if not data.labelled else "one class"
        raise ConfigError(
            f"model cvae is conditioned on labels, and {data.source} has {what}: give labelled data, or "
            "pick another model",
            "model",
        )
    return data.classes


def writing_callbacks(
    run: Run,
    data: Dataset,
    config: TrainConfig,
    done: int,
    fixed: tuple[np.ndarray, np.ndarray],
    backup: Backup,
    console: Console,
    commit: Callable[[], None],
) -> list:
    """The callbacks that write the run folder and show progress, the resume state last; fixed is the held-out
    subset the snapshots follow."""
    history = [row for row in run.read_history() if int(row["epoch"]) <= done]
    return [
        CheckFreeSpace(run.root),
        BestModel(run.model, best=min((float(row["val_loss"]) for row in history), default=math.inf)),
        Snapshots(run.snapshots, *fixed, config.latent_dim, config.seed),
        HistoryCSV(run.history, history, data.train.count),
        keras.callbacks.TensorBoard(str(run.logs)),
        RichProgress(console, config.epochs, math.ceil(data.train.count / config.batch_size)),
        backup,
        keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: commit()),
    ]


@contextlib.contextmanager
def dtype_policy(name: str):
    """Build models under a Keras dtype policy (mixed_float16: Keras's compile wraps the optimizer in a
    LossScaleOptimizer), and restore the one before."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def last_good_model(run: Run) -> str:
    """Where the best model of the finished epochs is, in words."""
    rows = run.read_history()
    if not rows or not run.model.exists():
        return "no epoch finished, so there is no model to keep"
    best = min(rows, key=lambda row: float(row["val_loss"]))
    return (
        f"the best model so far (epoch {best['epoch']}, val_loss {float(best['val_loss']):.4g}) stays "
        f"in {run.model}"
    )


def batch_sizes(config: TrainConfig, data: Dataset, processes: Processes) -> set[int]:
    """Every batch size a run feeds its data-parallel model: training's, validation's and, in one process, the
    snapshots' (of several, process 0 predicts them on its own)."""
    snapshots = Snapshots.batch_sizes(data.val.count) if processes.count == 1 else set()
    fed = batches(data.train.count, config.batch_size) | batches(data.val.count, config.batch_size)
    return fed | snapshots


def summarize(run: Run, config: TrainConfig, train_images: int, seconds: float, notes: list[str]) -> dict:
    """The summary train prints for a run: its last epoch's terms, the kept epoch, the KL warm-up it had, its
    speed and what to note (a collapsed posterior)."""
    rows = run.read_history()
    last = rows[-1]
    steady = [float(row["images_per_s"]) for row in rows[1:]] or [float(last["images_per_s"])]
    best = min(rows, key=lambda row: float(row["val_loss"]))
    warmup = {}
    if MODELS[config.model].variational:
        warmup = {"kl_warmup": f"{config.kl_warmup_steps:,} of {config.total_steps(train_images):,} steps"}
    return {
        "run": str(run.root),
        "epochs": int(last["epoch"]),
        **{
            name: float(value)
            for name, value in last.items()
            if name not in ("epoch", "epoch_seconds", "images_per_s")
        },
        "best_val_loss": float(best["val_loss"]),
        "kept_epoch": int(best["epoch"]),
        **warmup,
        "seconds": round(seconds, 1),
        "images_per_s": round(sum(steady) / len(steady), 1),
        "notes": notes,
    }
