"""keras-vae: autoencoders and variational autoencoders for Keras 3 on TensorFlow, JAX and PyTorch.

Importing keras_vae imports Keras and registers the model classes, so `keras.saving.load_model` reads the
.keras files keras-vae writes. The keras-vae command is the exception (command_line_starting): it reads
keras_vae.choices before its --backend has chosen Keras's backend, so Keras waits; the public names below then
load on first use.
"""

from __future__ import annotations

import importlib
import sys

__version__ = "0.1.0"

PUBLIC = {
    "ARCHITECTURES": "keras_vae.architectures",
    "MODELS": "keras_vae.models.registry",
    "VARIATIONAL": "keras_vae.models.registry",
    "build_model": "keras_vae.models.registry",
    "loss_terms": "keras_vae.losses",
    **dict.fromkeys(
        ("VAE", "AutoEncoder", "IWAE", "BetaTCVAE", "CVAE", "VQVAE", "Sampling"), "keras_vae.models"
    ),
    "VectorQuantizer": "keras_vae.models",
}
__all__ = sorted(PUBLIC)


def __getattr__(name: str):
    """A public name, imported (with Keras) on first use."""
    if name not in PUBLIC:
        raise AttributeError(f"module 'keras_vae' has no attribute {name!r}")
    return getattr(importlib.import_module(PUBLIC[name]), name)


def command_line_starting() -> bool:
    """Whether the keras-vae command is importing the package before Keras: its cli package is imported, or
    Python is finding the package for `python -m keras_vae` (sys.argv[0] is "-m" meanwhile). Once Keras is
    imported, its backend is chosen and the models register at once."""
    return "keras" not in sys.modules and ("cli" in sys.modules or sys.argv[:1] == ["-m"])


if not command_line_starting():
    importlib.import_module("keras_vae.models.registry")
