"""The VAE's variants, each a VAE with another objective or input: IWAE (a tighter bound), β-TCVAE (the KL
split apart) and the conditional VAE."""

from __future__ import annotations

import keras
from keras import ops

from keras_vae.losses import betatc_terms, iwae_terms
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
