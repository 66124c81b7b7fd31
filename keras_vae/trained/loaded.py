"""A trained run loaded from its folder: model.keras, config.json and the fixed validation subset training
saved in snapshots/fixed.npz, checked against each other; its codes, its decoding under a label, its samplers,
and its data reloaded as training had it."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import keras
import numpy as np

from keras_vae.choices import SAMPLERS
from keras_vae.errors import ConfigError
from keras_vae.files import check_regular
from keras_vae.models.coding import conditioned, cycled, decode, encode_means
from keras_vae.runs import MODEL_BYTES, Run, RunError
from keras_vae.samplers import (
    CodeFrequencySampler,
    FlowSampler,
    MixtureSampler,
    NormalSampler,
    PixelCNNSampler,
    PseudoInputSampler,
    Sampler,
)
from keras_vae.snapshots import SUBSET, read_fixed
from keras_vae.trained import geometry


@dataclass
class LoadedRun:
    """A trained run: its folder, options (config.json), model, and fixed images (in [0, 1]) with their
    labels."""

    folder: Run
    config: dict
    model: keras.Model
    images: np.ndarray
    labels: np.ndarray
    samplers: dict[str, Sampler] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, path: str | Path) -> LoadedRun:
        folder = Run(Path(path))
        config = folder.read_config()
        if not (folder.snapshots / "fixed.npz").exists():
            raise RunError(
                f"{folder.root} has no snapshots/fixed.npz: it was not trained by this version of keras-vae"
            )
        model = folder.load_model()
        fixed = read_fixed(folder.snapshots)
        check_fixed(folder, config, fixed)
        return cls(folder, config, model, fixed["images"].astype("float32") / 255, fixed["labels"])

    @cached_property
    def options(self):
        """The run's TrainConfig from the config.json that load read, checked as the command line's are."""
        from keras_vae.config import TrainConfig

        return TrainConfig.from_dict(self.config["options"])

    @property
    def name(self) -> str:
        return self.folder.root.name

    @property
    def family(self) -> str:
        return self.config["options"]["model"]

    @property
    def latent_dim(self) -> int:
        return self.config["options"]["latent_dim"]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.config["data"]["input_shape"])

    @property
    def class_names(self) -> list[str] | None:
        """The names the data gave its classes (config.json), or None: labels are then drawn as numbers."""
        return self.config["data"].get("class_names")

    def class_name(self, label: int) -> str:
        return self.class_names[label] if self.class_names else str(label)

    def label_of(self, label: str | None) -> int | None:
        """A CVAE's label given as a number or a class name; None stays None. Other models take none."""
        if label is None:
            return None
        if not self.model.conditional:
            raise ConfigError(
                f"label is for a cvae run, and {self.name} is a {self.family}: leave it out", "label"
            )
        names = self.class_names or []
        if label in names:
            return names.index(label)
        if re.fullmatch(r"[0-9]{1,9}", label) and int(label) < self.model.classes:
            return int(label)
        known = f"the class names {', '.join(names)} or " if names else ""
        raise ConfigError(
            f"label {label!r} is not a class of {self.name}: give {known}a number from 0 to "
            f"{self.model.classes - 1}",
            "label",
        )

    @cached_property
    def codes(self) -> list[np.ndarray]:
        """The encoder's outputs for the fixed images: [z_mean, z_log_var, z] for the variational families."""
        outputs = self.model.encoder.predict(conditioned(self.model, self.images, self.labels), verbose=0)
        return [np.asarray(code) for code in keras.tree.flatten(outputs)]

    @cached_property
    def z(self) -> np.ndarray:
        """The fixed images' deterministic codes: z_mean, an AE's z, or a VQ-VAE's code indices."""
        return encode_means(self.model, self.images, self.labels)

    @cached_property
    def reconstructions(self) -> np.ndarray:
        return decode(self.model, self.z, self.labels)

    def decode(self, z: np.ndarray, label: int | None = None) -> np.ndarray:
        """Codes decoded; a CVAE's under one label, or without one, under the classes in turn."""
        if not self.model.conditional:
            return decode(self.model, z)
        return decode(
            self.model, z, cycled(self.model.classes, len(z)) if label is None else np.full(len(z), label)
        )

    def sampler(self, name: str | None = None) -> Sampler:
        """The sampler of that name (choices.SAMPLERS), else the family's own: prior for a model with one (a
        variational model's N(0, I), a VQ-VAE's over its codes), gmm for an AE, which has none. Made once;
        fitted on training_codes when first sampled from (sample_codes), so its description costs no
        encoding."""
        if name is None:
            name = "prior" if self.model.variational or self.model.discrete else "gmm"
        if name not in SAMPLERS:
            raise ConfigError(f"sampler must be one of {', '.join(SAMPLERS)}, got {name!r}", "sampler")
        if name not in self.samplers:
            self.samplers[name] = self.new_sampler(name)
        return self.samplers[name]

    def new_sampler(self, name: str) -> Sampler:
        """prior: N(0, I), a VampPrior VAE's mixture of its posteriors at its pseudo-inputs, or a VQ-VAE's
        learned prior over its codes (its codes' per-position frequencies
        until it has one); gmm: the Gaussian mixture of the training codes (a VQ-VAE's code vectors, snapped
        to the codebook); flow: a continuous model's learned flow (train-prior), refused in one line without
        one."""
        images = min(SUBSET, self.config["data"]["train_images"])
        if name == "gmm":
            return MixtureSampler(images, self.codebook if self.model.discrete else None)
        if name == "flow":
            return self.flow_sampler()
        if self.model.learned_prior:
            return PseudoInputSampler(*self.model.prior_components())
        if not self.model.discrete:
            return NormalSampler(self.latent_dim)
        return PixelCNNSampler(self.learned_prior) if self.learned_prior else CodeFrequencySampler(images)

    def flow_sampler(self) -> FlowSampler:
        if self.model.discrete:
            raise ConfigError(
                f"{self.name} is a vq-vae, whose codes are discrete: its learned prior is --sampler prior "
                "(keras-vae train-prior trains it)",
                "sampler",
            )
        if self.learned_prior is None:
            raise RunError(
                f"{self.name} has no learned flow over its codes yet: train one with keras-vae train-prior "
                f"{self.folder.root}"
            )
        return FlowSampler(self.learned_prior)

    def sample_codes(self, n: int, rng: np.random.Generator, sampler: str | None = None) -> np.ndarray:
        """n codes as code_decoder takes them, from a sampler (the family's own by default)."""
        chosen = self.sampler(sampler)
        if not chosen.fitted:
            chosen.fit(self.training_codes)
        return chosen.sample(n, rng)

    def samples(
        self,
        n: int = 64,
        rng: np.random.Generator | int = 0,
        label: int | None = None,
        sampler: str | None = None,
    ) -> np.ndarray:
        """Images decoded from n codes of a sampler (the family's own by default); a CVAE's under label, or
        the classes in turn."""
        return self.decode(self.sample_codes(n, np.random.default_rng(rng), sampler), label)

    @property
    def prior_path(self) -> Path:
        """Where train-prior keeps the run's learned prior: a VQ-VAE's PixelCNN in RUN/prior.keras, any other
        model's flow in RUN/flow.keras."""
        return self.folder.prior if self.model.discrete else self.folder.flow

    @cached_property
    def learned_prior(self) -> keras.Model | None:
        """The run's learned prior (prior_path, from keras-vae train-prior), or None; refused in one line
        unless it records that it was trained on this run's model and codes (prior_origin)."""
        from keras_vae.origins import mismatch, read_origin

        path = self.prior_path
        if not os.path.lexists(path):
            return None
        remedy = f"train it again with keras-vae train-prior {self.folder.root} --overwrite"
        check_regular(path, MODEL_BYTES, path.stem)
        stale = mismatch(path, read_origin(path), self.prior_origin)
        if stale:
            raise RunError(f"{stale}: {remedy}")
        return self.folder.load_keras(path, path.stem, remedy)

    @property
    def prior_origin(self) -> dict:
        """What a learned prior must have been trained on: this run's model.keras and codes (a VQ-VAE's
        codebook and code positions, another model's latent size)."""
        from keras_vae.origins import file_digest

        origin = {"model": file_digest(self.folder.model)}
        if self.model.discrete:
            return {
                "kind": "prior",
                **origin,
                "codebook_size": self.model.codebook_size,
                "positions": self.latent_dim,
            }
        return {"kind": "flow", **origin, "latent_dim": self.latent_dim}

    @property
    def codebook(self) -> np.ndarray:
        return keras.ops.convert_to_numpy(self.model.quantizer.codebook).astype("float64")

    @cached_property
    def dataset(self):
        """The run's data (data.Dataset), split and shaped as training had it."""
        return self.load_data()

    def load_data(self, data_dir: Path | None = None):
        """The run's data as training had it, refused in one line when it now gives images of another shape;
        or, with data_dir, that folder's images, resized and cropped to the run's shape."""
        from keras_vae.data import ImageOptions, load_dataset

        config = self.options
        if data_dir is not None:
            height, width, channels = self.image_shape
            options = ImageOptions((height, width), config.crop == "center", channels)
            return load_dataset(None, data_dir, config.val_fraction, config.seed, options)
        data = load_dataset(
            config.dataset, config.data_dir, config.val_fraction, config.seed, config.image_options
        )
        if tuple(data.input_shape) != self.image_shape:
            raise RunError(
                f"{self.name} was trained on {'x'.join(map(str, self.image_shape))} images, and its data "
                f"({data.source}) now gives "
                f"{'x'.join(map(str, data.input_shape))}: restore the data, or train a new run on it"
            )
        return data

    @cached_property
    def training_codes(self) -> np.ndarray:
        """The deterministic codes of a random SUBSET training images (Dataset.sample), which the samplers
        that need codes are fitted on."""
        return encode_means(self.model, *self.dataset.sample("train", SUBSET))

    def grid(self, coordinates: np.ndarray) -> np.ndarray:
        """A 2-D latent decoded on coordinates x coordinates, high z[1] at the top (a CVAE's under its first
        class)."""
        from keras_vae import plots

        return plots.tile(self.decode(geometry.grid(coordinates), label=0), len(coordinates))


def check_fixed(run: Run, config: dict, fixed: dict[str, np.ndarray]) -> None:
    """Refuse a snapshots/fixed.npz that does not fit config.json: images of another shape, noise of another
    latent size, labels beyond the class names."""
    shape, latent_dim = tuple(config["data"]["input_shape"]), config["options"]["latent_dim"]
    names = config["data"].get("class_names")
    problems = [
        (
            fixed["images"].shape[1:] != shape,
            f"images of shape {fixed['images'].shape[1:]}, config.json says {shape}",
        ),
        (
            fixed["noise"].shape[1] != latent_dim,
            f"noise of {fixed['noise'].shape[1]} dimensions, config.json says {latent_dim}",
        ),
        (
            bool(names) and int(fixed["labels"].max(initial=0)) >= len(names or []),
            f"labels beyond the {len(names or [])} class names of config.json",
        ),
    ]
    for wrong, problem in problems:
        if wrong:
            raise RunError(
                f"{run.snapshots / 'fixed.npz'} does not fit its run: {problem}; train the run again with "
                "--overwrite"
            )
