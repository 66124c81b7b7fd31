"""AutoEncoder and VAE: subclassed keras.Models with encoder and decoder sub-models.

The loss terms are computed here once, in keras.ops; the gradient step that uses them
comes from `keras_vae.backends.TrainStep` for the active backend.
"""

from __future__ import annotations

from functools import cached_property

import keras
from keras import ops

from keras_vae.backends import TrainStep
from keras_vae.losses import betatc_terms, check_loss_options, iwae_terms, loss_terms, vq_terms
from keras_vae.quantizer import CODEBOOK_UPDATES, CodebookLookup, DeadCodes, VectorQuantizer


@keras.saving.register_keras_serializable(package="keras_vae")
class Sampling(keras.layers.Layer):
    """The reparameterisation trick: z = mean + exp(log_var / 2) * eps with eps ~ N(0, I)."""

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        eps = keras.random.normal(ops.shape(z_mean), dtype=z_mean.dtype, seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * eps

    def get_config(self) -> dict:
        return {**super().get_config(), "seed": self.seed}

    def save_own_variables(self, store) -> None:
        """Keep the noise's seed state in .keras and .weights.h5 files (Keras saves a layer's variables, not its
        SeedGenerator's), so a resumed run draws the noise the uninterrupted one would."""
        store["seed_generator_state"] = keras.ops.convert_to_numpy(self.seed_generator.state)

    def load_own_variables(self, store) -> None:
        if "seed_generator_state" in store:  # files written before it was kept have none
            state = self.seed_generator.state
            state.assign(keras.ops.cast(store["seed_generator_state"][...], state.dtype))


class KLWarmup(keras.callbacks.Callback):
    """Ramps the KL weight linearly: beta * (epoch + 1) / (N + 1) for the first N epochs, then beta."""

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        warmup = self.model.kl_warmup_epochs
        self.model.kl_scale.assign(min(1.0, (epoch + 1) / (warmup + 1)))


class _Autoencoding(TrainStep, keras.Model):
    """What both models share: the sub-models, the reconstruction options and the logged metrics."""

    metric_names: tuple[str, ...] = ("loss", "reconstruction_loss")
    conditional = False
    """Whether the model takes (images, one-hot labels) instead of images."""
    discrete = False
    """Whether its codes are indices into a codebook."""
    classes = 0
    """How many classes a conditional model's labels tell apart."""

    def __init__(self, encoder: keras.Model, decoder: keras.Model, recon_loss: str = "bce", reduction: str = "sum", **kwargs):
        check_loss_options(recon_loss, reduction)
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.recon_loss = recon_loss
        self.reduction = reduction
        self.trackers = [keras.metrics.Mean(name=name) for name in self.metric_names]
        # The functional sub-models hold every layer and are built already; so is this model,
        # which lets load_model rebuild the optimizer and restore its state.
        self.built = True

    @property
    def metrics(self) -> list:
        return self.trackers

    @property
    def latent_dim(self) -> int:
        return keras.tree.flatten(self.decoder.inputs)[0].shape[1]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(keras.tree.flatten(self.encoder.inputs)[0].shape[1:])

    @cached_property
    def means_encoder(self) -> keras.Model:
        """The encoder's deterministic code: z for an AE, z_mean for the variational families."""
        outputs = self.encoder.outputs
        return self.encoder if len(outputs) == 1 else keras.Model(self.encoder.inputs, outputs[0])

    @cached_property
    def code_decoder(self) -> keras.Model:
        """What decodes the codes means_encoder gives."""
        return self.decoder

    def update_trackers(self, terms: dict, batch_size) -> dict:
        """Add one batch's terms to the epoch means, weighted by batch size; return the means."""
        for tracker in self.trackers:
            tracker.update_state(terms[tracker.name], sample_weight=batch_size)
        return {tracker.name: tracker.result() for tracker in self.trackers}

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "recon_loss": self.recon_loss,
            "reduction": self.reduction,
        }

    def compile_from_config(self, config: dict) -> None:
        """Compile as saved, but let this backend choose jit_compile: Keras saves the trainer's resolved
        value, and a JAX run's True would switch on torch.compile when the file loads under torch."""
        super().compile_from_config({**config, "jit_compile": "auto"})

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        encoder = keras.saving.deserialize_keras_object(config.pop("encoder"))
        decoder = keras.saving.deserialize_keras_object(config.pop("decoder"))
        return cls(encoder, decoder, **config)


@keras.saving.register_keras_serializable(package="keras_vae")
class AutoEncoder(_Autoencoding):
    """A deterministic autoencoder: encoder(x) is z, the loss is reconstruction alone."""

    def call(self, x, training: bool = False):
        return self.decoder(self.encoder(x, training=training), training=training)

    def compute_terms(self, x, training: bool) -> dict:
        x_hat = self(x, training=training)
        return loss_terms(x, x_hat, recon_loss=self.recon_loss, reduction=self.reduction)


@keras.saving.register_keras_serializable(package="keras_vae")
class VAE(_Autoencoding):
    """A variational autoencoder: encoder(x) is (z_mean, z_log_var, z); call(x) decodes z_mean."""

    metric_names = ("loss", "reconstruction_loss", "kl_loss")

    def __init__(
        self,
        encoder: keras.Model,
        decoder: keras.Model,
        recon_loss: str = "bce",
        reduction: str = "sum",
        beta: float = 1.0,
        reconstruction_weight: float = 1.0,
        kl_warmup_epochs: int = 0,
        **kwargs,
    ):
        check_loss_options(recon_loss, reduction, beta, reconstruction_weight)
        if kl_warmup_epochs < 0:
            raise ValueError(f"kl_warmup_epochs must be >= 0, got {kl_warmup_epochs}")
        super().__init__(encoder, decoder, recon_loss, reduction, **kwargs)
        self.beta = beta
        self.reconstruction_weight = reconstruction_weight
        self.kl_warmup_epochs = kl_warmup_epochs
        self.kl_scale = self.add_weight(
            shape=(), initializer="ones", trainable=False, name="kl_scale"
        )

    def call(self, x, training: bool = False):
        z_mean, _, _ = self.encoder(x, training=training)
        return self.decoder(z_mean, training=training)

    def compute_terms(self, x, training: bool) -> dict:
        z_mean, z_log_var, z = self.encoder(x, training=training)
        x_hat = self.decoder(z, training=training)
        return loss_terms(
            x,
            x_hat,
            z_mean,
            z_log_var,
            recon_loss=self.recon_loss,
            reduction=self.reduction,
            beta=self.beta * self.kl_scale.value,
            reconstruction_weight=self.reconstruction_weight,
        )

    def fit(self, *args, callbacks=None, **kwargs):
        if self.kl_warmup_epochs:
            callbacks = [*(callbacks or []), KLWarmup()]
        return super().fit(*args, callbacks=callbacks, **kwargs)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "beta": self.beta,
            "reconstruction_weight": self.reconstruction_weight,
            "kl_warmup_epochs": self.kl_warmup_epochs,
        }


@keras.saving.register_keras_serializable(package="keras_vae")
class IWAE(VAE):
    """An importance-weighted autoencoder (Burda et al. 2016): a VAE trained on the k-sample importance-weighted
    bound, which is tighter than the ELBO for k > 1 and equals it for k = 1."""

    metric_names = ("loss", "iw_bound", "reconstruction_loss", "kl_loss")

    def __init__(self, encoder: keras.Model, decoder: keras.Model, recon_loss: str = "bce", reduction: str = "sum", k: int = 5, **kwargs):
        if reduction != "sum":
            raise ValueError(f"reduction must be 'sum' for an IWAE (its bound needs log p(x|z)), got {reduction!r}")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        super().__init__(encoder, decoder, recon_loss, reduction, **kwargs)
        self.k = k

    def compute_terms(self, x, training: bool) -> dict:
        z_mean, z_log_var, _ = self.encoder(x, training=training)
        means, log_vars = ops.repeat(z_mean, self.k, axis=0), ops.repeat(z_log_var, self.k, axis=0)
        noise = keras.random.normal(ops.shape(means), dtype=means.dtype, seed=self.encoder.get_layer("z").seed_generator)
        z = means + ops.exp(0.5 * log_vars) * noise
        x_hat = self.decoder(z, training=training)
        return iwae_terms(x, x_hat, z, z_mean, z_log_var, k=self.k, recon_loss=self.recon_loss)

    def get_config(self) -> dict:
        return {**super().get_config(), "k": self.k}


@keras.saving.register_keras_serializable(package="keras_vae")
class BetaTCVAE(VAE):
    """β-TCVAE (Chen et al. 2018): a VAE whose KL term is split into mutual information, total correlation and
    dimension-wise KL, weighted by alpha, beta and gamma; a beta above 1 presses the latent dimensions apart."""

    metric_names = ("loss", "reconstruction_loss", "kl_loss", "mutual_info", "total_correlation", "dimension_kl")

    def __init__(self, encoder: keras.Model, decoder: keras.Model, alpha: float = 1.0, gamma: float = 1.0, dataset_size: int = 60_000, **kwargs):
        if min(alpha, gamma) < 0 or dataset_size < 1:
            raise ValueError(f"alpha and gamma must be >= 0 and dataset_size >= 1, got {alpha}, {gamma} and {dataset_size}")
        super().__init__(encoder, decoder, **kwargs)
        self.alpha, self.gamma, self.dataset_size = alpha, gamma, dataset_size

    def compute_terms(self, x, training: bool) -> dict:
        z_mean, z_log_var, z = self.encoder(x, training=training)
        x_hat = self.decoder(z, training=training)
        scale = self.kl_scale.value
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
        return {**super().get_config(), "alpha": self.alpha, "gamma": self.gamma, "dataset_size": self.dataset_size}


@keras.saving.register_keras_serializable(package="keras_vae")
class CVAE(VAE):
    """A conditional VAE: encoder and decoder both take the one-hot label beside their input, so the latent holds
    what the label does not (the style) and a chosen label decodes to its class. Its input is (images, labels)."""

    conditional = True

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
        x_hat = self.decoder([z, labels], training=training)
        return loss_terms(
            images,
            x_hat,
            z_mean,
            z_log_var,
            recon_loss=self.recon_loss,
            reduction=self.reduction,
            beta=self.beta * self.kl_scale.value,
            reconstruction_weight=self.reconstruction_weight,
        )


@keras.saving.register_keras_serializable(package="keras_vae")
class VQVAE(_Autoencoding):
    """A VQ-VAE (van den Oord et al. 2017): the encoder's latent_dim vectors are each replaced by the nearest of
    codebook_size codebook vectors, and the decoder's gradient is copied straight through to the encoder.
    Its codes are the indices of those vectors."""

    metric_names = ("loss", "reconstruction_loss", "commitment_loss", "perplexity")
    discrete = True

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
    ):
        if codebook_update not in CODEBOOK_UPDATES:
            raise ValueError(f"codebook_update must be one of {CODEBOOK_UPDATES}, got {codebook_update!r}")
        if commitment < 0:
            raise ValueError(f"commitment must be >= 0, got {commitment}")
        super().__init__(encoder, decoder, recon_loss, reduction, **kwargs)
        self.codebook_size, self.commitment, self.codebook_update, self.ema_decay = codebook_size, commitment, codebook_update, ema_decay
        self.quantizer = VectorQuantizer(codebook_size, ema_decay if codebook_update == "ema" else None, name="quantizer")
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
