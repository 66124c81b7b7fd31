"""The run folder: where each file goes, how it is read back, and how a run is opened, locked and replaced."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from keras_vae.errors import ConfigError, KerasVAEError
from keras_vae.files import (
    MB,
    TEMPORARY,
    check_regular,
    claim,
    inside,
    is_temporary,
    make_folder,
    write_error,
)

RUN_FORMAT = 1
"""The layout of a run folder; config.json records it, and a run of another format is refused, not misread."""


class RunError(KerasVAEError):
    """A run folder is missing, already there, or not a run."""


NAME_LENGTH = 100
"""The longest run name: the lock file and the temporary names add to it, and file names stop at 255 bytes."""
CONFIG_BYTES, HISTORY_BYTES, MODEL_BYTES = 16 * MB, 256 * MB, 4096 * MB


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
    export = property(lambda self: self.root / "export")
    prior = property(lambda self: self.root / "prior.keras")
    """A VQ-VAE's learned prior over its codes (keras-vae train-prior)."""
    flow = property(lambda self: self.root / "flow.keras")
    """A continuous model's learned flow over its codes (keras-vae train-prior)."""
    classifier = property(lambda self: self.root / "classifier.keras")
    """The classifier whose features sample quality is measured in (evaluate trains it once)."""
    aside = property(lambda self: self.root.with_name(f".{self.root.name}.replaced"))
    """Where --overwrite keeps the run it replaces until the new run has finished an epoch."""

    def is_run(self) -> bool:
        """Whether keras-vae wrote this folder: a config.json with a run_format."""
        try:
            return "run_format" in json.loads(self.config.read_text())
        except (OSError, ValueError, TypeError):
            return False

    def target(self, path: Path) -> Path:
        """A path to write inside the run, refused when a symbolic link leads it out of the run."""
        return inside(self.root, path)

    def output(self, out: Path | None, default: str, overwrite: bool) -> Path:
        """Where a command writes one file: the user's --out, which replaces an existing file only with
        --overwrite, or else figures/DEFAULT inside the run."""
        return claim_output(out, overwrite) if out is not None else self.target(self.figures / default)

    def check_inside(self) -> None:
        """Refuse a run whose files or folders are links that lead out of it: training writes into all of
        them."""
        for entry in self.root.iterdir() if self.root.is_dir() else ():
            self.target(entry)

    def committed_epoch(self) -> int:
        return committed_backup(self.backup)[0]

    def finished(self, epochs: int) -> bool:
        """Whether the run trained all its epochs: its history holds them, and no resume state is left."""
        return not self.committed_epoch() and len(self.read_history()) >= epochs

    def read_config(self) -> dict:
        """config.json, refused in one line when it is missing, damaged, of another run format or holds bad
        options."""
        from keras_vae import __version__
        from keras_vae.config import TrainConfig

        if not self.config.exists():
            raise RunError(
                f"{self.root} is not a run folder (no config.json): give a folder keras-vae train wrote"
            )
        check_regular(self.config, CONFIG_BYTES, "config.json")
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
                f"keras-vae {__version__} reads run format {RUN_FORMAT}: train it again, or use keras-vae "
                f"{written_by}"
            )
        try:
            TrainConfig.from_dict(config["options"])
        except (TypeError, ValueError, KerasVAEError) as error:
            raise RunError(
                f"{self.config} holds options of the wrong type ({error}): train the run again with "
                "--overwrite"
            ) from error
        problem = data_problem(config.get("data"))
        if problem:
            raise RunError(f"{self.config} is damaged ({problem}): train the run again with --overwrite")
        return config

    def read_options(self):
        """The run's TrainConfig, checked as the command line's options are."""
        from keras_vae.config import TrainConfig

        return TrainConfig.from_dict(self.read_config()["options"])

    def load_model(self):
        """model.keras in Keras' safe mode (no arbitrary code), without its optimizer; what killed writes left
        in the run long ago goes first (remove_temporaries)."""

        import keras_vae.models.registry  # noqa: F401  (registers the model classes and their layers)

        config = self.read_config()  # a run of another format is refused before its model is read
        remove_temporaries(self)
        if not self.model.exists():
            raise RunError(
                f"{self.root} has no model.keras: train it first (keras-vae train --name {self.root.name})"
            )
        model = self.load_keras(self.model, "model.keras", "train the run again with --overwrite")
        self.check_model(model, config)
        return model

    def load_keras(self, path: Path, what: str, remedy: str):
        """A .keras file of the run in Keras' safe mode, without its optimizer; one line naming it if it
        cannot load."""
        import keras

        check_regular(path, MODEL_BYTES, what)
        try:
            return keras.saving.load_model(path, compile=False, safe_mode=True)
        except Exception as error:  # a damaged zip, config or weights file: Keras raises many kinds
            raise RunError(
                f"cannot load {path}: {type(error).__name__}: {error}".splitlines()[0] + f"; {remedy}"
            ) from error

    def check_model(self, model, config: dict) -> None:
        """Refuse a model.keras that is not the model config.json describes (one copied from another run)."""
        from keras_vae.models.registry import MODELS

        options, shape = config["options"], tuple(config["data"]["input_shape"])
        found = {
            "model": next(
                (name for name, kind in MODELS.items() if type(model) is kind), type(model).__name__
            ),
            "latent_dim": getattr(model, "latent_dim", None),
            "input shape": getattr(model, "image_shape", None),
        }
        expected = {"model": options["model"], "latent_dim": options["latent_dim"], "input shape": shape}
        for what, value in found.items():
            if value != expected[what]:
                raise RunError(
                    f"{self.model} is not this run's model: its {what} is {value}, {self.config} says "
                    f"{expected[what]} (a model.keras copied from another run?): train the run again with "
                    "--overwrite"
                )

    def read_history(self) -> list[dict]:
        """history.csv's rows, epoch an int and every other value a float; [] before the first epoch ends."""
        if not self.history.exists():
            return []
        check_regular(self.history, HISTORY_BYTES, "history.csv")
        try:
            rows = list(csv.DictReader(io.StringIO(self.history.read_text())))
            return [
                {"epoch": int(row.pop("epoch")), **{name: float(value) for name, value in row.items()}}
                for row in rows
            ]
        except (OSError, ValueError, TypeError, KeyError, UnicodeDecodeError, csv.Error) as error:
            raise RunError(
                f"{self.history} is damaged ({type(error).__name__}: {error}): train the run again with "
                "--overwrite"
            ) from error

    def read_last_epoch(self) -> dict:
        """history.csv's last row, for a run that has finished an epoch."""
        rows = self.read_history()
        if not rows or "loss" not in rows[-1]:
            raise RunError(
                f"{self.history} holds no finished epoch: train the run (keras-vae train --name "
                f"{self.root.name} --resume)"
            )
        return rows[-1]


OWN_FILES = (
    "config.json",
    "model.keras",
    "history.csv",
    "prior.keras",
    "flow.keras",
    "classifier.keras",
    "backup",
    "snapshots",
    "logs",
)
"""What a run keeps for itself: no command's --out may name them, or anything inside them."""


def run_file_at(path: Path) -> tuple[Run, str] | None:
    """The run, and which of its own files (OWN_FILES, or its lock beside it), that path is or lies in,
    following links; None for any other path."""
    path = Path(path).resolve()
    lock = re.fullmatch(r"\.(.+)\.lock", path.name)
    if lock and Run(path.parent / lock[1]).is_run():
        return Run(path.parent / lock[1]), path.name
    for folder in path.parents:
        if Run(folder).is_run():
            owned = path.relative_to(folder).parts[0]
            return (Run(folder), owned) if owned in OWN_FILES else None
    return None


def check_not_owned(path: Path, option: str = "--out") -> None:
    """Refuse, with --overwrite or without, an output that is one of a run's own files or lies inside them
    (run_file_at)."""
    owned = run_file_at(path)
    if owned is not None:
        run, name = owned
        raise ConfigError(
            f"{option} {path} is {run.root}'s own {name}, which no command writes over: give a path "
            "outside it"
        )


def claim_output(path: Path, overwrite: bool, option: str = "--out") -> Path:
    """files.claim for a file the user named, never one of a run's own (check_not_owned)."""
    check_not_owned(path, option)
    return claim(path, overwrite, option)


def latest_run(output_dir: str | Path) -> Run:
    """The run under output_dir trained last: the one whose history.csv (written as each epoch ends) is
    newest."""
    runs = [
        Run(path) for path in Path(output_dir).glob("*") if path.is_dir() and not path.name.startswith(".")
    ]
    trained = [run for run in runs if run.history.is_file() and run.is_run()]
    if not trained:
        raise RunError(
            f"no run given, and {output_dir} holds no trained run: give a run folder, or train one first "
            "(keras-vae train)"
        )
    return max(trained, key=lambda run: run.history.stat().st_mtime_ns)


def data_problem(data) -> str | None:
    """What is wrong with config.json's data section, or None."""
    if not isinstance(data, dict):
        return "no data section"
    shape = data.get("input_shape")
    if not (
        isinstance(shape, list)
        and len(shape) == 3
        and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape)
    ):
        return f"data.input_shape must be three sizes, got {shape!r}"
    names = data.get("class_names")
    if names is not None and not (isinstance(names, list) and all(isinstance(name, str) for name in names)):
        return f"data.class_names must be a list of names or null, got {names!r}"
    return None


def committed_backup(folder: Path) -> tuple[int, Path | None]:
    """The last epoch whose resume state was committed (folder/epoch_NNNN.weights.h5) and its file; (0, None)
    before the first."""
    names = (re.fullmatch(r"epoch_(\d+)\.weights\.h5", path.name) for path in folder.glob("*.weights.h5"))
    return max(((int(name[1]), folder / name[0]) for name in names if name), default=(0, None))


def open_run(output_dir: str | Path, name: str, resume: bool, overwrite: bool) -> Run:
    """The run folder to train into; refuses to touch an existing one unless told how, and --overwrite only
    replaces a run keras-vae wrote. With --resume, a run that has not started (no folder, or one a kill left
    before its config.json) starts. Call it under lock(), which checks the name."""
    run = Run(Path(output_dir) / name)
    recover_replaced(run)
    if resume and overwrite:
        raise RunError("--resume and --overwrite exclude each other: pick one")
    if resume and not run.config.exists() and os.path.lexists(run.root) and not only_temporaries(run.root):
        raise RunError(
            f"{run.root} is not a run keras-vae wrote (no config.json), so --resume leaves it alone: pick "
            "another --name"
        )
    if os.path.lexists(run.root) and not (resume or overwrite):
        raise RunError(
            f"{run.root} exists: pass --resume to continue it, --overwrite to replace it, or another --name"
        )
    if overwrite and os.path.lexists(run.root) and not (run.root.is_dir() and run.is_run()):
        raise RunError(
            f"{run.root} is not a run keras-vae wrote (no config.json with a run_format), so --overwrite "
            "leaves it alone: pick another --name"
        )
    return run


class Replacing:
    """A context to train a run in. For a fresh run, an old run at its place is moved aside (Run.aside) until
    commit(), called once the first epoch is committed, deletes it; if the new run fails before that, its
    folder goes and the old run comes back. A resumed run is left as it is."""

    def __init__(self, run: Run, fresh: bool):
        self.run, self.committed = run, not fresh

    def __enter__(self) -> Replacing:
        if not self.committed and os.path.lexists(self.run.root):
            os.replace(self.run.root, self.run.aside)
        return self

    def commit(self) -> None:
        if not self.committed:
            self.committed = True
            shutil.rmtree(self.run.aside, ignore_errors=True)

    def __exit__(self, error_type, error, traceback) -> None:
        if error_type is not None and not self.committed:
            put_back(self.run)


def recover_replaced(run: Run) -> None:
    """A process killed while it replaced a run left the old one aside: the new run never committed an epoch
    (commit() would have deleted it), so the old run comes back."""
    if run.aside.exists():
        put_back(run)


def put_back(run: Run) -> None:
    """Remove a new run that committed nothing, and move the run it replaced, if any, back into place."""
    shutil.rmtree(run.root, ignore_errors=True)
    if run.aside.exists():
        os.replace(run.aside, run.root)


def check_name(name: str) -> None:
    """A run name is one folder name: no path separators, no '..', nothing hidden."""
    if not re.fullmatch(r"[\w][\w.+=-]*", name) or ".." in name:
        raise ConfigError(
            f"name must be a plain folder name (letters, digits, '-', '_', '.'), not a path: {name!r}", "name"
        )
    if len(name) > NAME_LENGTH:
        raise ConfigError(f"name is {len(name)} characters long: keep it to {NAME_LENGTH}", "name")


@contextlib.contextmanager
def lock(output_dir: str | Path, name: str) -> Iterator[None]:
    """Hold OUTPUT_DIR/.NAME.lock (filelock: flock on POSIX, msvcrt on Windows) while a run is trained: a
    second training of the same run refuses at once. The operating system releases the lock when the process
    ends, however it ends. The file stays (removing a lock file lets two processes lock two files); it names
    its holder."""
    check_name(name)
    path = Path(output_dir) / f".{name}.lock"
    make_folder(path.parent)
    held = FileLock(path, timeout=0)
    try:
        held.acquire()
    except Timeout:
        owner = read_owner(path) or "another process"
        raise RunError(
            f"{Path(output_dir) / name} is being trained by {owner}: wait for it, or pick another --name"
        ) from None
    except OSError as error:
        raise write_error(error, path) or error
    try:
        with contextlib.suppress(OSError):  # Windows locks the file's bytes against other handles
            path.write_text(f"process {os.getpid()}")
        yield
    finally:
        with contextlib.suppress(OSError):
            path.write_text("")
        held.release()


def read_owner(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def only_temporaries(folder: Path) -> bool:
    """Whether a folder holds nothing but the temporary files of killed writes (and folders of them)."""
    return folder.is_dir() and all(
        path.is_dir() or is_temporary(path.relative_to(folder)) for path in folder.rglob("*")
    )


STALE_SECONDS = 3600
"""How long untouched a temporary of a write must be before a command that does not lock the run takes it for
one a killed process left, rather than one that another process is writing now."""


def remove_temporaries(run: Run, older_than: float = STALE_SECONDS) -> None:
    """What killed writes left in a run: the private folders of write_atomic and older .NAME.PID.tmp files,
    once nothing has touched them for older_than seconds (0 under the run's lock, where no one else
    writes)."""
    now = time.time()
    for path in sorted(run.root.rglob(f".*{TEMPORARY}*")) if run.root.is_dir() else ():
        touched = max(
            (entry.lstat().st_mtime for entry in [path, *path.rglob("*")] if os.path.lexists(entry)),
            default=now,
        )
        if now - touched < older_than:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
