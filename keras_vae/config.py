"""Every option of a training run in one dataclass, checked once and saved as config.json."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from keras_vae.errors import KerasVAEError


class ConfigError(KerasVAEError):
    """An option is out of range."""


CROPS = ("none", "center")
DTYPE_POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")

@dataclass
class TrainConfig:
    dataset: str = "mnist"
    data_dir: str | None = None
    val_fraction: float = 0.1
    image_size: list[int] | None = None
    crop: str = "none"
    channels: int | None = None
    model: str = "vae"
    arch: str = "conv"
    latent_dim: int = 2
    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = 1e-3
    recon_loss: str = "bce"
    reduction: str = "sum"
    beta: float = 1.0
    reconstruction_weight: float = 1.0
    kl_warmup: int = 0
    seed: int = 0
    distribute: bool = False
    dtype_policy: str = "float32"
    steps_per_execution: int = 1

    def __post_init__(self) -> None:
        from keras_vae.architectures import ARCHITECTURES
        from keras_vae.losses import RECONSTRUCTION_LOSSES, REDUCTIONS

        checks = [
            (self.model in ("vae", "ae"), "--model must be vae, ae or both"),
            (self.arch in ARCHITECTURES, f"--arch must be one of {', '.join(ARCHITECTURES)}"),
            (self.latent_dim >= 1, "--latent-dim must be >= 1"),
            (self.epochs >= 1, "--epochs must be >= 1"),
            (self.batch_size >= 1, "--batch-size must be >= 1"),
            (0 < self.learning_rate < math.inf, "--learning-rate must be a finite number > 0"),
            (self.recon_loss in RECONSTRUCTION_LOSSES, f"--recon-loss must be one of {', '.join(RECONSTRUCTION_LOSSES)}"),
            (self.reduction in REDUCTIONS, f"--reduction must be one of {', '.join(REDUCTIONS)}"),
            (0 <= self.beta < math.inf, "--beta must be a finite number >= 0"),
            (0 <= self.reconstruction_weight < math.inf, "--reconstruction-weight must be a finite number >= 0"),
            (self.kl_warmup >= 0, "--kl-warmup must be >= 0"),
            (0 < self.val_fraction < 1, "--val-fraction must lie strictly between 0 and 1"),
            (self.crop in CROPS, f"--crop must be one of {', '.join(CROPS)}"),
            (self.dtype_policy in DTYPE_POLICIES, f"--dtype-policy must be one of {', '.join(DTYPE_POLICIES)}"),
            (self.steps_per_execution >= 1, "--steps-per-execution must be >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        self.image_options  # ImageOptions checks --image-size and --channels

    @property
    def image_options(self):
        """How train shapes the images: data.ImageOptions."""
        from keras_vae.data import ImageOptions

        size = tuple(self.image_size) if self.image_size else None
        return ImageOptions(size, self.crop == "center", self.channels)

    @property
    def loss_options(self) -> dict:
        """The keyword arguments build_model takes for this kind of model."""
        options = {"recon_loss": self.recon_loss, "reduction": self.reduction}
        if self.model == "vae":
            options |= {"beta": self.beta, "reconstruction_weight": self.reconstruction_weight, "kl_warmup_epochs": self.kl_warmup}
        return options

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, options: dict) -> TrainConfig:
        names = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in options.items() if key in names})
