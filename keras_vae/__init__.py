"""keras-vae: autoencoders and variational autoencoders for Keras 3 on TensorFlow, JAX and PyTorch.

Importing keras_vae imports Keras and registers the model classes, so `keras.saving.load_model` reads the
.keras files keras-vae writes. `python -m keras_vae` is the exception: while Python finds the package to run,
sys.argv[0] is "-m", and Keras waits until the command's --backend has chosen the backend; the public names
below then load on first use.
"""

from __future__ import annotations

import importlib
import sys

__version__ = "0.1.0"

PUBLIC = {
    "ARCHITECTURES": "keras_vae.architectures",
    "MODELS": "keras_vae.families",
    "VARIATIONAL": "keras_vae.families",
    "build_model": "keras_vae.families",
    "loss_terms": "keras_vae.losses",
    **dict.fromkeys(("VAE", "AutoEncoder", "IWAE", "BetaTCVAE", "CVAE", "VQVAE", "Sampling"), "keras_vae.models"),
    "VectorQuantizer": "keras_vae.models",
}
__all__ = sorted(PUBLIC)


def __getattr__(name: str):
    """A public name, imported (with Keras) on first use."""
    if name not in PUBLIC:
        raise AttributeError(f"module 'keras_vae' has no attribute {name!r}")
    return getattr(importlib.import_module(PUBLIC[name]), name)


if sys.argv[:1] != ["-m"]:
    importlib.import_module("keras_vae.families")
