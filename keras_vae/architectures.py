"""Encoder and decoder sub-models by architecture name: dense, conv, deep-conv.

Each architecture is a pair of functions: a trunk from images to features, and a head
from a latent vector to pixel logits. The latent layers (z, or z_mean, z_log_var and
Sampling) and the final sigmoid are shared by all of them, and compute in float32 whatever
the dtype policy, as Keras's mixed precision guide advises for a model's outputs: the loss
terms then see float32 and the sigmoid keeps its precision near 0 and 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import keras
from keras import layers

from keras_vae.layers import Conv2D, Conv2DTranspose, JoinLabels
from keras_vae.models import Sampling

Shape = tuple[int, int, int]


def _dense_trunk(x):
    x = layers.Flatten()(x)
    return layers.Dense(400, activation="relu")(x)


def _dense_head(z, shape: Shape):
    x = layers.Dense(400, activation="relu")(z)
    x = layers.Dense(math.prod(shape))(x)
    return layers.Reshape(shape)(x)


def _conv_trunk(x):
    """The keras.io VAE example: two stride-2 convolutions and a 16-unit dense layer."""
    x = Conv2D(32, 3, strides=2, padding="same", activation="relu")(x)
    x = Conv2D(64, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Flatten()(x)
    return layers.Dense(16, activation="relu")(x)


def _conv_head(z, shape: Shape):
    x = _dense_to_grid(z, shape, channels=64, activation="relu")
    x = Conv2DTranspose(64, 3, strides=2, padding="same", activation="relu")(x)
    x = Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu")(x)
    x = Conv2DTranspose(shape[2], 3, padding="same")(x)
    return _crop_to(x, shape)


def _deep_conv_trunk(x):
    """Conv, BatchNorm, LeakyReLU and max-pooling blocks, then dense layers with dropout."""
    for filters in (32, 64):
        x = Conv2D(filters, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.LeakyReLU(0.2)(x)
        x = layers.MaxPooling2D(2, padding="same")(x)
    x = layers.Dropout(0.25)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(256)(x)
    x = layers.LeakyReLU(0.2)(x)
    return layers.Dropout(0.25)(x)


def _deep_conv_head(z, shape: Shape):
    x = layers.Dense(256)(z)
    x = layers.LeakyReLU(0.2)(x)
    x = _dense_to_grid(x, shape, channels=64, activation=None)
    x = layers.LeakyReLU(0.2)(x)
    for filters in (64, 32):
        x = Conv2DTranspose(filters, 3, strides=2, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.LeakyReLU(0.2)(x)
    x = Conv2D(shape[2], 3, padding="same")(x)
    return _crop_to(x, shape)


def _dense_to_grid(x, shape: Shape, channels: int, activation: str | None):
    """A dense layer reshaped to a quarter-size grid that two 2x upsamplings bring back to shape."""
    height, width = math.ceil(shape[0] / 4), math.ceil(shape[1] / 4)
    x = layers.Dense(height * width * channels, activation=activation)(x)
    return layers.Reshape((height, width, channels))(x)


def _crop_to(x, shape: Shape):
    """Crop the bottom and right edges an upsampling added beyond the image size."""
    extra_rows, extra_cols = x.shape[1] - shape[0], x.shape[2] - shape[1]
    if extra_rows or extra_cols:
        x = layers.Cropping2D(((0, extra_rows), (0, extra_cols)))(x)
    return x


ARCHITECTURES: dict[str, tuple[Callable, Callable]] = {
    "dense": (_dense_trunk, _dense_head),
    "conv": (_conv_trunk, _conv_head),
    "deep-conv": (_deep_conv_trunk, _deep_conv_head),
}


def check_architecture(arch: str, input_shape: Shape, latent_dim: int) -> None:
    """Raise ValueError naming the first argument a model cannot be built from."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {tuple(ARCHITECTURES)}, got {arch!r}")
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise ValueError(f"input_shape must be (height, width, channels), all >= 1, got {input_shape}")
    if latent_dim < 1:
        raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")


LATENTS = ("deterministic", "gaussian", "codes")
"""What an encoder gives: z (an AE), z_mean, z_log_var and a sampled z (the variational families), or
latent_dim vectors of embedding_dim to quantize (a VQ-VAE)."""


def build_encoder(
    arch: str,
    input_shape: Shape,
    latent_dim: int,
    latent: str = "gaussian",
    classes: int = 0,
    embedding_dim: int = 4,
    seed: int | None = None,
) -> keras.Model:
    """Images (and, with classes, their one-hot labels) to the latent the model's family needs (LATENTS)."""
    trunk, _ = ARCHITECTURES[arch]
    inputs = [keras.Input(shape=input_shape, name="images")]
    if classes:
        inputs.append(keras.Input(shape=(classes,), name="labels"))
    features = trunk(JoinLabels()(inputs) if classes else inputs[0])
    if latent == "deterministic":
        outputs = layers.Dense(latent_dim, name="z", dtype="float32")(features)
    elif latent == "codes":
        vectors = layers.Dense(latent_dim * embedding_dim, dtype="float32")(features)
        outputs = layers.Reshape((latent_dim, embedding_dim), name="z_e", dtype="float32")(vectors)
    else:
        z_mean = layers.Dense(latent_dim, name="z_mean", dtype="float32")(features)
        z_log_var = layers.Dense(latent_dim, name="z_log_var", dtype="float32")(features)
        outputs = [z_mean, z_log_var, Sampling(seed=seed, name="z", dtype="float32")([z_mean, z_log_var])]
    return keras.Model(inputs if classes else inputs[0], outputs, name="encoder")


def build_decoder(
    arch: str, input_shape: Shape, latent_dim: int, classes: int = 0, embedding_dim: int | None = None
) -> keras.Model:
    """Latent vectors (latent_dim of embedding_dim each for a VQ-VAE; with classes, and their one-hot labels)
    to images of input_shape with values in [0, 1]."""
    _, head = ARCHITECTURES[arch]
    inputs = [keras.Input(shape=(latent_dim, embedding_dim) if embedding_dim else (latent_dim,), name="z")]
    if classes:
        inputs.append(keras.Input(shape=(classes,), name="labels"))
    z = layers.Flatten()(inputs[0]) if embedding_dim else inputs[0]
    z = JoinLabels()([z, inputs[1]]) if classes else z
    images = layers.Activation("sigmoid", dtype="float32", name="images")(head(z, tuple(input_shape)))
    return keras.Model(inputs if classes else inputs[0], images, name="decoder")
