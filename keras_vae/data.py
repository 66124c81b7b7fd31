"""Image data as float32 NHWC arrays in [0, 1]: from tensorflow-datasets, IDX folders or .npz files."""

from __future__ import annotations

import gzip
import math
import os
import socket
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keras_vae.errors import KerasVAEError
from keras_vae.files import MB, check_regular, megabytes

# IDX type codes (the third byte of the magic number) and their big-endian dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


SAMPLE = Path(__file__).resolve().parent / "sample" / "mnist"
"""The MNIST test set bundled with the package (keras_vae/sample/README.md): train's data when tensorflow-datasets
has no MNIST and cannot download it."""
DOWNLOAD_HOST = ("storage.googleapis.com", 443)


class DataError(KerasVAEError):
    """A data file is missing, unreadable or not what it claims to be."""


def memory_bytes() -> int:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_fits(values: int, what: str) -> None:
    """Refuse, before anything is allocated, data that as float32 would not fit in this machine's memory."""
    if values * 4 > memory_bytes():
        raise DataError(f"{what}: {megabytes(values * 4)} as float32, more than this machine's {megabytes(memory_bytes())} of memory")


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
        raise DataError(f"{path} holds {len(raw)}{'+' if len(raw) > size else ''} data bytes, its header promises shape {shape}")
    return np.frombuffer(raw, dtype).reshape(shape)


def load_idx_split(folder: str | Path, split: str = "t10k") -> tuple[np.ndarray, np.ndarray]:
    """Images (N, H, W, 1) float32 in [0, 1] and labels (N,) int64 of one split in an IDX folder."""
    folder = Path(folder)
    images_path = _find(folder, f"{split}-images-idx3-ubyte")
    labels_path = _find(folder, f"{split}-labels-idx1-ubyte")
    return _as_images(read_idx(images_path), read_idx(labels_path), f"{images_path} and {labels_path}")


def _find(folder: Path, stem: str) -> Path:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    raise DataError(f"no {stem}[.gz] in {folder}")


@dataclass
class Dataset:
    """Train and validation images with their labels, and where they came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    source: str
    class_names: list[str] | None = None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.x_train.shape[1:])


def load_dataset(name: str = "mnist", data_dir: str | Path | None = None, val_fraction: float = 0.1, seed: int = 0) -> Dataset:
    """A data set from local files (data_dir) or tensorflow-datasets (name), split into train and validation.

    The validation split is the data set's test split when there is one; otherwise a seeded
    random val_fraction of the training images is held out.
    """
    if data_dir is not None:
        train, val, source, class_names = _from_files(Path(data_dir))
    else:
        train, val, class_names = _from_tfds(name)
        source = f"tensorflow-datasets:{name}"
    if val is None:
        train, val = _hold_out(*train, val_fraction, seed)
    if train[0].shape[1:] != val[0].shape[1:]:
        raise DataError(f"{source}: validation images are {val[0].shape[1:]}, training images {train[0].shape[1:]}: both need one size")
    return Dataset(*train, *val, source=source, class_names=class_names)


def _from_files(path: Path):
    if not path.exists():
        raise DataError(f"--data-dir {path} does not exist: give a folder of IDX files or a .npz file")
    if path.is_file():
        return _from_npz(path)
    npz_files = sorted(path.glob("*.npz"))
    if not any(path.glob("*-images-idx3-ubyte*")) and len(npz_files) == 1:
        return _from_npz(npz_files[0])
    splits = [split for split in ("train", "t10k") if any(path.glob(f"{split}-images-idx3-ubyte*"))]
    if not splits:
        raise DataError(f"no *-images-idx3-ubyte[.gz] files and no single .npz file in {path}")
    train = load_idx_split(path, splits[0])
    val = load_idx_split(path, "t10k") if splits == ["train", "t10k"] else None
    return train, val, f"idx:{path}", read_class_names(path / "classes.txt", train[1])


def read_class_names(path: Path, labels: np.ndarray) -> list[str] | None:
    """classes.txt beside IDX files: one class name a line, in label order; None without the file."""
    if not path.exists():
        return None
    check_regular(path, MB, "classes.txt")
    return check_class_names([line.strip() for line in path.read_text().splitlines() if line.strip()], labels, str(path))


def check_class_names(names: list[str], labels: np.ndarray, what: str) -> list[str]:
    if not names or labels.max(initial=0) >= len(names):
        raise DataError(f"{what} names {len(names)} classes, but the labels go up to {labels.max(initial=0)}: give one name per class, in label order")
    return names


def _from_npz(path: Path):
    """A keras.datasets-style .npz: x_train and y_train, optionally x_test, y_test and class_names (strings, in
    label order). The arrays' headers are checked (kinds, shapes, memory) before any array is loaded."""
    check_regular(path, memory_bytes(), "data file")
    headers = npz_headers(path)
    if not {"x_train", "y_train"} <= set(headers):
        raise DataError(f"{path} must hold arrays x_train and y_train (and optionally x_test, y_test); it has {sorted(headers)}")
    check_npz_headers(path, headers)
    try:
        with np.load(path, allow_pickle=False) as arrays:
            arrays = {key: arrays[key] for key in arrays.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, KeyError, NotImplementedError) as error:
        # np.load parses a zip of .npy headers: damaged bytes raise any of these
        raise DataError(f"cannot read {path} as .npz: {type(error).__name__}: {error}".splitlines()[0]) from error
    train = _as_images(arrays["x_train"], arrays["y_train"], f"{path} x_train and y_train")
    has_test = {"x_test", "y_test"} <= set(arrays)
    val = _as_images(arrays["x_test"], arrays["y_test"], f"{path} x_test and y_test") if has_test else None
    names = [str(name) for name in arrays["class_names"].reshape(-1)] if "class_names" in arrays else None
    return train, val, f"npz:{path}", names and check_class_names(names, train[1], f"{path} class_names")


def npz_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """The shape and dtype of every array in a .npz, from the .npy headers inside, without loading an array."""
    with open(path, "rb") as f:
        if f.read(6) == b"\x93NUMPY":
            raise DataError(f"{path} is a .npy file (one array), not a .npz: save with np.savez(path, x_train=..., y_train=...)")
    headers = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                with archive.open(name) as member:
                    version = np.lib.format.read_magic(member)
                    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                    shape, _, dtype = read(member)
                headers[name.removesuffix(".npy")] = (shape, dtype)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, KeyError, NotImplementedError, SyntaxError) as error:
        raise DataError(f"cannot read {path} as .npz: {type(error).__name__}: {error}".splitlines()[0]) from error
    return headers


def check_npz_headers(path: Path, headers: dict) -> None:
    """Numbers only; labels one per image; test images of the training images' size; all of it fitting in memory."""
    for name, (shape, dtype) in headers.items():
        if name in ("x_train", "y_train", "x_test", "y_test") and dtype.kind not in "biuf":
            raise DataError(f"{path}: {name} holds {dtype} values; images and labels must be numbers")
        if name == "class_names" and dtype.kind not in "US":
            raise DataError(f"{path}: class_names holds {dtype} values; give the names as strings")
    for name in ("y_train", "y_test"):
        shape = headers.get(name, ((0,), None))[0]
        if len(shape) != 1 and not (len(shape) == 2 and shape[1] == 1):
            raise DataError(f"{path}: {name} has shape {shape}; labels must be one class number per image, shape (N,)")
    if "x_test" in headers and headers["x_test"][0][1:] != headers["x_train"][0][1:]:
        raise DataError(
            f"{path}: x_test images are {headers['x_test'][0][1:]}, x_train's {headers['x_train'][0][1:]}: "
            "both splits need images of one size"
        )
    shapes = [headers[name][0] for name in ("x_train", "x_test") if name in headers]
    check_fits(sum(math.prod(shape) for shape in shapes), f"{path} claims images of shapes {shapes}")


def _tfds_builder(name: str):
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise DataError(f"tensorflow-datasets is not installed ({error}): pip install tensorflow-datasets, or use --data-dir") from error
    try:
        builder = tfds.builder(name)
    except tfds.core.registered.DatasetNotFoundError as error:
        raise DataError(f"unknown dataset {name!r}: give a tensorflow-datasets image data set such as mnist, fashion_mnist, kmnist or cifar10") from error
    features = builder.info.features
    if "image" not in features or "label" not in features:
        raise DataError(f"dataset {name!r} is not an image classification data set (it has no image and label features)")
    return builder


def can_download(timeout: float = 5.0) -> bool:
    """Whether tensorflow-datasets' download host answers: offline, tfds retries for minutes before it gives up."""
    try:
        socket.create_connection(DOWNLOAD_HOST, timeout=timeout).close()
    except OSError:
        return False
    return True


def default_source(dataset: str, data_dir: str | Path | None) -> tuple[str | Path | None, str | None]:
    """Where train's data comes from: as given, except that MNIST which tensorflow-datasets neither has nor can
    download becomes the bundled sample (SAMPLE), with a line that says so."""
    if data_dir is not None or dataset != "mnist":
        return data_dir, None
    try:
        if _tfds_builder(dataset).is_prepared() or can_download():
            return None, None
    except DataError:  # no tensorflow-datasets
        pass
    return SAMPLE, "tensorflow-datasets has no MNIST here and cannot download it: training on the MNIST test set bundled with keras-vae (10,000 images)"


def _from_tfds(name: str):
    import tensorflow_datasets as tfds

    builder = _tfds_builder(name)
    if not builder.is_prepared():
        if not can_download():
            raise DataError(
                f"tensorflow-datasets could not download {name!r}: no network ({DOWNLOAD_HOST[0]} does not answer); "
                "use --data-dir with local IDX or .npz files"
            )
        try:
            tfds.display_progress_bar(False)
            builder.download_and_prepare()
        except Exception as error:  # tfds raises many kinds: requests, urllib, gcs, missing modules
            raise DataError(
                f"tensorflow-datasets could not download {name!r} ({type(error).__name__}); offline? "
                "use --data-dir with local IDX or .npz files"
            ) from error
    splits = builder.info.splits
    val_split = next((split for split in ("test", "validation") if split in splits), None)
    train = _tfds_split(builder, "train")
    val = _tfds_split(builder, val_split) if val_split else None
    return train, val, list(builder.info.features["label"].names)


def _tfds_split(builder, split: str) -> tuple[np.ndarray, np.ndarray]:
    """One whole split as NumPy arrays (batch_size=-1 crashes tensorflow-datasets' mock data)."""
    ds = builder.as_dataset(split=split, as_supervised=True)
    images, labels = ds.batch(1 << 30).get_single_element()
    return _as_images(images.numpy(), labels.numpy(), f"{builder.name}:{split}")


def _as_images(images: np.ndarray, labels: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W[, C]) integers 0-255 or floats in [0, 1] -> float32 NHWC in [0, 1]; labels int64."""
    if len(images) != len(labels):
        raise DataError(f"{what}: {len(images)} images but {len(labels)} labels")
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or len(images) == 0:
        raise DataError(f"{what}: expected a non-empty array of images (N, H, W[, C]), got shape {images.shape}")
    if np.issubdtype(images.dtype, np.integer):
        images = images / np.float32(255)
    images = images.astype("float32")
    if not np.all((images >= 0) & (images <= 1)):  # NaN fails both comparisons
        raise DataError(f"{what}: float images must lie in [0, 1] with no NaN, got values from {np.min(images)} to {np.max(images)}")
    return images, labels.astype("int64").reshape(-1)


def _hold_out(x: np.ndarray, y: np.ndarray, fraction: float, seed: int):
    """A seeded random fraction of the images as validation, the rest as training."""
    n_val = max(1, round(len(x) * fraction))
    if not 0 < fraction < 1 or n_val >= len(x):
        raise DataError(f"--val-fraction {fraction} must lie in (0, 1) and leave training images ({len(x)} in all)")
    order = np.random.default_rng(seed).permutation(len(x))
    return (x[order[n_val:]], y[order[n_val:]]), (x[order[:n_val]], y[order[:n_val]])
