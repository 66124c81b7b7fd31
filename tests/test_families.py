"""The model families beyond the AE and the VAE (IWAE, β-TCVAE): each loss against NumPy on small arrays, the
identities their bounds obey, training, the .keras round trip on this backend and the others, and `train`."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import make_images, to_numpy
from scipy.special import logsumexp
from typer.testing import CliRunner

import keras_vae
from cli.main import app
from keras_vae.losses import betatc_terms, iwae_terms

RNG = np.random.default_rng(7)
B, K, D = 3, 4, 2
X = RNG.random((B, 2, 3, 1)).astype("float32")
X_HAT = RNG.uniform(0.05, 0.95, (B * K, 2, 3, 1)).astype("float32")
Z_MEAN = RNG.normal(size=(B, D)).astype("float32")
Z_LOG_VAR = RNG.normal(scale=0.5, size=(B, D)).astype("float32")
Z = RNG.normal(size=(B * K, D)).astype("float32")
OTHER_BACKENDS = [b for b in ("tensorflow", "jax", "torch") if b != keras.backend.backend()]


def log_normal(z, mean, log_var):
    return np.sum(-0.5 * (np.log(2 * np.pi) + log_var + (z - mean) ** 2 / np.exp(log_var)), axis=-1)


def log_bernoulli(x, x_hat):
    p = np.clip(x_hat.astype("float64"), keras.config.epsilon(), 1 - keras.config.epsilon())
    return np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=(1, 2, 3))


def closed_kl(z_mean, z_log_var):
    return float(np.mean(np.sum(0.5 * (z_mean**2 + np.exp(z_log_var) - 1 - z_log_var), axis=1)))


def numpy_terms(terms: dict) -> dict:
    return {name: float(to_numpy(value)) for name, value in terms.items()}


def test_iwae_bound_matches_numpy():
    terms = numpy_terms(iwae_terms(X, X_HAT, Z, Z_MEAN, Z_LOG_VAR, k=K))
    x = np.repeat(X, K, axis=0).astype("float64")
    log_px = log_bernoulli(x, X_HAT)
    log_w = log_px + log_normal(Z, 0, 0) - log_normal(Z, np.repeat(Z_MEAN, K, 0), np.repeat(Z_LOG_VAR, K, 0))
    bound = np.mean(logsumexp(log_w.reshape(B, K), axis=1) - np.log(K))
    assert terms["iw_bound"] == pytest.approx(bound, rel=1e-5) and terms["loss"] == pytest.approx(-bound, rel=1e-5)
    assert terms["reconstruction_loss"] == pytest.approx(-log_px.mean(), rel=1e-5)
    assert terms["kl_loss"] == pytest.approx(closed_kl(Z_MEAN, Z_LOG_VAR), rel=1e-5)


def test_iwae_bound_with_mse_is_a_gaussian_likelihood():
    terms = numpy_terms(iwae_terms(X, X_HAT, Z, Z_MEAN, Z_LOG_VAR, k=K, recon_loss="mse"))
    x = np.repeat(X, K, axis=0).astype("float64")
    log_px = -np.sum((x - X_HAT) ** 2, axis=(1, 2, 3)) - 0.5 * 6 * np.log(np.pi)  # N(x; x_hat, 1/2) over 6 pixels
    assert terms["reconstruction_loss"] == pytest.approx(-log_px.mean(), rel=1e-5)


@pytest.mark.parametrize("alpha, beta, gamma", [(1.0, 1.0, 1.0), (0.0, 6.0, 1.0), (2.0, 0.5, 0.0)])
def test_betatc_terms_match_numpy(alpha, beta, gamma):
    z = Z[:B]
    n = 1000
    terms = numpy_terms(betatc_terms(X, X_HAT[:B], z, Z_MEAN, Z_LOG_VAR, dataset_size=n, alpha=alpha, beta=beta, gamma=gamma))
    pairwise = -0.5 * (np.log(2 * np.pi) + Z_LOG_VAR[None] + (z[:, None] - Z_MEAN[None]) ** 2 / np.exp(Z_LOG_VAR[None]))
    log_qz = logsumexp(pairwise.sum(2), axis=1) - np.log(n * B)
    log_prod = np.sum(logsumexp(pairwise, axis=1) - np.log(n * B), axis=1)
    log_qzx, log_pz = log_normal(z, Z_MEAN, Z_LOG_VAR), log_normal(z, 0, 0)
    mi, tc, dkl = np.mean(log_qzx - log_qz), np.mean(log_qz - log_prod), np.mean(log_prod - log_pz)
    recon = -log_bernoulli(X.astype("float64"), X_HAT[:B]).mean()
    expected = {"mutual_info": mi, "total_correlation": tc, "dimension_kl": dkl, "reconstruction_loss": recon}
    for name, value in expected.items():
        assert terms[name] == pytest.approx(value, rel=1e-4, abs=1e-5), name
    assert terms["loss"] == pytest.approx(recon + alpha * mi + beta * tc + gamma * dkl, rel=1e-4)
    # On a batch the three parts add up to the sampled KL exactly: the log q(z) estimates cancel.
    assert mi + tc + dkl == pytest.approx(np.mean(log_qzx - log_pz), rel=1e-6)


def tiled_posterior(n: int = 4000):
    """One image's posterior drawn n times: z_mean and z_log_var repeated, z sampled, x_hat decoded stand-ins."""
    rng = np.random.default_rng(3)
    mean, log_var = np.tile(Z_MEAN[:1], (n, 1)), np.tile(Z_LOG_VAR[:1], (n, 1))
    z = (mean + np.exp(0.5 * log_var) * rng.standard_normal(mean.shape)).astype("float32")
    return np.tile(X[:1], (n, 1, 1, 1)), np.tile(X_HAT[:1], (n, 1, 1, 1)), z, mean, log_var


def test_the_iwae_bound_with_k_1_is_the_elbo():
    x, x_hat, z, mean, log_var = tiled_posterior()
    terms = numpy_terms(iwae_terms(x, x_hat, z, mean, log_var, k=1))
    # One sample: log p(x|z) + log p(z) - log q(z|x), whose mean is -(reconstruction + KL), the KL in closed form.
    assert terms["iw_bound"] == pytest.approx(-(terms["reconstruction_loss"] + terms["kl_loss"]), abs=0.05)


def test_the_betatc_parts_add_up_to_the_kl_in_expectation():
    x, x_hat, z, mean, log_var = tiled_posterior()
    terms = numpy_terms(betatc_terms(x, x_hat, z, mean, log_var, dataset_size=60_000))
    parts = terms["mutual_info"] + terms["total_correlation"] + terms["dimension_kl"]
    assert parts == pytest.approx(terms["kl_loss"], abs=0.05)


def test_more_importance_samples_tighten_the_bound():
    model = keras_vae.build_model("iwae", arch="dense", latent_dim=2, input_shape=(8, 8, 1), seed=0)
    x = np.tile(make_images()[:4], (64, 1, 1, 1))
    bounds = {}
    for k in (1, 20):
        model.k = k
        bounds[k] = float(to_numpy(model.compute_terms(x, training=False)["iw_bound"]))
    assert bounds[20] > bounds[1]


@pytest.mark.parametrize("family", ["iwae", "betatc-vae"])
def test_training_lowers_each_familys_loss(family, images):
    keras.utils.set_random_seed(0)
    model = keras_vae.build_model(family, arch="dense", latent_dim=2, input_shape=(8, 8, 1), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(images, epochs=15, batch_size=8, verbose=0).history
    assert history["loss"][-1] < 0.9 * history["loss"][0]
    assert set(model.metric_names) <= set(history)


OPTIONS = {"iwae": {"k": 7, "recon_loss": "mse"}, "betatc-vae": {"alpha": 0.5, "beta": 6.0, "gamma": 2.0, "dataset_size": 320}}
LOAD_ELSEWHERE = "import sys, keras, numpy as np, keras_vae; m = keras.saving.load_model(sys.argv[1]); np.save(sys.argv[3], m.predict(np.load(sys.argv[2]), verbose=0))"


@pytest.mark.parametrize("family", ["iwae", "betatc-vae"])
def test_round_trip_here_and_under_the_other_backends(family, images, tmp_path):
    model = keras_vae.build_model(family, arch="conv", latent_dim=3, input_shape=(8, 8, 1), seed=2, **OPTIONS[family])
    model.compile(optimizer="adam")
    model.fit(images, epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded) is keras_vae.MODELS[family]
    assert {key: loaded.get_config()[key] for key in OPTIONS[family]} == OPTIONS[family]
    np.testing.assert_array_equal(loaded.predict(images, verbose=0), model.predict(images, verbose=0))
    np.save(tmp_path / "x.npy", images)
    for backend in OTHER_BACKENDS:
        subprocess.run(
            [sys.executable, "-c", LOAD_ELSEWHERE, str(tmp_path / "m.keras"), str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
            env={**os.environ, "KERAS_BACKEND": backend}, check=True, capture_output=True,
        )
        np.testing.assert_allclose(np.load(tmp_path / "y.npy"), model.predict(images, verbose=0), atol=1e-5)


def test_train_explore_and_evaluate_each_family(tmp_path):
    from test_data import write_split

    pixels = (make_images() * 255).astype("u1")[..., 0]
    write_split(tmp_path, pixels, np.arange(32) % 4, compress=True, split="train")
    write_split(tmp_path, pixels[:8], np.arange(8) % 4, compress=True, split="t10k")
    common = ["--data-dir", tmp_path, "--epochs", 2, "--arch", "dense", "--batch-size", 8, "--output-dir", tmp_path / "runs"]
    for family, flags, logged in (("iwae", ["--k", 3], "iw_bound"), ("betatc-vae", ["--beta", 4], "total_correlation")):
        trained = CliRunner().invoke(app, ["train", *map(str, common), "--model", family, "--name", family, *map(str, flags)])
        assert trained.exit_code == 0, trained.output
        assert logged in (tmp_path / "runs" / family / "history.csv").read_text().splitlines()[0]
        explored = CliRunner().invoke(app, ["explore", str(tmp_path / "runs" / family)])
        assert explored.exit_code == 0, explored.output
        assert (tmp_path / "runs" / family / "figures" / "kl_per_dimension.png").exists()
        evaluated = CliRunner().invoke(app, ["evaluate", str(tmp_path / "runs" / family), "--k", "20", "--json"])
        assert evaluated.exit_code == 0 and f'"model": "{family}"' in evaluated.stdout, evaluated.output
