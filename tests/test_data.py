"""The IDX reader on files the test writes, on corrupt ones, and on the real MNIST test set."""

import gzip
from pathlib import Path

import numpy as np
import pytest

from keras_vae.data import DataError, load_idx_split, read_idx

MNIST_TEST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist-test"


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + array.astype("u1").tobytes()


def write_split(folder: Path, images: np.ndarray, labels: np.ndarray, compress: bool, split: str = "t10k") -> None:
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
