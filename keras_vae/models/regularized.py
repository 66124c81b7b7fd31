"""The regularised autoencoder RAE-L2 (Ghosh et al. 2020, "From Variational to Deterministic Autoencoders"): a
deterministic AE whose codes are kept near the origin by an L2 penalty and whose decoder is kept smooth by
weight decay, sampled after training by a density fitted on its codes (the Gaussian mixture by default)."""

from __future__ import annotations

import keras
from keras import ops

from keras_vae.losses import loss_terms
from keras_vae.models.base import AutoEncoder


@keras.saving.register_keras_serializable(package="keras_vae")
class RAE(AutoEncoder):
    """loss = reconstruction + embedding_weight * |z|² / 2 + decoder_decay * |θ_decoder|² / 2, the last the
    coupled weight decay (L2 in the gradient) that pythae's RAE_L2 gives its decoder's optimizer; pythae's
    weights by default."""

    metric_names = ("loss", "reconstruction_loss", "embedding_loss")
    build_options = ("embedding_weight", "decoder_decay")

    def __init__(
        self,
        encoder: keras.Model,
        decoder: keras.Model,
        embedding_weight: float = 1e-4,
        decoder_decay: float = 1e-7,
        **kwargs,
    ):  # pragma: no mutate block
        for name, value in (("embedding_weight", embedding_weight), ("decoder_decay", decoder_decay)):
            if not 0 <= value < float("inf"):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        super().__init__(encoder, decoder, **kwargs)
        self.embedding_weight, self.decoder_decay = embedding_weight, decoder_decay

    def compute_terms(self, x, training: bool) -> dict:
        z = self.encoder(x, training=training)
        terms = loss_terms(
            x, self.decoder(z, training=training), recon_loss=self.recon_loss, reduction=self.reduction
        )
        embedding = ops.mean(0.5 * ops.sum(ops.square(ops.cast(z, "float32")), axis=-1))
        decay = sum(
            ops.sum(ops.square(ops.cast(weight, "float32"))) for weight in self.decoder.trainable_weights
        )
        loss = terms["loss"] + self.embedding_weight * embedding + 0.5 * self.decoder_decay * decay
        return {**terms, "loss": loss, "embedding_loss": embedding}

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "embedding_weight": self.embedding_weight,
            "decoder_decay": self.decoder_decay,
        }
