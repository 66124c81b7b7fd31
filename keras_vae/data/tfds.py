"""Any tensorflow-datasets set with an image feature, labelled or not, streamed from its prepared files.

Offline, tensorflow-datasets retries a download for minutes; a socket probe of its download host first
turns that into one line at once.
"""

from __future__ import annotations

import logging
import socket
from contextlib import contextmanager
from pathlib import Path

from keras_vae.data.stream import UNLABELLED, DataError, Dataset, ImageOptions, Split

DOWNLOAD_HOST = ("storage.googleapis.com", 443)
SAMPLE = Path(__file__).resolve().parents[1] / "sample" / "mnist"
"""The MNIST test set bundled with the package (keras_vae/sample/README.md): train's data when
tensorflow-datasets has no MNIST and cannot download it."""
SHUFFLE_BYTES = 256 * 2**20
"""Decoded images a training stream's shuffle buffer holds at most (and at least 1,000 images)."""
UNKNOWN_IMAGE_BYTES = 512 * 512 * 3
"""What one image is taken to weigh when the data set's images have no fixed size."""


def builder(name: str):
    """The tensorflow-datasets builder of a data set with an image feature."""
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise DataError(
            f"tensorflow-datasets is not installed ({error}): pip install tensorflow-datasets, or use "
            "--data-dir"
        ) from error
    try:
        with absl_warnings_off():
            found = tfds.builder(name)
    except tfds.core.registered.DatasetNotFoundError as error:
        raise DataError(
            f"unknown dataset {name!r}: give a tensorflow-datasets image data set such as mnist, "
            "fashion_mnist, cifar10 or celeb_a"
        ) from error
    if image_feature(found) is None:
        raise DataError(f"dataset {name!r} has no image feature: give a tensorflow-datasets image data set")
    return found


@contextmanager
def absl_warnings_off():
    """tensorflow-datasets' absl warnings kept off stderr: a builder warns that the data folder it has just
    made for a data set not yet downloaded "has no dataset_info.json"."""
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def image_feature(found) -> str | None:
    """The name of the data set's image feature: 'image' when there is one, else the first."""
    import tensorflow_datasets as tfds

    images = [
        name for name, feature in found.info.features.items() if isinstance(feature, tfds.features.Image)
    ]
    return "image" if "image" in images else next(iter(images), None)


def label_feature(found) -> str | None:
    """The data set's class label feature, 'label', when it has one."""
    import tensorflow_datasets as tfds

    features = found.info.features
    return (
        "label" if "label" in features and isinstance(features["label"], tfds.features.ClassLabel) else None
    )


def can_download(timeout: float = 5.0) -> bool:
    """Whether tensorflow-datasets' download host answers: offline, tfds retries for minutes before it gives
    up."""
    try:
        socket.create_connection(DOWNLOAD_HOST, timeout=timeout).close()
    except OSError:
        return False
    return True


def default_source(dataset: str, data_dir: str | Path | None) -> tuple[str | Path | None, str | None]:
    """Where train's data comes from: as given, except that MNIST which tensorflow-datasets neither has nor
    can download becomes the bundled sample (SAMPLE), with a line that says so."""
    if data_dir is not None or dataset != "mnist":
        return data_dir, None
    try:
        with absl_warnings_off():
            if builder(dataset).is_prepared() or can_download():
                return None, None
    except DataError:  # no tensorflow-datasets
        pass
    return (
        SAMPLE,
        "tensorflow-datasets has no MNIST here and cannot download it: training on the MNIST test set "
        "bundled with keras-vae (10,000 images)",
    )


def prepare(found) -> None:
    """Download and prepare the data set unless it is already, in one line on failure."""
    import tensorflow_datasets as tfds

    if found.is_prepared():
        return
    if not can_download():
        raise DataError(
            f"tensorflow-datasets could not download {found.name!r}: no network ({DOWNLOAD_HOST[0]} does "
            "not answer); "
            "use --data-dir with local images, IDX or .npz files"
        )
    try:
        tfds.display_progress_bar(False)
        found.download_and_prepare()
    except Exception as error:  # tfds raises many kinds: requests, urllib, gcs, missing modules
        raise DataError(
            f"tensorflow-datasets could not download {found.name!r} ({type(error).__name__}); offline? "
            "use --data-dir with local images, IDX or .npz files"
        ) from error


def load_tfds(name: str, options: ImageOptions, val_fraction: float) -> Dataset:
    """A tensorflow-datasets set: its train split, and its test (else validation) split for validation, else
    the first val_fraction of train held out (tensorflow-datasets' split slicing)."""
    found = builder(name)
    prepare(found)
    image, label = image_feature(found), label_feature(found)
    splits = found.info.splits
    held = next((split for split in ("test", "validation") if split in splits), None)
    train, val = "train", held
    if held is None:
        n_val = round(count(found, "train") * val_fraction)
        if not 0 < val_fraction < 1 or n_val < 1:
            raise DataError(
                f"val_fraction {val_fraction} must lie in (0, 1) and hold out at least one image of {name!r}"
            )
        train, val = f"train[{n_val}:]", f"train[:{n_val}]"
    height, width, channels = found.info.features[image].shape
    shape = options.shape(height, width, channels, f"tensorflow-datasets:{name}")
    buffer = SHUFFLE_BYTES // (height * width * channels if height and width else UNKNOWN_IMAGE_BYTES)
    names = list(found.info.features[label].names) if label else None
    return Dataset(
        tfds_split(found, train, image, label, buffer),
        tfds_split(found, val, image, label, buffer),
        f"tensorflow-datasets:{name}",
        shape,
        names,
        labelled=label is not None,
        crop=options.crop,
    )


def count(found, split: str) -> int:
    return int(found.as_dataset(split=split).cardinality())


def tfds_split(found, split: str, image: str, label: str | None, buffer: int) -> Split:
    """One split of a tfds set as (image, label) pairs; a shuffled stream shuffles its files, then up to
    buffer decoded images (at least 1,000)."""

    def elements(seed: int | None, shard: tuple[int, int] = (0, 1)):
        """The pairs; of a shard (index, count), only the index-th of count equal parts of the split's records
        (tensorflow-datasets' even_splits), which is all a process reads, shuffled within itself."""
        import tensorflow as tf
        import tensorflow_datasets as tfds

        part = split if shard[1] == 1 else tfds.even_splits(split, n=shard[1], drop_remainder=True)[shard[0]]
        examples = found.as_dataset(
            split=part, shuffle_files=seed is not None, read_config=tfds.ReadConfig(shuffle_seed=seed)
        )
        pairs = examples.map(
            lambda example: (example[image], example[label] if label else tf.constant(UNLABELLED, tf.int64))
        )
        if seed is not None:
            pairs = pairs.shuffle(min(size, max(1000, buffer)), seed, reshuffle_each_iteration=True)
        return pairs

    size = count(found, split)
    return Split(size, elements)
