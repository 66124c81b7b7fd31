"""Training step for the JAX backend: pure functions of the state, so fit() can jit them.

The loss terms run inside a StatelessScope mapped onto the state Keras passes in; the
updated non-trainable values (BatchNorm statistics, and the seed state of the Sampling
and Dropout layers, so the noise differs every step) go back out with the new state.
"""

import contextlib
import functools
import os

import jax
import jax.numpy as jnp
import keras
import numpy as np

from keras_vae.errors import KerasVAEError


class TrainStep:
    def _stateless_terms(self, trainable_variables, non_trainable_variables, x, training):
        mapping = [
            *zip(self.trainable_variables, trainable_variables),
            *zip(self.non_trainable_variables, non_trainable_variables),
        ]
        with keras.StatelessScope(state_mapping=mapping) as scope:
            terms = self.compute_terms(x, training=training)
        non_trainable_variables = [scope.get_current_value(v) for v in self.non_trainable_variables]
        return terms["loss"], (terms, non_trainable_variables)

    def _stateless_logs(self, metrics_variables, terms, batch_size):
        mapping = list(zip(self.metrics_variables, metrics_variables))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            logs = self.update_trackers(terms, batch_size)
        return logs, [scope.get_current_value(v) for v in self.metrics_variables]

    def train_step(self, state, data):
        trainable, non_trainable, optimizer_variables, metrics_variables = state
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        grad_fn = jax.value_and_grad(self._stateless_terms, has_aux=True)
        (_, (terms, non_trainable)), gradients = grad_fn(trainable, non_trainable, x, True)
        trainable, optimizer_variables = self.optimizer.stateless_apply(
            optimizer_variables, gradients, trainable
        )
        logs, metrics_variables = self._stateless_logs(metrics_variables, terms, x.shape[0])
        return logs, (trainable, non_trainable, optimizer_variables, metrics_variables)

    def test_step(self, state, data):
        trainable, non_trainable, metrics_variables = state
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        _, (terms, non_trainable) = self._stateless_terms(trainable, non_trainable, x, False)
        logs, metrics_variables = self._stateless_logs(metrics_variables, terms, x.shape[0])
        return logs, (trainable, non_trainable, metrics_variables)


@functools.cache
def _subpixel_taps(size: int, stride: int) -> tuple[np.ndarray, int, int]:
    """Which kernel tap each (shift, phase) of the sub-pixel form of a 'same' transposed convolution uses.

    In one dimension, output stride * p + a sums x[p - d] * kernel[a + pad + stride * d] over the d that
    index the kernel, where pad = max(size - stride, 0) // 2. Shift j = max(d) - d reads x padded by
    max(d) before and -min(d) after. Returns taps[j, a] (size where no tap applies) and the two paddings.
    """
    pad = max(size - stride, 0) // 2
    uses = {(a, (t - a - pad) // stride): t for a in range(stride) for t in range(size) if (t - a - pad) % stride == 0}
    low, high = min(d for _, d in uses), max(d for _, d in uses)
    taps = np.full((high - low + 1, stride), size)
    for (a, d), t in uses.items():
        taps[high - d, a] = t
    return taps, high, -low


def conv_transpose(x, kernel, strides: tuple[int, int]):
    """A 'same' transposed convolution. On CPU with a stride it is rewritten exactly as stride**2 phases of one
    plain convolution, then depth-to-space, because XLA's CPU transposed convolution with a stride is slow."""
    if jax.default_backend() != "cpu" or strides[0] != strides[1] or strides[0] == 1 or kernel.shape[0] != kernel.shape[1]:
        return keras.ops.conv_transpose(x, kernel, strides, padding="same")
    kernel = keras.ops.convert_to_tensor(kernel)
    stride, (size, _, filters, _) = strides[0], kernel.shape
    taps, before, after = _subpixel_taps(size, stride)
    shifts = len(taps)
    padded_kernel = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))
    phases = padded_kernel[taps[:, None, :, None], taps[None, :, None, :]]  # (j_row, j_col, a, b, out, in)
    phases = jnp.transpose(phases, (0, 1, 5, 2, 3, 4)).reshape(shifts, shifts, -1, stride * stride * filters)
    x = jnp.pad(x, ((0, 0), (before, after), (before, after), (0, 0)))
    y = _valid_conv(x, phases)  # channels ordered (row phase, column phase, filter)
    batch, height, width = y.shape[:3]
    row_phases = [y[..., a * stride * filters : (a + 1) * stride * filters] for a in range(stride)]
    return jnp.stack(row_phases, axis=2).reshape(batch, height * stride, width * stride, filters)


def _conv(x, kernel):
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))


@jax.custom_vjp
def _valid_conv(x, kernel):
    """A stride-1 'valid' convolution with the gradients XLA's CPU computes fastest: the input's as a
    convolution of the padded output gradient, the kernel's as a matrix product per kernel tap."""
    return _conv(x, kernel)


def _valid_conv_forward(x, kernel):
    return _conv(x, kernel), (x, kernel)


def _valid_conv_backward(residuals, dy):
    x, kernel = residuals
    rows, cols = kernel.shape[:2]
    padded = jnp.pad(dy, ((0, 0), (rows - 1, rows - 1), (cols - 1, cols - 1), (0, 0)))
    dx = _conv(padded, jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2))
    height, width, channels = dy.shape[1], dy.shape[2], x.shape[-1]
    dy = dy.reshape(-1, dy.shape[-1])
    shifted = [x[:, i : i + height, j : j + width].reshape(-1, channels) for i in range(rows) for j in range(cols)]
    return dx, jnp.stack([patch.T @ dy for patch in shifted]).reshape(kernel.shape)


_valid_conv.defvjp(_valid_conv_forward, _valid_conv_backward)


@contextlib.contextmanager
def distribution(batch_sizes: set[int]):
    """keras.distribution.DataParallel over every device: each batch split across them, the variables replicated.
    With KERAS_DISTRIBUTION_JOB_ADDRESSES, _NUM_PROCESSES and _PROCESS_ID set, every host joins first."""
    if "KERAS_DISTRIBUTION_JOB_ADDRESSES" in os.environ:
        keras.distribution.initialize()
    devices = keras.distribution.list_devices()
    uneven = sorted(size for size in batch_sizes if size % len(devices))
    if uneven:
        raise KerasVAEError(
            f"--distribute splits every batch over {len(devices)} devices, and batches of {uneven} images would not split "
            f"evenly: pick a --batch-size that is a multiple of {len(devices)} and leaves a last batch that is one too"
        )
    previous = keras.distribution.distribution()
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    try:
        yield len(devices)
    finally:
        keras.distribution.set_distribution(previous)


def devices() -> list[str]:
    return [f"{device.platform}:{device.id} {device.device_kind}" for device in jax.devices()]
