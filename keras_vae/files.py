"""Reading and writing files without harm: every write goes to a temporary name and is renamed into place,
a full or read-only disk is one line naming the path, an existing file is replaced only when asked, and a
file is read only when it is a regular file of a sane size."""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from keras_vae.errors import KerasVAEError

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)
MB = 1 << 20


class FileError(KerasVAEError):
    """A file cannot be written or read safely: a full or read-only disk, a target not ours to replace, a
    device."""


def megabytes(size: int) -> str:
    return f"{size / MB:,.1f} MB"


def free_space(path: Path) -> int:
    """Bytes free on the file system that holds path (or its nearest existing parent)."""
    path = Path(path).absolute()
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


def check_free_space(path: Path, needed: int, what: str) -> None:
    """Refuse before writing what would not fit, naming the place and the space needed."""
    free = free_space(path)
    if free < needed:
        raise FileError(
            f"not enough space for {what} in {path}: needs about {megabytes(needed)}, {megabytes(free)} free"
        )


def write_error(error: OSError, path: Path) -> FileError | None:
    """The one line for a full or read-only disk met while writing path; None for other errors."""
    if error.errno in NO_SPACE:
        return FileError(
            f"no space left writing {path}: {megabytes(free_space(path))} free; free some space and try again"
        )
    if error.errno in READ_ONLY:
        return FileError(f"cannot write {path}: {os.strerror(error.errno).lower()}; give a writable folder")
    return None


TEMPORARY = ".tmp"
"""What the private folders of unfinished writes end their names in: `.NAME.RANDOM.tmp`."""


@contextlib.contextmanager
def temporary_path(path: Path, tag: str = "") -> Iterator[Path]:
    """A name for path's new content (every suffix kept, since Keras checks for '.weights.h5') inside a hidden
    folder of its own beside path, named at random, made exclusively and open to its owner alone
    (tempfile.mkdtemp): no link or FIFO that someone else plants can be written through. The folder goes
    afterwards, whatever happens."""
    folder = Path(
        tempfile.mkdtemp(
            prefix=f".{path.name.partition('.')[0]}.", suffix=f"{tag}{TEMPORARY}", dir=path.parent
        )
    )
    try:
        yield folder / path.name
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def is_temporary(path: Path) -> bool:
    """Whether path is, or lies in, what an unfinished write leaves: a private folder of temporary_path, or a
    hidden .NAME.PID.tmp file of keras-vae before it."""
    return any(part.startswith(".") and TEMPORARY in part for part in path.parts)


def make_folder(path: Path) -> None:
    """path as a folder, with its parents; one that exists as something else (a file) is refused in one
    line."""
    blocking = next(
        (part for part in (path, *path.parents) if os.path.lexists(part) and not part.is_dir()), None
    )
    if blocking is not None:
        raise FileError(
            f"{blocking} exists and is not a folder, so nothing can be written under it: give another --out"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise write_error(error, path) or error


def sync(path: Path) -> None:
    """Flush a file's bytes, or a folder's entries, to the disk: a rename is durable once both are. Windows
    cannot open a folder to flush it, and its renames need no flush of one."""
    if os.name == "nt" and path.is_dir():
        return
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_atomic(path: Path, write) -> None:
    """Call write(temporary) with a private temporary name beside path (temporary_path), flush it to the disk,
    then rename the result onto path in one step and flush the folder, so a kill or a power loss leaves the
    old file or the new one; a full or read-only disk raises FileError, and whatever was at path stays as it
    was."""
    make_folder(path.parent)
    try:
        with temporary_path(path) as temporary:
            write(temporary)
            sync(temporary)
            os.replace(temporary, path)
            sync(path.parent)
    except OSError as error:
        raise write_error(error, path) or error


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


def claim(path: Path, overwrite: bool, option: str = "--out") -> Path:
    """An output file the user named: an existing one is replaced only with --overwrite, and never a
    folder."""
    if path.is_dir() and not path.is_symlink():
        raise FileError(f"{option} {path} is a folder: give a file name")
    if os.path.lexists(path) and not overwrite:
        raise FileError(f"{path} exists: pass --overwrite to replace it, or another {option}")
    return path


def inside(root: Path, path: Path) -> Path:
    """path, refused when it (through a symbolic link on the way) leads out of root."""
    if not path.resolve().is_relative_to(root.resolve()):
        raise FileError(
            f"{path} leads outside {root} (through a symbolic link): keras-vae writes into a run only "
            "inside it"
        )
    return path


def check_regular(path: Path, limit: int, what: str = "file") -> int:
    """The size of path, refused unless it is a regular file no larger than limit (not a device, a FIFO, a
    folder)."""
    try:
        info = os.stat(path)
    except OSError as error:
        raise FileError(f"cannot read {path}: {error.strerror}") from error
    if not stat.S_ISREG(info.st_mode):
        raise FileError(f"{path} is not a regular file: give the {what} keras-vae wrote")
    if info.st_size > limit:
        raise FileError(f"{path} is {megabytes(info.st_size)}, over the {megabytes(limit)} a {what} may take")
    return info.st_size
