"""The model families, each a subclassed keras.Model with functional encoder and decoder sub-models, their
loss terms written once in keras.ops and trained by the shared per-backend step (keras_vae.backends).

base.py holds what they share and the AE and VAE; variants.py the VAE's variants (IWAE, β-TCVAE, CVAE,
VampPrior VAE);
vqvae.py and quantizer.py the VQ-VAE and its codebook; regularized.py the regularised AE (RAE-L2).
"""

from keras_vae.models.base import VAE, AutoEncoder, Sampling
from keras_vae.models.quantizer import VectorQuantizer
from keras_vae.models.regularized import RAE
from keras_vae.models.variants import CVAE, IWAE, BetaTCVAE, VampVAE
from keras_vae.models.vqvae import VQVAE

__all__ = [
    "RAE",
    "VAE",
    "AutoEncoder",
    "BetaTCVAE",
    "CVAE",
    "IWAE",
    "Sampling",
    "VQVAE",
    "VampVAE",
    "VectorQuantizer",
]
