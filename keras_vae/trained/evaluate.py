"""`keras-vae evaluate`: the one place that loads a run and puts its numbers together: the metrics of its
model on its held-out images (metrics.compute_*), and the quality of its samples
(quality.run_sample_quality)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_vae.budget import check_evaluate_memory
from keras_vae.choices import MAX_K
from keras_vae.errors import ConfigError
from keras_vae.models.coding import encode_means
from keras_vae.trained.loaded import LoadedRun
from keras_vae.trained.metrics import batch_size, compute_likelihood, compute_reconstruction
from keras_vae.trained.quality import NEIGHBOURS, run_sample_quality

NO_LIKELIHOOD = {
    False: "an autoencoder has no prior over its latent codes, so it defines no likelihood p(x): no ELBO "
    "or NLL, "
    "only reconstruction metrics",
    True: "a VQ-VAE without a learned prior over its codes defines no likelihood p(x): reconstruction "
    "metrics "
    "and the perplexity of its code use instead",
}
"""Why evaluate reports reconstruction metrics alone for a model that is not variational, by whether its codes
are discrete."""
WITH_CODE_PRIOR = (
    "a VQ-VAE's likelihood p(x) is not computed: reconstruction metrics, the perplexity of its code use, "
    "and its "
    "learned prior's negative log-likelihood of the held-out images' codes (prior_code_nll, nats per image)"
)


def evaluate_run(
    path: str | Path,
    k: int = 1000,
    seed: int = 0,
    sampler: str | None = None,
    quality_images: int = 2000,
    fid_weights: Path | None = None,
    memory_check: bool = True,
) -> dict:
    """The metrics of a run's model on its held-out validation images, and the quality of its samples from a
    sampler against as many of those images (none with quality_images 0). What would take more than half the
    machine's memory is refused first, unless memory_check is False."""
    if not 1 <= k <= MAX_K:
        raise ConfigError(f"k must lie between 1 and {MAX_K}, got {k}", "k")
    run = LoadedRun.load(path)
    config = run.options
    model = run.model
    run.sampler(sampler)  # a wrong sampler is refused before anything runs
    if fid_weights and not quality_images:
        raise ConfigError(
            "fid_weights measures samples, and quality_images 0 leaves sample quality out: give both, or "
            "neither",
            "fid_weights",
        )
    if memory_check:
        check_evaluate_memory(config.arch, model.image_shape, k if model.variational else 1, quality_images)
    data = run.dataset
    quality = {}
    if quality_images and data.val.count <= NEIGHBOURS + 1:
        quality = {
            "quality_note": f"sample quality needs more than {NEIGHBOURS + 1} held-out images and "
            f"{run.name} has {data.val.count}, so it is left out"
        }
    elif quality_images:
        quality = run_sample_quality(run, sampler, quality_images, fid_weights, seed)
    about = {"run": str(run.folder.root), "model": config.model}
    if model.variational:
        return {
            **about,
            **compute_likelihood(model, data.pairs("val", batch_size(k)), k, config.recon_loss, seed),
            **quality,
        }
    metrics = compute_reconstruction(
        model, data.pairs("val", batch_size(1)), config.recon_loss, config.reduction
    )
    note = NO_LIKELIHOOD[model.discrete]
    if model.discrete and run.learned_prior is not None:
        from keras_vae.samplers.pixelcnn import code_nll

        codes = np.concatenate([encode_means(model, batch) for batch in data.batches("val", 1024)])
        metrics["prior_code_nll"], note = code_nll(run.learned_prior, codes), WITH_CODE_PRIOR
    return {**about, **metrics, **quality, "note": note}
