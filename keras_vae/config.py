"""Every option of a training run in one dataclass, checked once and saved as config.json."""

from __future__ import annotations

import math
import types
import typing
from dataclasses import asdict, dataclass, fields, replace

from keras_vae.choices import (
    ARCHITECTURES,
    CODEBOOK_UPDATES,
    CROPS,
    DTYPE_POLICIES,
    FAMILIES,
    LR_SCHEDULES,
    RECONSTRUCTION_LOSSES,
    REDUCTIONS,
    SINGLE_PROCESS,
    SUMMED_ONLY,
)
from keras_vae.errors import ConfigError

__all__ = ["ConfigError", "TrainConfig"]

SHORTEST_WARMUP = 250
"""The fewest steps the default KL warm-up takes (half of a shorter run): a conv VAE of 2 epochs on MNIST
whose warm-up was a sixth of its 282 steps collapsed on JAX (docs/defaults.md)."""


def default_warmup(total_steps: int) -> int:
    """The default KL warm-up of a run of total_steps: a sixth of it, but at least SHORTEST_WARMUP steps, or
    half the run when that is shorter."""
    return max(round(total_steps / 6), min(total_steps // 2, SHORTEST_WARMUP))


@dataclass
class TrainConfig:
    dataset: str | None = "mnist"
    """A tensorflow-datasets name, or None where the images come from data_dir."""
    data_dir: str | None = None
    val_fraction: float = 0.1
    image_size: list[int] | None = None
    crop: str = "none"
    channels: int | None = None
    model: str = "vae"
    arch: str = "dense"
    latent_dim: int = 2
    epochs: int | None = None
    """None: as many epochs as `steps` optimizer steps take (resolved once the data is known)."""
    steps: int = 4000
    batch_size: int = 64
    learning_rate: float = 3e-3
    lr_schedule: str = "cosine"
    """cosine: from learning_rate down to 0 over the run's steps (Keras's CosineDecay); constant:
    learning_rate."""
    recon_loss: str = "bce"
    reduction: str = "sum"
    beta: float = 1.0
    reconstruction_weight: float = 1.0
    kl_warmup_steps: int | None = None
    """Optimizer steps over which the KL weight ramps up; None: default_warmup of the run's steps (resolved
    with the epochs). At most the run's steps, so the KL reaches its full weight."""
    seed: int = 0
    distribute: bool = False
    dtype_policy: str = "float32"
    steps_per_execution: int = 1
    k: int = 5
    """IWAE: importance samples per image in the training bound."""
    alpha: float = 1.0
    gamma: float = 1.0
    """β-TCVAE: the weights of the mutual information and the dimension-wise KL (beta weighs the total
    correlation)."""
    pseudo_inputs: int = 500
    """VampPrior VAE: the learned pseudo-inputs whose posteriors make its prior (the paper's 500)."""
    embedding_weight: float = 1e-4
    decoder_decay: float = 1e-7
    """RAE: the weights of the L2 penalty on the codes and of the decoder's weight decay (pythae's
    defaults)."""
    codebook_size: int = 512
    embedding_dim: int = 4
    commitment: float = 0.25
    codebook_update: str = "loss"
    """VQ-VAE: latent_dim codes, each one of codebook_size vectors of embedding_dim; the commitment weight;
    the codebook trained by its loss or moved by EMA."""

    def __post_init__(self) -> None:
        self.check_types()
        checks = [
            (
                "dataset",
                (self.dataset is None) != (self.data_dir is None),
                "or data_dir must be given, not both",
            ),
            ("model", self.model in FAMILIES, f"must be one of {', '.join(FAMILIES)}"),
            ("arch", self.arch in ARCHITECTURES, f"must be one of {', '.join(ARCHITECTURES)}"),
            ("latent_dim", self.latent_dim >= 1, "must be >= 1"),
            ("epochs", self.epochs is None or self.epochs >= 1, "must be >= 1"),
            ("steps", self.steps >= 1, "must be >= 1"),
            ("lr_schedule", self.lr_schedule in LR_SCHEDULES, f"must be one of {', '.join(LR_SCHEDULES)}"),
            ("batch_size", self.batch_size >= 1, "must be >= 1"),
            ("learning_rate", 0 < self.learning_rate < math.inf, "must be a finite number > 0"),
            (
                "recon_loss",
                self.recon_loss in RECONSTRUCTION_LOSSES,
                f"must be one of {', '.join(RECONSTRUCTION_LOSSES)}",
            ),
            ("reduction", self.reduction in REDUCTIONS, f"must be one of {', '.join(REDUCTIONS)}"),
            ("beta", 0 <= self.beta < math.inf, "must be a finite number >= 0"),
            (
                "reconstruction_weight",
                0 <= self.reconstruction_weight < math.inf,
                "must be a finite number >= 0",
            ),
            ("kl_warmup_steps", self.kl_warmup_steps is None or self.kl_warmup_steps >= 0, "must be >= 0"),
            ("val_fraction", 0 < self.val_fraction < 1, "must lie strictly between 0 and 1"),
            ("crop", self.crop in CROPS, f"must be one of {', '.join(CROPS)}"),
            (
                "dtype_policy",
                self.dtype_policy in DTYPE_POLICIES,
                f"must be one of {', '.join(DTYPE_POLICIES)}",
            ),
            ("steps_per_execution", self.steps_per_execution >= 1, "must be >= 1"),
            ("k", self.k >= 1, "must be >= 1"),
            ("alpha", 0 <= self.alpha < math.inf, "must be a finite number >= 0"),
            ("gamma", 0 <= self.gamma < math.inf, "must be a finite number >= 0"),
            (
                "reduction",
                self.model not in SUMMED_ONLY or self.reduction == "sum",
                f"must be sum for an {self.model}: its bound needs log p(x|z)",
            ),
            ("pseudo_inputs", self.pseudo_inputs >= 1, "must be >= 1"),
            ("embedding_weight", 0 <= self.embedding_weight < math.inf, "must be a finite number >= 0"),
            ("decoder_decay", 0 <= self.decoder_decay < math.inf, "must be a finite number >= 0"),
            ("codebook_size", self.codebook_size >= 2, "must be >= 2"),
            ("embedding_dim", self.embedding_dim >= 1, "must be >= 1"),
            ("commitment", 0 <= self.commitment < math.inf, "must be a finite number >= 0"),
            (
                "codebook_update",
                self.codebook_update in CODEBOOK_UPDATES,
                f"must be one of {', '.join(CODEBOOK_UPDATES)}",
            ),
            (
                "distribute",
                not (self.distribute and self.model in SINGLE_PROCESS),
                f"is not for a {self.model}, whose codebook and code counts each process would keep apart",
            ),
        ]
        for parameter, ok, problem in checks:
            if not ok:
                raise ConfigError(f"{parameter} {problem}, got {getattr(self, parameter)!r}", parameter)
        self.image_options  # ImageOptions checks image_size and channels

    def check_types(self) -> None:
        """Each option of the type its field declares (an int may stand for a float; a bool is no number): a
        config.json edited by hand can hold anything."""
        hints = typing.get_type_hints(type(self))
        for field in fields(self):
            value, hint = getattr(self, field.name), hints[field.name]
            allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
            origins = {typing.get_origin(kind) or kind for kind in allowed} | (
                {int} if float in allowed else set()
            )
            if isinstance(value, bool) and bool not in origins or not isinstance(value, tuple(origins)):
                wanted = " or ".join(kind.__name__ for kind in allowed).replace("NoneType", "null")
                raise ConfigError(f"{field.name} must be {wanted}, got {value!r}", field.name)
            if isinstance(value, list) and not all(
                isinstance(item, int) and not isinstance(item, bool) for item in value
            ):
                raise ConfigError(f"{field.name} must be a list of integers, got {value!r}", field.name)

    @property
    def image_options(self):
        """How train shapes the images: data.ImageOptions."""
        from keras_vae.data import ImageOptions

        size = tuple(self.image_size) if self.image_size else None
        return ImageOptions(size, self.crop == "center", self.channels)

    def steps_per_epoch(self, train_images: int) -> int:
        return math.ceil(train_images / self.batch_size)

    def total_steps(self, train_images: int) -> int:
        """The optimizer steps of the whole run."""
        return self.resolved(train_images).epochs * self.steps_per_epoch(train_images)

    def resolved(self, train_images: int) -> TrainConfig:
        """This config with its epochs set (as given, else the fewest whole epochs that hold `steps` steps)
        and its KL warm-up in steps (as given, else default_warmup); a warm-up longer than the run, which
        would leave the KL below its full weight to the end, is refused."""
        epochs = self.epochs or math.ceil(self.steps / self.steps_per_epoch(train_images))
        total = epochs * self.steps_per_epoch(train_images)
        warmup = default_warmup(total) if self.kl_warmup_steps is None else self.kl_warmup_steps
        if warmup > total:
            raise ConfigError(
                f"kl_warmup_steps {warmup:,} is longer than the run's {total:,} steps ({epochs} epochs of "
                f"{self.steps_per_epoch(train_images):,}), so the KL would never reach its full weight: "
                f"give at most {total:,}",
                "kl_warmup_steps",
            )
        return replace(self, epochs=epochs, kl_warmup_steps=warmup)

    def learning_rate_of(self, train_images: int):
        """What the optimizer takes as its learning rate: a number, or a cosine decay over the run's steps."""
        import keras

        if self.lr_schedule == "constant":
            return self.learning_rate
        total = self.total_steps(train_images)
        return keras.optimizers.schedules.CosineDecay(self.learning_rate, decay_steps=total)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, options: dict) -> TrainConfig:
        """A config.json's options; runs written before dataset became None beside data_dir read as if it
        were, and those written before the learning-rate schedule as the constant rate they trained with."""
        names = {field.name for field in fields(cls)}
        options = {"lr_schedule": "constant"} | {key: value for key, value in options.items() if key in names}
        if options.get("data_dir") is not None:
            options["dataset"] = None
        return cls(**options)
