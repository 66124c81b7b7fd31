import keras
import numpy as np
import pytest
from conftest import to_numpy

from keras_vae.layers import Conv2D, Conv2DTranspose

OURS_AND_KERAS = [(Conv2D, keras.layers.Conv2D), (Conv2DTranspose, keras.layers.Conv2DTranspose)]
SIZES = [(3, 2), (3, 1), (4, 2), (5, 2), (3, 3), (1, 2), (2, 1), (4, 3)]


@pytest.mark.parametrize("ours, theirs", OURS_AND_KERAS, ids=["conv", "transpose"])
@pytest.mark.parametrize("kernel_size, strides", SIZES)
@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("filters", [6, 2], ids=["more-filters", "fewer-filters"])
def test_convolutions_match_keras(ours, theirs, kernel_size, strides, use_bias, filters):
    """More or fewer filters than the 4 input channels: the two ways JAX's CPU convolution is computed."""
    x = np.random.default_rng(0).normal(size=(3, 7, 5, 4)).astype("float32")
    reference = theirs(
        filters, kernel_size, strides=strides, padding="same", activation="relu", use_bias=use_bias
    )
    layer = ours(filters, kernel_size, strides=strides, padding="same", activation="relu", use_bias=use_bias)
    reference.build(x.shape)
    layer.build(x.shape)
    layer.set_weights([w + 0.1 for w in reference.get_weights()])
    reference.set_weights(layer.get_weights())
    expected = to_numpy(reference(x))
    assert expected.shape[1:3] == (
        (7 * strides, 5 * strides) if ours is Conv2DTranspose else (-(-7 // strides), -(-5 // strides))
    )
    np.testing.assert_allclose(to_numpy(layer(x)), expected, atol=1e-5)


@pytest.mark.parametrize("ours, theirs", OURS_AND_KERAS, ids=["conv", "transpose"])
@pytest.mark.parametrize("kernel_size, strides", [(3, 2), (4, 2), (3, 3), (3, 1), (4, 1)])
@pytest.mark.parametrize("filters", [4, 1], ids=["more-filters", "fewer-filters"])
@pytest.mark.parametrize("use_bias", [True, False])
def test_convolution_gradients_match_keras(ours, theirs, kernel_size, strides, filters, use_bias):
    x = keras.ops.convert_to_tensor(np.random.default_rng(1).normal(size=(2, 7, 6, 3)).astype("float32"))
    options = {"strides": strides, "padding": "same", "use_bias": use_bias}
    layers = [cls(filters, kernel_size, **options) for cls in (theirs, ours)]
    for layer in layers:
        layer.build(x.shape)
    layers[1].set_weights(layers[0].get_weights())
    expected, actual = (_gradients(layer, x) for layer in layers)
    for name, want, got in zip(("input", "kernel", "bias"), expected, actual):
        np.testing.assert_allclose(to_numpy(got), to_numpy(want), rtol=1e-4, atol=1e-4, err_msg=name)


def _gradients(layer, x) -> list:
    """d sum(sin(layer(x))) by x and by each weight (kernel, then any bias), in the backend's own way."""
    backend = keras.backend.backend()
    weights = [weight.value for weight in layer.weights]
    if backend == "jax":
        import jax

        def loss(x, weights):
            return keras.ops.sum(keras.ops.sin(layer.stateless_call(weights, [], x)[0]))

        gradient_x, gradient_weights = jax.grad(loss, argnums=(0, 1))(x, weights)
        return [gradient_x, *gradient_weights]
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = keras.ops.sum(keras.ops.sin(layer(x)))
        return tape.gradient(loss, [x, *weights])
    x = x.detach().requires_grad_(True)
    keras.ops.sum(keras.ops.sin(layer(x))).backward()
    return [x.grad, *(weight.grad for weight in weights)]


@pytest.mark.parametrize("ours", [Conv2D, Conv2DTranspose])
def test_convolutions_refuse_what_the_seam_does_not_compute(ours):
    with pytest.raises(ValueError, match="padding='same'"):
        ours(4, 3, padding="valid")
    with pytest.raises(ValueError, match="dilation"):
        ours(4, 3, dilation_rate=2)
