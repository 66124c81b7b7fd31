"""`keras-vae generate` and `train-prior`: new images from a run's sampler, and the learned prior over a run's
codes (a VQ-VAE's PixelCNN, any other model's flow) that its samplers draw from."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from keras_vae import plots
from keras_vae.errors import ConfigError
from keras_vae.files import check_free_space, write_atomic
from keras_vae.models.coding import encode_means
from keras_vae.runs import RunError
from keras_vae.samplers import FlowSampler, PixelCNNSampler
from keras_vae.snapshots import to_uint8
from keras_vae.trained.loaded import LoadedRun

PNG_IMAGES = 10_000
"""The most images generate puts in one .png grid (100 x 100)."""
CHUNK = 1024
"""Images generate decodes at a time, so a .npy of any size takes bounded memory."""


def generate(
    path: str | Path,
    n: int,
    seed: int,
    out: Path | None = None,
    overwrite: bool = False,
    label: str | None = None,
    sampler: str | None = None,
) -> tuple[Path, str]:
    """n images decoded from codes of a sampler (LoadedRun.samples; the family's own by default), saved as a
    .png grid (at most PNG_IMAGES) or a .npy array (n, H, W, C) in [0, 1] of any size, decoded and written a
    chunk at a time; out defaults to RUN/figures/generated.png. A CVAE's are of one class, label (a number or
    a class name), or of the classes in turn. Returns where, and which sampler made them, in words."""
    suffix = out.suffix if out else ".png"
    if suffix not in (".png", ".npy"):
        raise ConfigError(f"out must end in .png or .npy, got {out}", "out")
    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}", "n")
    if suffix == ".png" and n > PNG_IMAGES:
        raise ConfigError(
            f"n is {n}, more than a .png grid holds ({PNG_IMAGES}): write a .npy, or ask for fewer", "n"
        )
    run = LoadedRun.load(path)
    chosen = run.label_of(label)
    run.sampler(sampler)  # a wrong sampler is refused before anything is written
    out = run.folder.output(out, "generated.png", overwrite)
    rng = np.random.default_rng(seed)
    if suffix == ".png":
        import imageio.v2 as imageio

        picture = plots.tile(to_uint8(run.samples(n, rng, chosen, sampler)))
        write_atomic(out, lambda temporary: imageio.imwrite(temporary, picture.squeeze()))
        return out, run.sampler(sampler).description  # said once fitted: on the codes it was fitted on
    shape = (n, *run.images.shape[1:])
    check_free_space(out.parent, math.prod(shape) * 4, f"{n} images as .npy")

    def write(temporary: Path) -> None:
        array = np.lib.format.open_memmap(temporary, mode="w+", dtype="float32", shape=shape)
        for start in range(0, n, CHUNK):
            array[start : start + CHUNK] = run.samples(min(CHUNK, n - start), rng, chosen, sampler)
        array.flush()
        del array

    write_atomic(out, write)
    return out, run.sampler(sampler).description


def train_prior(
    path: str | Path, epochs: int | None = None, batch_size: int = 128, seed: int = 0, overwrite: bool = False
) -> tuple[Path, dict]:
    """Fit a run's learned prior on the codes of all its training images: a VQ-VAE's PixelCNN over its codes
    (samplers.PixelCNNSampler, RUN/prior.keras, its --sampler prior), any other model's RealNVP flow
    (samplers.FlowSampler, RUN/flow.keras, its --sampler flow), which generate, explore, evaluate and serve
    then sample from; an existing one is replaced only with overwrite. Returns where, and its negative
    log-likelihood of training and held-out codes (nats per image). epochs defaults to the sampler's own."""
    from keras_vae.origins import check_replaceable, save_with_origin

    if epochs is not None and epochs < 1:
        raise ConfigError(f"epochs must be >= 1, got {epochs}", "epochs")
    run = LoadedRun.load(path)
    target = run.prior_path
    check_replaceable(target)
    if target.exists() and not overwrite:
        raise RunError(f"{target} exists: give --overwrite to train it again")
    codes = {
        split: np.concatenate([encode_means(run.model, *batch) for batch in run.dataset.pairs(split, 1024)])
        for split in ("train", "val")
    }
    options = {"batch_size": batch_size, "seed": seed} | ({"epochs": epochs} if epochs else {})
    if run.model.discrete:
        fitted = PixelCNNSampler(codebook_size=run.model.codebook_size, **options)
        prior = fitted.fit(codes["train"], codes["val"]).prior
    else:
        fitted = FlowSampler(**options)
        prior = fitted.fit(codes["train"], codes["val"]).flow
    save_with_origin(prior, run.folder.target(target), run.prior_origin | {"codes": len(codes["train"])})
    return target, fitted.nll
