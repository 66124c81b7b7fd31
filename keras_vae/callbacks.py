"""Keras callbacks of a training run: resume state, a stop on non-finite losses, history rows, the best model,
rich progress."""

from __future__ import annotations

import math
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

import keras
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from keras_vae.backends import Processes, alone
from keras_vae.errors import KerasVAEError
from keras_vae.files import check_free_space, check_regular, write_atomic, write_csv_atomic
from keras_vae.runs import MODEL_BYTES, RunError, committed_backup


class Backup(keras.callbacks.Callback):
    """The state to resume from after every finished epoch: backup/epoch_NNNN.weights.h5 (weights, optimizer
    and seed states), written under a temporary name and renamed, so one rename commits an epoch; the older
    file goes after. Put it after every other callback that writes at the end of an epoch: what it commits is
    then complete.

    Keras's BackupAndRestore writes its weights and its epoch counter in place, as two files, which a kill
    during either write or between them leaves damaged or out of step.
    """

    def __init__(self, folder: Path):
        super().__init__()
        self.folder = folder

    def restore(self, model: keras.Model, processes: Processes = Processes()) -> int:
        """Load the last committed epoch into a compiled model; return how many epochs it had finished. Of
        several processes, process 0 reads the file and hands its bytes to the others, and all of them load it
        at once (a variable of a JAX cluster takes a value only from every process together)."""
        if processes.count == 1:
            epoch, path = committed_backup(self.folder)
            return self.load(model, path, epoch, path)
        epoch, state, named = processes.decide(self.committed_state)
        if state is None:
            return 0
        with tempfile.TemporaryDirectory() as folder:
            received = Path(folder) / "resume.weights.h5"
            received.write_bytes(state)
            return self.load(model, received, epoch, named)

    def committed_state(self) -> tuple[int, bytes | None, Path | None]:
        """The last committed epoch, the bytes of its resume state and its file (None before the first)."""
        epoch, path = committed_backup(self.folder)
        if path is None:
            return epoch, None, None
        check_regular(path, MODEL_BYTES, "resume state")
        return epoch, path.read_bytes(), path

    def load(self, model: keras.Model, path: Path | None, epoch: int, named: Path | None) -> int:
        """Load path, the resume state named (the run's file it came from), into model."""
        if path is None:
            return 0
        check_regular(path, MODEL_BYTES, "resume state")  # a FIFO would block the read, a folder fail it
        model.optimizer.build(model.trainable_variables)
        try:
            model.load_weights(path)
        except Exception as error:  # h5py and Keras raise many kinds for a damaged file
            raise RunError(
                f"cannot resume from {named} ({type(error).__name__}): start the run again with --overwrite"
            ) from error
        return epoch

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        committed = self.folder / f"epoch_{epoch + 1:04d}.weights.h5"
        with alone():
            write_atomic(committed, self.model.save_weights)
        for path in self.folder.glob("epoch_*.weights.h5"):
            if path != committed:
                path.unlink()

    def on_train_end(self, logs=None) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class LossNotFinite(KerasVAEError):
    """The loss became NaN or infinite."""


class StopOnNonFinite(keras.callbacks.Callback):
    """Stop at the first batch (or validation) whose loss is NaN or infinite, by raising before anything of
    that epoch is saved: the best model and the resume state stay those of the last good epoch."""

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        self._check(logs, "loss", f"epoch {self.epoch}, batch {batch + 1}")

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        self._check(logs, "val_loss", f"the validation of epoch {self.epoch}")

    @staticmethod
    def _check(logs: dict | None, name: str, where: str) -> None:
        value = float((logs or {}).get(name, 0.0))
        if not math.isfinite(value):
            raise LossNotFinite(f"the {name.replace('_', ' ')} became {value} in {where}")


class Interrupted(KeyboardInterrupt):
    """Training stopped at a batch boundary on a signal; signum says which."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopOnSignal(keras.callbacks.Callback):
    """Ctrl-C (SIGINT) or a scheduler's SIGTERM during fit becomes Interrupted, raised between two batches.

    Python raises KeyboardInterrupt wherever the signal lands; inside a garbage-collector
    callback (JAX has one) it is printed and dropped, and training goes on. Here the signal only
    sets a flag that the next batch end turns into the interrupt. A second signal acts at once, as it would
    without this callback. Use as a context manager around fit, so the handlers are restored whatever happens.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self) -> StopOnSignal:
        self.requested = None
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            self.previous = {signum: signal.signal(signum, self._request) for signum in self.SIGNALS}
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def _request(self, signum, frame) -> None:
        self.requested = signum
        signal.signal(signum, self.previous[signum])

    def _interrupt_if_requested(self, batch: int, logs=None) -> None:
        if self.requested is not None:
            raise Interrupted(self.requested)

    on_train_batch_end = on_test_batch_end = _interrupt_if_requested


class CheckFreeSpace(keras.callbacks.Callback):
    """Before an epoch's files are written, stop with one line if the disk cannot hold them: twice the model's
    and optimizer's variables (model.keras and the resume state each hold them) and a megabyte for the rest.
    h5py crashed the process (SIGSEGV) when the disk filled while it wrote."""

    def __init__(self, folder: Path):
        super().__init__()
        self.folder = folder

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        variables = [*self.model.variables, *self.model.optimizer.variables]
        state = sum(math.prod(v.shape) * np.dtype(v.dtype).itemsize for v in variables)
        check_free_space(self.folder, 2 * state + (1 << 20), "this epoch's files")


class HistoryCSV(keras.callbacks.Callback):
    """history.csv: a row per epoch with every logged metric, the epoch's seconds and training images/s, after
    the rows it starts from (a resumed run's, up to its committed epoch); rewritten whole and renamed into
    place."""

    def __init__(self, path: Path, rows: list[dict], train_images: int):
        super().__init__()
        self.path, self.rows, self.train_images = path, rows, train_images

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self.started = self.trained = time.perf_counter()

    def on_test_begin(self, logs=None) -> None:
        self.trained = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        now = time.perf_counter()
        train_seconds = (self.trained if self.trained > self.started else now) - self.started
        row = {"epoch": epoch + 1, **{name: float(value) for name, value in (logs or {}).items()}}
        row |= {
            "epoch_seconds": round(now - self.started, 4),
            "images_per_s": round(self.train_images / train_seconds, 1),
        }
        self.rows = [*self.rows, row]
        write_csv_atomic(self.path, self.rows)


class BestModel(keras.callbacks.Callback):
    """Saves the whole model whenever the monitored loss improves, to a temporary file renamed onto path."""

    def __init__(self, path: Path, monitor: str = "val_loss", best: float = math.inf):
        super().__init__()
        self.path, self.monitor, self.best = path, monitor, best

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        value = float((logs or {}).get(self.monitor, math.nan))
        if value < self.best:
            self.best = value
            with alone():
                write_atomic(self.path, self.model.save)


class RichProgress(keras.callbacks.Callback):
    """A rich progress bar per epoch showing the running loss terms (refreshed a few times a second);
    when the output is not a terminal (a log file, CI), one plain line per finished epoch instead."""

    def __init__(self, console: Console, epochs: int, steps: int, refresh_seconds: float = 0.25):
        super().__init__()
        self.epochs, self.steps, self.refresh_seconds = epochs, steps, refresh_seconds
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=10),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[logs]}"),
            console=console,
            disable=not console.is_terminal,
        )

    def on_train_begin(self, logs=None) -> None:
        self.progress.start()

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self.task = self.progress.add_task(f"epoch {epoch + 1}/{self.epochs}", total=self.steps, logs="")
        self.shown = time.monotonic()

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        if time.monotonic() - self.shown > self.refresh_seconds:
            self.progress.update(self.task, completed=batch + 1, logs=format_logs(logs))
            self.shown = time.monotonic()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        self.progress.update(self.task, completed=self.steps, logs=format_logs(logs))
        if not self.progress.console.is_terminal:
            self.progress.console.print(f"epoch {epoch + 1}/{self.epochs} {format_logs(logs)}")

    def on_train_end(self, logs=None) -> None:
        self.progress.stop()


SHORT_NAMES = {
    "loss": "loss",
    "reconstruction_loss": "recon",
    "kl_loss": "kl",
    "iw_bound": "iw",
    "mutual_info": "mi",
    "total_correlation": "tc",
    "dimension_kl": "dkl",
    "commitment_loss": "commit",
    "perplexity": "perplexity",
    "dead_codes": "dead",
    "val_loss": "val",
}


def format_logs(logs: dict | None) -> str:
    """The running terms, briefly: 'loss 200.6 recon 192.8 kl 7.85 val 193.2'."""
    logs = logs or {}
    return " ".join(f"{short} {float(logs[name]):.4g}" for name, short in SHORT_NAMES.items() if name in logs)
