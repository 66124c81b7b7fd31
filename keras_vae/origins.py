"""What a run's derived models were made from: classifier.keras (sample quality's feature space), prior.keras
and flow.keras (a run's learned prior) carry their origin inside the .keras archive, and are checked against
it before use, so a file of another run or of another model (and a classifier of data that has since changed)
is never used without a word."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

from keras_vae.files import FileError, write_atomic

ORIGIN = "keras_vae_origin.json"
"""The entry of a .keras archive, beside Keras's own, that holds what the model was made from."""
FINGERPRINT_IMAGES = 64
"""Training images whose bytes go into a data fingerprint, beside the data's description."""


def data_fingerprint(data) -> str:
    """A digest of a data set as a run sees it: its source, image shape, split sizes, class names and its
    first training images, so data that changed under the same name is told apart."""
    digest = hashlib.sha256()
    described = [data.source, list(data.input_shape), data.train.count, data.val.count, data.class_names]
    digest.update(json.dumps(described).encode())
    digest.update(data.take("train", FINGERPRINT_IMAGES)[0].tobytes())
    return digest.hexdigest()[:32]


def file_digest(path: Path) -> str:
    """A digest of a file's bytes: which trained model a derived one belongs to."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:32]


def save_with_origin(model, path: Path, origin: dict) -> None:
    """model.save to path through a temporary file, its origin written into the archive before the rename."""

    def write(temporary: Path) -> None:
        model.save(temporary)
        with zipfile.ZipFile(temporary, "a") as archive:
            archive.writestr(ORIGIN, json.dumps(origin))

    write_atomic(path, write)


def read_origin(path: Path) -> dict | None:
    """The origin a .keras file records; None for a file keras-vae did not write so (or not a .keras
    archive)."""
    try:
        with zipfile.ZipFile(path) as archive:
            origin = json.loads(archive.read(ORIGIN))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    return origin if isinstance(origin, dict) else None


def mismatch(path: Path, origin: dict | None, expected: dict) -> str | None:
    """How the origin path records (read_origin) differs from expected, in words; None when every expected key
    matches."""
    if origin is None:
        return f"{path} records no origin, so keras-vae did not make it for this run"
    different = [key for key, value in expected.items() if origin.get(key) != value]
    if not different:
        return None
    return (
        f"{path} was made for another {different[0].replace('_', ' ')} ({origin.get(different[0])!r}, "
        f"this run's is {expected[different[0]]!r})"
    )


def check_replaceable(path: Path) -> None:
    """A derived model's place must hold a regular file or nothing: a folder or a device there is refused."""
    if os.path.lexists(path) and not path.is_file():
        raise FileError(
            f"{path} is not a file keras-vae wrote (a folder or a device?): move it out of the run"
        )
