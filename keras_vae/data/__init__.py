"""Where images come from: tensorflow-datasets, a folder of image files, IDX files or a .npz, all streamed
through one tf.data pipeline (stream.py) as float32 batches in [0, 1]."""

from __future__ import annotations

from pathlib import Path

from keras_vae.data.arrays import is_idx_folder, load_idx, load_idx_split, load_npz, read_idx
from keras_vae.data.folders import has_images, load_folder
from keras_vae.data.stream import UNLABELLED, DataError, Dataset, ImageOptions, Split
from keras_vae.data.tfds import SAMPLE, can_download, default_source, load_tfds

__all__ = [
    "SAMPLE",
    "UNLABELLED",
    "Dataset",
    "DataError",
    "ImageOptions",
    "Split",
    "can_download",
    "default_source",
    "load_dataset",
    "load_idx_split",
    "read_idx",
]


def load_dataset(
    name: str = "mnist",
    data_dir: str | Path | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    options: ImageOptions = ImageOptions(),
) -> Dataset:
    """A data set from local files (data_dir) or tensorflow-datasets (name), split into train and validation.

    The validation split is the data set's test split when there is one; otherwise a seeded random
    val_fraction of the training images is held out (for tensorflow-datasets, the first val_fraction).
    """
    if data_dir is None:
        return load_tfds(name, options, val_fraction)
    path = Path(data_dir)
    if not path.exists():
        raise DataError(
            f"--data-dir {path} does not exist: give a folder of images or IDX files, or a .npz file"
        )
    if path.is_file():
        return load_npz(path, options, val_fraction, seed)
    if is_idx_folder(path):
        return load_idx(path, options, val_fraction, seed)
    npz_files = sorted(path.glob("*.npz"))
    if len(npz_files) == 1:
        return load_npz(npz_files[0], options, val_fraction, seed)
    if has_images(path):
        return load_folder(path, options, val_fraction, seed)
    raise DataError(
        "no images (PNG, JPEG, BMP, GIF), no *-images-idx3-ubyte[.gz] files and no single .npz file in "
        f"{path}"
    )
