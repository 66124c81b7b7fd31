"""explore, compare, evaluate, generate and animate on tiny runs trained by `keras-vae train`."""

import csv
import json
import os
import subprocess
import sys
import textwrap

import imageio.v3 as iio
import keras
import matplotlib.pyplot as plt
import numpy as np
import pytest
from conftest import make_images
from test_data import write_split
from typer.testing import CliRunner

import keras_vae
from cli.main import app
from keras_vae import plots
from keras_vae.errors import ConfigError
from keras_vae.files import FileError
from keras_vae.models.coding import encode_means
from keras_vae.runs import Run
from keras_vae.trained import LoadedRun, geometry
from keras_vae.trained.embed import embed_run
from keras_vae.trained.evaluate import evaluate_run
from keras_vae.trained.explore import summary_page
from keras_vae.trained.generate import PNG_IMAGES, generate
from keras_vae.trained.metrics import (
    active_units,
    compute_likelihood,
    importance_weights,
    likelihood_model,
    pixel_accuracy,
)
from keras_vae.trained.views import GRID, draw_grid, draw_latent, interpolation

EPOCHS = 3


def cli(*args):
    return CliRunner().invoke(app, [*map(str, args)])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Runs of 3 epochs on 8x8 images: an AE and a VAE with a 2-D latent, and a VAE with a 3-D one."""
    root = tmp_path_factory.mktemp("explore")
    images = (make_images() * 255).astype("u1")[..., 0]
    labels = np.arange(32) % 4
    (root / "idx").mkdir()
    write_split(root / "idx", images, labels, compress=False, split="train")
    write_split(root / "idx", images[:12], labels[:12], compress=False, split="t10k")
    common = [
        "--data-dir",
        root / "idx",
        "--epochs",
        EPOCHS,
        "--arch",
        "dense",
        "--batch-size",
        8,
        "--learning-rate",
        1e-3,
        "--lr-schedule",
        "constant",
        "--output-dir",
        root,
    ]
    assert cli("train", *common, "--model", "both", "--name", "z2").exit_code == 0
    assert cli("train", *common, "--latent-dim", 3, "--name", "z3").exit_code == 0
    return {"ae": root / "z2-ae", "vae": root / "z2-vae", "vae3": root / "z3", "root": root}


def test_training_snapshots_every_epoch(runs):
    snapshots = runs["vae"] / "snapshots"
    assert sorted(p.name for p in snapshots.iterdir()) == [
        "epoch_0001.npz",
        "epoch_0002.npz",
        "epoch_0003.npz",
        "fixed.npz",
    ]
    with np.load(snapshots / "epoch_0003.npz") as epoch, np.load(snapshots / "fixed.npz") as fixed:
        assert fixed["images"].shape == (12, 8, 8, 1) and sorted(fixed["labels"].tolist()) == sorted(
            (np.arange(12) % 4).tolist()
        )
        assert epoch["latent"].shape == (12, 2)
        assert epoch["samples"].shape == (64, 8, 8, 1) and epoch["samples"].dtype == np.uint8
        assert epoch["reconstructions"].shape == (12, 8, 8, 1)


@pytest.mark.parametrize(
    "run, expected",
    [
        (
            "vae",
            {
                "reconstructions",
                "latent",
                "latent_grid",
                "latent_grid_quantiles",
                "samples",
                "interpolation",
                "kl_per_dimension",
            },
        ),
        (
            "ae",
            {"reconstructions", "latent", "latent_grid", "latent_grid_quantiles", "samples", "interpolation"},
        ),
        (
            "vae3",
            {"reconstructions", "latent", "latent_tsne", "samples", "interpolation", "kl_per_dimension"},
        ),
    ],
)
def test_explore_writes_every_figure(runs, run, expected):
    result = cli("explore", runs[run])
    assert result.exit_code == 0, result.output
    figures = runs[run] / "figures"
    assert {p.stem for p in figures.glob("*.png")} == expected
    for path in figures.glob("*.png"):
        assert iio.imread(path).ndim == 3


def test_compare_puts_runs_side_by_side(runs):
    out = runs["root"] / "compare"
    result = cli("compare", runs["ae"], runs["vae"], "--out", out)
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {
        "reconstructions.png",
        "latent.png",
        "samples.png",
        "latent_grid.png",
        "index.md",
    }
    page = (out / "index.md").read_text()
    assert "| z2-ae | ae |" in page and "| z2-vae | vae |" in page and "![latent](latent.png)" in page


@pytest.mark.parametrize(
    "kind, frames",
    [
        ("latent", EPOCHS),
        ("samples", EPOCHS),
        ("reconstructions", EPOCHS),
        ("traversal", 48),
        ("interpolation", 4 * 8),
    ],
)
def test_animate_writes_a_gif_with_one_frame_per_step(runs, kind, frames):
    out = runs["root"] / f"{kind}.gif"
    result = cli(
        "animate", runs["vae3"] if kind == "latent" else runs["vae"], "--kind", kind, "--out", out, "--fps", 5
    )
    assert result.exit_code == 0, result.output
    gif = iio.imread(out, index=None)
    assert gif.shape[0] == frames and gif.shape[-1] in (3, 4)
    assert iio.immeta(out, index=0)["duration"] == 200


def test_a_runs_fixed_images_are_read_back_in_0_to_1(runs):
    with np.load(runs["vae"] / "snapshots" / "fixed.npz") as fixed:
        np.testing.assert_array_equal(
            LoadedRun.load(runs["vae"]).images, fixed["images"].astype("float32") / 255
        )


def test_generate_png_and_npy(runs):
    out = runs["root"] / "gen.npy"
    assert cli("generate", runs["vae"], "--n", 5, "--out", out, "--seed", 3).exit_code == 0
    first = np.load(out)
    assert first.shape == (5, 8, 8, 1) and first.min() >= 0 and first.max() <= 1
    assert cli("generate", runs["vae"], "--n", 5, "--out", out, "--seed", 3, "--overwrite").exit_code == 0
    np.testing.assert_array_equal(np.load(out), first)
    assert cli("generate", runs["vae"], "--n", 9, "--out", runs["root"] / "gen.png").exit_code == 0
    assert iio.imread(runs["root"] / "gen.png").shape == (26, 26)
    pictures = []
    for _ in range(2):
        assert (
            cli(
                "generate",
                runs["vae"],
                "--n",
                1,
                "--seed",
                4,
                "--out",
                runs["root"] / "one.png",
                "--overwrite",
            ).exit_code
            == 0
        )
        pictures.append(iio.imread(runs["root"] / "one.png"))
    assert pictures[0].shape == (8, 8) and (pictures[0] == pictures[1]).all(), (
        "one image, the same for the same seed"
    )


def test_generate_refuses_more_images_than_a_png_holds_naming_n(runs):
    with pytest.raises(ConfigError, match=f"^n is {PNG_IMAGES + 1}, more than a .png grid holds") as refused:
        generate(runs["vae"], PNG_IMAGES + 1, 0, runs["root"] / "many.png")
    assert refused.value.parameter == "n"


def test_evaluate_from_another_directory_finds_the_data(runs, tmp_path, monkeypatch):
    monkeypatch.chdir(runs["root"])
    relative = tmp_path / "relative"
    assert (
        cli(
            "train",
            "--data-dir",
            "idx",
            "--epochs",
            1,
            "--arch",
            "dense",
            "--output-dir",
            relative,
            "--name",
            "r",
        ).exit_code
        == 0
    )
    monkeypatch.chdir(tmp_path)
    result = cli("evaluate", relative / "r", "--k", 2, "--json")
    assert result.exit_code == 0, result.output


def test_evaluate_json(runs):
    result = cli("evaluate", runs["vae"], "--k", 20, "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["images"] == 12 and metrics["k"] == 20 and len(metrics["kl_per_dimension"]) == 2
    assert metrics["iw_nll"] <= metrics["neg_elbo"]
    assert sum(metrics["kl_per_dimension"]) == pytest.approx(
        metrics["kl"], abs=1e-3
    )  # each dimension's mean, rounded to 1e-4
    autoencoder = json.loads(cli("evaluate", runs["ae"], "--json").stdout)
    assert "iw_nll" not in autoencoder and "no likelihood" in autoencoder["note"]
    table = cli("evaluate", runs["ae"]).stdout
    assert "pixel_accuracy" in table and "Note: an autoencoder has no prior" in table


def test_evaluate_reconstructs_through_the_mean_as_numpy_does(runs):
    """The deterministic reconstruction's BCE summed over pixels and its pixel accuracy (both sides of 0.5
    alike)."""
    model = Run(runs["vae"]).load_model()
    x = make_images()[:10]
    metrics = compute_likelihood(model, x, 2, "bce", seed=1)
    x_hat = keras.ops.convert_to_numpy(model.decoder(model.encoder(x)[0])).astype("float64")
    clipped = np.clip(x_hat, 1e-7, 1 - 1e-7)
    bce = -np.sum(x * np.log(clipped) + (1 - x) * np.log(1 - clipped), axis=(1, 2, 3))
    assert metrics["reconstruction_through_mean"] == pytest.approx(bce.mean(), rel=1e-4)
    assert metrics["pixel_accuracy"] == pytest.approx(np.mean((x > 0.5) == (x_hat > 0.5)), abs=1e-9)


def test_importance_weighted_bound_tightens_and_agrees_with_keras(runs):
    model = Run(runs["vae"]).load_model()
    x = make_images()
    bounds = [compute_likelihood(model, x, k, "bce", seed=1) for k in (1, 30, 300)]
    nll = [b["iw_nll"] for b in bounds]
    # Tighter with k in expectation; this tiny model is near its limit by k = 30, so allow MC noise there.
    assert nll[1] < nll[0] and nll[2] < nll[0] and nll[2] <= nll[1] + 0.05, nll
    assert all(b["iw_nll"] <= b["neg_elbo"] + 1e-9 for b in bounds[1:])
    model.compile()
    keras_terms = model.evaluate(x, batch_size=32, verbose=0, return_dict=True)
    np.testing.assert_allclose(bounds[2]["kl"], keras_terms["kl_loss"], rtol=1e-4)
    np.testing.assert_allclose(bounds[2]["reconstruction"], keras_terms["reconstruction_loss"], rtol=0.02)


@pytest.mark.parametrize("recon_loss", ["bce", "mse"])
def test_importance_weights_match_a_hand_computation(runs, recon_loss):
    """log p(x|z), log p(z) and log q(z|x) of every sample against NumPy, in steps that split the images
    unevenly."""
    model = Run(runs["vae"]).load_model()
    x, k = make_images()[:7], 3
    log_w, log_px, z_mean, z_log_var = importance_weights(
        model,
        likelihood_model(model.decoder, k, recon_loss),
        x,
        recon_loss,
        np.random.default_rng(5),
        decodes_per_step=6,
    )
    z = z_mean[:, None] + np.exp(0.5 * z_log_var[:, None]) * np.random.default_rng(5).standard_normal(
        (7, k, 2)
    )
    x_hat = np.asarray(
        model.decoder.predict(z.reshape(-1, 2).astype("float32"), verbose=0), "float64"
    ).reshape(7, k, -1)
    pixels = np.broadcast_to(x.reshape(7, 1, -1), x_hat.shape)
    if recon_loss == "bce":
        clipped = np.clip(x_hat, 1e-7, 1 - 1e-7)
        expected_px = np.sum(pixels * np.log(clipped) + (1 - pixels) * np.log(1 - clipped), axis=-1)
    else:  # a Gaussian of variance 1/2 per pixel
        expected_px = np.sum(-np.square(pixels - x_hat) - 0.5 * np.log(np.pi), axis=-1)
    np.testing.assert_allclose(log_px, expected_px, rtol=1e-4)
    log_prior = np.sum(-0.5 * (np.log(2 * np.pi) + z**2), axis=-1)
    log_posterior = np.sum(
        -0.5
        * (np.log(2 * np.pi) + z_log_var[:, None] + (z - z_mean[:, None]) ** 2 / np.exp(z_log_var[:, None])),
        axis=-1,
    )
    np.testing.assert_allclose(log_w, expected_px + log_prior - log_posterior, rtol=1e-4)


def test_iw_nll_is_minus_the_mean_log_mean_weight_on_the_same_draws(runs):
    """evaluate's numbers against scipy's logsumexp on the very draws evaluate makes (one chunk of images, one
    seed)."""
    from scipy.special import logsumexp

    model = Run(runs["vae"]).load_model()
    x, k = make_images(), 50
    result = compute_likelihood(model, x, k, "bce", seed=2)
    log_w, log_px, z_mean, z_log_var = importance_weights(
        model, likelihood_model(model.decoder, k, "bce"), x, "bce", np.random.default_rng(2)
    )
    iw_nll = -np.mean(logsumexp(log_w, axis=1) - np.log(k))
    np.testing.assert_allclose(result["iw_nll"], iw_nll, rtol=1e-12)
    np.testing.assert_allclose(result["iw_bits_per_dim"], iw_nll / (8 * 8 * np.log(2)), rtol=1e-12)
    kl = np.mean(np.sum(0.5 * (z_mean**2 + np.exp(z_log_var) - 1 - z_log_var), axis=1))
    np.testing.assert_allclose([result["reconstruction"], result["kl"]], [-np.mean(log_px), kl], rtol=1e-12)


@pytest.mark.parametrize("k", [1, 7, 300])
def test_iw_nll_of_a_model_that_ignores_its_input_is_d_log_2(k):
    """All-zero weights: q(z|x) is the prior and every pixel decodes to 0.5 whatever z, so each weight is
    p(x|z) = 2^-D and -log p(x) = D log 2 nats exactly, one bit per dimension, for every k."""
    model = keras_vae.build_model("vae", arch="dense", latent_dim=2, input_shape=(8, 8, 1))
    for variable in model.trainable_variables:
        variable.assign(np.zeros(variable.shape, "float32"))
    result = compute_likelihood(model, make_images(), k, "bce", seed=0)
    np.testing.assert_allclose([result["iw_nll"], result["neg_elbo"]], 64 * np.log(2), rtol=1e-6)
    np.testing.assert_allclose(result["iw_bits_per_dim"], 1.0, rtol=1e-6)
    assert result["kl"] == 0


def test_pixel_accuracy_and_active_units_by_hand():
    x = np.array([[0.9, 0.1], [0.2, 0.7]])
    x_hat = np.array([[0.6, 0.4], [0.8, 0.2]])
    assert pixel_accuracy(x, x_hat) == 0.5
    assert pixel_accuracy(np.array([0.2, 0.5]), np.array([0.5, 0.2])) == 1.0, (
        "0.5 itself lies below the threshold"
    )
    z = np.array(
        [[0.0, 1.0, 0.5, 3.0], [0.0, -1.0, 0.6, -3.0], [0.0, 1.0, 0.55, 0.0]]
    )  # variances 0, 0.89, 0.0017, 6
    assert active_units(z) == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["explore", "/no/such/run"], "is not a run folder"),
        (["evaluate", "/no/such/run"], "is not a run folder"),
        (
            ["animate", "RUN", "--kind", "spin"],
            "Invalid value for '--kind': Value error, 'spin' is not one of 'latent', 'samples'",
        ),
        (
            ["evaluate", "RUN", "--k", "0"],
            "Invalid value for '--k': Input should be greater than or equal to 1",
        ),
        (["generate", "RUN", "--out", "x.jpg"], "--out must end in .png or .npy"),
    ],
)
def test_bad_input_is_one_line(runs, args, message):
    result = cli(*[str(runs["vae"]) if a == "RUN" else a for a in args])
    assert result.exit_code == 2 and message in result.stderr and result.stderr.count("\n") == 1


def test_corrupt_model_is_one_line(runs, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(runs["vae"], copy)
    (copy / "model.keras").write_bytes(b"PK\x03\x04 truncated")
    result = cli("explore", copy)
    assert result.exit_code == 2 and "cannot load" in result.stderr and result.stderr.count("\n") == 1


BLOCK_TENSORFLOW = textwrap.dedent(
    """
    import sys

    for name in ("tensorflow", "tensorboard", "tensorflow_datasets"):
        sys.modules[name] = None  # as if not installed: imports fail, importlib.util.find_spec gives None
    from cli.main import app
    try:
        app(sys.argv[1:])
    except SystemExit as exit:
        assert not exit.code, exit.code
    """
)


@pytest.mark.parametrize("backend", [b for b in ("jax", "torch") if b != keras.backend.backend()][:1])
def test_pictures_need_no_tensorflow_on_another_backend(runs, backend):
    """A run trained on this backend, explored and animated under JAX or torch with TensorFlow
    unimportable."""
    env = {**os.environ, "KERAS_BACKEND": backend}
    for args in (
        ["explore", runs["vae"], "--out", runs["root"] / "no-tf"],
        ["animate", runs["vae"], "--out", runs["root"] / "no-tf.gif"],
    ):
        child = subprocess.run(
            [sys.executable, "-c", BLOCK_TENSORFLOW, *map(str, args)], env=env, capture_output=True, text=True
        )
        assert child.returncode == 0, child.stderr[-2000:]


@pytest.mark.parametrize("run, suffix", [("vae", ".npy"), ("vae", ".csv"), ("ae", ".npy")])
def test_embed_writes_every_images_latent_means_with_its_label(runs, tmp_path, run, suffix):
    out = tmp_path / f"z{suffix}"
    result = cli("embed", runs[run], "--out", out)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"{out} (12 images)"
    model = Run(runs[run]).load_model()
    images, labels = LoadedRun.load(runs[run]).dataset.take(
        "val", 12
    )  # every validation image, in the split's order
    codes = [np.asarray(code) for code in keras.tree.flatten(model.encoder.predict(images, verbose=0))]
    if suffix == ".npy":
        table = np.load(out)
        assert table.dtype.names == (("label", "z_mean", "z_log_var") if run == "vae" else ("label", "z"))
        assert table["label"].tolist() == labels.tolist()
        np.testing.assert_allclose(table[table.dtype.names[1]], codes[0], atol=1e-5)
        if run == "vae":
            np.testing.assert_allclose(table["z_log_var"], codes[1], atol=1e-5)
    else:
        rows = list(csv.DictReader(out.open()))
        assert list(rows[0]) == ["label", "class", "z_mean_0", "z_mean_1", "z_log_var_0", "z_log_var_1"]
        assert [int(row["label"]) for row in rows] == labels.tolist()
        np.testing.assert_allclose(
            [[float(row["z_mean_0"]), float(row["z_log_var_1"])] for row in rows],
            np.stack([codes[0][:, 0], codes[1][:, 1]], 1),
            atol=1e-5,
        )
    assert cli("embed", runs[run], "--out", out).exit_code == 2, (
        "an existing file is replaced only with --overwrite"
    )


def test_embed_run_reads_the_validation_split_unless_told_and_replaces_only_when_asked(runs, tmp_path):
    out, count = embed_run(runs["vae"], tmp_path / "z.npy")
    assert count == 12 and len(np.load(out)) == 12
    with pytest.raises(FileError, match="exists: pass --overwrite"):
        embed_run(runs["vae"], out, split="train")
    assert embed_run(runs["vae"], out, split="train", overwrite=True) == (out, 32) and len(np.load(out)) == 32
    with pytest.raises(ConfigError, match=r"out must end in \.npy or \.csv, got .*z\.txt") as refused:
        embed_run(runs["vae"], tmp_path / "z.txt")
    assert refused.value.parameter == "out"


def test_embed_other_images_shaped_as_the_runs(runs, tmp_path):
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    for i in range(3):
        iio.imwrite(pictures / f"{i}.png", np.full((16, 12, 3), 60 * i, "uint8"))
    result = cli(
        "embed", runs["vae"], "--data-dir", pictures, "--split", "train", "--out", tmp_path / "z.npy"
    )
    assert result.exit_code == 0, result.output
    table = np.load(tmp_path / "z.npy")
    assert len(table) in (2, 3) and table["z_mean"].shape[1] == 2 and (table["label"] == -1).all()


def test_commands_without_a_run_take_the_latest_under_saved_models(runs, tmp_path, monkeypatch):
    import shutil

    monkeypatch.chdir(tmp_path)
    assert "no run given, and saved_models holds no trained run" in cli("explore").stderr
    for name in ("z2-vae", "z2-ae"):
        shutil.copytree(runs[name.split("-")[1]], tmp_path / "saved_models" / name)
    os.utime(tmp_path / "saved_models" / "z2-vae" / "history.csv", (1e9, 1e9))
    result = cli("animate", "--kind", "samples")
    assert result.exit_code == 0, result.output
    assert result.stderr == "keras-vae: saved_models/z2-ae (the run trained last)\n"
    assert (tmp_path / "saved_models" / "z2-ae" / "figures" / "samples.gif").exists()


def test_an_autoencoder_generates_from_a_mixture_fitted_on_its_training_codes(runs, tmp_path):
    from keras_vae.samplers.mixture import MIXTURE

    result = cli("generate", runs["ae"], "--n", 4, "--out", tmp_path / "g.npy")
    assert result.exit_code == 0, result.output
    assert (
        f"keras-vae: sampler gmm: a {MIXTURE}-Gaussian mixture fitted on 32 training images' codes"
        in result.stderr
    )
    loaded = LoadedRun.load(runs["ae"])
    mixture = loaded.sampler("gmm").fit(loaded.training_codes)
    weights, means, factors = mixture.weights, mixture.means, mixture.factors
    assert (
        weights.sum() == pytest.approx(1.0)
        and means.shape == (MIXTURE, 2)
        and factors.shape == (MIXTURE, 2, 2)
    )
    codes = encode_means(loaded.model, make_images())
    assert np.allclose(weights @ means, codes.mean(0), atol=0.05 * np.abs(codes).max())
    np.testing.assert_allclose(
        np.load(tmp_path / "g.npy"), loaded.samples(4, np.random.default_rng(0)), atol=1e-6
    )


class Drawn:
    """What interpolation, draw_grid and summary_page read of a LoadedRun, with a decoder that records its
    calls: a latent point (a, b) decodes to a 2x2 image of a, b, a + b and the label it was decoded under."""

    def __init__(self, z, labels, conditional=False, name="r"):
        self.z, self.labels, self.name = np.asarray(z, "float32"), np.asarray(labels), name
        self.images = np.arange(len(z), dtype="float32")[:, None, None, None] * np.ones(
            (1, 2, 2, 1), "float32"
        )
        self.model = type("Model", (), {"conditional": conditional})()
        self.config = {"options": {"model": "vae", "arch": "dense", "latent_dim": 2}}
        self.decoded = []

    def decode(self, z, label=None):
        self.decoded.append((np.asarray(z), label))
        return np.stack(
            [z[:, 0], z[:, 1], z.sum(1), np.full(len(z), -1 if label is None else label)], 1
        ).reshape(-1, 2, 2, 1)

    grid = LoadedRun.grid

    def class_name(self, label):
        return f"c{label}"

    latent_dim = property(lambda self: self.z.shape[1])
    class_names = None


@pytest.mark.parametrize(
    "labels, conditional, other",
    [
        ([2, 2, 5, 2], False, 2),  # labelled: the first image of another class
        ([-1, -1, -1, -1], False, 1),  # unlabelled: the code farthest from the first's
        (
            [2, 5, 2, 2],
            True,
            3,
        ),  # a CVAE: the farthest image of the first's own class, decoded under that class
    ],
    ids=["labelled", "unlabelled", "cvae"],
)
def test_interpolation_runs_from_the_first_image_to_its_partner_along_a_straight_line(
    labels, conditional, other
):
    data = Drawn([[0, 0], [9, 9], [1, 2], [3, -4]], labels, conditional)
    figure = interpolation(data, steps=4)
    ((z, label),) = data.decoded
    weights = np.linspace(0, 1, 4)[:, None]
    np.testing.assert_allclose(z, (1 - weights) * data.z[0] + weights * data.z[other], atol=1e-6)
    assert label == (2 if conditional else None)
    strip = figure.axes[0].images[0].get_array()
    expected = plots.tile(
        np.concatenate([data.images[:1], data.decode(z, label), data.images[other : other + 1]]), 6
    )
    np.testing.assert_allclose(strip, expected[..., 0], atol=1e-6)


def test_the_decoded_grid_spans_the_radius_with_axes_in_latent_units():
    for conditional, title in (
        (False, "r: decoded latent grid"),
        (True, "r: decoded latent grid (class c0)"),
    ):
        data, (figure, ax) = Drawn([[0, 0]], [0], conditional), plt.subplots()
        draw_grid(ax, data)
        shown = ax.images[0]
        assert shown.get_extent() == [-1.5, 1.5, -1.5, 1.5] and ax.get_title() == title
        np.testing.assert_allclose(shown.get_array(), data.grid(np.linspace(-1.5, 1.5, GRID))[..., 0])
        plt.close(figure)


def test_compares_summary_is_a_markdown_table_a_row_a_run():
    page = summary_page(
        [Drawn([[0, 0]], [0], name="a")], [{"epoch": 3, "loss": 1.234, "val_loss": 2.5}], ["latent"]
    ).splitlines()
    assert page[:5] == [
        "# keras-vae compare",
        "",
        "| run | model | arch | latent | epochs | loss | reconstruction_loss | kl_loss | val_loss |",
        "|" + " --- |" * 9,
        "| a | vae | dense | 2 | 3 | 1.23 | - | - | 2.50 |",
    ]
    assert "![latent](latent.png)" in page


def test_with_one_sample_the_importance_weighted_bound_is_the_elbo(runs):
    """k = 1 is allowed; its bound is the ELBO up to the Monte Carlo error of a KL the ELBO takes in closed
    form."""
    metrics = evaluate_run(runs["vae"], k=1, quality_images=0)
    assert metrics["k"] == 1 and metrics["iw_nll"] == pytest.approx(metrics["neg_elbo"], rel=0.02)


def test_the_latent_view_shows_a_2d_latent_as_it_is_and_a_larger_one_by_its_principal_components():
    rng = np.random.default_rng(3)
    for z, title, labels in (
        (rng.normal(size=(12, 2)), "r: latent means", ("z[0]", "z[1]")),
        (rng.normal(size=(12, 3)) * [3, 1, 0.2], "r: latent means (PCA of 3-D)", ("PC 1", "PC 2")),
    ):
        data, (figure, ax) = Drawn(z, np.arange(12) % 3), plt.subplots()
        draw_latent(ax, data)
        shown = np.concatenate(
            [collection.get_offsets() for collection in ax.collections]
        )  # a class at a time
        centred = z - z.mean(0)
        expected = z if z.shape[1] == 2 else centred @ np.linalg.svd(centred, full_matrices=False)[2][:2].T
        expected = expected[np.argsort(np.arange(12) % 3, kind="stable")]
        signs = (
            np.sign(np.sum(shown * expected, 0)) if z.shape[1] > 2 else 1
        )  # a component's sign is arbitrary
        np.testing.assert_allclose(shown * signs, expected, atol=1e-5)
        assert ax.get_title() == title and (ax.get_xlabel(), ax.get_ylabel()) == labels
        plt.close(figure)
    np.testing.assert_array_equal(
        geometry.tsne(data.z), geometry.tsne(data.z)
    )  # seeded: the same picture twice
