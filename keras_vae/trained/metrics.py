"""The metrics of a model on images, as pure functions that load nothing: likelihood bounds
(compute_likelihood), reconstructions (compute_reconstruction), and what the latent space says (active units,
KL per dimension, collapse, the use of a VQ-VAE's codes). keras_vae.trained.evaluate puts them together for a
run.

Everything here works on NumPy arrays in float64 after the model has run, so it is the same on every backend.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import keras
import numpy as np

from keras_vae.budget import decodes_in_one_step
from keras_vae.losses import reconstruction_loss
from keras_vae.models.coding import PREDICT_BATCH, conditioned, decode, encode_means

SAMPLES = 1 << 19
"""The most latent samples (images times k) evaluate holds at once."""


def pixel_accuracy(x: np.ndarray, x_hat: np.ndarray, threshold: float = 0.5) -> float:
    """The fraction of pixels on the same side of the threshold in the input and its reconstruction."""
    return float(np.mean((x > threshold) == (x_hat > threshold)))


def code_counts(codes: np.ndarray, codebook_size: int) -> np.ndarray:
    """How often each code of a VQ-VAE's codebook occurs among code indices."""
    return np.bincount(codes.astype("int64").ravel(), minlength=codebook_size)


def perplexity(counts: np.ndarray) -> float:
    """exp of the entropy of the codes' use: the number of codes used, weighted by use."""
    used = counts[counts > 0] / counts.sum()
    return float(np.exp(-np.sum(used * np.log(used))))


def active_units(z_means: np.ndarray, threshold: float = 0.01) -> int:
    """Latent dimensions whose posterior mean varies across the data by more than threshold (Burda et al.)."""
    return int(np.sum(np.var(z_means, axis=0) > threshold))


def kl_per_dimension(z_mean: np.ndarray, z_log_var: np.ndarray) -> np.ndarray:
    """losses.kl_per_dimension in NumPy float64, for what evaluate sums over many images (test_losses ties
    them)."""
    return 0.5 * (np.square(z_mean) + np.exp(z_log_var) - 1.0 - z_log_var)


COLLAPSED_KL = 0.1
"""Nats of mean KL below which a latent dimension carries next to nothing of its image."""


def collapse_note(strongest: float, total: float, active: int, dimensions: int) -> str | None:
    """What to say when a posterior has collapsed (no dimension with a mean KL of COLLAPSED_KL nats, strongest
    being the largest; under a learned prior, whose KL does not split by dimension, the whole KL below it: the
    codes carry next to nothing of their images, which then all decode alike), and what to try; None when it
    has not. Active units (the spread of the means) are reported beside it, not judged: a deep-conv VAE of 2
    epochs had none, its means spread by less than 0.1, yet a KL of 40 nats, its posteriors far narrower
    still."""
    if strongest >= COLLAPSED_KL:
        return None
    return (
        f"the posterior has collapsed: a KL of {total:.3g} nats per image, {active} of "
        f"{dimensions} latent dimensions active, so the codes say next to nothing of the images, "
        "which all "
        "decode alike; train again with a longer --kl-warmup-steps, a lower --learning-rate, more --steps, "
        "or a "
        "--beta below 1"
    )


def model_collapse_note(model, kl_dimensions: np.ndarray | None, kl: float, z_mean: np.ndarray) -> str | None:
    """collapse_note for a variational model's posterior, from its mean KL per dimension, or under a learned
    prior (kl_dimensions None) its mean KL; None for a model trained on the KL alone, for which collapse is
    the point."""
    if model.reconstruction_weight == 0:
        return None
    strongest = kl if kl_dimensions is None else float(kl_dimensions.max())
    return collapse_note(strongest, kl, active_units(z_mean), z_mean.shape[1])


def posterior_collapse(model, images: np.ndarray, labels: np.ndarray | None = None) -> str | None:
    """model_collapse_note of a variational model's posterior over images (under a learned prior, its KL
    estimated from one seeded sample per image); None for the other families."""
    if not model.variational:
        return None
    outputs = model.encoder.predict(conditioned(model, images, labels), batch_size=PREDICT_BATCH, verbose=0)
    z_mean, z_log_var, _ = (np.asarray(a, "float64") for a in outputs)
    if model.learned_prior:
        z = z_mean + np.exp(0.5 * z_log_var) * np.random.default_rng(0).standard_normal(z_mean.shape)
        kl = float(np.mean(log_normal(z, z_mean, z_log_var) - prior_log_density(model)(z)))
        return model_collapse_note(model, None, kl, z_mean)
    kl_dimensions = kl_per_dimension(z_mean, z_log_var).mean(0)
    return model_collapse_note(model, kl_dimensions, float(kl_dimensions.sum()), z_mean)


def log_likelihood_constant(recon_loss: str, image_shape: tuple[int, ...]) -> float:
    """log p(x | z) is minus the training loss summed over pixels, plus this: 0 for bce (Bernoulli); for mse
    a Gaussian of variance 1/2, whose negative log-likelihood is the squared error plus (D / 2) log(pi), as
    losses.log_likelihood adds it (test_losses ties them)."""
    return -0.5 * math.prod(image_shape) * math.log(math.pi) if recon_loss == "mse" else 0.0


def likelihood_model(decoder: keras.Model, k: int, recon_loss: str) -> keras.Model:
    """(images, their k latent samples each[, a conditional decoder's one-hot labels]) -> log p(x | z) per
    sample, less the constant: one graph, so only (images, k) numbers leave the backend, never the k decoded
    images."""
    z_input, *label_input = decoder.inputs
    latent_dim = z_input.shape[-1]
    x = keras.Input(decoder.output_shape[1:])
    z = keras.Input((k, latent_dim))
    labels = [keras.Input(label_input[0].shape[1:])] if label_input else []
    x_hat = decoder(
        [keras.ops.reshape(z, (-1, latent_dim)), *(keras.ops.repeat(a, k, axis=0) for a in labels)]
        if labels
        else keras.ops.reshape(z, (-1, latent_dim))
    )
    nll = reconstruction_loss(keras.ops.repeat(x, k, axis=0), x_hat, recon_loss, "sum")
    return keras.Model([x, z, *labels], -keras.ops.reshape(nll, (-1, k)))


def log_normal(z: np.ndarray, mean, log_var) -> np.ndarray:
    """losses.log_normal in NumPy float64, summed over the latent dimensions (test_losses ties them)."""
    return np.sum(-0.5 * (math.log(2 * math.pi) + log_var + np.square(z - mean) / np.exp(log_var)), axis=-1)


def prior_log_density(model, chunk: int = 16_384):
    """log p(z) of a variational model's prior, in NumPy float64, as a function of codes (..., d): N(0, I),
    or a learned prior's mixture (1/K) Σ_k N(z; means_k, exp(log_vars_k)), taken chunk codes at a time as
    matrix products, so that no (codes, K, d) array is made."""
    components = model.prior_components()
    if components is None:
        return lambda z: log_normal(z, 0.0, 0.0)
    means, log_vars = components
    precision = np.exp(-log_vars)
    constant = -0.5 * (
        means.shape[1] * math.log(2 * math.pi) + log_vars.sum(axis=1) + np.sum(means**2 * precision, axis=1)
    )

    def density(z: np.ndarray) -> np.ndarray:
        flat = z.reshape(-1, means.shape[1])
        out = np.empty(len(flat))
        for start in range(0, len(flat), chunk):
            part = flat[start : start + chunk]
            per = constant - 0.5 * (part**2) @ precision.T + part @ (means * precision).T
            top = per.max(axis=1, keepdims=True)
            out[start : start + chunk] = top[:, 0] + np.log(np.mean(np.exp(per - top), axis=1))
        return out.reshape(z.shape[:-1])

    return density


def importance_weights(
    model,
    likelihood: keras.Model,
    x: np.ndarray,
    recon_loss: str,
    rng: np.random.Generator,
    decodes_per_step: int | None = None,
    labels=None,
    log_prior=None,
):
    """log w = log p(x|z) + log p(z) - log q(z|x) for k samples z ~ q(z|x) per image: (N, k), and log p(x|z);
    a CVAE's given the images' labels; log_prior is prior_log_density(model), made once per run. The samples
    are decoded decodes_per_step at a time (whole images' k; budget.decodes_in_one_step by default, which
    evaluate's memory estimate counts)."""
    k = likelihood.output_shape[-1]
    inputs = conditioned(model, x, labels)
    z_mean, z_log_var, _ = (np.asarray(a, "float64") for a in model.encoder.predict(inputs, verbose=0))
    z = z_mean[:, None] + np.exp(0.5 * z_log_var[:, None]) * rng.standard_normal(
        (len(x), k, z_mean.shape[-1])
    )
    one_hot = inputs[1:] if model.conditional else []
    log_px = likelihood.predict(
        [x, z.astype("float32"), *one_hot],
        batch_size=max(1, (decodes_per_step or decodes_in_one_step(x.shape[1:])) // k),
        verbose=0,
    )
    log_px = log_px.astype("float64") + log_likelihood_constant(recon_loss, x.shape[1:])
    log_prior = (log_prior or prior_log_density(model))(z)
    log_w = log_px + log_prior - log_normal(z, z_mean[:, None], z_log_var[:, None])
    return log_w, log_px, z_mean, z_log_var


def batch_size(k: int) -> int:
    """Images evaluate takes at a time with k samples each: at most SAMPLES latent samples."""
    return max(1, min(500, SAMPLES // k))


Batches = np.ndarray | Iterable[tuple[np.ndarray, np.ndarray]]


def in_batches(x: Batches, size: int) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """(images, labels) batches: an array cut into batches of size, without labels; batches already made (a
    stream of pairs) pass as they are."""
    if isinstance(x, np.ndarray):
        return ((x[start : start + size], None) for start in range(0, len(x), size))
    return iter(x)


def compute_likelihood(model, x: Batches, k: int, recon_loss: str, seed: int = 0) -> dict:
    """-ELBO (Monte Carlo reconstruction over k samples; the KL closed-form under N(0, I), else estimated from
    the same k samples, and then not split by dimension) and the k-sample importance-weighted
    bound on -log p(x), in nats per image and bits per dimension; beside them the reconstruction loss (summed
    over pixels) of the decoded z_mean, comparable with an AE's or a VQ-VAE's. Images go through in batches (x
    is an array or a stream of (images, labels) batches of at most batch_size(k)), so memory stays bounded
    whatever k and the number of images are."""
    rng = np.random.default_rng(seed)
    likelihood = likelihood_model(model.decoder, k, recon_loss)
    log_prior = prior_log_density(model)
    neg_recon, kl, iw_nll, means, kl_dims, matches, through_mean = [], [], [], [], [], [], []
    for batch, labels in in_batches(x, batch_size(k)):
        log_w, log_px, z_mean, z_log_var = importance_weights(
            model, likelihood, batch, recon_loss, rng, labels=labels, log_prior=log_prior
        )
        neg_recon.append(-log_px.mean(axis=1))
        kl_dims.append(kl_per_dimension(z_mean, z_log_var))
        kl.append(np.mean(log_px - log_w, axis=1) if model.learned_prior else kl_dims[-1].sum(axis=1))
        top = log_w.max(axis=1, keepdims=True)
        iw_nll.append(-(top[:, 0] + np.log(np.mean(np.exp(log_w - top), axis=1))))
        means.append(z_mean)
        x_hat = decode(model, z_mean.astype("float32"), labels)
        matches.append(pixel_accuracy(batch, x_hat) * batch.size)
        through_mean.append(keras.ops.convert_to_numpy(reconstruction_loss(batch, x_hat, recon_loss, "sum")))
    neg_recon, kl, iw_nll, means = (np.concatenate(a) for a in (neg_recon, kl, iw_nll, means))
    dims, kl_dims = batch[0].size, np.concatenate(kl_dims).mean(axis=0)
    by_dimension = None if model.learned_prior else kl_dims
    collapsed = model_collapse_note(model, by_dimension, float(np.mean(kl)), means)
    return (
        {
            "images": len(means),
            "k": k,
            "neg_elbo": float(np.mean(neg_recon + kl)),
            "reconstruction": float(np.mean(neg_recon)),
            "reconstruction_through_mean": float(np.mean(np.concatenate(through_mean))),
            "kl": float(np.mean(kl)),
            "iw_nll": float(np.mean(iw_nll)),
            "iw_bits_per_dim": float(np.mean(iw_nll) / (dims * math.log(2))),
            "pixel_accuracy": float(sum(matches) / (len(means) * dims)),
            "active_units": active_units(means),
        }
        | ({} if model.learned_prior else {"kl_per_dimension": kl_dims.round(4).tolist()})
        | ({"collapse_note": collapsed} if collapsed else {})
    )


def compute_reconstruction(model, x: Batches, recon_loss: str, reduction: str) -> dict:
    """Reconstruction metrics, for the models without a likelihood; a VQ-VAE's with the perplexity of its code
    use over all the images and the number of codes none of them uses."""
    losses, squares, matches, pixels, counts = [], 0.0, 0.0, 0, 0
    for batch, labels in in_batches(x, batch_size(1)):
        codes = encode_means(model, batch, labels)
        x_hat = decode(model, codes, labels)
        losses.append(keras.ops.convert_to_numpy(reconstruction_loss(batch, x_hat, recon_loss, reduction)))
        squares += float(np.sum(np.square(batch - x_hat)))
        matches += pixel_accuracy(batch, x_hat) * batch.size
        pixels += batch.size
        if model.discrete:
            counts = counts + code_counts(codes, model.codebook_size)
    metrics = {
        "images": sum(len(loss) for loss in losses),
        "reconstruction_loss": float(np.mean(np.concatenate(losses))),
        "mse_per_pixel": squares / pixels,
        "pixel_accuracy": matches / pixels,
    }
    if model.discrete:
        metrics |= {"perplexity": perplexity(counts), "dead_codes": int(np.sum(counts == 0))}
    return metrics
