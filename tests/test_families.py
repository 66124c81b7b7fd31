"""The model families beyond the AE and the VAE (IWAE, β-TCVAE, CVAE, VQ-VAE, RAE, VampPrior VAE): each loss
against NumPy on small arrays, the identities their bounds obey, the codebook's updates and straight-through
gradient, training, the .keras round trip on this backend and the others, and every command."""

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
from keras_vae.losses import betatc_terms, iwae_terms, vamp_terms, vq_terms
from keras_vae.models.quantizer import VectorQuantizer

RNG = np.random.default_rng(7)
B, K, D = 3, 4, 2
X = RNG.random((B, 2, 3, 1)).astype("float32")
X_HAT = RNG.uniform(0.05, 0.95, (B * K, 2, 3, 1)).astype("float32")
Z_MEAN = RNG.normal(size=(B, D)).astype("float32")
Z_LOG_VAR = RNG.normal(scale=0.5, size=(B, D)).astype("float32")
Z = RNG.normal(size=(B * K, D)).astype("float32")
BACKENDS = ("tensorflow", "jax", "torch")
NEXT_BACKEND = BACKENDS[(BACKENDS.index(keras.backend.backend()) + 1) % 3]
"""Where a model saved here is loaded again: over tox's three runs each backend writes once and reads once."""


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
    assert terms["iw_bound"] == pytest.approx(bound, rel=1e-5) and terms["loss"] == pytest.approx(
        -bound, rel=1e-5
    )
    assert terms["reconstruction_loss"] == pytest.approx(-log_px.mean(), rel=1e-5)
    assert terms["kl_loss"] == pytest.approx(closed_kl(Z_MEAN, Z_LOG_VAR), rel=1e-5)


def test_iwae_bound_with_mse_is_a_gaussian_likelihood():
    terms = numpy_terms(iwae_terms(X, X_HAT, Z, Z_MEAN, Z_LOG_VAR, k=K, recon_loss="mse"))
    x = np.repeat(X, K, axis=0).astype("float64")
    log_px = -np.sum((x - X_HAT) ** 2, axis=(1, 2, 3)) - 0.5 * 6 * np.log(
        np.pi
    )  # N(x; x_hat, 1/2) over 6 pixels
    assert terms["reconstruction_loss"] == pytest.approx(-log_px.mean(), rel=1e-5)


@pytest.mark.parametrize("alpha, beta, gamma", [(1.0, 1.0, 1.0), (0.0, 6.0, 1.0), (2.0, 0.5, 0.0)])
def test_betatc_terms_match_numpy(alpha, beta, gamma):
    z = Z[:B]
    n = 1000
    terms = numpy_terms(
        betatc_terms(X, X_HAT[:B], z, Z_MEAN, Z_LOG_VAR, dataset_size=n, alpha=alpha, beta=beta, gamma=gamma)
    )
    pairwise = -0.5 * (
        np.log(2 * np.pi) + Z_LOG_VAR[None] + (z[:, None] - Z_MEAN[None]) ** 2 / np.exp(Z_LOG_VAR[None])
    )
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
    """One image's posterior drawn n times: z_mean and z_log_var repeated, z sampled, x_hat decoded
    stand-ins."""
    rng = np.random.default_rng(3)
    mean, log_var = np.tile(Z_MEAN[:1], (n, 1)), np.tile(Z_LOG_VAR[:1], (n, 1))
    z = (mean + np.exp(0.5 * log_var) * rng.standard_normal(mean.shape)).astype("float32")
    return np.tile(X[:1], (n, 1, 1, 1)), np.tile(X_HAT[:1], (n, 1, 1, 1)), z, mean, log_var


def test_the_iwae_bound_with_k_1_is_the_elbo():
    x, x_hat, z, mean, log_var = tiled_posterior()
    terms = numpy_terms(iwae_terms(x, x_hat, z, mean, log_var, k=1))
    # One sample: log p(x|z) + log p(z) - log q(z|x), whose mean is -(reconstruction + KL), the KL in closed
    # form.
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


LABELS = np.arange(32) % 4
FAMILY_OPTIONS = {"cvae": {"classes": 4}, "vq-vae": {"codebook_size": 16}, "vamp-vae": {"pseudo_inputs": 8}}


def inputs_for(family: str, images: np.ndarray, labels: np.ndarray = LABELS):
    """A model's input: a CVAE's images with their one-hot labels."""
    return [images, np.eye(4, dtype="float32")[labels[: len(images)]]] if family == "cvae" else images


def test_vq_terms_match_numpy():
    rng = np.random.default_rng(4)
    z_e = rng.normal(size=(B, 3, 2)).astype("float32")
    z_q = rng.normal(size=(B, 3, 2)).astype("float32")
    codes = np.array([[0, 1, 1], [2, 1, 0], [1, 1, 4]])
    for train_codebook in (True, False):
        terms = vq_terms(
            X, X_HAT[:B], z_e, z_q, codes, codebook_size=5, commitment=0.3, train_codebook=train_codebook
        )
        distance = np.mean(np.sum((z_e - z_q) ** 2, axis=(1, 2)))
        recon = -log_bernoulli(X.astype("float64"), X_HAT[:B]).mean()
        use = np.bincount(codes.ravel(), minlength=5) / codes.size
        perplexity = np.exp(-np.sum(use[use > 0] * np.log(use[use > 0])))
        got = numpy_terms({name: value for name, value in terms.items() if name != "code_counts"})
        assert got["reconstruction_loss"] == pytest.approx(recon, rel=1e-5)
        assert got["commitment_loss"] == pytest.approx(distance, rel=1e-5)
        assert got["perplexity"] == pytest.approx(perplexity, rel=1e-5)
        assert got["loss"] == pytest.approx(
            recon + 0.3 * distance + (distance if train_codebook else 0), rel=1e-5
        )
        np.testing.assert_array_equal(to_numpy(terms["code_counts"]), np.bincount(codes.ravel(), minlength=5))


def test_the_quantizer_picks_the_nearest_code_and_ema_moves_it_as_numpy_does():
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(6, 4, 3)).astype("float32")
    quantizer = VectorQuantizer(8, ema_decay=0.9, restart_below=0.0)
    quantizer.build(vectors.shape)
    codebook = to_numpy(quantizer.codebook).copy()
    indices, z_q = (to_numpy(a) for a in quantizer(vectors))
    nearest = np.argmin(((vectors[..., None, :] - codebook) ** 2).sum(-1), axis=-1)
    np.testing.assert_array_equal(indices, nearest)
    np.testing.assert_allclose(z_q, codebook[nearest], rtol=1e-6)
    quantizer(vectors, training=True)
    assigned = np.eye(8)[nearest.ravel()]
    count = 0.1 * assigned.sum(0)
    sums = 0.1 * assigned.T @ vectors.reshape(-1, 3)
    smoothed = (count + 1e-5) / (count.sum() + 8e-5) * count.sum()
    np.testing.assert_allclose(to_numpy(quantizer.codebook), sums / smoothed[:, None], rtol=1e-4, atol=1e-6)


def test_dead_codes_restart_at_the_batchs_vectors():
    vectors = np.random.default_rng(6).normal(size=(4, 2, 3)).astype("float32")
    quantizer = VectorQuantizer(16, ema_decay=0.99, restart_below=1.0)
    quantizer.build(vectors.shape)
    quantizer(vectors, training=True)  # every code's count is below 1 after one step, so each restarts
    flat = vectors.reshape(-1, 3)
    np.testing.assert_allclose(to_numpy(quantizer.codebook), flat[np.arange(16) % 8], rtol=1e-4)


def test_the_straight_through_gradient_reaches_the_encoder(images):
    """With no commitment term and a codebook moved by EMA, only the reconstruction's gradient, copied past
    the quantizer, can change the encoder."""
    keras.utils.set_random_seed(0)
    model = keras_vae.build_model(
        "vq-vae",
        arch="dense",
        latent_dim=2,
        input_shape=(8, 8, 1),
        codebook_size=16,
        commitment=0.0,
        codebook_update="ema",
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    before = [to_numpy(w).copy() for w in model.encoder.trainable_weights]
    model.fit(images, epochs=1, batch_size=32, verbose=0)
    after = [to_numpy(w) for w in model.encoder.trainable_weights]
    assert all(np.abs(a - b).max() > 0 for a, b in zip(after, before))


def test_a_cvae_decodes_each_label_to_its_own_image_and_its_terms_are_the_vaes(images):
    keras.utils.set_random_seed(0)
    model = keras_vae.build_model("cvae", arch="conv", latent_dim=2, input_shape=(8, 8, 1), classes=4, seed=0)
    z = np.zeros((4, 2), "float32")
    decoded = to_numpy(model.decoder([z, np.eye(4, dtype="float32")]))
    assert min(np.abs(decoded[i] - decoded[j]).max() for i in range(4) for j in range(i)) > 0
    x = inputs_for("cvae", images)
    z_mean, z_log_var, _ = model.encoder(x)
    terms = numpy_terms(model.compute_terms(x, training=False))
    assert terms["kl_loss"] == pytest.approx(closed_kl(to_numpy(z_mean), to_numpy(z_log_var)), rel=1e-5)
    assert terms["loss"] == pytest.approx(terms["reconstruction_loss"] + terms["kl_loss"], rel=1e-6)


def test_vamp_terms_estimate_the_kl_from_the_sample_against_the_mixture_of_pseudo_input_posteriors():
    prior_means = RNG.normal(size=(5, D)).astype("float32")
    prior_log_vars = RNG.normal(scale=0.3, size=(5, D)).astype("float32")
    z = Z[:B]
    terms = numpy_terms(vamp_terms(X, X_HAT[:B], z, Z_MEAN, Z_LOG_VAR, prior_means, prior_log_vars, beta=0.5))
    log_p = logsumexp(
        np.stack([log_normal(z, prior_means[k], prior_log_vars[k]) for k in range(5)], axis=1), axis=1
    ) - np.log(5)
    kl = np.mean(log_normal(z, Z_MEAN, Z_LOG_VAR) - log_p)
    recon = -log_bernoulli(X, X_HAT[:B]).mean()
    assert terms["kl_loss"] == pytest.approx(kl, rel=1e-5)
    assert terms["loss"] == pytest.approx(recon + 0.5 * kl, rel=1e-5)


def test_a_vamp_vaes_prior_is_its_encoders_posteriors_at_the_pseudo_inputs_everywhere_it_is_used():
    from keras_vae.trained.metrics import prior_log_density

    model = keras_vae.build_model(
        "vamp-vae", arch="dense", latent_dim=D, input_shape=(2, 3, 1), pseudo_inputs=4
    )
    means, log_vars = model.prior_components()
    z_mean, z_log_var, _ = (to_numpy(a) for a in model.encoder(to_numpy(model.pseudo_images())))
    np.testing.assert_allclose(means, z_mean, rtol=1e-6)
    np.testing.assert_allclose(log_vars, z_log_var, rtol=1e-6)
    z = RNG.normal(size=(3, 5, D))
    brute = logsumexp(np.stack([log_normal(z, means[k], log_vars[k]) for k in range(4)], -1), -1) - np.log(4)
    np.testing.assert_allclose(prior_log_density(model, chunk=4)(z), brute, rtol=1e-9)
    drawn = model.prior_draw(np.zeros((6, D), "float32"))  # noise 0: the components' means in turn
    np.testing.assert_allclose(drawn, means[[0, 1, 2, 3, 0, 1]], rtol=1e-6)


def test_rae_loss_is_the_reconstruction_the_code_penalty_and_the_decoders_weight_decay():
    model = keras_vae.build_model(
        "rae", arch="dense", latent_dim=2, input_shape=(2, 3, 1), embedding_weight=0.3, decoder_decay=0.01
    )
    terms = numpy_terms(model.compute_terms(X, training=False))
    z, x_hat = to_numpy(model.encoder(X)), to_numpy(model(X)).astype("float64")
    embedding = np.mean(0.5 * np.sum(z.astype("float64") ** 2, axis=1))
    decay = sum(np.sum(to_numpy(weight).astype("float64") ** 2) for weight in model.decoder.trainable_weights)
    assert terms["reconstruction_loss"] == pytest.approx(-log_bernoulli(X, x_hat).mean(), rel=1e-4)
    assert terms["embedding_loss"] == pytest.approx(embedding, rel=1e-5)
    expected = terms["reconstruction_loss"] + 0.3 * embedding + 0.5 * 0.01 * decay
    assert terms["loss"] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("family", ["iwae", "betatc-vae", "cvae", "vq-vae", "rae", "vamp-vae"])
def test_training_lowers_each_familys_loss(family, images):
    keras.utils.set_random_seed(0)
    model = keras_vae.build_model(
        family, arch="dense", latent_dim=2, input_shape=(8, 8, 1), seed=0, **FAMILY_OPTIONS.get(family, {})
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(inputs_for(family, images), epochs=15, batch_size=8, verbose=0).history
    assert history["loss"][-1] < 0.9 * history["loss"][0]
    assert set(model.metric_names) <= set(history)


OPTIONS = {
    "iwae": {"k": 7, "recon_loss": "mse"},
    "betatc-vae": {"alpha": 0.5, "beta": 6.0, "gamma": 2.0, "dataset_size": 320},
    "cvae": {"beta": 2.0},
    "vq-vae": {"codebook_size": 16, "commitment": 0.5, "codebook_update": "ema"},
    "rae": {"embedding_weight": 0.01, "decoder_decay": 1e-3},
    "vamp-vae": {"pseudo_inputs": 5, "beta": 0.5},
}
BUILD = {"cvae": {"classes": 4}, "vq-vae": {"embedding_dim": 3}}
LOAD_ELSEWHERE = (
    "import sys, pathlib, keras, numpy as np, keras_vae\n"
    "for family in sys.argv[2:]:\n"
    "    path = pathlib.Path(sys.argv[1]) / family; m = "
    "keras.saving.load_model(path.with_suffix('.keras')); x = np.load(path.with_suffix('.npy'))\n"
    "    x = [x[..., :-4], x[:, 0, 0, -4:]] if m.conditional else x; np.save(path.with_name(family + "
    "'-predicted.npy'), m.predict(x, verbose=0))"
)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Each family trained for an epoch and saved, then loaded and run in one process under the next backend
    (a process a family took 8-13 s, most of it importing a backend)."""
    folder, images = tmp_path_factory.mktemp("round-trip"), make_images()
    models = {}
    for family in OPTIONS:
        model = keras_vae.build_model(
            family,
            arch="conv",
            latent_dim=3,
            input_shape=(8, 8, 1),
            seed=2,
            **BUILD.get(family, {}),
            **OPTIONS[family],
        )
        model.compile(optimizer="adam")
        x = inputs_for(family, images)
        model.fit(x, epochs=1, batch_size=8, verbose=0)
        model.save(folder / f"{family}.keras")
        np.save(
            folder / f"{family}.npy",
            np.concatenate([x[0], np.broadcast_to(x[1][:, None, None], (32, 8, 8, 4))], -1)
            if family == "cvae"
            else x,
        )
        models[family] = (model, x)
    subprocess.run(
        [sys.executable, "-c", LOAD_ELSEWHERE, str(folder), *OPTIONS],
        env={**os.environ, "KERAS_BACKEND": NEXT_BACKEND},
        check=True,
        capture_output=True,
    )
    return folder, models


@pytest.mark.parametrize("family", list(OPTIONS))
def test_round_trip_here_and_under_the_next_backend(family, saved):
    folder, models = saved
    model, x = models[family]
    loaded = keras.saving.load_model(folder / f"{family}.keras")
    assert type(loaded) is keras_vae.MODELS[family]
    assert {key: loaded.get_config()[key] for key in OPTIONS[family]} == OPTIONS[family]
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    np.testing.assert_allclose(
        np.load(folder / f"{family}-predicted.npy"), model.predict(x, verbose=0), atol=1e-5
    )


def labelled_idx(tmp_path):
    from test_data import write_split

    pixels = (make_images() * 255).astype("u1")[..., 0]
    write_split(tmp_path, pixels, LABELS, compress=True, split="train")
    write_split(tmp_path, pixels[:8], np.arange(8) % 4, compress=True, split="t10k")
    return [
        "--data-dir",
        str(tmp_path),
        "--epochs",
        "2",
        "--arch",
        "dense",
        "--batch-size",
        "8",
        "--output-dir",
        str(tmp_path / "runs"),
    ]


def reads_back(run) -> None:
    """embed, serve and export on a run of a new family: codes of its own, samples from its own sampler, and
    endpoints that match the Keras model."""
    from test_export import export

    from keras_vae.serve.runs import ServedRun

    out = run.parent.parent / f"{run.name}-z.csv"
    embedded = CliRunner().invoke(app, ["embed", str(run), "--out", str(out)])
    header = out.read_text().splitlines()[0]
    assert embedded.exit_code == 0 and ("z_mean_0" in header if "vamp" in run.name else "z_0" in header)
    served = ServedRun.load(run)
    assert served.samples(2)["sampler"] == served.run.sampler().description
    exported = export(run)
    assert exported.returncode == 0 and "largest absolute difference" in exported.stdout, exported.stderr[
        -2000:
    ]


def test_train_explore_and_evaluate_each_family(tmp_path):
    common = labelled_idx(tmp_path)
    families = (
        ("iwae", ["--k", 3], "iw_bound", "kl_per_dimension"),
        ("betatc-vae", ["--beta", 4], "total_correlation", "kl_per_dimension"),
        ("cvae", [], "kl_loss", "samples"),
        ("vq-vae", ["--codebook-size", 16], "dead_codes", "codebook_usage"),
        ("rae", ["--embedding-weight", 0.01], "embedding_loss", "latent"),
        ("vamp-vae", ["--pseudo-inputs", 6], "kl_loss", "samples"),
    )
    for family, flags, logged, figure in families:
        trained = CliRunner().invoke(
            app, ["train", *common, "--model", family, "--name", family, *map(str, flags)]
        )
        assert trained.exit_code == 0, trained.output
        assert logged in (tmp_path / "runs" / family / "history.csv").read_text().splitlines()[0]
        explored = CliRunner().invoke(app, ["explore", str(tmp_path / "runs" / family)])
        assert explored.exit_code == 0, explored.output
        assert (tmp_path / "runs" / family / "figures" / f"{figure}.png").exists()
        evaluated = CliRunner().invoke(
            app, ["evaluate", str(tmp_path / "runs" / family), "--k", "20", "--json"]
        )
        assert evaluated.exit_code == 0 and f'"model": "{family}"' in evaluated.stdout, evaluated.output
        if family == "vq-vae":
            assert '"perplexity"' in evaluated.stdout and "iw_nll" not in evaluated.stdout
        if family == "vamp-vae":  # its KL, estimated from the samples, does not split by dimension
            assert '"iw_nll"' in evaluated.stdout and "kl_per_dimension" not in evaluated.stdout
            assert not (tmp_path / "runs" / family / "figures" / "kl_per_dimension.png").exists()
            generated = CliRunner().invoke(app, ["generate", str(tmp_path / "runs" / family), "--n", "4"])
            assert "the VampPrior, a mixture of the posteriors at 6 learned pseudo-inputs" in generated.stderr
        if family in ("rae", "vamp-vae"):
            reads_back(tmp_path / "runs" / family)
    runs = [str(tmp_path / "runs" / family) for family, *_ in families]
    compared = CliRunner().invoke(app, ["compare", *runs, "--out", str(tmp_path / "compare")])
    assert compared.exit_code == 0, compared.output
    # The views every run has: a VQ-VAE's discrete codes have no latent plot or grid.
    assert sorted(path.name for path in (tmp_path / "compare").glob("*.png")) == [
        "reconstructions.png",
        "samples.png",
    ]


def test_a_cvae_generates_the_label_it_is_given_and_exports_endpoints_that_take_labels(tmp_path):
    from test_export import export

    tf = pytest.importorskip("tensorflow")
    common = labelled_idx(tmp_path)
    run = tmp_path / "runs" / "cvae"
    assert (
        CliRunner()
        .invoke(app, ["train", *common, "--model", "cvae", "--name", "cvae", "--seed", "3"])
        .exit_code
        == 0
    )
    for label in ("2", "3"):
        out = tmp_path / f"label{label}.npy"
        generated = CliRunner().invoke(
            app, ["generate", str(run), "--n", "4", "--out", str(out), "--label", label]
        )
        assert generated.exit_code == 0, generated.output
    assert (
        np.abs(np.load(tmp_path / "label2.npy") - np.load(tmp_path / "label3.npy")).max() > 0
    )  # same z, another label
    for label in ("7", "³"):  # "³" is a digit to str.isdigit, and int() refuses it
        refused = CliRunner().invoke(app, ["generate", str(run), "--label", label])
        assert (
            refused.exit_code == 2
            and f"--label '{label}' is not a class of cvae: give a number from 0 to 3" in refused.stderr
        )
    traversal = CliRunner().invoke(app, ["animate", str(run), "--kind", "traversal"])
    assert traversal.exit_code == 0, traversal.output
    exported = export(run)
    assert exported.returncode == 0 and "largest absolute difference" in exported.stdout, exported.stderr[
        -2000:
    ]
    signatures = tf.saved_model.load(str(run / "export" / "saved_model")).signatures
    images, labels = tf.constant(make_images()[:2]), tf.constant(np.eye(4, dtype="float32")[[1, 2]])
    encoded = signatures["encode"](images=images, labels=labels)
    decoded = signatures["decode"](z=encoded["z_mean"], labels=labels)["images"]
    np.testing.assert_allclose(
        decoded, signatures["reconstruct"](images=images, labels=labels)["images"], atol=1e-6
    )


def test_a_vq_vae_exports_and_commands_that_do_not_apply_say_so_in_one_line(tmp_path):
    from test_export import export

    common = labelled_idx(tmp_path)
    assert (
        CliRunner()
        .invoke(app, ["train", *common, "--model", "vq-vae", "--name", "vq", "--codebook-size", "16"])
        .exit_code
        == 0
    )
    exported = export(
        tmp_path / "runs" / "vq", "--format", "onnx"
    )  # encode gives code indices, decode takes them
    assert exported.returncode == 0 and "largest absolute difference" in exported.stdout, exported.stderr[
        -2000:
    ]
    animated = CliRunner().invoke(app, ["animate", str(tmp_path / "runs" / "vq"), "--kind", "latent"])
    assert (
        animated.exit_code == 2 and "--kind latent moves through a continuous latent space" in animated.stderr
    )
    assert len(animated.stderr.strip().splitlines()) == 1
    labelled = CliRunner().invoke(app, ["generate", str(tmp_path / "runs" / "vq"), "--label", "1"])
    assert labelled.exit_code == 2 and "--label is for a cvae run, and vq is a vq-vae" in labelled.stderr
    sampled = CliRunner().invoke(app, ["generate", str(tmp_path / "runs" / "vq")])
    assert (
        sampled.exit_code == 0
        and "per-position frequencies" in sampled.stderr
        and "no learned prior yet" in sampled.stderr
    )
    if keras.backend.backend() != "torch":  # where torch first asks for torchrun
        distributed = CliRunner().invoke(
            app, ["train", *common, "--model", "vq-vae", "--name", "vq2", "--distribute"]
        )
        assert distributed.exit_code == 2 and distributed.stderr.startswith(
            "keras-vae: error: --distribute is not for a vq-vae"
        ), distributed.stderr
    folder = tmp_path / "flat"
    folder.mkdir()
    for i, image in enumerate((make_images() * 255).astype("u1")):
        import imageio.v2 as imageio

        imageio.imwrite(folder / f"{i}.png", image[..., 0])
    unlabelled = CliRunner().invoke(
        app, ["train", "--data-dir", str(folder), "--model", "cvae", "--output-dir", str(tmp_path / "runs")]
    )
    assert (
        unlabelled.exit_code == 2
        and "--model cvae is conditioned on labels" in unlabelled.stderr
        and "no labels" in unlabelled.stderr
    )
