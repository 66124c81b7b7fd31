"""The backend seam: `TrainStep` (train_step and test_step), `conv` and `conv_transpose` (with the bias, which
torch adds in the same pass as its crop), `distribution()` (a
context in which models build and train data-parallel) and `devices()` for the active Keras backend.

Each module here supplies the same two steps in its backend's idiom, as Keras keeps
`keras/src/backend/<name>/trainer.py`. They only need the model to provide
`compute_terms(x, training)` (a dict of loss terms, "loss" among them) and
`update_trackers(terms, batch_size)` (the logs); both are written once, in keras.ops.
"""

import importlib

import keras

from keras_vae.errors import KerasVAEError

SUPPORTED_BACKENDS = ("tensorflow", "jax", "torch")

if keras.backend.backend() not in SUPPORTED_BACKENDS:
    raise ImportError(
        f"keras_vae supports the Keras backends {', '.join(SUPPORTED_BACKENDS)}; "
        f"KERAS_BACKEND is {keras.backend.backend()!r}."
    )


def add_bias(x, bias):
    return x if bias is None else keras.ops.add(x, bias)


def keras_conv(x, kernel, strides: tuple[int, int], bias=None):
    """A 'same' convolution by Keras's own op, for backends with no faster route."""
    return add_bias(keras.ops.conv(x, kernel, strides, padding="same"), bias)


def keras_conv_transpose(x, kernel, strides: tuple[int, int], bias=None):
    """A 'same' transposed convolution by Keras's own op, for backends with no faster route."""
    return add_bias(keras.ops.conv_transpose(x, kernel, strides, padding="same"), bias)


def check_even(batch_sizes: set[int], replicas: int) -> None:
    """Data-parallel steps split every batch evenly across the devices: refuse, before anything is written, batch
    sizes that would not split (TensorFlow's MirroredStrategy crashed on them mid-training; JAX refuses them)."""
    uneven = sorted(size for size in batch_sizes if size % replicas)
    if uneven:
        raise KerasVAEError(
            f"--distribute splits every batch over {replicas} devices, and batches of {uneven} images would not split "
            f"evenly: pick a --batch-size that is a multiple of {replicas} and leaves a last batch that is one too"
        )


def same_padding(length: int, size: int, stride: int) -> tuple[int, int]:
    """Padding before and after for a 'same' convolution: TensorFlow's, any odd pixel after."""
    total = max((-(-length // stride) - 1) * stride + size - length, 0)
    return total // 2, total - total // 2


# Defined before the backend module is imported, which may fall back on them.
_module = importlib.import_module(f"keras_vae.backends.{keras.backend.backend()}")
TrainStep = _module.TrainStep
devices = _module.devices
distribution = _module.distribution
conv = getattr(_module, "conv", keras_conv)
conv_transpose = getattr(_module, "conv_transpose", keras_conv_transpose)
