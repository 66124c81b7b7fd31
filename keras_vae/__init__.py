"""keras-vae: autoencoders and variational autoencoders for Keras 3 on TensorFlow, JAX and PyTorch."""

from __future__ import annotations

from keras_vae.architectures import ARCHITECTURES, build_decoder, build_encoder, check_architecture
from keras_vae.losses import loss_terms
from keras_vae.models import VAE, AutoEncoder, KLWarmup, Sampling

__version__ = "0.1.0"

MODELS = {"vae": VAE, "ae": AutoEncoder}


def build_model(
    model: str = "vae",
    arch: str = "conv",
    latent_dim: int = 2,
    input_shape: tuple[int, int, int] = (28, 28, 1),
    seed: int | None = None,
    **loss_options,
) -> VAE | AutoEncoder:
    """An AE or VAE of a named architecture, ready for compile(optimizer=...) and fit(x)."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {tuple(MODELS)}, got {model!r}")
    input_shape = tuple(input_shape)
    check_architecture(arch, input_shape, latent_dim)
    encoder = build_encoder(arch, input_shape, latent_dim, variational=model == "vae", seed=seed)
    decoder = build_decoder(arch, input_shape, latent_dim)
    return MODELS[model](encoder, decoder, name=model, **loss_options)


__all__ = [
    "ARCHITECTURES",
    "MODELS",
    "VAE",
    "AutoEncoder",
    "KLWarmup",
    "Sampling",
    "build_model",
    "loss_terms",
]
