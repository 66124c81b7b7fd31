"""The run folder: where each file goes, and writing them so a reader never sees half a file."""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from keras_vae.errors import KerasVAEError

RUN_FORMAT = 1
"""The layout of a run folder; config.json records it, and a run of another format is refused, not misread."""


class RunError(KerasVAEError):
    """A run folder is missing, already there, or not a run."""


@dataclass(frozen=True)
class Run:
    root: Path

    config = property(lambda self: self.root / "config.json")
    model = property(lambda self: self.root / "model.keras")
    history = property(lambda self: self.root / "history.csv")
    logs = property(lambda self: self.root / "logs")
    backup = property(lambda self: self.root / "backup")
    snapshots = property(lambda self: self.root / "snapshots")
    figures = property(lambda self: self.root / "figures")

    def read_config(self) -> dict:
        """config.json, refused in one line when it is missing, damaged, of another run format or holds bad options."""
        from keras_vae import __version__
        from keras_vae.config import TrainConfig

        if not self.config.exists():
            raise RunError(f"{self.root} is not a run folder (no config.json): give a folder keras-vae train wrote")
        try:
            config = json.loads(self.config.read_text())
        except (OSError, ValueError) as error:
            raise RunError(f"cannot read {self.config}: {error}") from error
        if not isinstance(config, dict) or not isinstance(config.get("options"), dict):
            raise RunError(f"{self.config} is damaged (no options): train the run again with --overwrite")
        if config.get("run_format") != RUN_FORMAT:
            written_by = config.get("keras_vae_version", "an unknown version")
            raise RunError(
                f"{self.root} was written by keras-vae {written_by} (run format {config.get('run_format')}); "
                f"keras-vae {__version__} reads run format {RUN_FORMAT}: train it again, or use keras-vae {written_by}"
            )
        try:
            TrainConfig.from_dict(config["options"])
        except (TypeError, ValueError) as error:
            raise RunError(f"{self.config} holds options of the wrong type ({error}): train the run again with --overwrite") from error
        return config

    def read_options(self):
        """The run's TrainConfig, checked as the command line's options are."""
        from keras_vae.config import TrainConfig

        return TrainConfig.from_dict(self.read_config()["options"])

    def load_model(self):
        """model.keras in Keras' safe mode (no arbitrary code), without its optimizer."""
        import keras

        import keras_vae  # noqa: F401  (registers the model classes)

        self.read_config()  # a run of another format is refused before its model is read
        if not self.model.exists():
            raise RunError(f"{self.root} has no model.keras: train it first (keras-vae train --name {self.root.name})")
        try:
            return keras.saving.load_model(self.model, compile=False, safe_mode=True)
        except Exception as error:  # a damaged zip, config or weights file: Keras raises many kinds
            raise RunError(f"cannot load {self.model}: {type(error).__name__}: {error}".splitlines()[0]) from error

    def read_history(self) -> list[dict]:
        if not self.history.exists():
            return []
        return list(csv.DictReader(io.StringIO(self.history.read_text())))


def open_run(output_dir: str | Path, name: str, resume: bool, overwrite: bool) -> Run:
    """The run folder to train into; refuses to touch an existing one unless told how. Call it under lock(),
    which checks the name."""
    run = Run(Path(output_dir) / name)
    exists = run.root.exists()
    if resume and overwrite:
        raise RunError("--resume and --overwrite exclude each other: pick one")
    if resume and not run.config.exists():
        raise RunError(f"nothing to resume: {run.root} is not a run folder (no config.json)")
    if exists and not (resume or overwrite):
        raise RunError(f"{run.root} exists: pass --resume to continue it, --overwrite to replace it, or another --name")
    return run


def check_name(name: str) -> None:
    """A run name is one folder name: no path separators, no '..', nothing hidden."""
    if not re.fullmatch(r"[\w][\w.+=-]*", name) or ".." in name:
        raise RunError(f"--name {name!r} must be a plain folder name (letters, digits, '-', '_', '.'), not a path")


@contextlib.contextmanager
def lock(output_dir: str | Path, name: str) -> Iterator[None]:
    """Hold OUTPUT_DIR/.NAME.lock while a run is trained: a second training of the same run refuses at once.
    The operating system releases the lock when the process ends, however it ends; the file is removed on release,
    so a lock counts only while its file is still the one at that path."""
    check_name(name)
    path = Path(output_dir) / f".{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if not path.exists() or os.stat(path).st_ino != os.fstat(handle.fileno()).st_ino:
                raise BlockingIOError  # the holder released and removed it between our open and our lock
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            raise RunError(f"{Path(output_dir) / name} is being trained by {owner}: wait for it, or pick another --name") from None
        handle.truncate(0)
        handle.write(f"process {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            path.unlink()


def remove_temporaries(run: Run) -> None:
    """Temporary files a killed process left (the run is locked, so no one is writing them)."""
    for path in run.root.rglob(".*.tmp*"):
        if path.is_file():
            path.unlink()


def clear(run: Run) -> None:
    """Remove an old run before training anew into its folder (--overwrite)."""
    if run.root.exists():
        shutil.rmtree(run.root)


def temporary_path(path: Path, tag: str = "tmp") -> Path:
    """A hidden name beside path for this process; every suffix kept, since Keras checks for '.weights.h5'."""
    stem, dot, suffixes = path.name.partition(".")
    return path.with_name(f".{stem}.{os.getpid()}.{tag}{dot}{suffixes}")


def write_atomic(path: Path, write) -> None:
    """Call write(temporary_path), then rename the result onto path in one step."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(path)
    try:
        write(Path(temporary))
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, lambda temporary: temporary.write_text(text))


def write_json_atomic(path: Path, data: dict) -> None:
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def write_csv_atomic(path: Path, rows: list[dict]) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())
