"""The model families by name, and build_model, which makes one of them from a named architecture."""

from __future__ import annotations

import keras

from keras_vae.architectures import build_decoder, build_encoder, check_architecture
from keras_vae.models import IWAE, VAE, AutoEncoder, BetaTCVAE

MODELS = {"vae": VAE, "ae": AutoEncoder, "iwae": IWAE, "betatc-vae": BetaTCVAE}
VARIATIONAL = ("vae", "iwae", "betatc-vae")
"""The models whose encoder gives z_mean, z_log_var and a sampled z."""


def build_model(
    model: str = "vae",
    arch: str = "conv",
    latent_dim: int = 2,
    input_shape: tuple[int, int, int] = (28, 28, 1),
    seed: int | None = None,
    **loss_options,
) -> keras.Model:
    """A model of one of the MODELS families and a named architecture, ready for compile(optimizer=...) and fit(x);
    loss_options are the family's own (recon_loss, beta, k, ...)."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {tuple(MODELS)}, got {model!r}")
    input_shape = tuple(input_shape)
    check_architecture(arch, input_shape, latent_dim)
    encoder = build_encoder(arch, input_shape, latent_dim, variational=model in VARIATIONAL, seed=seed)
    decoder = build_decoder(arch, input_shape, latent_dim)
    return MODELS[model](encoder, decoder, name=model, **loss_options)
