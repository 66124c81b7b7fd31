"""What `keras-vae evaluate` reports: likelihood bounds, pixel accuracy, active units, KL per dimension.

Everything here works on NumPy arrays in float64 after the model has run, so it is the same on every backend.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import keras
import numpy as np

from keras_vae.losses import reconstruction_loss
from keras_vae.snapshots import decode, encode_means


SAMPLES = 1 << 19
"""The most latent samples (images times k) evaluate holds at once."""
MAX_K = 10_000
"""The most samples per image: one image's k decodes go through the decoder in one step."""


def pixel_accuracy(x: np.ndarray, x_hat: np.ndarray, threshold: float = 0.5) -> float:
    """The fraction of pixels on the same side of the threshold in the input and its reconstruction."""
    return float(np.mean((x > threshold) == (x_hat > threshold)))


def active_units(z_means: np.ndarray, threshold: float = 0.01) -> int:
    """Latent dimensions whose posterior mean varies across the data by more than threshold (Burda et al.)."""
    return int(np.sum(np.var(z_means, axis=0) > threshold))


def kl_per_dimension(z_mean: np.ndarray, z_log_var: np.ndarray) -> np.ndarray:
    return 0.5 * (np.square(z_mean) + np.exp(z_log_var) - 1.0 - z_log_var)


def log_likelihood_constant(recon_loss: str, image_shape: tuple[int, ...]) -> float:
    """log p(x | z) is minus the training loss summed over pixels, plus this: 0 for bce (Bernoulli); for mse
    a Gaussian of variance 1/2, whose negative log-likelihood is the squared error plus (D / 2) log(pi)."""
    return -0.5 * math.prod(image_shape) * math.log(math.pi) if recon_loss == "mse" else 0.0


def likelihood_model(decoder: keras.Model, k: int, recon_loss: str) -> keras.Model:
    """(images, their k latent samples each) -> log p(x | z) per sample, less the constant: one graph, so only
    (images, k) numbers leave the backend, never the k decoded images."""
    latent_dim = decoder.input_shape[-1]
    x = keras.Input(decoder.output_shape[1:])
    z = keras.Input((k, latent_dim))
    x_hat = decoder(keras.ops.reshape(z, (-1, latent_dim)))
    nll = reconstruction_loss(keras.ops.repeat(x, k, axis=0), x_hat, recon_loss, "sum")
    return keras.Model([x, z], -keras.ops.reshape(nll, (-1, k)))


def log_normal(z: np.ndarray, mean, log_var) -> np.ndarray:
    return np.sum(-0.5 * (math.log(2 * math.pi) + log_var + np.square(z - mean) / np.exp(log_var)), axis=-1)


def importance_weights(
    model, likelihood: keras.Model, x: np.ndarray, recon_loss: str, rng: np.random.Generator, decodes_per_step: int = 2048
):
    """log w = log p(x|z) + log p(z) - log q(z|x) for k samples z ~ q(z|x) per image: (N, k), and log p(x|z)."""
    k = likelihood.output_shape[-1]
    z_mean, z_log_var, _ = (np.asarray(a, "float64") for a in model.encoder.predict(x, verbose=0))
    z = z_mean[:, None] + np.exp(0.5 * z_log_var[:, None]) * rng.standard_normal((len(x), k, z_mean.shape[-1]))
    log_px = likelihood.predict([x, z.astype("float32")], batch_size=max(1, decodes_per_step // k), verbose=0)
    log_px = log_px.astype("float64") + log_likelihood_constant(recon_loss, x.shape[1:])
    log_w = log_px + log_normal(z, 0.0, 0.0) - log_normal(z, z_mean[:, None], z_log_var[:, None])
    return log_w, log_px, z_mean, z_log_var


def batch_size(k: int) -> int:
    """Images evaluate takes at a time with k samples each: at most SAMPLES latent samples."""
    return max(1, min(500, SAMPLES // k))


def in_batches(x: np.ndarray | Iterable[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """An array cut into batches of size; batches already made (a stream) pass as they are."""
    if isinstance(x, np.ndarray):
        return (x[start : start + size] for start in range(0, len(x), size))
    return iter(x)


def evaluate_vae(model, x: np.ndarray | Iterable[np.ndarray], k: int, recon_loss: str, seed: int = 0) -> dict:
    """-ELBO (Monte Carlo reconstruction over k samples, closed-form KL) and the k-sample
    importance-weighted bound on -log p(x), in nats per image and bits per dimension. Images go through in
    batches (x is an array or a stream of batches of at most batch_size(k)), so memory stays bounded
    whatever k and the number of images are."""
    rng = np.random.default_rng(seed)
    likelihood = likelihood_model(model.decoder, k, recon_loss)
    neg_recon, kl, iw_nll, means, kl_dims, matches = [], [], [], [], [], []
    for batch in in_batches(x, batch_size(k)):
        log_w, log_px, z_mean, z_log_var = importance_weights(model, likelihood, batch, recon_loss, rng)
        neg_recon.append(-log_px.mean(axis=1))
        kl_dims.append(kl_per_dimension(z_mean, z_log_var))
        kl.append(kl_dims[-1].sum(axis=1))
        top = log_w.max(axis=1, keepdims=True)
        iw_nll.append(-(top[:, 0] + np.log(np.mean(np.exp(log_w - top), axis=1))))
        means.append(z_mean)
        matches.append(pixel_accuracy(batch, decode(model, z_mean.astype("float32"))) * batch.size)
    neg_recon, kl, iw_nll, means = (np.concatenate(a) for a in (neg_recon, kl, iw_nll, means))
    dims = batch[0].size
    return {
        "images": len(means),
        "k": k,
        "neg_elbo": float(np.mean(neg_recon + kl)),
        "reconstruction": float(np.mean(neg_recon)),
        "kl": float(np.mean(kl)),
        "iw_nll": float(np.mean(iw_nll)),
        "iw_bits_per_dim": float(np.mean(iw_nll) / (dims * math.log(2))),
        "pixel_accuracy": float(sum(matches) / (len(means) * dims)),
        "active_units": active_units(means),
        "kl_per_dimension": np.concatenate(kl_dims).mean(axis=0).round(4).tolist(),
    }


def evaluate_autoencoder(model, x: np.ndarray | Iterable[np.ndarray], recon_loss: str, reduction: str) -> dict:
    """Reconstruction metrics only: an autoencoder has no prior over z, hence no likelihood p(x)."""
    losses, squares, matches, pixels = [], 0.0, 0.0, 0
    for batch in in_batches(x, batch_size(1)):
        x_hat = decode(model, encode_means(model, batch))
        losses.append(keras.ops.convert_to_numpy(reconstruction_loss(batch, x_hat, recon_loss, reduction)))
        squares += float(np.sum(np.square(batch - x_hat)))
        matches += pixel_accuracy(batch, x_hat) * batch.size
        pixels += batch.size
    return {
        "images": sum(len(loss) for loss in losses),
        "reconstruction_loss": float(np.mean(np.concatenate(losses))),
        "mse_per_pixel": squares / pixels,
        "pixel_accuracy": matches / pixels,
        "note": "an autoencoder has no prior over its latent codes, so it defines no likelihood p(x): "
        "no ELBO or NLL, only reconstruction metrics",
    }


def evaluate_run(path, k: int = 1000, seed: int = 0) -> dict:
    """The metrics of a run's model on its test split (the held-out validation images when it has none)."""
    from pathlib import Path

    from keras_vae.data import load_dataset
    from keras_vae.errors import ConfigError
    from keras_vae.runs import Run

    if not 1 <= k <= MAX_K:
        raise ConfigError(f"k must lie between 1 and {MAX_K}, got {k}", "k")
    run = Run(Path(path))
    config = run.read_options()
    model = run.load_model()
    data = load_dataset(config.dataset, config.data_dir, config.val_fraction, config.seed, config.image_options)
    if config.model == "ae":
        x = data.batches("val", batch_size(1))
        return {"run": str(run.root), "model": "ae", **evaluate_autoencoder(model, x, config.recon_loss, config.reduction)}
    return {"run": str(run.root), "model": config.model, **evaluate_vae(model, data.batches("val", batch_size(k)), k, config.recon_loss, seed)}
