"""The VQ-VAE: a discrete latent of codebook indices, trained with a straight-through gradient."""

from __future__ import annotations

from functools import cached_property

import keras
from keras import ops

from keras_vae.choices import CODEBOOK_UPDATES
from keras_vae.losses import vq_terms
from keras_vae.models.base import _Autoencoding
from keras_vae.models.quantizer import CodebookLookup, DeadCodes, VectorQuantizer


@keras.saving.register_keras_serializable(package="keras_vae")
class VQVAE(_Autoencoding):
    """A VQ-VAE (van den Oord et al. 2017): the encoder's latent_dim vectors are each replaced by the nearest
    of codebook_size codebook vectors, and the decoder's gradient is copied straight through to the encoder.
    Its codes are the indices of those vectors."""

    metric_names = ("loss", "reconstruction_loss", "commitment_loss", "perplexity")
    discrete = True
    build_options = ("codebook_size", "embedding_dim", "commitment", "codebook_update")

    def __init__(
        self,
        encoder: keras.Model,
        decoder: keras.Model,
        recon_loss: str = "bce",
        reduction: str = "sum",
        codebook_size: int = 512,
        commitment: float = 0.25,
        codebook_update: str = "loss",
        ema_decay: float = 0.99,
        **kwargs,
    ):  # pragma: no mutate block
        if codebook_update not in CODEBOOK_UPDATES:
            raise ValueError(f"codebook_update must be one of {CODEBOOK_UPDATES}, got {codebook_update!r}")
        if commitment < 0:
            raise ValueError(f"commitment must be >= 0, got {commitment}")
        super().__init__(encoder, decoder, recon_loss, reduction, **kwargs)
        self.codebook_size, self.commitment, self.codebook_update, self.ema_decay = (
            codebook_size,
            commitment,
            codebook_update,
            ema_decay,
        )
        self.quantizer = VectorQuantizer(
            codebook_size, ema_decay if codebook_update == "ema" else None, name="quantizer"
        )
        self.quantizer.build(encoder.output_shape)
        self.dead_codes = DeadCodes(codebook_size)

    @property
    def metrics(self) -> list:
        return [*self.trackers, self.dead_codes]

    @cached_property
    def means_encoder(self) -> keras.Model:
        images = self.encoder.inputs[0]
        codes, _ = self.quantizer(self.encoder(images))
        return keras.Model(images, codes, name="encode")

    @cached_property
    def code_decoder(self) -> keras.Model:
        codes = keras.Input(self.encoder.output_shape[1:-1], dtype="int32", name="codes")
        return keras.Model(codes, self.decoder(CodebookLookup(self.quantizer)(codes)), name="decode")

    def call(self, x, training: bool = False):
        _, z_q = self.quantizer(self.encoder(x, training=training))
        return self.decoder(z_q, training=training)

    def compute_terms(self, x, training: bool) -> dict:
        z_e = self.encoder(x, training=training)
        codes, z_q = self.quantizer(z_e, training=training)
        x_hat = self.decoder(z_e + ops.stop_gradient(z_q - z_e), training=training)
        return vq_terms(
            x,
            x_hat,
            z_e,
            z_q,
            codes,
            codebook_size=self.codebook_size,
            commitment=self.commitment,
            train_codebook=self.codebook_update == "loss",
            recon_loss=self.recon_loss,
            reduction=self.reduction,
        )

    def update_trackers(self, terms: dict, batch_size) -> dict:
        self.dead_codes.update_state(terms["code_counts"])
        return {**super().update_trackers(terms, batch_size), "dead_codes": self.dead_codes.result()}

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "codebook_size": self.codebook_size,
            "commitment": self.commitment,
            "codebook_update": self.codebook_update,
            "ema_decay": self.ema_decay,
        }
