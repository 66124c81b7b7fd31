"""What every family shares: the Sampling layer, the KL warm-up, the base model with its sub-models and logged
metrics, and the AutoEncoder and VAE themselves.

The loss terms are computed here once, in keras.ops; the gradient step that uses them comes from
`keras_vae.backends.TrainStep` for the active backend.
"""

from __future__ import annotations

from functools import cached_property

import keras
import numpy as np
from keras import ops

from keras_vae.backends import TrainStep
from keras_vae.losses import check_loss_options, loss_terms


@keras.saving.register_keras_serializable(package="keras_vae")
class Sampling(keras.layers.Layer):
    """The reparameterisation trick: z = mean + exp(log_var / 2) * eps with eps ~ N(0, I)."""

    def __init__(self, seed: int | None = None, **kwargs):  # pragma: no mutate block
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
        """Keep the noise's seed state in .keras and .weights.h5 files (Keras saves a layer's variables, not
        its SeedGenerator's), so a resumed run draws the noise the uninterrupted one would."""
        store["seed_generator_state"] = keras.ops.convert_to_numpy(self.seed_generator.state)

    def load_own_variables(self, store) -> None:
        if "seed_generator_state" in store:  # files written before it was kept have none
            state = self.seed_generator.state
            state.assign(keras.ops.cast(store["seed_generator_state"][...], state.dtype))


class _Autoencoding(TrainStep, keras.Model):
    """What both models share: the sub-models, the reconstruction options and the logged metrics."""

    metric_names: tuple[str, ...] = ("loss", "reconstruction_loss")
    conditional = False
    """Whether the model takes (images, one-hot labels) instead of images."""
    discrete = False
    """Whether its codes are indices into a codebook."""
    variational = False
    """Whether its encoder gives a posterior q(z|x), (z_mean, z_log_var, z), under a prior."""
    learned_prior = False
    """Whether that prior is learned (prior_components), not N(0, I)."""
    classes = 0
    """How many classes a conditional model's labels tell apart."""
    build_options: tuple[str, ...] = ()
    """The options of a run (TrainConfig's, or dataset_size and classes from its data) that build_model takes
    for this family beside recon_loss and reduction."""

    def __init__(
        self,
        encoder: keras.Model,
        decoder: keras.Model,
        recon_loss: str = "bce",
        reduction: str = "sum",
        **kwargs,
    ):  # pragma: no mutate block
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

    def prior_components(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The means and log-variances of a learned Gaussian-mixture prior's components; None for N(0, I) (or
        no prior)."""
        return None

    def prior_draw(self, noise: np.ndarray) -> np.ndarray:
        """Codes of the model's prior made from standard normal noise: the noise itself under N(0, I)."""
        return noise

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
    variational = True
    build_options = ("beta", "reconstruction_weight", "kl_warmup_steps")

    def __init__(
        self,
        encoder: keras.Model,
        decoder: keras.Model,
        recon_loss: str = "bce",
        reduction: str = "sum",
        beta: float = 1.0,
        reconstruction_weight: float = 1.0,
        kl_warmup_steps: int = 0,
        **kwargs,
    ):  # pragma: no mutate block
        check_loss_options(recon_loss, reduction, beta, reconstruction_weight)
        if kl_warmup_steps < 0:
            raise ValueError(f"kl_warmup_steps must be >= 0, got {kl_warmup_steps}")
        kwargs.pop("kl_warmup_epochs", None)  # models saved before the warm-up counted steps: done training
        super().__init__(encoder, decoder, recon_loss, reduction, **kwargs)
        self.beta = beta
        self.reconstruction_weight = reconstruction_weight
        self.kl_warmup_steps = kl_warmup_steps
        self.kl_scale = self.add_weight(
            shape=(), initializer="ones", trainable=False, name="kl_scale"
        )  # kl_weight's last

    def call(self, x, training: bool = False):
        z_mean, _, _ = self.encoder(x, training=training)
        return self.decoder(z_mean, training=training)

    def compute_terms(self, x, training: bool) -> dict:
        z_mean, z_log_var, z = self.encoder(x, training=training)
        return self.elbo_terms(x, self.decoder(z, training=training), z_mean, z_log_var, training)

    def kl_weight(self, training: bool):
        """The KL's share of beta. While training, it ramps up linearly over the first kl_warmup_steps
        optimizer steps, (step + 1) / (kl_warmup_steps + 1), counted in the step itself so it is exact for any
        steps_per_execution, and kept in kl_scale; elsewhere (validation, evaluate) it is whole, so every
        epoch's val_loss is the same objective and the best epoch is chosen like with like."""
        if not training:
            return 1.0
        if self.kl_warmup_steps and self.optimizer is not None:
            step = ops.cast(self.optimizer.iterations, "float32") + 1.0
            self.kl_scale.assign(ops.minimum(1.0, step / (self.kl_warmup_steps + 1)))
        return self.kl_scale.value

    def loss_options(self, training: bool) -> dict:
        """This model's options of the ELBO's terms, the KL weighed by beta as the warm-up scales it."""
        return {
            "recon_loss": self.recon_loss,
            "reduction": self.reduction,
            "beta": self.beta * self.kl_weight(training),
            "reconstruction_weight": self.reconstruction_weight,
        }

    def elbo_terms(self, images, x_hat, z_mean, z_log_var, training: bool) -> dict:
        return loss_terms(images, x_hat, z_mean, z_log_var, **self.loss_options(training))

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "beta": self.beta,
            "reconstruction_weight": self.reconstruction_weight,
            "kl_warmup_steps": self.kl_warmup_steps,
        }
