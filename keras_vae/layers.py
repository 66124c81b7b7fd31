"""Conv2DTranspose: keras.layers.Conv2DTranspose with the transposed convolution taken from the backend seam.

Same weights, same config, same outputs; only the kernel that computes them may differ per backend
(on JAX's CPU, an exact sub-pixel rewrite of the strided ones, because XLA's CPU transposed convolution is slow).
"""

import keras
from keras import ops

from keras_vae.backends import conv_transpose


@keras.saving.register_keras_serializable(package="keras_vae")
class Conv2DTranspose(keras.layers.Conv2DTranspose):
    def __init__(self, filters: int, kernel_size, strides=1, padding: str = "same", **kwargs):
        super().__init__(filters, kernel_size, strides=strides, padding=padding, **kwargs)
        if self.padding != "same" or self.data_format != "channels_last" or self.output_padding or max(self.dilation_rate) > 1:
            raise ValueError("keras_vae.layers.Conv2DTranspose takes padding='same', channels_last, no output_padding or dilation")

    def call(self, inputs):
        outputs = conv_transpose(inputs, self.kernel, tuple(self.strides))
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        return self.activation(outputs) if self.activation is not None else outputs
