"""The VAE objective, written once in keras.ops so every backend computes the same numbers."""

from __future__ import annotations

import math

import keras
from keras import ops

from keras_vae.choices import RECONSTRUCTION_LOSSES, REDUCTIONS

LOG_2PI = math.log(2 * math.pi)


def reconstruction_loss(x, x_hat, recon_loss: str = "bce", reduction: str = "sum"):
    """Per-image reconstruction loss: BCE or squared error, summed or averaged over pixels."""
    if recon_loss == "bce":
        # Written out rather than ops.binary_crossentropy: torch's raises on a NaN output instead of returning
        # NaN, and clamps its logarithms differently from TensorFlow and JAX, which clip the output by epsilon
        # as here.
        x_hat = ops.clip(x_hat, keras.config.epsilon(), 1.0 - keras.config.epsilon())
        per_pixel = -ops.add(
            ops.multiply(x, ops.log(x_hat)),
            ops.multiply(ops.subtract(1.0, x), ops.log(ops.subtract(1.0, x_hat))),
        )
    else:
        per_pixel = ops.square(ops.subtract(x, x_hat))
    pixel_axes = tuple(range(1, len(per_pixel.shape)))
    reduce = ops.sum if reduction == "sum" else ops.mean
    return reduce(per_pixel, axis=pixel_axes)


def kl_per_dimension(z_mean, z_log_var):
    """KL(N(mean, exp(log_var)) || N(0, 1)) for every latent dimension, in closed form."""
    return 0.5 * (ops.square(z_mean) + ops.exp(z_log_var) - 1.0 - z_log_var)


def loss_terms(
    x,
    x_hat,
    z_mean=None,
    z_log_var=None,
    *,
    recon_loss: str = "bce",
    reduction: str = "sum",
    beta=1.0,
    reconstruction_weight: float = 1.0,
) -> dict:
    """Batch means of every logged term, in float32 whatever the dtype policy; without z_mean (an autoencoder)
    there is no KL."""
    x, x_hat = ops.cast(x, "float32"), ops.cast(x_hat, "float32")
    recon = ops.mean(reconstruction_loss(x, x_hat, recon_loss, reduction))
    if z_mean is None:
        return {"loss": recon, "reconstruction_loss": recon}
    kl = ops.mean(
        ops.sum(kl_per_dimension(ops.cast(z_mean, "float32"), ops.cast(z_log_var, "float32")), axis=-1)
    )
    return {
        "loss": reconstruction_weight * recon + beta * kl,
        "reconstruction_loss": recon,
        "kl_loss": kl,
    }


def log_normal(z, mean, log_var):
    """log N(z; mean, exp(log_var)) for every dimension."""
    return -0.5 * (LOG_2PI + log_var + ops.square(z - mean) * ops.exp(-log_var))


def log_likelihood(x, x_hat, recon_loss: str = "bce"):
    """log p(x | z) per image: minus the reconstruction loss summed over pixels, a Bernoulli likelihood for
    bce and a Gaussian of variance 1/2 for mse (whose negative log adds (pixels / 2) log(pi) to the squared
    error)."""
    nll = reconstruction_loss(x, x_hat, recon_loss, "sum")
    if recon_loss == "mse":
        nll = nll + 0.5 * math.prod(x.shape[1:]) * math.log(math.pi)
    return -nll


def iwae_terms(x, x_hat, z, z_mean, z_log_var, *, k: int, recon_loss: str = "bce") -> dict:
    """The k-sample importance-weighted bound on log p(x) (Burda et al. 2016): x_hat and z hold k samples of
    each image, image by image ((batch * k, ...)). The loss is minus the bound's batch mean; the mean
    reconstruction term and the closed-form KL beside it are logged, not trained on. With k = 1 the bound is
    the ELBO."""
    x, x_hat = ops.cast(x, "float32"), ops.cast(x_hat, "float32")
    z_mean, z_log_var, z = (ops.cast(a, "float32") for a in (z_mean, z_log_var, z))
    log_px = log_likelihood(ops.repeat(x, k, axis=0), x_hat, recon_loss)
    log_q = ops.sum(log_normal(z, ops.repeat(z_mean, k, axis=0), ops.repeat(z_log_var, k, axis=0)), axis=-1)
    log_w = log_px + ops.sum(log_normal(z, 0.0, 0.0), axis=-1) - log_q
    bound = ops.mean(ops.logsumexp(ops.reshape(log_w, (-1, k)), axis=1) - math.log(k))
    kl = ops.mean(ops.sum(kl_per_dimension(z_mean, z_log_var), axis=-1))
    return {"loss": -bound, "iw_bound": bound, "reconstruction_loss": ops.mean(-log_px), "kl_loss": kl}


def betatc_terms(
    x,
    x_hat,
    z,
    z_mean,
    z_log_var,
    *,
    dataset_size: int,
    recon_loss: str = "bce",
    reduction: str = "sum",
    alpha=1.0,
    beta=1.0,
    gamma=1.0,
    reconstruction_weight: float = 1.0,
) -> dict:
    """β-TCVAE (Chen et al. 2018): the KL term split into the index-code mutual information, the total
    correlation and the dimension-wise KL, each estimated on the batch by minibatch-weighted sampling from a
    data set of dataset_size images, and weighted by alpha, beta and gamma. On a batch the three add up to the
    sampled KL, E[log q(z|x) - log p(z)], whose expectation is the closed-form KL logged beside them."""
    x, x_hat = ops.cast(x, "float32"), ops.cast(x_hat, "float32")
    z_mean, z_log_var, z = (ops.cast(a, "float32") for a in (z_mean, z_log_var, z))
    recon = ops.mean(reconstruction_loss(x, x_hat, recon_loss, reduction))
    pairwise = log_normal(
        ops.expand_dims(z, 1), ops.expand_dims(z_mean, 0), ops.expand_dims(z_log_var, 0)
    )  # (i, j, d)
    log_nm = ops.log(ops.cast(ops.shape(z)[0], "float32") * dataset_size)
    log_qz = ops.logsumexp(ops.sum(pairwise, axis=2), axis=1) - log_nm
    log_prod_qz = ops.sum(ops.logsumexp(pairwise, axis=1) - log_nm, axis=1)
    log_qz_x = ops.sum(log_normal(z, z_mean, z_log_var), axis=-1)
    log_pz = ops.sum(log_normal(z, 0.0, 0.0), axis=-1)
    mutual_info = ops.mean(log_qz_x - log_qz)
    total_correlation = ops.mean(log_qz - log_prod_qz)
    dimension_kl = ops.mean(log_prod_qz - log_pz)
    return {
        "loss": reconstruction_weight * recon
        + alpha * mutual_info
        + beta * total_correlation
        + gamma * dimension_kl,
        "reconstruction_loss": recon,
        "kl_loss": ops.mean(ops.sum(kl_per_dimension(z_mean, z_log_var), axis=-1)),
        "mutual_info": mutual_info,
        "total_correlation": total_correlation,
        "dimension_kl": dimension_kl,
    }


def vq_terms(
    x,
    x_hat,
    z_e,
    z_q,
    codes,
    *,
    codebook_size: int,
    commitment: float = 0.25,
    train_codebook: bool = True,
    recon_loss: str = "bce",
    reduction: str = "sum",
) -> dict:
    """The VQ-VAE objective (van den Oord et al. 2017): reconstruction, plus the commitment term
    |z_e - sg(z_q)|² weighted by commitment, plus the codebook term |sg(z_e) - z_q|² when the codebook is
    trained by its loss (not by EMA); both reduced over the latent as the reconstruction is over pixels.
    The two terms are the same number (the squared distance of each vector to its code) and differ only in
    where their gradient goes, so only the commitment term is logged; beside it, the perplexity of the batch's
    code use (the number of codes it uses, weighted by use) and how often each code was used (code_counts)."""
    x, x_hat = ops.cast(x, "float32"), ops.cast(x_hat, "float32")
    z_e, z_q = ops.cast(z_e, "float32"), ops.cast(z_q, "float32")
    reduce = ops.sum if reduction == "sum" else ops.mean
    latent_axes = tuple(range(1, len(z_e.shape)))
    recon = ops.mean(reconstruction_loss(x, x_hat, recon_loss, reduction))
    commitment_loss = ops.mean(reduce(ops.square(z_e - ops.stop_gradient(z_q)), axis=latent_axes))
    codebook_loss = ops.mean(reduce(ops.square(ops.stop_gradient(z_e) - z_q), axis=latent_axes))
    counts = ops.sum(ops.one_hot(ops.reshape(codes, (-1,)), codebook_size, dtype="float32"), axis=0)
    use = counts / ops.sum(counts)
    perplexity = ops.exp(-ops.sum(use * ops.log(use + 1e-10)))
    loss = recon + commitment * commitment_loss + (codebook_loss if train_codebook else 0.0)
    return {
        "loss": loss,
        "reconstruction_loss": recon,
        "commitment_loss": commitment_loss,
        "perplexity": perplexity,
        "code_counts": counts,
    }


def check_loss_options(
    recon_loss: str, reduction: str, beta: float = 1.0, reconstruction_weight: float = 1.0
) -> None:
    """Raise ValueError naming the first option out of range."""
    if recon_loss not in RECONSTRUCTION_LOSSES:
        raise ValueError(f"recon_loss must be one of {RECONSTRUCTION_LOSSES}, got {recon_loss!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    if reconstruction_weight < 0:
        raise ValueError(f"reconstruction_weight must be >= 0, got {reconstruction_weight}")


def mixture_log_density(z, means, log_vars):
    """log (1/K) Σ_k N(z; means_k, exp(log_vars_k)) of each code: z (n, d), the K components (K, d)."""
    per_component = ops.sum(log_normal(z[:, None, :], means[None], log_vars[None]), axis=-1)
    return ops.logsumexp(per_component, axis=1) - math.log(means.shape[0])


def vamp_terms(
    x,
    x_hat,
    z,
    z_mean,
    z_log_var,
    prior_means,
    prior_log_vars,
    *,
    recon_loss: str = "bce",
    reduction: str = "sum",
    beta=1.0,
    reconstruction_weight: float = 1.0,
) -> dict:
    """The ELBO's terms under a VampPrior: the KL estimated by the sampled z, log q(z|x) - log p(z), with p
    the mixture of the prior's components (Tomczak & Welling 2018, eq. 9)."""
    z, z_mean, z_log_var, prior_means, prior_log_vars = (
        ops.cast(a, "float32") for a in (z, z_mean, z_log_var, prior_means, prior_log_vars)
    )
    recon = ops.mean(
        reconstruction_loss(ops.cast(x, "float32"), ops.cast(x_hat, "float32"), recon_loss, reduction)
    )
    log_q = ops.sum(log_normal(z, z_mean, z_log_var), axis=-1)
    kl = ops.mean(log_q - mixture_log_density(z, prior_means, prior_log_vars))
    return {"loss": reconstruction_weight * recon + beta * kl, "reconstruction_loss": recon, "kl_loss": kl}
