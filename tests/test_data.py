"""The IDX reader on files the test writes, on corrupt ones, and on the real MNIST test set."""

import gzip
import zipfile
from pathlib import Path

import numpy as np
import pytest

from keras_vae.data import DataError, ImageOptions, load_dataset, load_idx_split, read_idx
from keras_vae.errors import ConfigError, KerasVAEError

MNIST_TEST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist-test"


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + array.astype("u1").tobytes()


def write_split(
    folder: Path, images: np.ndarray, labels: np.ndarray, compress: bool, split: str = "t10k"
) -> None:
    for name, array in ((f"{split}-images-idx3-ubyte", images), (f"{split}-labels-idx1-ubyte", labels)):
        data = idx_bytes(array)
        if compress:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)


@pytest.mark.parametrize("compress", [True, False])
def test_split_round_trip(tmp_path, compress):
    images = np.arange(3 * 4 * 5).reshape(3, 4, 5) % 256
    write_split(tmp_path, images, np.array([7, 0, 3]), compress)
    x, y = load_idx_split(tmp_path)
    assert x.dtype == np.float32 and x.shape == (3, 4, 5, 1)
    np.testing.assert_allclose(x[..., 0], images / 255)
    np.testing.assert_array_equal(y, [7, 0, 3])


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\x00\x00\x08", "not an IDX"),
        (b"PK\x03\x04" + bytes(20), "not an IDX"),
        (bytes([0, 0, 0x08, 3]) + np.array([2, 2], ">u4").tobytes(), "truncated"),
        (idx_bytes(np.zeros((2, 3, 3)))[:-1], "promises shape"),
    ],
)
def test_corrupt_files_raise_data_error(tmp_path, data, message):
    path = tmp_path / "bad-images-idx3-ubyte"
    path.write_bytes(data)
    with pytest.raises(DataError, match=message):
        read_idx(path)


def test_missing_files_and_mismatched_counts(tmp_path):
    with pytest.raises(DataError, match="no t10k-images"):
        load_idx_split(tmp_path)
    write_split(tmp_path, np.zeros((3, 2, 2)), np.zeros(2), compress=False)
    with pytest.raises(DataError, match="3 images but"):
        load_idx_split(tmp_path)


@pytest.mark.skipif(not MNIST_TEST.is_dir(), reason="../shared/data/mnist-test is not beside the checkout")
def test_real_mnist_test_set():
    x, y = load_idx_split(MNIST_TEST)
    assert x.shape == (10_000, 28, 28, 1) and 0 <= x.min() and x.max() == 1
    assert np.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def npz_file(folder: Path, **arrays) -> Path:
    np.savez(folder / "d.npz", **arrays)
    return folder / "d.npz"


EIGHT = np.zeros((8, 8, 8), "u1")


@pytest.mark.parametrize(
    "arrays, message",
    [
        (
            {"x_train": EIGHT},
            " must hold arrays x_train and y_train (and optionally x_test, y_test); it has ['x_train']",
        ),
        (
            {"x_train": EIGHT, "y_train": np.array(list("abcdefgh"))},
            ": y_train holds <U1 values; images and labels must be numbers",
        ),
        (
            {"x_train": EIGHT, "y_train": np.zeros(8), "class_names": np.arange(2)},
            ": class_names holds int64 values; give the names as strings",
        ),
        (
            {"x_train": EIGHT, "y_train": np.zeros((8, 4))},
            ": y_train has shape (8, 4); labels must be one class number per image",
        ),
        (
            {"x_train": EIGHT, "y_train": np.zeros(8), "x_test": EIGHT[:2], "y_test": np.zeros((2, 3))},
            ": y_test has shape (2, 3)",
        ),
        (
            {
                "x_train": EIGHT,
                "y_train": np.zeros(8),
                "x_test": np.zeros((2, 4, 4), "u1"),
                "y_test": np.zeros(2),
            },
            ": x_test images are (4, 4), x_train's (8, 8): both splits need images of one size",
        ),
        ({"x_train": EIGHT, "y_train": np.zeros(7)}, " x_train and y_train: 8 images but 7 labels"),
        (
            {"x_train": EIGHT, "y_train": np.zeros(8), "x_test": EIGHT[:3], "y_test": np.zeros(2)},
            " x_test and y_test: 3 images but 2 labels",
        ),
        (
            {"x_train": EIGHT, "y_train": np.arange(8) % 3, "class_names": np.array(["a"])},
            " class_names names 1 classes, but the labels go up to 2",
        ),
    ],
    ids=[
        "no-labels",
        "string-labels",
        "number-names",
        "2d-labels",
        "2d-test-labels",
        "test-size",
        "train-count",
        "test-count",
        "few-names",
    ],
)
def test_npz_refusals_name_the_file_and_what_is_wrong_in_it(tmp_path, arrays, message):
    path = npz_file(tmp_path, **arrays)
    with pytest.raises(DataError) as refused:
        load_dataset(data_dir=path)
    assert str(refused.value).startswith(f"{path}{message}")


def test_npz_labels_of_shape_n_by_1_and_class_names_are_taken(tmp_path):
    labels = np.arange(8) % 4
    path = npz_file(
        tmp_path,
        x_train=EIGHT + labels[:, None, None].astype("u1"),
        y_train=labels[:, None],
        x_test=EIGHT[:4],
        y_test=labels[:4, None],
        class_names=np.array(list("abcd")),
    )
    data = load_dataset(data_dir=path)
    images, taken = data.take("train", 8)
    assert data.class_names == ["a", "b", "c", "d"] and sorted(taken.tolist()) == sorted(labels.tolist())
    np.testing.assert_allclose(images[:, 0, 0, 0] * 255, taken, atol=1e-4)


def test_an_npz_is_refused_from_its_headers_when_its_images_would_not_fit_in_memory(tmp_path, monkeypatch):
    path = npz_file(tmp_path, x_train=EIGHT, y_train=np.zeros(8), x_test=EIGHT, y_test=np.zeros(8))
    monkeypatch.setattr(
        "keras_vae.data.arrays.memory_bytes", lambda: 3000
    )  # 1,024 values: 4,096 bytes as float32
    with pytest.raises(
        DataError,
        match=r"d\.npz claims images of shapes \[\(8, 8, 8\), \(8, 8, 8\)\]: .* more than this machine's",
    ):
        load_dataset(data_dir=path)
    monkeypatch.setattr("keras_vae.data.arrays.memory_bytes", lambda: 1000)
    with pytest.raises(KerasVAEError, match=r"over the .* a data file may take"):
        load_dataset(data_dir=path)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"PK\x03\x04" + bytes(40), "BadZipFile"),
        (b"\x93NUMPY" + bytes(40), "is a .npy file (one array), not a .npz"),
    ],
)
def test_a_damaged_npz_is_one_line_naming_why(tmp_path, content, message):
    (tmp_path / "d.npz").write_bytes(content)
    with pytest.raises(DataError, match=f"^{tmp_path / 'd.npz'}|cannot read {tmp_path / 'd.npz'}") as refused:
        load_dataset(data_dir=tmp_path / "d.npz")
    assert message in str(refused.value)


def test_arrays_are_cropped_to_their_centre_when_asked(tmp_path):
    images = (np.arange(4 * 6 * 10).reshape(4, 6, 10) % 251).astype(
        "u1"
    )  # 6 x 10: the centre square is columns 2-7
    data = load_dataset(
        data_dir=npz_file(tmp_path, x_train=images, y_train=np.arange(4), x_test=images, y_test=np.arange(4)),
        options=ImageOptions(crop=True),
    )
    taken, labels = data.take("val", 4)
    assert data.input_shape == (6, 6, 1)
    np.testing.assert_allclose(taken[..., 0], images[labels, :, 2:8] / 255, atol=1e-6)


def test_without_a_data_folder_the_data_set_is_mnist_from_tensorflow_datasets(monkeypatch):
    import keras_vae.data as data

    asked = []
    monkeypatch.setattr(data, "load_tfds", lambda name, options, val_fraction: asked.append(name))
    data.load_dataset()
    assert asked == ["mnist"]


def test_a_folder_holding_one_npz_loads_it_and_a_missing_folder_is_one_line(tmp_path):
    images = (np.arange(8 * 6 * 10).reshape(8, 6, 10) % 251).astype("u1")
    npz_file(tmp_path, x_train=images, y_train=np.arange(8) % 2, x_test=images[:2], y_test=np.arange(2))
    data = load_dataset(data_dir=tmp_path, options=ImageOptions(crop=True))
    assert data.input_shape == (6, 6, 1) and (data.train.count, data.val.count) == (8, 2)
    with pytest.raises(
        DataError,
        match=f"^--data-dir {tmp_path / 'gone'} does not exist: give a folder of images or IDX files, or a "
        ".npz file$",
    ):
        load_dataset(data_dir=tmp_path / "gone")


def test_image_options_take_a_1x1_size_and_refuse_other_channels_by_name():
    assert ImageOptions(size=(1, 1)).shape(8, 8, 1, "x") == (1, 1, 1)
    with pytest.raises(ConfigError, match="^channels must be 1 or 3, got 2$") as refused:
        ImageOptions(channels=2)
    assert refused.value.parameter == "channels"


def test_an_idx_folder_without_a_test_split_holds_out_a_seeded_share_of_train(tmp_path):
    write_split(
        tmp_path,
        (np.arange(20 * 4 * 4).reshape(20, 4, 4) % 256).astype("u1"),
        np.arange(20),
        compress=False,
        split="train",
    )
    held = [
        load_dataset(data_dir=tmp_path, val_fraction=0.25, seed=3).take("val", 5)[1].tolist()
        for _ in range(2)
    ]
    assert len(held[0]) == 5 and held[0] == held[1]
    assert load_dataset(data_dir=tmp_path, val_fraction=0.25, seed=4).take("val", 5)[1].tolist() != held[0]


def test_an_npz_whose_headers_read_but_whose_arrays_are_cut_short_names_its_error(tmp_path):
    whole = npz_file(tmp_path, x_train=EIGHT, y_train=np.zeros(8))
    with zipfile.ZipFile(whole) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    with zipfile.ZipFile(tmp_path / "cut.npz", "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content[:-100] if name == "x_train.npy" else content)
    with pytest.raises(DataError, match=f"^cannot read {tmp_path / 'cut.npz'} as .npz: ValueError: "):
        load_dataset(data_dir=tmp_path / "cut.npz")
