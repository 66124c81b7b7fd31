"""The model families by name (choices.FAMILIES), and build_model, which makes one of them from a named
architecture."""

from __future__ import annotations

import keras

from keras_vae.architectures import build_decoder, build_encoder, check_architecture
from keras_vae.choices import VARIATIONAL
from keras_vae.models import CVAE, IWAE, RAE, VAE, VQVAE, AutoEncoder, BetaTCVAE, VampVAE

MODELS = {
    "vae": VAE,
    "ae": AutoEncoder,
    "iwae": IWAE,
    "betatc-vae": BetaTCVAE,
    "cvae": CVAE,
    "vq-vae": VQVAE,
    "rae": RAE,
    "vamp-vae": VampVAE,
}


def build_model(
    model: str = "vae",
    arch: str = "conv",
    latent_dim: int = 2,
    input_shape: tuple[int, int, int] = (28, 28, 1),
    seed: int | None = None,
    classes: int = 0,
    embedding_dim: int = 4,
    **loss_options,
) -> keras.Model:
    """A model of one of the MODELS families and a named architecture, ready for compile(optimizer=...) and
    fit(x); a cvae needs the number of classes of its labels, a vq-vae takes the size of its codebook vectors;
    loss_options are the family's own (recon_loss, beta, k, codebook_size, ...)."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {tuple(MODELS)}, got {model!r}")
    if (model == "cvae") != (classes > 0) or classes == 1:
        raise ValueError(
            f"classes must be given for a cvae (2 or more) and only for a cvae, got {classes} for a {model}"
        )
    if embedding_dim < 1:
        raise ValueError(f"embedding_dim must be >= 1, got {embedding_dim}")
    input_shape = tuple(input_shape)
    check_architecture(arch, input_shape, latent_dim)
    latent = "gaussian" if model in VARIATIONAL else "codes" if model == "vq-vae" else "deterministic"
    encoder = build_encoder(arch, input_shape, latent_dim, latent, classes, embedding_dim, seed)
    decoder = build_decoder(
        arch, input_shape, latent_dim, classes, embedding_dim if model == "vq-vae" else None
    )
    return MODELS[model](encoder, decoder, name=model, **loss_options)


def build_options(config, train_images: int, classes: int = 0) -> dict:
    """The keyword arguments build_model takes for the family of a run's options (TrainConfig), beside its
    name, architecture and shapes: the family's build_options, from the options or the data (β-TCVAE's
    estimates need the number of training images, a CVAE the number of classes)."""
    facts = {"dataset_size": train_images, "classes": classes}
    names = ("recon_loss", "reduction", *MODELS[config.model].build_options)
    return {name: facts[name] if name in facts else getattr(config, name) for name in names}
