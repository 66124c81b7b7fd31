"""A folder of image files (PNG, JPEG, BMP, GIF's first frame), flat or with one subfolder per class,
streamed from disk: files are read and decoded by tf.data in parallel, a batch at a time.

Damaged files are skipped: one decoding pass over the folder before training finds every file that
cannot be read as an image, leaves it out, and the caller says how many (Dataset.skipped). Before it, each
file's size and the pixels its header declares are checked against MAX_FILE_BYTES and MAX_PIXELS, so a file
that would take gigabytes to decode (a "decompression bomb") is skipped the same way, never decoded. The
decoding pass finds the images' sizes and channels, so the defaults keep images as they are when they share
one size, and otherwise ask for --image-size. File names may be in any encoding: tf.data is given their bytes.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from keras_vae.data.stream import UNLABELLED, DataError, Dataset, ImageOptions, Split, hold_out, to_channels

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
SCAN_BATCH = 1024
MAX_FILE_BYTES = 64 << 20
MAX_PIXELS = 1 << 25
"""The largest image file read, and the most pixels an image may declare (32 M: 5,792 x 5,792)."""


def has_images(folder: Path) -> bool:
    return any(is_image(path) for path in folder.rglob("*"))


def is_image(path: Path) -> bool:
    return path.suffix.lower() in EXTENSIONS and path.is_file()


def list_images(folder: Path) -> tuple[list[str], np.ndarray, list[str] | None]:
    """The image files of a folder in a fixed order, their labels and the class names: the subfolders' names
    (sorted) when every image lies in one, none when every image lies at the top."""
    top = sorted(path for path in folder.iterdir() if is_image(path))
    classes = sorted(
        path.name for path in folder.iterdir() if path.is_dir() and not path.name.startswith(".")
    )
    nested = [sorted(path for path in (folder / name).rglob("*") if is_image(path)) for name in classes]
    if top and any(nested):
        raise DataError(
            f"{folder} has images both at its top and in subfolders: put every image in a subfolder named "
            "for "
            "its class, or all of them at the top"
        )
    if top:
        return [str(path) for path in top], np.full(len(top), UNLABELLED, "int64"), None
    kept = [(name, paths) for name, paths in zip(classes, nested) if paths]
    paths = [str(path) for _, paths in kept for path in paths]
    labels = np.concatenate([np.full(len(paths), label, "int64") for label, (_, paths) in enumerate(kept)])
    return paths, labels, [printable(name) for name, _ in kept]


def printable(name: str) -> str:
    """A file name as text that prints and writes to JSON: bytes that are not UTF-8 shown as \\xNN."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def within_bounds(path: str) -> bool:
    """Whether a file is at most MAX_FILE_BYTES and its header declares at most MAX_PIXELS pixels (Pillow
    reads the header alone); a file Pillow cannot open is left to the decoding pass."""
    from PIL import Image, UnidentifiedImageError

    if os.stat(path).st_size > MAX_FILE_BYTES:
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
    except Image.DecompressionBombError:
        return False
    except (UnidentifiedImageError, OSError, ValueError):
        return True
    return width * height <= MAX_PIXELS


def scan(paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Decode every file within bounds once, in parallel: which can be read as images, and the (height, width,
    channels) of each that can (zeros for the others)."""
    import tensorflow as tf

    def shape(index, path):
        return index, tf.shape(tf.io.decode_image(tf.io.read_file(path), expand_animations=False))

    bounded = np.flatnonzero([within_bounds(path) for path in paths])
    files = tf.data.Dataset.from_tensor_slices((bounded, as_bytes([paths[i] for i in bounded])))
    decoded = files.map(shape, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors()
    shapes = np.zeros((len(paths), 3), "int64")
    for indices, found in decoded.batch(SCAN_BATCH).as_numpy_iterator():
        shapes[indices] = found
    return shapes.any(axis=1), shapes


def as_bytes(paths: list[str]) -> np.ndarray:
    """File names as tf.data takes them whatever their encoding (a str holding undecodable bytes is not
    UTF-8)."""
    return np.array([os.fsencode(path) for path in paths], dtype=object)


def load_folder(folder: Path, options: ImageOptions, val_fraction: float, seed: int) -> Dataset:
    """Every image under folder, a seeded val_fraction of them held out for validation."""
    paths, labels, class_names = list_images(folder)
    readable, shapes = scan(paths)
    skipped = [printable(path) for path, ok in zip(paths, readable) if not ok]
    if len(skipped) == len(paths):
        raise DataError(
            f"none of the {len(paths)} image files in {printable(str(folder))} can be read as an image of "
            "at most "
            f"{MAX_PIXELS:,} pixels and {MAX_FILE_BYTES >> 20} MiB, e.g. {skipped[0]}"
        )
    paths, labels, shapes = (
        [path for path, ok in zip(paths, readable) if ok],
        labels[readable],
        shapes[readable],
    )
    sizes = {(int(height), int(width)) for height, width in shapes[:, :2]}
    height, width = sizes.pop() if len(sizes) == 1 else (None, None)
    input_shape = options.shape(height, width, int(shapes[:, 2].max()), str(folder))
    train, val = hold_out(len(paths), val_fraction, seed)
    return Dataset(
        file_split(paths, labels, train, input_shape[2]),
        file_split(paths, labels, val, input_shape[2]),
        f"images:{folder}",
        input_shape,
        class_names,
        labelled=class_names is not None,
        crop=options.crop,
        skipped=skipped,
    )


def file_split(paths: list[str], labels: np.ndarray, indices: np.ndarray, channels: int) -> Split:
    """Some of the files as a split; a shuffled stream reshuffles the names, then decodes in parallel."""
    order = np.sort(indices)
    names, labels = [paths[i] for i in order], labels[order]

    def elements(seed: int | None, shard: tuple[int, int] = (0, 1)):
        import tensorflow as tf

        files = tf.data.Dataset.from_tensor_slices((as_bytes(names), labels))
        if seed is not None:
            files = files.shuffle(len(names), seed, reshuffle_each_iteration=True)
        return files.shard(shard[1], shard[0]).map(
            lambda path, label: (decode(path, channels), label), num_parallel_calls=tf.data.AUTOTUNE
        )

    return Split(len(names), elements, lambda: labels)


def decode(path, channels: int):
    """One file as a float32 image in [0, 1] of channels (1 or 3) channels, whatever its format and its own
    channels (grey, grey and alpha, RGB, RGBA); a GIF's first frame."""
    import tensorflow as tf

    image = tf.cast(tf.io.decode_image(tf.io.read_file(path), expand_animations=False), tf.float32) / 255
    grey, colour = (
        tf.ensure_shape(image[..., :1], (None, None, 1)),
        tf.ensure_shape(image[..., :3], (None, None, 3)),
    )
    return tf.cond(
        tf.shape(image)[-1] <= 2, lambda: to_channels(grey, channels), lambda: to_channels(colour, channels)
    )
