"""Every loss term against a NumPy hand computation, for each option."""

import keras
import numpy as np
import pytest
from conftest import to_numpy

import keras_vae
from keras_vae.losses import loss_terms

EPS = keras.config.epsilon()
RNG = np.random.default_rng(1)
X = RNG.random((5, 4, 3, 2)).astype("float32")
X_HAT = RNG.random((5, 4, 3, 2)).astype("float32")
Z_MEAN = RNG.normal(size=(5, 3)).astype("float32")
Z_LOG_VAR = RNG.normal(size=(5, 3)).astype("float32")


def hand_reconstruction(recon_loss: str, reduction: str) -> float:
    if recon_loss == "bce":
        p = np.clip(X_HAT.astype("float64"), EPS, 1 - EPS)
        per_pixel = -(X * np.log(p) + (1 - X) * np.log(1 - p))
    else:
        per_pixel = (X.astype("float64") - X_HAT) ** 2
    per_image = per_pixel.reshape(5, -1)
    return float((per_image.sum(1) if reduction == "sum" else per_image.mean(1)).mean())


def hand_kl() -> float:
    var = np.exp(Z_LOG_VAR.astype("float64"))
    per_dim = 0.5 * (Z_MEAN**2 + var - 1 - Z_LOG_VAR)
    return float(per_dim.sum(1).mean())


@pytest.mark.parametrize("recon_loss", ["bce", "mse"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize(
    "beta, reconstruction_weight", [(1.0, 1.0), (4.0, 1.0), (0.0, 1.0), (1.0, 0.0), (0.5, 2.0)]
)
def test_vae_terms_match_hand_computation(recon_loss, reduction, beta, reconstruction_weight):
    terms = loss_terms(
        X,
        X_HAT,
        Z_MEAN,
        Z_LOG_VAR,
        recon_loss=recon_loss,
        reduction=reduction,
        beta=beta,
        reconstruction_weight=reconstruction_weight,
    )
    recon, kl = hand_reconstruction(recon_loss, reduction), hand_kl()
    assert set(terms) == {"loss", "reconstruction_loss", "kl_loss"}
    np.testing.assert_allclose(to_numpy(terms["reconstruction_loss"]), recon, rtol=1e-5)
    np.testing.assert_allclose(to_numpy(terms["kl_loss"]), kl, rtol=1e-5)
    np.testing.assert_allclose(
        to_numpy(terms["loss"]), reconstruction_weight * recon + beta * kl, rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("recon_loss", ["bce", "mse"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_autoencoder_terms_have_no_kl(recon_loss, reduction):
    terms = loss_terms(X, X_HAT, recon_loss=recon_loss, reduction=reduction)
    assert set(terms) == {"loss", "reconstruction_loss"}
    np.testing.assert_allclose(to_numpy(terms["loss"]), hand_reconstruction(recon_loss, reduction), rtol=1e-5)


def test_bce_of_saturated_outputs_is_finite_and_clipped_on_both_sides():
    """A sigmoid in float32 reaches exactly 0 and 1: both ends are clipped by epsilon, as TensorFlow and JAX
    do."""
    from keras_vae.losses import reconstruction_loss

    x = np.array([[0.25, 0.75, 0.5, 1.0]], "float32")
    x_hat = np.array([[0.0, 1.0, 1.0, 0.0]], "float32")
    p = np.clip(
        x_hat, np.float32(EPS), np.float32(1 - EPS)
    )  # in float32, as the model computes: 1 - p is 1.19e-7
    expected = -np.sum(x * np.log(p) + (1 - x) * np.log(np.float32(1) - p))
    assert np.isfinite(expected)
    np.testing.assert_allclose(to_numpy(reconstruction_loss(x, x_hat)), [expected], rtol=1e-4)


def test_kl_is_zero_at_the_prior():
    zeros = np.zeros((2, 4), "float32")
    assert to_numpy(loss_terms(X[:2], X_HAT[:2], zeros, zeros)["kl_loss"]) == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"recon_loss": "l1"}, "recon_loss"),
        ({"reduction": "max"}, "reduction"),
        ({"beta": -1.0}, "beta"),
        ({"reconstruction_weight": -0.5}, "reconstruction_weight"),
        ({"kl_warmup_steps": -1}, "kl_warmup_steps"),
        ({"arch": "resnet"}, "arch"),
        ({"latent_dim": 0}, "latent_dim"),
        ({"input_shape": (28, 28)}, "input_shape"),
        ({"model": "gan"}, "model"),
    ],
)
def test_bad_options_raise_value_error_naming_the_option(options, message):
    with pytest.raises(ValueError, match=message):
        keras_vae.build_model(**{"arch": "dense", "input_shape": (8, 8, 1), **options})


def test_evaluates_float64_formulas_are_the_training_losses_own():
    """metrics.py recomputes three of losses.py's terms in NumPy float64 after the model has run; each must be
    the very formula the model trains on."""
    from keras_vae import losses
    from keras_vae.trained import metrics

    rng = np.random.default_rng(3)
    z, mean, log_var = (rng.standard_normal((5, 4)).astype("float32") for _ in range(3))
    tensors = [keras.ops.convert_to_tensor(a) for a in (z, mean, log_var)]
    np.testing.assert_allclose(
        metrics.kl_per_dimension(mean, log_var), to_numpy(losses.kl_per_dimension(*tensors[1:])), rtol=1e-5
    )
    np.testing.assert_allclose(
        metrics.log_normal(z, mean, log_var), to_numpy(losses.log_normal(*tensors)).sum(-1), rtol=1e-5
    )
    x, x_hat = (
        keras.ops.convert_to_tensor(rng.uniform(0.05, 0.95, (3, 4, 4, 1)).astype("float32")) for _ in range(2)
    )
    for recon_loss in ("bce", "mse"):
        summed = to_numpy(losses.reconstruction_loss(x, x_hat, recon_loss, "sum"))
        expected = to_numpy(losses.log_likelihood(x, x_hat, recon_loss))
        np.testing.assert_allclose(
            -summed + metrics.log_likelihood_constant(recon_loss, (4, 4, 1)), expected, rtol=1e-5
        )
