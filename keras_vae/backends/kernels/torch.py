"""CPU convolutions for the PyTorch backend: the NHWC tensors viewed as channels-last NCHW, so no layout is
copied (Keras's own ops copy to NCHW and back). The seam (keras_vae.backends) takes them for tensors on the
CPU.
"""

import keras
import torch
import torch.nn.functional as F

from keras_vae.backends import keras_conv_transpose, same_padding


def on_cpu(x) -> bool:
    return keras.ops.convert_to_tensor(x).device.type == "cpu"


def conv(x, kernel, strides: tuple[int, int], bias=None):
    """A 'same' convolution, its bias added by the kernel."""
    kernel = keras.ops.convert_to_tensor(kernel).permute(3, 2, 0, 1)
    (top, bottom), (left, right) = (
        same_padding(x.shape[1 + i], kernel.shape[2 + i], strides[i]) for i in (0, 1)
    )
    if (top, left) != (bottom, right):
        x, top, left = F.pad(x, (0, 0, left, right, top, bottom)), 0, 0
    y = F.conv2d(x.permute(0, 3, 1, 2), kernel, _tensor(bias), strides, (top, left))
    return y.permute(0, 2, 3, 1)


def conv_transpose(x, kernel, strides: tuple[int, int], bias=None):
    """A 'same' transposed convolution: Keras's 'same' output is torch's full output from index
    max(size - stride, 0) // 2 on, for stride * the input's length."""
    kernel = keras.ops.convert_to_tensor(kernel)
    if any(
        size < stride for size, stride in zip(kernel.shape[:2], strides)
    ):  # Keras's output then pads with zeros
        return keras_conv_transpose(x, kernel, strides, bias)
    padding = tuple(max(size - stride, 0) // 2 for size, stride in zip(kernel.shape[:2], strides))
    y = F.conv_transpose2d(x.permute(0, 3, 1, 2), kernel.permute(3, 2, 0, 1), None, strides, padding)
    size = (x.shape[1] * strides[0], x.shape[2] * strides[1])
    return _CropAndAddBias.apply(y.permute(0, 2, 3, 1), size, _tensor(bias))


class _CropAndAddBias(torch.autograd.Function):
    """The top-left rows and columns of NHWC y, plus the bias, in one pass. Its gradient zeroes only the
    cropped border (none after a stride of 1, where it passes through): autograd's, one slice at a time,
    fills and copies the whole array twice. (Torch's transposed convolution with the bias is slower than
    without it, and its 'same' output is not Keras's.)"""

    @staticmethod
    def forward(ctx, y, size: tuple[int, int], bias):
        ctx.full_shape = y.shape
        cropped = y[:, : size[0], : size[1]]
        return cropped + bias if bias is not None else cropped.contiguous()

    @staticmethod
    def backward(ctx, gradient):
        bias_gradient = gradient.sum((0, 1, 2)) if ctx.needs_input_grad[2] else None
        if gradient.shape == ctx.full_shape:
            return gradient, None, bias_gradient
        height, width = gradient.shape[1:3]
        full = gradient.new_empty(ctx.full_shape)
        full[:, height:].zero_()
        full[:, :height, width:].zero_()
        full[:, :height, :width] = gradient
        return full, None, bias_gradient


def _tensor(value):
    return None if value is None else keras.ops.convert_to_tensor(value)
