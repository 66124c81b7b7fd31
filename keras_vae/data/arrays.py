"""Data sets small enough to hold in memory as they are stored (uint8 for IDX): IDX folders and .npz files,
streamed from memory by the common pipeline."""

from __future__ import annotations

import gzip
import math
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from keras_vae.data.stream import DataError, Dataset, ImageOptions, Split, hold_out
from keras_vae.files import MB, check_regular, megabytes

# IDX type codes (the third byte of the magic number) and their big-endian dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
NPZ_DAMAGE = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, KeyError, NotImplementedError)
"""What np.load and zipfile raise on the damaged bytes of a .npz: a zip of .npy headers and arrays."""


def memory_bytes() -> int:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_fits(values: int, what: str) -> None:
    """Refuse, before anything is allocated, data that as float32 would not fit in this machine's memory."""
    if values * 4 > memory_bytes():
        raise DataError(
            f"{what}: {megabytes(values * 4)} as float32, more than this machine's "
            f"{megabytes(memory_bytes())} of memory"
        )


def read_idx(path: str | Path) -> np.ndarray:
    """The array in an IDX file (the MNIST format), gzip-compressed or not. The header is read and its shape
    checked against memory before the body is read (or decompressed), and no more than it promises is read."""
    path = Path(path)
    check_regular(path, memory_bytes(), "data file")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            magic = f.read(4)
            if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_DTYPES:
                raise DataError(f"{path} is not an IDX file (bad magic number)")
            dims = f.read(4 * magic[3])
            if len(dims) < 4 * magic[3]:
                raise DataError(f"{path} is truncated (header of {magic[3]} dimensions)")
            shape = tuple(int(n) for n in np.frombuffer(dims, ">u4"))
            check_fits(math.prod(shape), f"{path} claims shape {shape}")
            dtype = np.dtype(_IDX_DTYPES[magic[2]])
            size = math.prod(shape) * dtype.itemsize
            raw = f.read(size + 1)
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"cannot read {path}: {error}") from error
    if len(raw) != size:
        raise DataError(
            f"{path} holds {len(raw)}{'+' if len(raw) > size else ''} data bytes, its header promises "
            f"shape {shape}"
        )
    return np.frombuffer(raw, dtype).reshape(shape)


def load_idx_split(folder: str | Path, split: str = "t10k") -> tuple[np.ndarray, np.ndarray]:
    """Images (N, H, W, 1) float32 in [0, 1] and labels (N,) int64 of one split in an IDX folder."""
    images, labels = read_idx_split(Path(folder), split)
    return images.astype("float32") / 255, labels


def read_idx_split(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, H, W, 1) as stored and labels (N,) int64 of one split in an IDX folder."""
    images_path = _find(folder, f"{split}-images-idx3-ubyte")
    labels_path = _find(folder, f"{split}-labels-idx1-ubyte")
    return _as_images(read_idx(images_path), read_idx(labels_path), f"{images_path} and {labels_path}")


def _find(folder: Path, stem: str) -> Path:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    raise DataError(f"no {stem}[.gz] in {folder}")


def is_idx_folder(path: Path) -> bool:
    return any(path.glob("*-images-idx3-ubyte*"))


def load_idx(path: Path, options: ImageOptions, val_fraction: float, seed: int) -> Dataset:
    """An IDX folder: train-* and t10k-* splits, or one of them with a held-out fraction; classes.txt names
    the classes."""
    splits = [split for split in ("train", "t10k") if any(path.glob(f"{split}-images-idx3-ubyte*"))]
    train = read_idx_split(path, splits[0])
    val = read_idx_split(path, "t10k") if splits == ["train", "t10k"] else None
    return in_memory(
        train,
        val,
        f"idx:{path}",
        read_class_names(path / "classes.txt", train[1]),
        options,
        val_fraction,
        seed,
    )


def in_memory(
    train, val, source: str, class_names, options: ImageOptions, val_fraction: float, seed: int
) -> Dataset:
    """A Dataset streamed from arrays held in memory; without val, a seeded val_fraction of train is held
    out."""
    if val is None:
        rest, held = hold_out(len(train[0]), val_fraction, seed)
        train, val = (train[0][rest], train[1][rest]), (train[0][held], train[1][held])
    if train[0].shape[1:] != val[0].shape[1:]:
        raise DataError(
            f"{source}: validation images are {val[0].shape[1:]}, training images {train[0].shape[1:]}: "
            "both need one size"
        )
    height, width, channels = train[0].shape[1:]
    shape = options.shape(height, width, channels, source)
    label_count = int(max(train[1].max(initial=-1), val[1].max(initial=-1))) + 1
    return Dataset(
        array_split(*train),
        array_split(*val),
        source,
        shape,
        class_names,
        crop=options.crop,
        label_count=label_count,
    )


def array_split(images: np.ndarray, labels: np.ndarray) -> Split:
    """A split of arrays in memory; a shuffled stream draws a new order of indices each epoch."""

    def elements(seed: int | None, shard: tuple[int, int] = (0, 1)):
        import tensorflow as tf

        x, y = tf.constant(images), tf.constant(labels)
        order = tf.data.Dataset.range(len(images))
        if seed is not None:
            order = order.shuffle(len(images), seed, reshuffle_each_iteration=True)
        return order.shard(shard[1], shard[0]).map(lambda i: (tf.gather(x, i), tf.gather(y, i)))

    return Split(len(images), elements, lambda: labels)


def read_class_names(path: Path, labels: np.ndarray) -> list[str] | None:
    """classes.txt beside IDX files: one class name a line, in label order; None without the file."""
    if not path.exists():
        return None
    check_regular(path, MB, "classes.txt")
    return check_class_names(
        [line.strip() for line in path.read_text().splitlines() if line.strip()], labels, str(path)
    )


def check_class_names(names: list[str], labels: np.ndarray, what: str) -> list[str]:
    if not names or labels.max(initial=0) >= len(names):
        raise DataError(
            f"{what} names {len(names)} classes, but the labels go up to {labels.max(initial=0)}: give one "
            "name per class, in label order"
        )
    return names


def load_npz(path: Path, options: ImageOptions, val_fraction: float, seed: int) -> Dataset:
    """A keras.datasets-style .npz: x_train and y_train, optionally x_test, y_test and class_names (strings,
    in label order). The arrays' headers are checked (kinds, shapes, memory) before any array is loaded."""
    check_regular(path, memory_bytes(), "data file")
    headers = npz_headers(path)
    if not {"x_train", "y_train"} <= set(headers):
        raise DataError(
            f"{path} must hold arrays x_train and y_train (and optionally x_test, y_test); it has "
            f"{sorted(headers)}"
        )
    check_npz_headers(path, headers)
    try:
        with np.load(path, allow_pickle=False) as arrays:
            arrays = {key: arrays[key] for key in arrays.files}
    except NPZ_DAMAGE as error:
        raise DataError(
            f"cannot read {path} as .npz: {type(error).__name__}: {error}".splitlines()[0]
        ) from error
    train = _as_images(arrays["x_train"], arrays["y_train"], f"{path} x_train and y_train")
    has_test = {"x_test", "y_test"} <= set(arrays)
    val = _as_images(arrays["x_test"], arrays["y_test"], f"{path} x_test and y_test") if has_test else None
    names = [str(name) for name in arrays["class_names"].reshape(-1)] if "class_names" in arrays else None
    names = names and check_class_names(names, train[1], f"{path} class_names")
    return in_memory(train, val, f"npz:{path}", names, options, val_fraction, seed)


def npz_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """The shape and dtype of every array in a .npz, from the .npy headers inside, without loading an
    array."""
    with open(path, "rb") as f:
        if f.read(6) == b"\x93NUMPY":
            raise DataError(
                f"{path} is a .npy file (one array), not a .npz: save with np.savez(path, x_train=..., "
                "y_train=...)"
            )
    headers = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                with archive.open(name) as member:
                    version = np.lib.format.read_magic(member)
                    read = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = read(member)
                headers[name.removesuffix(".npy")] = (shape, dtype)
    except (*NPZ_DAMAGE, SyntaxError) as error:  # a header that is not a Python literal
        raise DataError(
            f"cannot read {path} as .npz: {type(error).__name__}: {error}".splitlines()[0]
        ) from error
    return headers


def check_npz_headers(path: Path, headers: dict) -> None:
    """Numbers only; labels one per image; test images of the training images' size; all of it fitting in
    memory."""
    for name, (shape, dtype) in headers.items():
        if name in ("x_train", "y_train", "x_test", "y_test") and dtype.kind not in "biuf":
            raise DataError(f"{path}: {name} holds {dtype} values; images and labels must be numbers")
        if name == "class_names" and dtype.kind not in "US":
            raise DataError(f"{path}: class_names holds {dtype} values; give the names as strings")
    for name in ("y_train", "y_test"):
        shape = headers.get(name, ((0,), None))[0]
        if len(shape) != 1 and not (len(shape) == 2 and shape[1] == 1):
            raise DataError(
                f"{path}: {name} has shape {shape}; labels must be one class number per image, shape (N,)"
            )
    if "x_test" in headers and headers["x_test"][0][1:] != headers["x_train"][0][1:]:
        raise DataError(
            f"{path}: x_test images are {headers['x_test'][0][1:]}, x_train's {headers['x_train'][0][1:]}: "
            "both splits need images of one size"
        )
    shapes = [headers[name][0] for name in ("x_train", "x_test") if name in headers]
    check_fits(sum(math.prod(shape) for shape in shapes), f"{path} claims images of shapes {shapes}")


def _as_images(images: np.ndarray, labels: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W[, C]) integers 0-255 -> uint8 NHWC, floats in [0, 1] -> float32 NHWC; labels int64."""
    if len(images) != len(labels):
        raise DataError(f"{what}: {len(images)} images but {len(labels)} labels")
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or len(images) == 0:
        raise DataError(
            f"{what}: expected a non-empty array of images (N, H, W[, C]), got shape {images.shape}"
        )
    integers = np.issubdtype(images.dtype, np.integer)
    high = 255 if integers else 1
    if not np.all((images >= 0) & (images <= high)):  # NaN fails both comparisons
        kind = (
            "integer images must lie in 0-255" if integers else "float images must lie in [0, 1] with no NaN"
        )
        raise DataError(f"{what}: {kind}, got values from {np.min(images)} to {np.max(images)}")
    images = images.astype("uint8" if integers else "float32")
    return images, labels.astype("int64").reshape(-1)
