"""The VAE's variants, each a VAE with another objective, input or prior: IWAE (a tighter bound), β-TCVAE (the
KL split apart), the conditional VAE and the VampPrior VAE (a prior learned from the encoder)."""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from keras_vae.losses import betatc_terms, iwae_terms, vamp_terms
from keras_vae.models.base import VAE


@keras.saving.register_keras_serializable(package="keras_vae")
class IWAE(VAE):
    """An importance-weighted autoencoder (Burda et al. 2016): a VAE trained on the k-sample
    importance-weighted bound, which is tighter than the ELBO for k > 1 and equals it for k = 1."""

    metric_names = ("loss", "iw_bound", "reconstruction_loss", "kl_loss")
    build_options = ("k",)

    def __init__(
        self,
        encoder: keras.Model,
        decoder: keras.Model,
        recon_loss: str = "bce",
        reduction: str = "sum",
        k: int = 5,
        **kwargs,
    ):  # pragma: no mutate block
        if reduction != "sum":
            raise ValueError(
                f"reduction must be 'sum' for an IWAE (its bound needs log p(x|z)), got {reduction!r}"
            )
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        super().__init__(encoder, decoder, recon_loss, reduction, **kwargs)
        self.k = k

    def compute_terms(self, x, training: bool) -> dict:
        z_mean, z_log_var, _ = self.encoder(x, training=training)
        means, log_vars = ops.repeat(z_mean, self.k, axis=0), ops.repeat(z_log_var, self.k, axis=0)
        noise = keras.random.normal(
            ops.shape(means), dtype=means.dtype, seed=self.encoder.get_layer("z").seed_generator
        )
        z = means + ops.exp(0.5 * log_vars) * noise
        x_hat = self.decoder(z, training=training)
        return iwae_terms(x, x_hat, z, z_mean, z_log_var, k=self.k, recon_loss=self.recon_loss)

    def get_config(self) -> dict:
        return {**super().get_config(), "k": self.k}


@keras.saving.register_keras_serializable(package="keras_vae")
class BetaTCVAE(VAE):
    """β-TCVAE (Chen et al. 2018): a VAE whose KL term is split into mutual information, total correlation and
    dimension-wise KL, weighted by alpha, beta and gamma; a beta above 1 presses the latent dimensions
    apart."""

    metric_names = (
        "loss",
        "reconstruction_loss",
        "kl_loss",
        "mutual_info",
        "total_correlation",
        "dimension_kl",
    )
    build_options = (*VAE.build_options, "alpha", "gamma", "dataset_size")

    def __init__(
        self,
        encoder: keras.Model,
        decoder: keras.Model,
        alpha: float = 1.0,
        gamma: float = 1.0,
        dataset_size: int = 60_000,
        **kwargs,
    ):  # pragma: no mutate block
        if min(alpha, gamma) < 0 or dataset_size < 1:
            raise ValueError(
                f"alpha and gamma must be >= 0 and dataset_size >= 1, got {alpha}, {gamma} and {dataset_size}"
            )
        super().__init__(encoder, decoder, **kwargs)
        self.alpha, self.gamma, self.dataset_size = alpha, gamma, dataset_size

    def compute_terms(self, x, training: bool) -> dict:
        z_mean, z_log_var, z = self.encoder(x, training=training)
        x_hat = self.decoder(z, training=training)
        scale = self.kl_weight(training)
        return betatc_terms(
            x,
            x_hat,
            z,
            z_mean,
            z_log_var,
            dataset_size=self.dataset_size,
            recon_loss=self.recon_loss,
            reduction=self.reduction,
            alpha=self.alpha * scale,
            beta=self.beta * scale,
            gamma=self.gamma * scale,
            reconstruction_weight=self.reconstruction_weight,
        )

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "alpha": self.alpha,
            "gamma": self.gamma,
            "dataset_size": self.dataset_size,
        }


@keras.saving.register_keras_serializable(package="keras_vae")
class CVAE(VAE):
    """A conditional VAE: encoder and decoder both take the one-hot label beside their input, so the latent
    holds what the label does not (the style) and a chosen label decodes to its class. Its input is (images,
    labels)."""

    conditional = True
    build_options = (*VAE.build_options, "classes")

    @property
    def classes(self) -> int:
        return self.decoder.inputs[1].shape[-1]

    def call(self, inputs, training: bool = False):
        images, labels = (ops.convert_to_tensor(a) for a in inputs)
        z_mean, _, _ = self.encoder([images, labels], training=training)
        return self.decoder([z_mean, labels], training=training)

    def compute_terms(self, inputs, training: bool) -> dict:
        images, labels = (ops.convert_to_tensor(a) for a in inputs)
        z_mean, z_log_var, z = self.encoder([images, labels], training=training)
        return self.elbo_terms(
            images, self.decoder([z, labels], training=training), z_mean, z_log_var, training
        )


@keras.saving.register_keras_serializable(package="keras_vae")
class VampVAE(VAE):
    """A VAE with the VampPrior (Tomczak & Welling 2018): its prior is the mixture (1/K) Σ_k q(z | u_k) of the
    encoder's own posteriors at K learned pseudo-inputs u_k (images of the input's shape, pixels clipped to
    [0, 1]), and its KL, which has no closed form, is estimated from the sampled z as log q(z|x) - log p(z),
    as in the paper. prior_components gives the mixture, which its sampler draws from."""

    build_options = (*VAE.build_options, "pseudo_inputs")
    learned_prior = True

    def __init__(self, encoder: keras.Model, decoder: keras.Model, pseudo_inputs: int = 500, **kwargs):
        if pseudo_inputs < 1:
            raise ValueError(f"pseudo_inputs must be >= 1, got {pseudo_inputs}")
        super().__init__(encoder, decoder, **kwargs)
        self.pseudo_inputs = pseudo_inputs
        self.pseudo_pixels = self.add_weight(
            shape=(pseudo_inputs, math.prod(self.image_shape)),
            initializer=keras.initializers.RandomUniform(0.0, 1.0, seed=0),
            name="pseudo_pixels",
        )

    def pseudo_images(self):
        return ops.reshape(ops.clip(self.pseudo_pixels, 0.0, 1.0), (self.pseudo_inputs, *self.image_shape))

    def prior_terms(self, training: bool):
        """The means and log-variances of the prior's K components: the encoder's at the pseudo-inputs."""
        means, log_vars, _ = self.encoder(self.pseudo_images(), training=training)
        return means, log_vars

    def compute_terms(self, x, training: bool) -> dict:
        z_mean, z_log_var, z = self.encoder(x, training=training)
        x_hat = self.decoder(z, training=training)
        prior_means, prior_log_vars = self.prior_terms(training)
        options = self.loss_options(training)
        return vamp_terms(x, x_hat, z, z_mean, z_log_var, prior_means, prior_log_vars, **options)

    def prior_components(self) -> tuple[np.ndarray, np.ndarray]:
        means, log_vars = self.prior_terms(training=False)
        return tuple(np.asarray(ops.convert_to_numpy(a), "float64") for a in (means, log_vars))

    def prior_draw(self, noise: np.ndarray) -> np.ndarray:
        """Codes of the prior from standard normal noise, the i-th from component i mod K."""
        means, log_vars = self.prior_components()
        chosen = np.arange(len(noise)) % self.pseudo_inputs
        return (means[chosen] + np.exp(0.5 * log_vars[chosen]) * noise).astype("float32")

    def get_config(self) -> dict:
        return {**super().get_config(), "pseudo_inputs": self.pseudo_inputs}
