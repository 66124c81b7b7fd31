"""The VAE objective, written once in keras.ops so every backend computes the same numbers."""

from __future__ import annotations

import keras
from keras import ops

RECONSTRUCTION_LOSSES = ("bce", "mse")
REDUCTIONS = ("sum", "mean")


def reconstruction_loss(x, x_hat, recon_loss: str = "bce", reduction: str = "sum"):
    """Per-image reconstruction loss: BCE or squared error, summed or averaged over pixels."""
    if recon_loss == "bce":
        # Written out rather than ops.binary_crossentropy: torch's raises on a NaN output instead of returning NaN,
        # and clamps its logarithms differently from TensorFlow and JAX, which clip the output by epsilon as here.
        x_hat = ops.clip(x_hat, keras.config.epsilon(), 1.0 - keras.config.epsilon())
        per_pixel = -ops.add(ops.multiply(x, ops.log(x_hat)), ops.multiply(ops.subtract(1.0, x), ops.log(ops.subtract(1.0, x_hat))))
    else:
        per_pixel = ops.square(ops.subtract(x, x_hat))
    pixel_axes = tuple(range(1, len(per_pixel.shape)))
    reduce = ops.sum if reduction == "sum" else ops.mean
    return reduce(per_pixel, axis=pixel_axes)


def kl_per_dimension(z_mean, z_log_var):
    """KL(N(mean, exp(log_var)) || N(0, 1)) for every latent dimension, in closed form."""
    return 0.5 * (ops.square(z_mean) + ops.exp(z_log_var) - 1.0 - z_log_var)


def loss_terms(
    x,
    x_hat,
    z_mean=None,
    z_log_var=None,
    *,
    recon_loss: str = "bce",
    reduction: str = "sum",
    beta=1.0,
    reconstruction_weight: float = 1.0,
) -> dict:
    """Batch means of every logged term, in float32 whatever the dtype policy; without z_mean (an autoencoder)
    there is no KL."""
    x, x_hat = ops.cast(x, "float32"), ops.cast(x_hat, "float32")
    recon = ops.mean(reconstruction_loss(x, x_hat, recon_loss, reduction))
    if z_mean is None:
        return {"loss": recon, "reconstruction_loss": recon}
    kl = ops.mean(ops.sum(kl_per_dimension(ops.cast(z_mean, "float32"), ops.cast(z_log_var, "float32")), axis=-1))
    return {
        "loss": reconstruction_weight * recon + beta * kl,
        "reconstruction_loss": recon,
        "kl_loss": kl,
    }


def check_loss_options(recon_loss: str, reduction: str, beta: float = 1.0, reconstruction_weight: float = 1.0) -> None:
    """Raise ValueError naming the first option out of range."""
    if recon_loss not in RECONSTRUCTION_LOSSES:
        raise ValueError(f"recon_loss must be one of {RECONSTRUCTION_LOSSES}, got {recon_loss!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    if reconstruction_weight < 0:
        raise ValueError(f"reconstruction_weight must be >= 0, got {reconstruction_weight}")
