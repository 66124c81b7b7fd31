"""Where new codes come from, kept apart from the models as pythae keeps its samplers: each sampler is fitted
on a trained model's codes (`fit`), then draws codes its decoder takes (`sample`); its `description` says, in
words, what it draws from. keras_vae.trained.LoadedRun picks one by name (choices.SAMPLERS) and fits it on the
run's training codes.

base.py: what every sampler offers. normal.py: a variational model's prior, N(0, I) or a VampPrior.
mixture.py: a Gaussian mixture of the training codes (an AE's, which has no prior). codes.py: a VQ-VAE's codes
from their frequencies. pixelcnn.py: the learned PixelCNN prior over a VQ-VAE's codes, its training and its
sampler. flow.py: the learned RealNVP flow over a continuous model's codes, its training and its sampler.
"""

from keras_vae.samplers.base import Sampler
from keras_vae.samplers.codes import CodeFrequencySampler
from keras_vae.samplers.flow import FlowSampler
from keras_vae.samplers.mixture import MixtureSampler
from keras_vae.samplers.normal import NormalSampler, PseudoInputSampler
from keras_vae.samplers.pixelcnn import PixelCNNSampler

__all__ = [
    "CodeFrequencySampler",
    "FlowSampler",
    "MixtureSampler",
    "NormalSampler",
    "PixelCNNSampler",
    "PseudoInputSampler",
    "Sampler",
]
