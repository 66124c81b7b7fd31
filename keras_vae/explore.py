"""Pictures of a trained run's latent space: `keras-vae explore`, `compare` and `generate`.

All of it starts from the run folder: model.keras, config.json and the fixed validation subset
that training saved in snapshots/fixed.npz.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from statistics import NormalDist

import keras
import numpy as np
from matplotlib.figure import Figure

from keras_vae import plots
from keras_vae.metrics import code_counts, kl_per_dimension, perplexity, pixel_accuracy
from keras_vae.files import check_free_space, check_regular, write_atomic, write_text_atomic
from keras_vae.errors import ConfigError
from keras_vae.runs import MODEL_BYTES, Run, RunError, claim_output
from keras_vae.snapshots import SUBSET, conditioned, cycled, decode, empirical_codes, encode_means, read_fixed, to_uint8

PNG_IMAGES = 10_000
"""The most images generate puts in one .png grid (100 x 100)."""
CHUNK = 1024
"""Images generate decodes at a time, so a .npy of any size takes bounded memory."""
GRID = 15
MIXTURE = 10
"""Components of the Gaussian mixture the gmm sampler draws from."""
SAMPLERS = ("prior", "gmm")


@dataclass
class RunData:
    """A trained run as the pictures need it: model, options, fixed images and labels, their latent codes."""

    run: Run
    config: dict
    model: keras.Model
    images: np.ndarray
    labels: np.ndarray

    @classmethod
    def load(cls, path: str | Path) -> RunData:
        run = Run(Path(path))
        config = run.read_config()
        if not (run.snapshots / "fixed.npz").exists():
            raise RunError(f"{run.root} has no snapshots/fixed.npz: it was not trained by this version of keras-vae")
        model = run.load_model()
        fixed = read_fixed(run.snapshots)
        check_fixed(run, config, fixed)
        return cls(run, config, model, fixed["images"].astype("float32") / 255, fixed["labels"])

    @property
    def name(self) -> str:
        return self.run.root.name

    @property
    def family(self) -> str:
        return self.config["options"]["model"]

    @property
    def latent_dim(self) -> int:
        return self.config["options"]["latent_dim"]

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
            raise ConfigError(f"label is for a cvae run, and {self.name} is a {self.family}: leave it out", "label")
        names = self.class_names or []
        if label in names:
            return names.index(label)
        if re.fullmatch(r"[0-9]{1,9}", label) and int(label) < self.model.classes:
            return int(label)
        known = f"the class names {', '.join(names)} or " if names else ""
        raise ConfigError(f"label {label!r} is not a class of {self.name}: give {known}a number from 0 to {self.model.classes - 1}", "label")

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
        return decode(self.model, z, cycled(self.model.classes, len(z)) if label is None else np.full(len(z), label))

    def sampler(self, sampler: str | None = None) -> str:
        """The sampler asked for (SAMPLERS), else the family's own: prior for a model with one (a variational
        model's N(0, I), a VQ-VAE's over its codes), gmm for an AE, which has none."""
        if sampler is None:
            return "prior" if self.model.variational or self.model.discrete else "gmm"
        if sampler not in SAMPLERS:
            raise ConfigError(f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}", "sampler")
        return sampler

    def samples(self, n: int = 64, rng: np.random.Generator | int = 0, label: int | None = None, sampler: str | None = None) -> np.ndarray:
        """Images decoded from n codes of a sampler (sampler_name says what each is); a CVAE's under label, or
        the classes in turn."""
        return self.decode(self.draw(n, np.random.default_rng(rng), self.sampler(sampler)), label)

    def draw(self, n: int, rng: np.random.Generator, sampler: str) -> np.ndarray:
        """n codes as code_decoder takes them. prior: N(0, I), or a VQ-VAE's learned prior over its codes (its
        codes' per-position frequencies until it has one); gmm: the Gaussian mixture of the training codes (a
        VQ-VAE's code vectors, each drawn vector snapped to its nearest code)."""
        if sampler == "prior" and self.model.discrete:
            from keras_vae.models.prior import sample_codes

            return sample_codes(self.code_prior, n, rng) if self.code_prior else empirical_codes(self.training_codes, n, rng)
        if sampler == "prior":
            return rng.standard_normal((n, self.latent_dim)).astype("float32")
        weights, means, factors = self.mixture
        component = rng.choice(len(weights), size=n, p=weights)
        drawn = (means[component] + np.einsum("nij,nj->ni", factors[component], rng.standard_normal((n, means.shape[1])))).astype("float32")
        if not self.model.discrete:
            return drawn
        codebook = self.codebook
        vectors = drawn.reshape(n * self.latent_dim, -1)
        distances = np.sum(np.square(codebook), axis=1) - 2 * vectors @ codebook.T  # |v - c|², less |v|²
        return np.argmin(distances, axis=1).reshape(n, self.latent_dim).astype("int32")

    def sampler_name(self, sampler: str | None = None) -> str:
        """What the sampler draws codes from, in words."""
        sampler = self.sampler(sampler)
        images = min(SUBSET, self.config["data"]["train_images"])
        if sampler == "gmm":
            vectors = "code vectors, snapped to the codebook" if self.model.discrete else "codes"
            return f"gmm: a {min(MIXTURE, images)}-Gaussian mixture fitted on {images:,} training images' {vectors}"
        if not self.model.discrete:
            return "prior: N(0, I)"
        if self.code_prior:
            return "prior: the learned PixelCNN prior over the codes (prior.keras)"
        return f"prior: the codes' per-position frequencies in {images:,} training images (no learned prior yet: keras-vae train-prior)"

    @cached_property
    def code_prior(self) -> keras.Model | None:
        """A VQ-VAE's learned prior (RUN/prior.keras, from keras-vae train-prior), or None; refused in one line
        unless it records that it was trained on this run's model and codebook (prior_origin)."""
        from keras_vae.origins import mismatch, read_origin

        if not os.path.lexists(self.run.prior):
            return None
        remedy = f"train it again with keras-vae train-prior {self.run.root} --overwrite"
        check_regular(self.run.prior, MODEL_BYTES, "prior")
        stale = mismatch(self.run.prior, read_origin(self.run.prior), self.prior_origin)
        if stale:
            raise RunError(f"{stale}: {remedy}")
        return self.run.load_keras(self.run.prior, "prior", remedy)

    @property
    def prior_origin(self) -> dict:
        """What a VQ-VAE's prior must have been trained on: this run's model.keras, its codebook and code positions."""
        from keras_vae.origins import file_digest

        return {"kind": "prior", "model": file_digest(self.run.model), "codebook_size": self.model.codebook_size, "positions": self.latent_dim}

    @property
    def codebook(self) -> np.ndarray:
        return keras.ops.convert_to_numpy(self.model.quantizer.codebook).astype("float64")

    @cached_property
    def source(self):
        """The run's data (data.Dataset), split and shaped as training had it."""
        from keras_vae.data import load_dataset

        config = self.run.read_options()
        data = load_dataset(config.dataset, config.data_dir, config.val_fraction, config.seed, config.image_options)
        trained = tuple(self.model.encoder.inputs[0].shape[1:])
        if tuple(data.input_shape) != trained:
            raise RunError(
                f"{self.name} was trained on {'x'.join(map(str, trained))} images, and its data ({data.source}) now gives "
                f"{'x'.join(map(str, data.input_shape))}: restore the data, or train a new run on it"
            )
        return data

    @cached_property
    def training_codes(self) -> np.ndarray:
        """The deterministic codes of a random SUBSET training images (Dataset.sample), which the gmm sampler and a VQ-VAE's
        stand-in prior are made from."""
        return encode_means(self.model, *self.source.sample("train", SUBSET))

    @cached_property
    def mixture(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The gmm sampler: scikit-learn's GaussianMixture of MIXTURE full-covariance components fitted on the
        training codes (a VQ-VAE's code vectors, flattened); its weights, means and Cholesky factors."""
        from sklearn.mixture import GaussianMixture

        codes = self.training_codes
        vectors = self.codebook[codes].reshape(len(codes), -1) if self.model.discrete else codes.astype("float64")
        mixture = GaussianMixture(min(MIXTURE, len(vectors)), covariance_type="full", reg_covar=1e-5, random_state=0).fit(vectors)
        return mixture.weights_ / mixture.weights_.sum(), mixture.means_, np.linalg.cholesky(mixture.covariances_)

    def grid(self, coordinates: np.ndarray) -> np.ndarray:
        """A 2-D latent decoded on coordinates x coordinates, high z[1] at the top."""
        z0, z1 = np.meshgrid(coordinates, coordinates[::-1])
        return plots.tile(self.decode(np.stack([z0.ravel(), z1.ravel()], 1).astype("float32"), label=0), len(coordinates))

    def projection(self, method: str = "pca") -> np.ndarray:
        """The latent codes in 2-D: as they are when the latent has at most 2 dimensions, else PCA or t-SNE."""
        if self.latent_dim <= 2 and method == "pca":
            return self.z
        from sklearn.decomposition import PCA
        from sklearn.manifold import TSNE

        if method == "tsne":
            return TSNE(2, init="pca", perplexity=min(30, len(self.z) - 1), random_state=0).fit_transform(self.z)
        return PCA(2, random_state=0).fit_transform(self.z)


def check_fixed(run: Run, config: dict, fixed: dict[str, np.ndarray]) -> None:
    """Refuse a snapshots/fixed.npz that does not fit config.json: images of another shape, noise of another
    latent size, labels beyond the class names."""
    shape, latent_dim = tuple(config["data"]["input_shape"]), config["options"]["latent_dim"]
    names = config["data"].get("class_names")
    problems = [
        (fixed["images"].shape[1:] != shape, f"images of shape {fixed['images'].shape[1:]}, config.json says {shape}"),
        (fixed["noise"].shape[1] != latent_dim, f"noise of {fixed['noise'].shape[1]} dimensions, config.json says {latent_dim}"),
        (bool(names) and int(fixed["labels"].max(initial=0)) >= len(names or []), f"labels beyond the {len(names or [])} class names of config.json"),
    ]
    for wrong, problem in problems:
        if wrong:
            raise RunError(f"{run.snapshots / 'fixed.npz'} does not fit its run: {problem}; train the run again with --overwrite")


def draw_reconstructions(ax, data: RunData, n: int = 8) -> None:
    accuracy = pixel_accuracy(data.images, data.reconstructions)
    pairs = np.concatenate([data.images[:n], data.reconstructions[:n]])
    plots.draw_image(ax, plots.tile(pairs, n), f"{data.name}: inputs over reconstructions\npixel accuracy {accuracy:.1%}")


def draw_latent(ax, data: RunData) -> None:
    projected = data.latent_dim > 2
    how = f" (PCA of {data.latent_dim}-D)" if projected else ""
    axes = ("PC 1", "PC 2") if projected else ("z[0]", "z[1]")
    plots.draw_latent(ax, data.projection("pca"), data.labels, data.class_names, f"{data.name}: latent means{how}", axes=axes)


def draw_samples(ax, data: RunData, columns: int = 8, sampler: str | None = None) -> None:
    """Decoded draws of a sampler (the family's own by default); a CVAE's as a class x samples grid: one row per
    class, one z per column."""
    if not data.model.conditional:
        plots.draw_image(ax, plots.tile(data.samples(sampler=sampler)), f"{data.name}: decoded samples\n{data.sampler_name(sampler)}")
        return
    classes = min(data.model.classes, MAX_CLASS_ROWS)
    z = data.draw(columns, np.random.default_rng(0), data.sampler(sampler))
    rows = np.concatenate([data.decode(z, label) for label in range(classes)])
    names = ", ".join(data.class_name(label) for label in range(classes))
    plots.draw_image(ax, plots.tile(rows, columns), f"{data.name}: one class a row ({names}), one z a column\n{data.sampler_name(sampler)}")


def draw_grid(ax, data: RunData, radius: float = 1.5) -> None:
    picture = data.grid(np.linspace(-radius, radius, GRID))
    condition = f" (class {data.class_name(0)})" if data.model.conditional else ""
    plots.draw_image(ax, picture, f"{data.name}: decoded latent grid{condition}", extent=(-radius, radius, -radius, radius))


VIEWS = {"reconstructions": draw_reconstructions, "latent": draw_latent, "samples": draw_samples, "latent_grid": draw_grid}
SIZES = {"reconstructions": (8, 2.6)}
CONTINUOUS_VIEWS = ("latent", "latent_grid")
"""The views of a continuous latent space, which a VQ-VAE's codes are not."""
MAX_CLASS_ROWS = 20


def applies(view: str, data: RunData) -> bool:
    """Whether a view of VIEWS can be drawn for a run."""
    if view in CONTINUOUS_VIEWS and data.model.discrete:
        return False
    return view != "latent_grid" or data.latent_dim == 2


def explore(
    path: str | Path, out: Path | None = None, radius: float = 1.5, overwrite: bool = False, sampler: str | None = None
) -> list[Path]:
    """Every picture of one run, as PNGs in out (default RUN/figures), the samples from sampler (the family's own
    by default); in a folder the user named, existing files are replaced only with overwrite, and every name is
    checked before anything is drawn."""
    if not 0 < radius < math.inf:
        raise ConfigError(f"radius must be a finite number > 0, got {radius}", "radius")
    data = RunData.load(path)
    drawings = figures(data, radius, data.sampler(sampler))
    targets = [data.run.output(out and out / f"{name}.png", f"{name}.png", overwrite) for name in drawings]
    return [plots.save(draw(), target) for draw, target in zip(drawings.values(), targets)]


def figures(data: RunData, radius: float, sampler: str | None = None) -> dict[str, Callable[[], Figure]]:
    """Every picture explore draws for this run, by file name, the samples from sampler (the family's own by
    default); each is drawn when called."""
    if data.model.discrete:
        return {
            "reconstructions": lambda: view("reconstructions", data),
            "codebook_usage": lambda: codebook_usage(data),
            "samples": lambda: view("samples", data, sampler=sampler),
        }
    drawings = {"reconstructions": lambda: view("reconstructions", data), "latent": lambda: view("latent", data)}
    if data.latent_dim > 2:
        drawings["latent_tsne"] = lambda: tsne(data)
    if data.latent_dim == 2:
        drawings["latent_grid"] = lambda: view("latent_grid", data, radius=radius)
        drawings["latent_grid_quantiles"] = lambda: quantile_grid(data)
    drawings["samples"] = lambda: view("samples", data, sampler=sampler)
    drawings["interpolation"] = lambda: interpolation(data)
    if data.model.variational:
        drawings["kl_per_dimension"] = lambda: kl_bars(data)
    return drawings


def view(name: str, data: RunData, **options) -> Figure:
    figure, (ax,) = plots.panels(1, *SIZES.get(name, (6,)))
    VIEWS[name](ax, data, **options)
    return figure


def tsne(data: RunData) -> Figure:
    figure, (ax,) = plots.panels(1, 6)
    title = f"{data.name}: t-SNE of latent means"
    plots.draw_latent(ax, data.projection("tsne"), data.labels, data.class_names, title, axes=("t-SNE 1", "t-SNE 2"))
    return figure


def quantile_grid(data: RunData) -> Figure:
    quantiles = np.array([NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, GRID)])
    figure, (ax,) = plots.panels(1, 6)
    plots.draw_image(ax, data.grid(quantiles), f"{data.name}: latent grid over Gaussian quantiles 5%-95%")
    return figure


def kl_bars(data: RunData) -> Figure:
    z_mean, z_log_var, _ = (code.astype("float64") for code in data.codes)
    figure, (ax,) = plots.panels(1)
    kl = kl_per_dimension(z_mean, z_log_var).mean(0)
    plots.draw_bars(ax, kl, f"{data.name}: KL per latent dimension", "latent dimension", "mean KL (nats)")
    return figure


def codebook_usage(data: RunData) -> Figure:
    """How often each code of a VQ-VAE's codebook stands for the fixed images, most used first."""
    codes = data.model.codebook_size
    counts = np.sort(code_counts(data.z, codes))[::-1]
    figure, (ax,) = plots.panels(1, 7)
    title = f"{data.name}: codebook use over {len(data.z):,} images ({int(np.sum(counts > 0))} of {codes} codes used, perplexity {perplexity(counts):.1f})"
    plots.draw_bars(ax, counts / counts.sum(), title, "code, most used first", "fraction of positions")
    return figure


def interpolation(data: RunData, steps: int = 10) -> Figure:
    """Decoded points on the line between the latent means of two images: of different classes, or without
    labels, the one whose code lies farthest from the first's. A CVAE's, of one class, decoded under it."""
    distances = np.sum(np.square(data.z - data.z[0]), axis=1)
    if data.model.conditional:
        other = int(np.argmax(np.where(data.labels == data.labels[0], distances, -1)))
    elif data.labels[0] >= 0:
        other = int(np.argmax(data.labels != data.labels[0]))
    else:
        other = int(np.argmax(distances))
    weights = np.linspace(0, 1, steps)[:, None]
    z = (1 - weights) * data.z[0] + weights * data.z[other]
    decoded = data.decode(z.astype("float32"), int(data.labels[0]) if data.model.conditional else None)
    strip = np.concatenate([data.images[:1], decoded, data.images[other : other + 1]])
    figure, ax = plots.plt.subplots(figsize=(12, 1.8))
    plots.draw_image(ax, plots.tile(strip, len(strip)), f"{data.name}: interpolation between two test images (ends: the inputs)")
    return figure


def compare(paths: list[str | Path], out: Path, overwrite: bool = False, quality_images: int = 1000) -> list[Path]:
    """The shared views of several runs side by side, and out/index.md embedding them with final metrics and the
    quality of each run's samples (none with quality_images 0); existing files in out are replaced only with
    overwrite."""
    from keras_vae.quality import NEIGHBOURS

    runs = [RunData.load(path) for path in paths]
    last_epochs = [data.run.read_last_epoch() for data in runs]
    views = [v for v in VIEWS if all(applies(v, data) for data in runs)]
    targets = [claim_output(out / name, overwrite) for name in [*(f"{view}.png" for view in views), "index.md"]]
    few = [data.name for data in runs if data.config["data"]["val_images"] <= NEIGHBOURS + 1]
    for view, target in zip(views, targets):
        figure, axes = plots.panels(len(runs), *SIZES.get(view, (5,)))
        for ax, data in zip(axes, runs):
            VIEWS[view](ax, data)
        plots.save(figure, target)
    qualities = None
    if quality_images and few:
        qualities = [], f"Sample quality needs more than {NEIGHBOURS + 1} held-out images, and {', '.join(few)} has fewer, so it is left out."
    elif quality_images:
        qualities = compared_quality(runs, quality_images)
    write_text_atomic(targets[-1], summary_page(runs, last_epochs, views, qualities))
    return targets


def compared_quality(runs: list[RunData], images: int) -> tuple[list[dict], str]:
    """Each run's sample quality from its own sampler, all in the first run's feature space when the runs share
    their data (else each in its own, and the page says the distances do not compare); and a note."""
    from keras_vae.quality import run_feature_space, run_sample_quality

    shared = len({(data.config["data"]["source"], tuple(data.config["data"]["input_shape"])) for data in runs}) == 1
    space = run_feature_space(runs[0].run.target(runs[0].run.classifier), runs[0].source) if shared else None
    qualities = [run_sample_quality(data, images=images, space=space) for data in runs]
    if not shared:
        return qualities, "The runs were trained on different data, so each is measured in its own feature space: their distances do not compare."
    return qualities, f"Every run measured in {qualities[0]['features']} (of {runs[0].name}), against {qualities[0]['quality_images']:,} held-out images."


def summary_page(runs: list[RunData], last_epochs: list[dict], views: list[str], qualities: tuple[list[dict], str] | None = None) -> str:
    columns = ["loss", "reconstruction_loss", "kl_loss", "val_loss"]
    lines = ["# keras-vae compare", "", "| run | model | arch | latent | epochs | " + " | ".join(columns) + " |"]
    lines.append("|" + " --- |" * (5 + len(columns)))
    for data, last in zip(runs, last_epochs):
        options = data.config["options"]
        values = [f"{float(last[c]):.2f}" if c in last else "-" for c in columns]
        lines.append(f"| {data.name} | {options['model']} | {options['arch']} | {options['latent_dim']} | {last['epoch']} | " + " | ".join(values) + " |")
    lines.append("")
    if qualities:
        lines += quality_table(runs, *qualities)
    for view in views:
        lines += [f"## {view.replace('_', ' ')}", "", f"![{view}]({view}.png)", ""]
    return "\n".join(lines)


def quality_table(runs: list[RunData], qualities: list[dict], note: str) -> list[str]:
    """The sample-quality section of compare's page: its note, then a row per run measured."""
    if not qualities:
        return ["## sample quality", "", note, ""]
    columns = ["frechet_distance", "precision", "recall", "confidence", "largest_class_share"]
    lines = ["## sample quality", "", note, "", "| run | sampler | " + " | ".join(columns) + " |", "|" + " --- |" * (2 + len(columns))]
    for data, quality in zip(runs, qualities):
        values = [f"{quality[column]:.3g}" if column in quality else "-" for column in columns]
        lines.append(f"| {data.name} | {quality['sampler']} | " + " | ".join(values) + " |")
    return [*lines, ""]


def generate(
    path: str | Path,
    n: int,
    seed: int,
    out: Path | None = None,
    overwrite: bool = False,
    label: str | None = None,
    sampler: str | None = None,
) -> tuple[Path, str]:
    """n images decoded from codes of a sampler (RunData.samples; the family's own by default), saved as a .png
    grid (at most PNG_IMAGES) or a .npy array (n, H, W, C) in [0, 1] of any size, decoded and written a chunk at a
    time; out defaults to RUN/figures/generated.png. A CVAE's are of one class, label (a number or a class name),
    or of the classes in turn. Returns where, and which sampler made them, in words."""
    suffix = out.suffix if out else ".png"
    if suffix not in (".png", ".npy"):
        raise ConfigError(f"out must end in .png or .npy, got {out}", "out")
    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}", "n")
    if suffix == ".png" and n > PNG_IMAGES:
        raise ConfigError(f"n is {n}, more than a .png grid holds ({PNG_IMAGES}): write a .npy, or ask for fewer", "n")
    data = RunData.load(path)
    chosen = data.label_of(label)
    sampler = data.sampler(sampler)
    out = data.run.output(out, "generated.png", overwrite)
    rng = np.random.default_rng(seed)
    if suffix == ".png":
        import imageio.v2 as imageio

        picture = plots.tile(to_uint8(data.samples(n, rng, chosen, sampler)))
        write_atomic(out, lambda temporary: imageio.imwrite(temporary, picture.squeeze()))
        return out, data.sampler_name(sampler)
    shape = (n, *data.images.shape[1:])
    check_free_space(out.parent, math.prod(shape) * 4, f"{n} images as .npy")

    def write(temporary: Path) -> None:
        array = np.lib.format.open_memmap(temporary, mode="w+", dtype="float32", shape=shape)
        for start in range(0, n, CHUNK):
            array[start : start + CHUNK] = data.samples(min(CHUNK, n - start), rng, chosen, sampler)
        array.flush()
        del array

    write_atomic(out, write)
    return out, data.sampler_name(sampler)


def train_prior(path: str | Path, epochs: int, batch_size: int = 128, seed: int = 0, overwrite: bool = False) -> tuple[Path, dict]:
    """Fit a VQ-VAE run's learned prior over its codes (models.prior) on the codes of all its training images and
    write it to RUN/prior.keras, which generate, explore, evaluate and serve then sample from; an existing prior
    is replaced only with overwrite. Returns where, and its negative log-likelihood of training and held-out
    codes in nats per image."""
    from keras_vae.models.prior import train_code_prior
    from keras_vae.origins import check_replaceable, save_with_origin

    if epochs < 1:
        raise ConfigError(f"epochs must be >= 1, got {epochs}", "epochs")
    data = RunData.load(path)
    if not data.model.discrete:
        raise ConfigError(f"{data.name} is a {data.family}, whose prior is N(0, I): train-prior is for a vq-vae run (other runs take --sampler gmm)")
    check_replaceable(data.run.prior)
    if data.run.prior.exists() and not overwrite:
        raise RunError(f"{data.run.prior} exists: give --overwrite to train it again")
    codes = {split: np.concatenate([encode_means(data.model, batch) for batch in data.source.batches(split, 1024)]) for split in ("train", "val")}
    prior, nll = train_code_prior(codes["train"], codes["val"], data.model.codebook_size, epochs, batch_size, seed)
    save_with_origin(prior, data.run.target(data.run.prior), data.prior_origin | {"codes": len(codes["train"])})
    return data.run.prior, nll
