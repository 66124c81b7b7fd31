"""CPU convolutions for the JAX backend: matrix products plus slices and pads, since XLA's CPU convolutions,
and their gradients most of all, run far below its matrix products (the conv VAE: 1,011 to 1,688 images/s,
docs/benchmarks.md). The seam (keras_vae.backends) takes them for arrays on the CPU.
"""

import functools

import jax
import jax.numpy as jnp
import keras

from keras_vae.backends import add_bias, same_padding


def on_cpu(x) -> bool:
    """Whether x lives on the CPU: a concrete array says where it is; a traced one (inside jit, where the
    steps run) is placed where JAX puts computations, its default device."""
    try:
        return all(device.platform == "cpu" for device in x.devices())
    except jax.errors.ConcretizationTypeError:
        default = jax.config.jax_default_device
        return (getattr(default, "platform", None) or default or jax.default_backend()) == "cpu"


def conv(x, kernel, strides: tuple[int, int], bias=None):
    """A 'same' convolution: the windows times the kernel, or, with fewer filters than channels and no stride,
    the transposed convolution by the flipped kernel, which multiplies the narrower side first."""
    kernel, strides = keras.ops.convert_to_tensor(kernel), tuple(strides)
    rows, cols, channels, filters = kernel.shape
    padding = [same_padding(x.shape[1 + axis], kernel.shape[axis], strides[axis]) for axis in (0, 1)]
    if strides == (1, 1) and filters < channels:
        matrix = jnp.flip(kernel, (0, 1)).transpose(2, 0, 1, 3).reshape(channels, -1)
        start = (rows - 1 - padding[0][0], cols - 1 - padding[1][0])
        y = _multiply_and_place(x, matrix, (rows, cols), strides, start)
    else:
        out_size = tuple(-(-x.shape[1 + axis] // strides[axis]) for axis in (0, 1))
        windows = _gather(jnp.pad(x, ((0, 0), *padding, (0, 0))), (rows, cols), strides, out_size)
        y = _matmul(windows, kernel.reshape(-1, filters))
    return add_bias(y, bias)


def conv_transpose(x, kernel, strides: tuple[int, int], bias=None):
    """A 'same' transposed convolution, cropped as Keras's 'same' does: from max(size - stride, 0) // 2."""
    kernel, strides = keras.ops.convert_to_tensor(kernel), tuple(strides)
    rows, cols, _, channels = kernel.shape
    start = (max(rows - strides[0], 0) // 2, max(cols - strides[1], 0) // 2)
    matrix = kernel.transpose(3, 0, 1, 2).reshape(channels, -1)
    return add_bias(_multiply_and_place(x, matrix, (rows, cols), strides, start), bias)


def _multiply_and_place(x, matrix, size: tuple[int, int], strides: tuple[int, int], start: tuple[int, int]):
    """Each input pixel times every kernel tap in one matrix product, the products added into place
    (full[strides * q + tap]), then the strides * input-size output from start."""
    height, width = x.shape[1:3]
    full_size = (strides[0] * (height - 1) + size[0], strides[1] * (width - 1) + size[1])
    full = _place(_matmul(x, matrix), size, strides, full_size)
    return _crop(full, start, (strides[0] * height, strides[1] * width))


def _matmul(x, matrix):
    """x's channels times matrix, as one 2-D product: XLA's CPU dot is fast in 2-D and slow with
    several contracted axes, which the gradient of a 4-D product would have."""
    return (x.reshape(-1, x.shape[-1]) @ matrix).reshape(*x.shape[:-1], matrix.shape[-1])


def _taps(size: tuple[int, int]) -> list[tuple[int, int]]:
    return [(row, col) for row in range(size[0]) for col in range(size[1])]


def _pad(x, config):
    return jax.lax.pad(x, jnp.zeros((), x.dtype), config)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _gather(x, size: tuple[int, int], strides: tuple[int, int], out_size: tuple[int, int]):
    """windows[q, tap] = x[strides * q + tap], the taps side by side on the channel axis. Each window is
    padded into its channels and summed, which XLA's CPU fuses; a concatenation runs several times slower."""
    (row_stride, col_stride), (out_rows, out_cols), channels = strides, out_size, x.shape[3]
    taps, windows = _taps(size), 0.0
    for tap, (row, col) in enumerate(taps):
        end_row, end_col = row + (out_rows - 1) * row_stride + 1, col + (out_cols - 1) * col_stride + 1
        limit = (x.shape[0], end_row, end_col, channels)
        window = jax.lax.slice(x, (0, row, col, 0), limit, (1, row_stride, col_stride, 1))
        into_channels = (tap * channels, (len(taps) - 1 - tap) * channels, 0)
        windows = windows + _pad(window, ((0, 0, 0),) * 3 + (into_channels,))
    return windows


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _place(products, size: tuple[int, int], strides: tuple[int, int], full_size: tuple[int, int]):
    """full[strides * q + tap] += products[q, tap]: the transpose of _gather. Built one stride phase at a time
    (full[strides * p + phase]) from shifted products, then interleaved: XLA's CPU leaves pads with interior
    (stride) padding unfused in a gradient, one whole-size array per tap."""
    (row_stride, col_stride), (height, width) = strides, products.shape[1:3]
    filters = products.shape[3] // (size[0] * size[1])
    phase_size = (-(-full_size[0] // row_stride), -(-full_size[1] // col_stride))
    phases = {}
    for tap, (row, col) in enumerate(_taps(size)):
        (row_shift, row_phase), (col_shift, col_phase) = divmod(row, row_stride), divmod(col, col_stride)
        rows = (row_shift, phase_size[0] - height - row_shift, 0)
        cols = (col_shift, phase_size[1] - width - col_shift, 0)
        shifted = _pad(products[..., tap * filters : (tap + 1) * filters], ((0, 0, 0), rows, cols, (0, 0, 0)))
        phases[row_phase, col_phase] = phases.get((row_phase, col_phase), 0.0) + shifted
    zeros = jnp.zeros((products.shape[0], *phase_size, filters), products.dtype)
    phase_rows = [
        jnp.stack([phases.get((a, b), zeros) for b in range(col_stride)], axis=3) for a in range(row_stride)
    ]
    grid = jnp.stack(phase_rows, axis=2)
    full = grid.reshape(products.shape[0], phase_size[0] * row_stride, phase_size[1] * col_stride, filters)
    return full[:, : full_size[0], : full_size[1]]


# Each is the other's transpose, so each one's gradient is the other: JAX's own transposes of the slices
# and pads (pads and slices of the whole array per tap) run several times slower on XLA's CPU.
_gather.defvjp(
    lambda x, size, strides, out_size: (_gather(x, size, strides, out_size), x.shape[1:3]),
    lambda size, strides, out_size, in_size, gradient: (_place(gradient, size, strides, in_size),),
)
_place.defvjp(
    lambda products, size, strides, full_size: (
        _place(products, size, strides, full_size),
        products.shape[1:3],
    ),
    lambda size, strides, full_size, in_size, gradient: (_gather(gradient, size, strides, in_size),),
)


def _crop(x, start: tuple[int, int], size: tuple[int, int]):
    """Rows and columns start .. start + size of x, with zeros where that runs past its end."""
    rows, cols = (
        (-first, first + length - x.shape[1 + axis], 0)
        for axis, (first, length) in enumerate(zip(start, size))
    )
    return _pad(x, ((0, 0, 0), rows, cols, (0, 0, 0)))
