"""Data sources and the stream: image folders the tests write, tensorflow-datasets' mock data with and without
labels, and the tf.data pipeline feeding fit on every backend."""

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import imageio.v2 as imageio
import keras
import numpy as np
import pytest
from test_train_cli import FAST, invoke
from typer.testing import CliRunner

import keras_vae
import keras_vae.data.tfds as source
from cli.main import app
from keras_vae.data import UNLABELLED, DataError, ImageOptions, load_dataset


def gradient(height: int, width: int, channels: int, shift: int = 0) -> np.ndarray:
    """A uint8 image whose every pixel differs from its neighbours, so crops and channel swaps show."""
    values = (np.arange(height * width * channels).reshape(height, width, channels) * 7 + shift) % 256
    return values.astype("uint8")


def write(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.imwrite(path, image.squeeze(-1) if image.shape[-1] == 1 else image)
    return path


def as_set(images: np.ndarray) -> list[bytes]:
    return sorted(np.round(image * 255).astype("uint8").tobytes() for image in images)


def test_class_subfolders_give_labels_and_names_and_the_pixels_survive(tmp_path):
    written = {
        name: [gradient(6, 5, 1, 40 * i + 10 * c) for i in range(5)] for c, name in enumerate(["cat", "dog"])
    }
    for name, images in written.items():
        for i, image in enumerate(images):
            write(tmp_path / name / f"{i}.png", image)
    data = load_dataset(data_dir=tmp_path, val_fraction=0.2)
    assert (data.train.count, data.val.count, data.input_shape) == (8, 2, (6, 5, 1))
    assert data.class_names == ["cat", "dog"] and data.labelled and data.source == f"images:{tmp_path}"
    (x_train, y_train), (x_val, y_val) = data.take("train", 8), data.take("val", 2)
    everything = np.concatenate([x_train, x_val])
    assert everything.dtype == np.float32 and as_set(everything) == as_set(
        np.stack(written["cat"] + written["dog"]) / 255
    )
    for images, labels in ((x_train, y_train), (x_val, y_val)):
        for image, label in zip(images, labels):
            assert image.tobytes() in {
                (i / np.float32(255)).astype("float32").tobytes() for i in written[data.class_names[label]]
            }


def test_a_flat_folder_of_every_format_is_unlabelled(tmp_path):
    for suffix in ("png", "bmp", "gif", "jpg"):
        write(tmp_path / f"picture.{suffix}", gradient(8, 8, 3))
    data = load_dataset(data_dir=tmp_path, val_fraction=0.25)
    assert (data.train.count + data.val.count, data.input_shape, data.labelled, data.class_names) == (
        4,
        (8, 8, 3),
        False,
        None,
    )
    images, labels = data.take("train", 3)
    assert images.shape == (3, 8, 8, 3) and (labels == UNLABELLED).all()


def test_images_of_different_sizes_need_an_image_size(tmp_path):
    write(tmp_path / "a.png", gradient(8, 8, 1))
    write(tmp_path / "b.png", gradient(10, 6, 3))
    with pytest.raises(DataError, match="holds images of different sizes: give --image-size H W"):
        load_dataset(data_dir=tmp_path, val_fraction=0.5)
    data = load_dataset(data_dir=tmp_path, val_fraction=0.5, options=ImageOptions(size=(4, 5)))
    assert data.input_shape == (4, 5, 3), "grey and RGB together come out RGB"
    images = np.concatenate([data.take("train", 1)[0], data.take("val", 1)[0]])
    assert images.shape == (2, 4, 5, 3) and 0 <= images.min() and images.max() <= 1


def test_crop_center_cuts_a_tall_image_square_around_its_middle(tmp_path):
    tall = gradient(12, 8, 3)
    write(tmp_path / "a.png", tall)
    write(tmp_path / "b.png", tall)
    data = load_dataset(data_dir=tmp_path, val_fraction=0.5, options=ImageOptions(crop=True))
    assert data.input_shape == (8, 8, 3)
    np.testing.assert_allclose(data.take("val", 1)[0][0], tall[2:10] / 255, atol=1e-6)


def test_channels_convert_grey_to_rgb_and_rgb_to_grey(tmp_path):
    colour = gradient(4, 4, 3)
    write(tmp_path / "rgb" / "a.png", colour)
    write(tmp_path / "rgb" / "b.png", colour)
    grey = load_dataset(data_dir=tmp_path / "rgb", val_fraction=0.5, options=ImageOptions(channels=1)).take(
        "val", 1
    )[0][0]
    np.testing.assert_allclose(grey[..., 0], colour @ np.array([0.2989, 0.587, 0.114]) / 255, atol=1e-3)
    write(tmp_path / "grey" / "a.png", colour[..., :1])
    write(tmp_path / "grey" / "b.png", colour[..., :1])
    rgb = load_dataset(data_dir=tmp_path / "grey", val_fraction=0.5, options=ImageOptions(channels=3)).take(
        "val", 1
    )[0][0]
    assert rgb.shape == (4, 4, 3) and (rgb == rgb[..., :1]).all()
    with_alpha = np.concatenate(
        [colour[..., :1], np.full((4, 4, 1), 128, "uint8")], -1
    )  # grey and alpha (PNG's LA)
    write(tmp_path / "la" / "a.png", with_alpha)
    write(tmp_path / "la" / "b.png", with_alpha)
    grey = load_dataset(data_dir=tmp_path / "la", val_fraction=0.5, options=ImageOptions(channels=1)).take(
        "val", 1
    )[0][0]
    np.testing.assert_allclose(grey[..., 0], colour[..., 0] / 255, atol=1e-6)


def test_damaged_images_are_skipped_counted_and_listed(tmp_path):
    for i in range(30):
        write(tmp_path / "photos" / f"{i:02d}.png", gradient(8, 8, 1, i))
    (tmp_path / "photos" / "garbage.png").write_bytes(b"not an image at all")
    (tmp_path / "photos" / "truncated.png").write_bytes((tmp_path / "photos" / "00.png").read_bytes()[:60])
    (tmp_path / "photos" / "notes.txt").write_text("not an image file, so not counted")
    result = invoke(
        "--data-dir",
        tmp_path / "photos",
        "--epochs",
        1,
        "--name",
        "p",
        "--output-dir",
        tmp_path / "runs",
        *FAST,
    )
    assert result.exit_code == 0, result.output
    assert (
        result.stdout.count("Skipped 2 of 32 image files that cannot be read as images or are too large") == 2
    ), "before training and at the end"
    data = json.loads((tmp_path / "runs" / "p" / "config.json").read_text())["data"]
    assert data["skipped_files"] == 2 and sorted(Path(p).name for p in data["skipped_examples"]) == [
        "garbage.png",
        "truncated.png",
    ]
    assert data["train_images"] + data["val_images"] == 30 and not data["labelled"]


def test_bad_folders_are_one_line(tmp_path):
    write(tmp_path / "mixed" / "top.png", gradient(4, 4, 1))
    write(tmp_path / "mixed" / "cls" / "a.png", gradient(4, 4, 1))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "a.png").write_bytes(b"garbage")
    (tmp_path / "empty").mkdir()
    for folder, message in (
        ("mixed", "has images both at its top and in subfolders"),
        ("broken", "none of the 1 image files"),
        ("empty", "no images (PNG, JPEG, BMP, GIF)"),
    ):
        result = invoke("--data-dir", tmp_path / folder, "--output-dir", tmp_path / "runs")
        assert result.exit_code == 2 and result.stderr.count("\n") == 1 and message in result.stderr, (
            result.output
        )
    assert all(path.name.endswith(".lock") for path in (tmp_path / "runs").iterdir()), "no run folder"


@pytest.mark.parametrize(
    "size, expected", [(["12"], [12, 12]), (["12", "10"], [12, 10]), (["--image-size=9"], [9, 9])]
)
def test_image_size_takes_one_number_or_two(tmp_path, size, expected):
    for i in range(4):
        write(tmp_path / "faces" / f"{i}.png", gradient(20, 16, 3, i))
    option = size if size[0].startswith("--") else ["--image-size", *size]
    result = invoke(
        "--data-dir",
        tmp_path / "faces",
        *option,
        "--crop",
        "center",
        "--epochs",
        1,
        "--name",
        "f",
        "--output-dir",
        tmp_path,
        *FAST,
    )
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "f" / "config.json").read_text())
    assert config["data"]["input_shape"] == [*expected, 3] and config["options"]["image_size"] == expected
    assert config["options"]["crop"] == "center"


def test_a_tfds_set_without_labels_trains_and_draws_uncoloured(tmp_path, monkeypatch):
    """celeb_a has an image feature but no label: mock data stands in for the download."""
    tfds = pytest.importorskip("tensorflow_datasets")
    monkeypatch.setattr("keras_vae.data.tfds.can_download", lambda: True)
    with tfds.testing.mock_data(num_examples=16):
        result = invoke(
            "--dataset",
            "celeb_a",
            "--image-size",
            12,
            "--crop",
            "center",
            "--epochs",
            1,
            "--name",
            "c",
            "--output-dir",
            tmp_path,
            *FAST,
        )
        assert result.exit_code == 0, result.output
        data = json.loads((tmp_path / "c" / "config.json").read_text())["data"]
        assert data["input_shape"] == [12, 12, 3] and not data["labelled"] and data["class_names"] is None
        assert (data["train_images"], data["val_images"]) == (16, 16)
        explored = CliRunner().invoke(app, ["explore", str(tmp_path / "c")])
    assert explored.exit_code == 0, explored.output
    assert (tmp_path / "c" / "figures" / "latent.png").exists() and (
        tmp_path / "c" / "figures" / "interpolation.png"
    ).exists()


def test_a_tfds_set_with_labels_records_its_class_names(tmp_path, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    monkeypatch.setattr("keras_vae.data.tfds.can_download", lambda: True)
    with tfds.testing.mock_data(num_examples=12):
        data = load_dataset("svhn_cropped")
        images, labels = data.take("val", 12)
    assert (
        data.input_shape == (32, 32, 3)
        and data.labelled
        and data.class_names == [str(digit) for digit in range(10)]
    )
    assert images.shape == (12, 32, 32, 3) and ((0 <= labels) & (labels < 10)).all()


@pytest.mark.parametrize(
    "splits, held", [(("train", "validation"), "validation"), (("train", "validation", "test"), "test")]
)
def test_a_tfds_set_validates_on_its_test_split_else_its_validation_split(monkeypatch, splits, held):
    """Mock data has no split metadata, so each builder is given the splits of a data set that has them."""
    tfds = pytest.importorskip("tensorflow_datasets")
    asked, real = [], source.builder

    def with_splits(name):
        found = real(name)
        found.info.set_splits(
            tfds.core.SplitDict(
                [tfds.core.SplitInfo(name=split, shard_lengths=[5], num_bytes=0) for split in splits]
            )
        )
        read = found.as_dataset
        found.as_dataset = lambda split, **options: asked.append(split) or read(split=split, **options)
        return found

    monkeypatch.setattr(source, "builder", with_splits)
    monkeypatch.setattr(source, "can_download", lambda: True)
    with tfds.testing.mock_data(num_examples=5):
        data = load_dataset("imagenet_resized/8x8")
    assert set(asked) == {"train", held} and (data.train.count, data.val.count) == (5, 5)


def test_the_image_feature_is_the_one_named_image_else_the_first():
    tfds = pytest.importorskip("tensorflow_datasets")

    def found(**features):
        return SimpleNamespace(info=SimpleNamespace(features=tfds.features.FeaturesDict(features)))

    image = tfds.features.Image(shape=(8, 8, 1))
    assert source.image_feature(found(label=tfds.features.ClassLabel(num_classes=2), lr=image)) == "lr"
    assert source.image_feature(found(hr=image, image=image)) == "image"
    assert source.image_feature(found(text=tfds.features.Text())) is None


def test_tfds_names_without_images_are_one_line():
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(
        DataError,
        match="^dataset 'imdb_reviews' has no image feature: give a tensorflow-datasets image data set$",
    ):
        source.builder("imdb_reviews")
    with pytest.raises(
        DataError,
        match="^unknown dataset 'no_such_set': give a tensorflow-datasets image data set such as mnist",
    ):
        source.builder("no_such_set")


def test_the_stream_feeds_fit_every_image_once_an_epoch_in_a_new_order(tmp_path, images):
    pixels = (images * 255).astype("u1")
    np.savez(
        tmp_path / "d.npz",
        x_train=pixels,
        y_train=np.zeros(32, "u1"),
        x_test=pixels[:8],
        y_test=np.zeros(8, "u1"),
    )
    data = load_dataset(data_dir=tmp_path / "d.npz")
    train = data.stream("train", 5, seed=3)
    epochs = [np.concatenate(list(train.as_numpy_iterator())) for _ in range(2)]
    assert [len(b) for b in train.as_numpy_iterator()] == [5] * 6 + [2]
    assert as_set(epochs[0]) == as_set(epochs[1]) == as_set(pixels / 255)
    assert not np.array_equal(epochs[0], epochs[1]), "reshuffled each epoch"
    np.testing.assert_array_equal(
        np.concatenate(list(data.stream("train", 5, seed=3).as_numpy_iterator())), epochs[0]
    )
    model = keras_vae.build_model("vae", "dense", 2, data.input_shape, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    history = model.fit(
        train, validation_data=data.stream("val", 4), epochs=2, shuffle=False, verbose=0
    ).history
    assert np.isfinite(history["loss"]).all() and np.isfinite(history["val_loss"]).all()


def test_a_first_run_without_mnist_prints_no_tensorflow_datasets_warning(monkeypatch, caplog):
    """tensorflow-datasets warns that the folder its builder has just made "has no dataset_info.json": not on
    keras-vae's first run, whose only line about the data is its own."""
    monkeypatch.setattr("keras_vae.data.tfds.can_download", lambda: False)
    from keras_vae.data.tfds import default_source

    with caplog.at_level(logging.WARNING):
        for _ in range(2):  # the second builder finds the folder the first one made
            default_source("mnist", None)
    assert not [record for record in caplog.records if record.name == "absl"], caplog.text


def test_each_process_of_a_cluster_takes_its_own_part_of_every_shuffled_epoch(tmp_path):
    for i in range(10):
        write(tmp_path / f"{i}.png", gradient(4, 4, 1, 10 * i))
    data = load_dataset(data_dir=tmp_path, val_fraction=0.1)
    elements = data.train.elements

    def images(seed, shard=(0, 1)):
        return [image.tobytes() for image, _ in elements(seed, shard).as_numpy_iterator()]

    whole = images(5)
    halves = [images(5, (index, 2)) for index in range(2)]
    assert halves == [whole[0::2], whole[1::2]]  # every 2nd element of the same shuffled order
    assert len(whole) == data.train.count == 9


def test_each_process_reads_only_its_own_equal_part_of_a_tfds_split(tmp_path, monkeypatch):
    """A real tensorflow-datasets set, prepared from arrays: of a cluster of 3, each process asks
    tensorflow-datasets for one of three equal parts of the split's 19 records (one left over), and the parts
    are disjoint."""
    tfds = pytest.importorskip("tensorflow_datasets")

    class Twenty(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            features = {
                "image": tfds.features.Image(shape=(4, 4, 1)),
                "label": tfds.features.ClassLabel(num_classes=10),
            }
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(features))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples()}

        def _generate_examples(self):
            for i in range(20):
                yield i, {"image": np.full((4, 4, 1), i, "uint8"), "label": i % 10}

    found = Twenty(data_dir=tmp_path)
    found.download_and_prepare()
    asked, read = [], found.as_dataset
    monkeypatch.setattr(
        found, "as_dataset", lambda split, **options: asked.append(split) or read(split, **options)
    )
    split = source.tfds_split(found, "train[1:]", "image", "label", buffer=1000)
    parts = [
        [int(image[0, 0, 0]) for image, _ in split.elements(7, (index, 3)).as_numpy_iterator()]
        for index in range(3)
    ]
    whole = {int(example["image"][0, 0, 0]) for example in read("train[1:]").as_numpy_iterator()}
    assert [len(part) for part in parts] == [6, 6, 6] and len(set(sum(parts, []))) == 18
    assert set(sum(parts, [])) < whole
    assert asked[1:] == tfds.even_splits("train[1:]", n=3, drop_remainder=True)
