"""One training run: options and data in, a complete run folder out."""

from __future__ import annotations

import contextlib
import math
import time
from datetime import datetime, timezone
from importlib import metadata

import keras
from rich.console import Console

from keras_vae import __version__, build_model
from keras_vae.backends import distribution
from keras_vae.callbacks import Backup, BestModel, CtrlC, HistoryCSV, LossNotFinite, RichProgress, StopOnNonFinite
from keras_vae.config import TrainConfig
from keras_vae.data import Dataset
from keras_vae.runs import RUN_FORMAT, Run, RunError, remove_temporaries, write_json_atomic
from keras_vae.snapshots import Snapshots, batches

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
            "train_images": len(data.x_train),
            "val_images": len(data.x_val),
            "class_names": data.class_names,
        },
        "model_file": {"path": "model.keras", "holds": "the epoch with the lowest val_loss"},
    }


def train_run(config: TrainConfig, data: Dataset, run: Run, console: Console) -> dict:
    """Train one model, or continue it from its last committed epoch; return the summary of the run.
    Hold runs.lock() for the run around it."""
    backup = Backup(run.backup)
    if len(run.read_history()) >= config.epochs and backup.latest()[1] is None:
        raise RunError(f"{run.root} already finished its {config.epochs} epochs: nothing to resume")
    remove_temporaries(run)
    keras.utils.set_random_seed(config.seed)
    parallel = distribution(batch_sizes(config, data)) if config.distribute else contextlib.nullcontext(1)
    with parallel as replicas:
        if not run.config.exists():
            write_json_atomic(run.config, run_metadata(config, data))
        if replicas > 1:
            console.print(f"Data-parallel over {replicas} devices: {config.batch_size // replicas} images each per step.")
        model = build_model(
            config.model, config.arch, config.latent_dim, data.input_shape, seed=config.seed, **config.loss_options
        )
        model.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
        done = backup.restore(model)
        history = [row for row in run.read_history() if int(row["epoch"]) <= done]
        steps = math.ceil(len(data.x_train) / config.batch_size)
        callbacks = [
            StopOnNonFinite(),
            BestModel(run.model, best=min((float(row["val_loss"]) for row in history), default=math.inf)),
            Snapshots(run.snapshots, data.x_val, data.y_val, config.latent_dim, config.seed),
            HistoryCSV(run.history, history, len(data.x_train)),
            keras.callbacks.TensorBoard(str(run.logs)),
            RichProgress(console, config.epochs, steps),
            backup,
        ]
        started = time.perf_counter()
        with CtrlC() as ctrl_c:
            try:
                model.fit(
                    data.x_train,
                    validation_data=(data.x_val,),
                    initial_epoch=done,
                    epochs=config.epochs,
                    batch_size=config.batch_size,
                    shuffle=True,
                    callbacks=[ctrl_c, *callbacks],
                    verbose=0,
                )
            except LossNotFinite as error:
                raise LossNotFinite(f"training stopped: {error}; {last_good_model(run)}; lower --learning-rate and train again with --overwrite") from None
    return summarize(run, time.perf_counter() - started)


def last_good_model(run: Run) -> str:
    """Where the best model of the finished epochs is, in words."""
    rows = run.read_history()
    if not rows or not run.model.exists():
        return "no epoch finished, so there is no model to keep"
    best = min(rows, key=lambda row: float(row["val_loss"]))
    return f"the best model so far (epoch {best['epoch']}, val_loss {float(best['val_loss']):.4g}) stays in {run.model}"


def batch_sizes(config: TrainConfig, data: Dataset) -> set[int]:
    """Every batch size a run feeds its model: training's, validation's and the snapshots'."""
    return batches(len(data.x_train), config.batch_size) | batches(len(data.x_val), config.batch_size) | Snapshots.batch_sizes(len(data.x_val))


def summarize(run: Run, seconds: float) -> dict:
    rows = run.read_history()
    last = rows[-1]
    steady = [float(row["images_per_s"]) for row in rows[1:]] or [float(last["images_per_s"])]
    return {
        "run": str(run.root),
        "epochs": int(last["epoch"]),
        **{name: float(value) for name, value in last.items() if "loss" in name},
        "best_val_loss": min(float(row["val_loss"]) for row in rows),
        "seconds": round(seconds, 1),
        "images_per_s": round(sum(steady) / len(steady), 1),
    }
