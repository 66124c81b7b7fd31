"""Conv2D and Conv2DTranspose: the Keras layers with the convolution taken from the backend seam.

Same weights, same config, same outputs; only the kernel that computes them may differ per backend
(on torch, channels-last views instead of layout copies; on JAX's CPU, matrix products instead of XLA's
slow CPU convolutions).
"""

import keras

from keras_vae.backends import conv, conv_transpose


class _SeamConvolution:
    """call() through `convolve` from the backend seam; 'same' padding, channels_last, no dilation or
    groups."""

    convolve = None

    def __init__(self, filters: int, kernel_size, strides=1, padding: str = "same", **kwargs):
        super().__init__(filters, kernel_size, strides=strides, padding=padding, **kwargs)
        unsupported = (
            self.padding != "same" or self.data_format != "channels_last" or max(self.dilation_rate) > 1
        )
        if unsupported or getattr(self, "output_padding", None) or getattr(self, "groups", 1) > 1:
            raise ValueError(
                f"keras_vae.layers.{type(self).__name__} takes padding='same', channels_last, "
                "no output_padding, dilation or groups"
            )

    def call(self, inputs):
        bias = self.bias if self.use_bias else None
        outputs = self.convolve(inputs, self.kernel, tuple(self.strides), bias)
        return self.activation(outputs) if self.activation is not None else outputs


@keras.saving.register_keras_serializable(package="keras_vae")
class Conv2D(_SeamConvolution, keras.layers.Conv2D):
    convolve = staticmethod(conv)


@keras.saving.register_keras_serializable(package="keras_vae")
class Conv2DTranspose(_SeamConvolution, keras.layers.Conv2DTranspose):
    convolve = staticmethod(conv_transpose)


@keras.saving.register_keras_serializable(package="keras_vae")
class JoinLabels(keras.layers.Layer):
    """A conditional model's input joined to its one-hot labels: images (N, H, W, C) get the labels as
    constant extra channels, vectors (N, D) get them appended."""

    def call(self, inputs):
        x, labels = inputs
        labels = keras.ops.cast(labels, x.dtype)
        if len(x.shape) == 4:
            grid = keras.ops.shape(x)[1:3]
            labels = keras.ops.broadcast_to(
                labels[:, None, None, :], (keras.ops.shape(x)[0], *grid, labels.shape[-1])
            )
        return keras.ops.concatenate([x, labels], axis=-1)

    def compute_output_shape(self, input_shapes):
        shape, labels = input_shapes
        return (*shape[:-1], shape[-1] + labels[-1])
