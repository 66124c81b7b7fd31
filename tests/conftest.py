"""Shared fixtures. The suite runs on whichever backend KERAS_BACKEND names; tox runs it on all three."""

import keras
import numpy as np
import pytest


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {keras.backend.backend()}"


@pytest.fixture
def images() -> np.ndarray:
    return make_images()


def make_images() -> np.ndarray:
    """32 learnable 8x8 images: four bar patterns with a little noise, values in [0, 1]."""
    rng = np.random.default_rng(0)
    patterns = np.zeros((4, 8, 8, 1), "float32")
    patterns[0, 2:6, :, 0] = 1
    patterns[1, :, 2:6, 0] = 1
    patterns[2, :4, :4, 0] = 1
    patterns[3, 4:, 4:, 0] = 1
    noisy = patterns[rng.integers(0, 4, 32)] * 0.9 + 0.1 * rng.random((32, 8, 8, 1), dtype="float32")
    return noisy.astype("float32")


def to_numpy(tensor) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(tensor))
