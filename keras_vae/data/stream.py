"""One streamed tf.data pipeline for every source: elements (image, label) in, float32 batches in [0, 1] out.

A source gives each split as a `Split`: how many elements it has and a function that makes its tf.data
stream of (image HWC, label) elements, shuffled each iteration when given a seed. What is common to all
sources (channels, crop, resize, scaling to [0, 1], batching, prefetch) happens here, in parallel, one
element at a time, so no split is ever held in memory as float32. Keras 3 takes a tf.data.Dataset on
every backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from keras_vae.errors import ConfigError, KerasVAEError

UNLABELLED = -1
"""The label of every element of a data set without labels."""


class DataError(KerasVAEError):
    """A data file is missing, unreadable or not what it claims to be."""


@dataclass(frozen=True)
class ImageOptions:
    """How images are shaped on their way in (train's --image-size, --crop and --channels); None keeps
    them."""

    size: tuple[int, int] | None = None
    crop: bool = False
    channels: int | None = None

    def __post_init__(self) -> None:
        if self.size is not None and (len(self.size) != 2 or min(self.size) < 1):
            raise ConfigError(
                f"image_size must be a height and a width, both >= 1, got {self.size}", "image_size"
            )
        if self.channels not in (None, 1, 3):
            raise ConfigError(f"channels must be 1 or 3, got {self.channels}", "channels")

    def shape(self, height: int | None, width: int | None, channels: int, what: str) -> tuple[int, int, int]:
        """The shape images of this native size come out as; height and width are None when they vary."""
        channels = self.channels or (1 if channels <= 2 else 3)
        if self.size is not None:
            return (*self.size, channels)
        if height is None or width is None:
            raise DataError(
                f"{what} holds images of different sizes: give --image-size H W to resize them to one"
            )
        side = min(height, width)
        return (side, side, channels) if self.crop else (height, width, channels)


@dataclass
class Split:
    """One split as a stream: `elements(seed, shard)` makes a tf.data.Dataset of (image HWC, int64 label), in
    a fixed order when seed is None, else reshuffled each iteration; `count` elements in all. With shard
    (index, count), one process's part: every count-th element of that order from index, taken before an
    image is decoded (a folder's files, arrays in memory), or where the source reads records of its own
    (tensorflow-datasets), the index-th of count equal parts of its records, shuffled within itself."""

    count: int
    elements: Callable[[int | None, tuple[int, int]], object]
    labels: Callable[[], np.ndarray] | None = None
    """Every element's label in the fixed order, read without decoding an image, where the source can."""

    def all_labels(self) -> np.ndarray:
        """Every element's label in the fixed order: as the source reads them, else off the stream."""
        if self.labels is not None:
            return np.asarray(self.labels(), "int64")
        labels = self.elements(None).map(lambda image, label: label).batch(4096).as_numpy_iterator()
        return np.concatenate([np.zeros(0, "int64"), *labels]).astype("int64")


@dataclass
class Dataset:
    """Train and validation splits of one source, the shape their images come out as, and their class
    names."""

    train: Split
    val: Split
    source: str
    input_shape: tuple[int, int, int]
    class_names: list[str] | None = None
    labelled: bool = True
    crop: bool = False
    skipped: list[str] = field(default_factory=list)
    """Files left out because they could not be read as images."""
    label_count: int | None = None
    """For labels without class names: how many classes they number (the highest label + 1)."""

    @property
    def classes(self) -> int:
        """How many classes the labels tell apart; 0 without labels."""
        if not self.labelled:
            return 0
        return len(self.class_names) if self.class_names else self.label_count or 0

    def stream(
        self,
        split: str,
        batch_size: int,
        seed: int | None = None,
        shard: tuple[int, int] = (0, 1),
        classes: int = 0,
    ):
        """Batches of images (float32 NHWC in [0, 1]) of one split, decoded in parallel and prefetched;
        shuffled each epoch when given a seed. This is what model.fit takes. With shard (index, count), this
        process's part of every batch: its every count-th image, batch_size // count of them. With classes,
        each batch is a conditional model's input: (images, labels one-hot over that many classes)."""
        import tensorflow as tf

        pairs = self.prepared(split, seed, shard)
        if classes:
            inputs = pairs.map(lambda image, label: ((image, tf.one_hot(label, classes)),))
        else:
            inputs = pairs.map(lambda image, label: image)
        return inputs.batch(batch_size // shard[1]).prefetch(tf.data.AUTOTUNE)

    def batches(self, split: str, batch_size: int) -> Iterator[np.ndarray]:
        """The images of one split in order, as NumPy batches."""
        yield from self.stream(split, batch_size).as_numpy_iterator()

    def pairs(self, split: str, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The images of one split in order with their labels (UNLABELLED without labels), as NumPy
        batches."""
        yield from self.prepared(split, None).batch(batch_size).as_numpy_iterator()

    def take(self, split: str, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The first n images of a split in its fixed order (float32 in [0, 1]) and their labels (UNLABELLED
        without labels): for reading a split as it is stored; what keras-vae measures comes from sample."""
        images, labels = zip(*self.prepared(split, None).take(n).batch(256).as_numpy_iterator())
        return np.concatenate(images), np.concatenate(labels).astype("int64")

    def sample(self, split: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """A seeded random n images of a split (all of them, when it has no more), each class given its share
        where there are labels (stratified_indices), in random order: float32 in [0, 1], and their labels
        (UNLABELLED without labels). Every subset keras-vae measures or draws is one of these, never the
        split's first images, which a folder of class subfolders gives sorted by class."""
        chosen = stratified_indices(getattr(self, split).all_labels(), n, seed)
        in_order = np.sort(chosen)
        images, labels = zip(*self.prepared(split, None, only=in_order).batch(256).as_numpy_iterator())
        at = np.searchsorted(in_order, chosen)
        return np.concatenate(images)[at], np.concatenate(labels).astype("int64")[at]

    def prepared(
        self, split: str, seed: int | None, shard: tuple[int, int] = (0, 1), only: np.ndarray | None = None
    ):
        """(image, label) pairs of one split (of a shard: its every count-th element from index; with only,
        the elements at those sorted indices of the fixed order alone), each image made float32 of input_shape
        in parallel."""
        import tensorflow as tf

        prepare = preparer(self.input_shape, self.crop)
        elements = getattr(self, split).elements(seed, shard)
        if only is not None:
            wanted = np.zeros(getattr(self, split).count, bool)
            wanted[only] = True
            keep = tf.constant(wanted)
            elements = elements.enumerate().filter(lambda index, pair: keep[index])
            elements = elements.map(lambda index, pair: pair)
        return elements.map(lambda image, label: (prepare(image), label), num_parallel_calls=tf.data.AUTOTUNE)


def preparer(shape: tuple[int, int, int], crop: bool) -> Callable:
    """A tf function from one image (H, W, C): integers 0-255 or floats in [0, 1], any size, 1 to 4 channels)
    to float32 of shape in [0, 1]: channels converted (alpha dropped), with crop cut around its centre to the
    aspect ratio of shape, then resized with antialiasing."""
    import keras
    import tensorflow as tf

    height, width, channels = shape
    resize = keras.layers.Resizing(height, width, crop_to_aspect_ratio=crop, antialias=True, dtype="float32")

    def prepare(image):
        scale = 1 / 255 if image.dtype.is_integer else 1.0
        image = to_channels(tf.cast(image, tf.float32) * scale, channels)
        if tuple(image.shape[:2]) != (height, width):
            fits = tf.reduce_all(tf.shape(image)[:2] == (height, width))
            image = tf.cond(fits, lambda: image, lambda: tf.clip_by_value(resize(image), 0.0, 1.0))
        return tf.ensure_shape(image, shape)

    return prepare


def to_channels(image, channels: int):
    """An image of 1 to 4 channels (the last dimension, known statically) as grey (1) or RGB (3)."""
    import tensorflow as tf

    have = image.shape[-1]
    if have == channels:
        return image
    if channels == 1:
        return image[..., :1] if have == 2 else tf.image.rgb_to_grayscale(image[..., :3])
    return tf.image.grayscale_to_rgb(image[..., :1]) if have <= 2 else image[..., :3]


def stratified_indices(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n indices of labels drawn at random without replacement (all of them when n is as many or more), in
    random order; where there are labels, each class gets its share of n by largest remainders, so a subset of
    a split sorted by class holds every class as the split does."""
    rng = np.random.default_rng(seed)
    if n >= len(labels):
        return rng.permutation(len(labels))
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) == 1:
        return rng.choice(len(labels), n, replace=False)
    quotas = counts * n / len(labels)
    shares = np.floor(quotas).astype("int64")
    shares[np.argsort(shares - quotas, kind="stable")[: n - shares.sum()]] += 1
    picked = [
        rng.choice(np.flatnonzero(labels == label), share, replace=False)
        for label, share in zip(classes, shares)
    ]
    return rng.permutation(np.concatenate(picked))


def hold_out(count: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a seeded random fraction of count elements held out for validation, and of the rest."""
    n_val = max(1, round(count * fraction))
    if not 0 < fraction < 1 or n_val >= count:
        raise DataError(
            f"val_fraction {fraction} must lie in (0, 1) and leave training images ({count} in all)"
        )
    order = np.random.default_rng(seed).permutation(count)
    return order[n_val:], order[:n_val]
