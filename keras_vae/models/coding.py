"""A trained model's deterministic codes and their decoding, as NumPy arrays in batches: what the snapshots
taken while training and everything that reads a trained run (keras_vae.trained, serve) encode and decode
with."""

from __future__ import annotations

import numpy as np

PREDICT_BATCH = 256


def conditioned(model, x: np.ndarray, labels: np.ndarray | None):
    """x as a model's encoder or decoder takes it: for a conditional model, beside its labels one-hot."""
    if not model.conditional:
        return x
    return [x, np.eye(model.classes, dtype="float32")[np.asarray(labels, "int64")]]


def encode_means(
    model, images: np.ndarray, labels: np.ndarray | None = None, batch_size: int = PREDICT_BATCH
) -> np.ndarray:
    """The deterministic codes of images: z_mean of the variational families, z of an AE, the code indices of
    a VQ-VAE; a CVAE's under the images' labels."""
    return np.asarray(
        model.means_encoder.predict(conditioned(model, images, labels), batch_size=batch_size, verbose=0)
    )


def decode(
    model, z: np.ndarray, labels: np.ndarray | None = None, batch_size: int = PREDICT_BATCH
) -> np.ndarray:
    """Images decoded from codes (encode_means'); a CVAE's under labels, one per code."""
    return np.asarray(
        model.code_decoder.predict(conditioned(model, z, labels), batch_size=batch_size, verbose=0)
    )


def cycled(classes: int, n: int) -> np.ndarray:
    """n labels going through the classes in turn."""
    return np.arange(n) % classes
