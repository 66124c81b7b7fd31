"""The run folder: where each file goes, and writing them so a reader never sees half a file."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from keras_vae.errors import KerasVAEError


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
        if not self.config.exists():
            raise RunError(f"{self.root} is not a run folder (no config.json): give a folder keras-vae train wrote")
        try:
            return json.loads(self.config.read_text())
        except (OSError, ValueError) as error:
            raise RunError(f"cannot read {self.config}: {error}") from error

    def load_model(self):
        """model.keras in Keras' safe mode (no arbitrary code), without its optimizer."""
        import keras

        import keras_vae  # noqa: F401  (registers the model classes)

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
    """The run folder to train into; refuses to touch an existing one unless told how."""
    run = Run(Path(output_dir) / name)
    exists = run.root.exists()
    if resume and overwrite:
        raise RunError("--resume and --overwrite exclude each other: pick one")
    if resume and not run.config.exists():
        raise RunError(f"nothing to resume: {run.root} is not a run folder (no config.json)")
    if exists and not (resume or overwrite):
        raise RunError(f"{run.root} exists: pass --resume to continue it, --overwrite to replace it, or another --name")
    return run


def clear(run: Run) -> None:
    """Remove an old run before training anew into its folder (--overwrite)."""
    if run.root.exists():
        shutil.rmtree(run.root)


def write_atomic(path: Path, write) -> None:
    """Call write(temporary_path), then rename the result onto path in one step."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
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
