"""Shapes and value ranges for every architecture, input shape and model kind."""

import keras
import numpy as np
import pytest
from conftest import make_images, to_numpy

import keras_vae
from keras_vae import Sampling

INPUT_SHAPES = [(28, 28, 1), (32, 32, 3), (8, 8, 1), (30, 26, 1)]


@pytest.mark.parametrize("arch", list(keras_vae.ARCHITECTURES))
@pytest.mark.parametrize("input_shape", INPUT_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("latent_dim", [1, 3])
def test_vae_shapes(arch, input_shape, latent_dim):
    model = keras_vae.build_model("vae", arch=arch, latent_dim=latent_dim, input_shape=input_shape)
    x = np.random.default_rng(0).random((2, *input_shape), dtype="float32")
    z_mean, z_log_var, z = model.encoder(x)
    assert [tuple(t.shape) for t in (z_mean, z_log_var, z)] == [(2, latent_dim)] * 3
    images = to_numpy(model.decoder(z))
    assert images.shape == (2, *input_shape)
    assert images.min() >= 0 and images.max() <= 1
    assert tuple(model(x).shape) == (2, *input_shape)


@pytest.mark.parametrize("arch", list(keras_vae.ARCHITECTURES))
@pytest.mark.parametrize("input_shape", INPUT_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_autoencoder_shapes(arch, input_shape):
    model = keras_vae.build_model("ae", arch=arch, latent_dim=2, input_shape=input_shape)
    x = np.random.default_rng(0).random((2, *input_shape), dtype="float32")
    z = model.encoder(x)
    assert tuple(z.shape) == (2, 2)
    assert tuple(model.decoder(z).shape) == (2, *input_shape)


def test_public_names():
    from keras_vae import VAE, AutoEncoder

    assert isinstance(keras_vae.build_model("vae", arch="dense", input_shape=(8, 8, 1)), VAE)
    assert isinstance(keras_vae.build_model("ae", arch="dense", input_shape=(8, 8, 1)), AutoEncoder)


def test_sampling_is_the_reparameterisation_trick():
    n = 20_000
    z_mean = np.full((n, 2), [1.0, -2.0], "float32")
    z_log_var = np.full((n, 2), np.log([4.0, 0.25]), "float32")
    z = to_numpy(Sampling(seed=3)([z_mean, z_log_var]))
    np.testing.assert_allclose(z.mean(0), [1.0, -2.0], atol=0.05)
    np.testing.assert_allclose(z.std(0), [2.0, 0.5], rtol=0.03)


def deep_conv_model(family: str):
    """A family's model on the architecture with dropout and batch normalisation, and its input: six images (a
    CVAE's with one-hot labels of three classes)."""
    model = keras_vae.build_model(
        family, "deep-conv", 2, (8, 8, 1), seed=1, classes=3 if family == "cvae" else 0
    )
    x = make_images()[:6]
    return model, ((x, np.eye(3, dtype="float32")[np.arange(6) % 3]) if family == "cvae" else x)


@pytest.mark.parametrize(
    "family", ["ae", "vae", "cvae", "vq-vae"]
)  # each call of its own (IWAE and β-TCVAE's is the VAE's)
def test_call_decodes_the_encoders_code_and_trains_only_when_asked(family):
    """model(x) is the deterministic reconstruction that explore and evaluate draw (the code decoder of the
    means encoder); model(x, training=True) runs the deep-conv architecture's dropout and batch statistics."""
    model, inputs = deep_conv_model(family)
    codes = to_numpy(model.means_encoder(list(inputs) if family == "cvae" else inputs))
    expected = to_numpy(model.code_decoder([codes, inputs[1]] if family == "cvae" else codes))
    np.testing.assert_allclose(to_numpy(model(inputs)), expected, atol=1e-6)
    np.testing.assert_array_equal(to_numpy(model(inputs)), to_numpy(model(inputs)))
    assert np.abs(to_numpy(model(inputs, training=True)) - expected).max() > 1e-3
    if family in keras_vae.VARIATIONAL:
        assert isinstance(model.kl_scale, keras.Variable), (
            "the KL warm-up assigns its scale without retracing"
        )


@pytest.mark.parametrize("family", list(keras_vae.MODELS))
def test_compute_terms_trains_both_networks_only_when_asked(family):
    """training=True reaches the encoder's and the decoder's batch normalisation (their moving statistics
    move); training=False leaves them be, so evaluation never changes the model."""
    model, inputs = deep_conv_model(family)
    norms = [
        layer
        for network in (model.encoder, model.decoder)
        for layer in network.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ]

    def statistics():
        return [to_numpy(layer.moving_mean).copy() for layer in norms]

    before = statistics()
    model.compute_terms(inputs, training=False)
    assert all(np.array_equal(a, b) for a, b in zip(before, statistics()))
    model.compute_terms(inputs, training=True)
    assert {
        network.name
        for network in (model.encoder, model.decoder)
        for layer in network.layers
        if layer in norms
    } == {"encoder", "decoder"}
    assert not any(np.array_equal(a, b) for a, b in zip(before, statistics())), (
        "every batch normalisation trained"
    )
