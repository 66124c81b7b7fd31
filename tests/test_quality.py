"""Sample quality (Fréchet distance, precision and recall, class shares), the samplers of every family, a
VQ-VAE's learned prior over its codes, and the training recipe (steps, the cosine schedule)."""

import json
import math

import keras
import numpy as np
import pytest
import scipy.linalg
from conftest import make_images
from test_data import write_split
from typer.testing import CliRunner

from cli.main import app
from keras_vae.config import TrainConfig
from keras_vae.samplers.flow import FlowSampler
from keras_vae.samplers.mixture import MIXTURE
from keras_vae.samplers.pixelcnn import (
    build_code_prior,
    code_nll,
    sample_codes,
    shift_right,
    train_code_prior,
)
from keras_vae.trained import LoadedRun
from keras_vae.trained.quality import (
    FeatureSpace,
    class_shares,
    frechet_distance,
    gaussian_frechet_distance,
    inception_space,
    precision_recall,
    run_feature_space,
    sample_quality,
)


def cli(*args):
    return CliRunner().invoke(app, [*map(str, args)])


def random_covariance(rng, dim):
    a = rng.standard_normal((dim, dim))
    return a @ a.T + 0.1 * np.eye(dim)


def test_the_frechet_distance_of_two_gaussians_has_its_closed_form():
    # Diagonal covariances: |m1 - m2|² + Σ (σ1 - σ2)², the 2-Wasserstein distance of independent coordinates.
    m1, m2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    v1, v2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    assert gaussian_frechet_distance(m1, np.diag(v1), m2, np.diag(v2)) == pytest.approx(expected, rel=1e-12)
    # Rotating both Gaussians alike leaves the distance as it was.
    rotation, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((3, 3)))
    rotated = gaussian_frechet_distance(
        rotation @ m1, rotation @ np.diag(v1) @ rotation.T, rotation @ m2, rotation @ np.diag(v2) @ rotation.T
    )
    assert rotated == pytest.approx(expected, rel=1e-9)


def test_the_frechet_distance_matches_scipy_on_the_same_features_and_is_zero_for_one_set():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((500, 6)) @ rng.standard_normal((6, 6))
    b = rng.standard_normal((400, 6)) @ rng.standard_normal((6, 6)) + 0.5
    mean_a, mean_b, cov_a, cov_b = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    scipy_fd = np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a + cov_b - 2 * root)
    assert frechet_distance(a, b) == pytest.approx(scipy_fd, rel=1e-8)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    halves = frechet_distance(a[:250], a[250:])
    assert 0 < halves < 0.1 * frechet_distance(a, b)


def test_precision_and_recall_follow_the_k_nearest_neighbour_balls():
    # Real points on a line 0, 1, ..., 9: with k = 1 each ball has radius 1 (its nearest neighbour).
    real = np.arange(10.0)[:, None]
    fake = np.array([[0.5], [9.9], [20.0], [30.0]])  # two inside the real manifold, two far outside
    precision, recall = precision_recall(real, fake, k=1)
    assert precision == pytest.approx(0.5)
    # The fakes' balls: 0.5 -> 9.4 reaches 9.9 (radius² 88.36); 9.9 -> 10.1 (to 20); 20 -> 10; 30 -> 10.
    # Every real point lies within 9.4 of 0.5, so recall is 1.
    assert recall == pytest.approx(1.0)
    same = np.random.default_rng(2).standard_normal((50, 3))
    assert precision_recall(same, same) == (1.0, 1.0)
    assert precision_recall(same, same + 100.0) == (0.0, 0.0)


def test_class_shares_count_each_samples_most_probable_class():
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    np.testing.assert_allclose(class_shares(probabilities), [0.5, 0.25, 0.25])


def test_sample_quality_reports_the_classifiers_view():
    rng = np.random.default_rng(3)
    real, fake = rng.random((40, 4, 4, 1)), rng.random((40, 4, 4, 1))
    labels = np.arange(40) % 2
    space = FeatureSpace(
        "flat",
        lambda x: x.reshape(len(x), -1),
        lambda x: np.stack([x.mean((1, 2, 3)) > 0.5, x.mean((1, 2, 3)) <= 0.5], 1) * 0.8 + 0.1,
    )
    quality = sample_quality(space, real, labels, fake)
    assert quality["quality_images"] == 40 and quality["confidence"] == pytest.approx(0.9)
    assert quality["frechet_distance"] == pytest.approx(
        frechet_distance(real.reshape(40, -1), fake.reshape(40, -1))
    )
    assert sum(quality["class_shares"]) == pytest.approx(1.0) and quality["largest_class_share"] == max(
        quality["class_shares"]
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A VAE, an AE and a VQ-VAE trained for 3 epochs on 8x8 bar images with 4 labels."""
    root = tmp_path_factory.mktemp("quality")
    pixels = (make_images() * 255).astype("u1")[..., 0]
    write_split(root, pixels, np.arange(32) % 4, compress=True, split="train")
    write_split(root, pixels[:16], np.arange(16) % 4, compress=True, split="t10k")
    common = [
        "--data-dir",
        root,
        "--epochs",
        3,
        "--arch",
        "dense",
        "--batch-size",
        8,
        "--output-dir",
        root / "runs",
    ]
    for family in ("vae", "ae", "vq-vae"):
        trained = cli(
            "train",
            *common,
            "--model",
            family,
            "--name",
            family,
            *(["--codebook-size", 8] if family == "vq-vae" else []),
        )
        assert trained.exit_code == 0, trained.output
    return {family: root / "runs" / family for family in ("vae", "ae", "vq-vae")} | {"root": root}


def test_the_classifier_is_trained_once_per_run_and_reused(runs):
    loaded = LoadedRun.load(runs["vae"])
    source = loaded.dataset
    path = runs["root"] / "classifier.keras"
    first = run_feature_space(path, source)
    written = path.stat().st_mtime_ns
    again = run_feature_space(path, source)
    assert path.stat().st_mtime_ns == written
    np.testing.assert_allclose(first.embed(loaded.images), again.embed(loaded.images), atol=1e-6)
    assert first.embed(loaded.images).shape == (len(loaded.images), 128)
    path.write_bytes(b"not a model")  # a damaged cache is trained again
    assert run_feature_space(path, source).classify(loaded.images).shape == (len(loaded.images), 4)


def test_unlabelled_data_is_measured_in_pixel_components_and_says_so(tmp_path):
    import imageio.v2 as imageio

    folder = tmp_path / "flat"
    folder.mkdir()
    for i, image in enumerate((make_images() * 255).astype("u1")):
        imageio.imwrite(folder / f"{i}.png", image[..., 0])
    common = [
        "--data-dir",
        folder,
        "--epochs",
        1,
        "--arch",
        "dense",
        "--batch-size",
        8,
        "--output-dir",
        tmp_path / "runs",
    ]
    assert cli("train", *common, "--name", "few").exit_code == 0  # 3 held-out images
    few = cli("evaluate", tmp_path / "runs" / "few", "--k", 2)
    assert (
        few.exit_code == 0 and "sample quality needs more than 4 held-out images and few has 3" in few.stdout
    )
    assert cli("train", *common, "--name", "u", "--val-fraction", 0.5).exit_code == 0
    result = cli("evaluate", tmp_path / "runs" / "u", "--k", 2, "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert "principal components" in metrics["features"] and "no labels" in metrics["features_note"]
    assert "confidence" not in metrics and not (tmp_path / "runs" / "u" / "classifier.keras").exists()


def test_evaluate_reports_sample_quality_for_each_sampler(runs):
    from keras_vae.trained.quality import run_sample_quality

    result = cli("evaluate", runs["vae"], "--k", 2, "--sampler", "gmm", "--json", "--quality-images", 12)
    assert result.exit_code == 0, result.output
    assert (
        json.loads(result.stdout)["sampler"].startswith("gmm:")
        and (runs["vae"] / "classifier.keras").exists()
    )
    space = run_feature_space(runs["root"] / "classifier.keras", LoadedRun.load(runs["vae"]).dataset)
    for family in ("vae", "ae", "vq-vae"):
        loaded = LoadedRun.load(runs[family])
        for sampler in ("prior", "gmm"):
            metrics = run_sample_quality(loaded, sampler, 12, space=space)
            assert metrics["sampler"].startswith(f"{sampler}:") and metrics["quality_images"] == 12
            assert (
                metrics["frechet_distance"] >= 0
                and 0 <= metrics["precision"] <= 1
                and 0 <= metrics["recall"] <= 1
            )
            assert len(metrics["class_shares"]) == 4 and 0 < metrics["confidence"] <= 1
    refused = cli("evaluate", runs["vae"], "--quality-images", 3)
    assert refused.exit_code == 2 and "--quality-images must be more than 4" in refused.stderr
    missing = cli("evaluate", runs["vae"], "--fid-weights", runs["root"] / "nothing.h5")
    assert (
        missing.exit_code == 2 and "--fid-weights" in missing.stderr and len(missing.stderr.splitlines()) == 1
    )


def test_the_fid_comes_from_the_users_inception_weights(tmp_path):
    network = keras.applications.InceptionV3(
        include_top=False, weights=None, pooling="avg", input_shape=(299, 299, 3)
    )
    weights = tmp_path / "inception.weights.h5"
    network.save_weights(weights)
    space = inception_space(weights)
    images = make_images()[:2]
    features = space.embed(images)
    assert features.shape == (2, 2048)
    resized = keras.ops.image.resize(images, (299, 299))
    expected = keras.ops.convert_to_numpy(network(keras.ops.repeat(resized, 3, axis=-1) * 2.0 - 1.0))
    np.testing.assert_allclose(features, expected, atol=1e-4)
    wrong = tmp_path / "other.weights.h5"
    keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]).save_weights(wrong)
    with pytest.raises(Exception, match="does not hold InceptionV3's weights"):
        inception_space(wrong)


def test_every_family_samples_from_both_samplers_and_says_which(runs):
    vae, ae, vq = (LoadedRun.load(runs[family]) for family in ("vae", "ae", "vq-vae"))
    assert (vae.sampler().name, ae.sampler().name, vq.sampler().name) == ("prior", "gmm", "prior")
    assert (
        vae.sampler().description == "prior: N(0, I)" and ae.sampler("prior").description == "prior: N(0, I)"
    )
    assert vae.sampler("gmm").description.startswith(f"gmm: a {MIXTURE}-Gaussian mixture")
    assert (
        "per-position frequencies" in vq.sampler().description
        and "keras-vae train-prior" in vq.sampler().description
    )
    rng = np.random.default_rng(0)
    np.testing.assert_allclose(
        vae.sample_codes(5, np.random.default_rng(4), "prior"),
        np.random.default_rng(4).standard_normal((5, 2)),
        rtol=1e-6,
    )
    codes = vq.sample_codes(50, rng, "gmm")
    assert codes.shape == (50, 2) and codes.dtype == np.int32 and codes.min() >= 0 and codes.max() < 8
    for family in (vae, ae, vq):
        for sampler in ("prior", "gmm"):
            assert family.samples(4, 0, sampler=sampler).shape == (4, 8, 8, 1)
    refused = cli("generate", runs["vae"], "--sampler", "uniform")
    assert refused.exit_code == 2 and "'uniform' is not one of 'prior', 'gmm'" in refused.stderr


def test_the_gmm_sampler_draws_codes_with_its_mixtures_moments(runs):
    loaded = LoadedRun.load(runs["vae"])
    mixture = loaded.sampler("gmm").fit(loaded.training_codes)
    weights, means, factors = mixture.weights, mixture.means, mixture.factors
    covariances = factors @ np.transpose(factors, (0, 2, 1))
    mean = weights @ means
    covariance = np.einsum(
        "k,kij->ij", weights, covariances + np.einsum("ki,kj->kij", means - mean, means - mean)
    )
    drawn = loaded.sample_codes(200_000, np.random.default_rng(5), "gmm").astype("float64")
    scale = np.sqrt(np.diag(covariance))
    np.testing.assert_allclose(drawn.mean(0), mean, atol=0.02 * scale.max())
    np.testing.assert_allclose(np.cov(drawn, rowvar=False), covariance, atol=0.03 * scale.max() ** 2)
    assert np.allclose(factors, np.tril(factors))  # Cholesky factors: lower triangular


def test_generate_and_explore_say_which_sampler_made_the_images(runs):
    generated = cli("generate", runs["vae"], "--n", 4, "--sampler", "gmm", "--out", runs["root"] / "g.npy")
    assert generated.exit_code == 0 and "keras-vae: sampler gmm: a 10-Gaussian mixture" in generated.stderr
    np.testing.assert_allclose(
        np.load(runs["root"] / "g.npy"), LoadedRun.load(runs["vae"]).samples(4, 0, sampler="gmm"), atol=1e-6
    )
    own = cli("generate", runs["ae"], "--n", 4)
    assert own.exit_code == 0 and "sampler gmm:" in own.stderr
    explored = cli("explore", runs["ae"], "--sampler", "prior", "--out", runs["root"] / "ae-prior")
    assert explored.exit_code == 0, explored.output
    assert (runs["root"] / "ae-prior" / "samples.png").exists()
    refused = cli("explore", runs["ae"], "--sampler", "none")
    assert refused.exit_code == 2 and "'none' is not one of 'prior', 'gmm'" in refused.stderr


def test_the_code_prior_gives_float32_logits_under_mixed_precision():
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        prior = build_code_prior(4, 8)
    finally:
        keras.config.set_dtype_policy(policy)
    assert prior.get_layer("logits").compute_dtype == "float32" and prior.layers[2].compute_dtype == "float16"


def test_the_code_prior_is_causal_and_learns_which_code_follows_which():
    rng = np.random.default_rng(6)
    first = rng.integers(0, 4, 1000)
    codes = np.stack(
        [first, (first + 1) % 4, (first + 2) % 4], axis=1
    )  # the later codes follow from the first
    np.testing.assert_array_equal(
        shift_right(codes[:2], 9), [[9, codes[0, 0], codes[0, 1]], [9, codes[1, 0], codes[1, 1]]]
    )
    prior, nll = train_code_prior(codes[:800], codes[800:], codebook_size=6, epochs=25, batch_size=32)
    assert nll["val_nll"] == pytest.approx(math.log(4), abs=0.15)  # only the first code is uncertain
    assert code_nll(prior, codes[800:]) == pytest.approx(nll["val_nll"])
    drawn = sample_codes(prior, 400, np.random.default_rng(7))
    assert (
        np.mean(drawn[:, 1] == (drawn[:, 0] + 1) % 4) > 0.95
        and np.mean(drawn[:, 2] == (drawn[:, 0] + 2) % 4) > 0.95
    )
    assert set(np.unique(drawn[:, 0])) == {0, 1, 2, 3}
    untrained = build_code_prior(3, 6)
    shifted = shift_right(codes[:4], 6)
    changed = shifted.copy()
    changed[:, 2] = (changed[:, 2] + 1) % 6
    before, after = (keras.ops.convert_to_numpy(untrained(x)) for x in (shifted, changed))
    np.testing.assert_allclose(
        before[:, :2], after[:, :2], atol=1e-6
    )  # a later input never reaches earlier positions
    assert np.abs(before[:, 2] - after[:, 2]).max() > 0


def test_the_flow_learns_a_ring_that_no_gaussian_fits_and_reads_back_the_same(tmp_path):
    """Codes on a ring of radius 3 in 2-D (and a third dimension that follows the first): the flow's held-out
    likelihood beats the best Gaussian's, its samples lie on the ring, and a saved flow samples the same."""
    from sklearn.mixture import GaussianMixture

    rng = np.random.default_rng(0)
    angle = rng.uniform(0, 2 * np.pi, 3000)
    ring = 3 * np.stack([np.cos(angle), np.sin(angle)], axis=1) + 0.1 * rng.standard_normal((3000, 2))
    codes = np.concatenate([ring, ring[:, :1] * 0.5 + 0.1 * rng.standard_normal((3000, 1))], axis=1)
    codes = codes.astype("float32")
    sampler = FlowSampler(epochs=60, batch_size=64).fit(codes[:2500], codes[2500:])
    gaussian = -GaussianMixture(1, covariance_type="full").fit(codes[:2500]).score(codes[2500:])
    assert sampler.nll["val_nll"] < gaussian - 0.5
    drawn = sampler.sample(2000, np.random.default_rng(1))
    radius = np.linalg.norm(drawn[:, :2], axis=1)
    assert abs(np.median(radius) - 3) < 0.3 and np.mean(radius < 1.5) < 0.05  # a Gaussian fills the middle
    path = tmp_path / "flow.keras"
    sampler.flow.save(path)
    noise = np.random.default_rng(2).standard_normal((5, 3)).astype("float32")
    np.testing.assert_allclose(
        keras.saving.load_model(path).sample(noise), sampler.flow.sample(noise), atol=1e-5
    )


def test_the_flows_held_out_tenth_is_drawn_at_random_not_the_last_codes_given():
    """Codes as a folder of class subfolders gives them, sorted by class: the last tenth is a class of its
    own, which a flow that held out the last tenth as given would never see."""
    rng = np.random.default_rng(3)
    codes = np.concatenate([rng.normal(0, 0.5, (1800, 2)), rng.normal(6, 0.5, (200, 2))]).astype("float32")
    drawn = FlowSampler(epochs=30, batch_size=64).fit(codes).sample(2000, np.random.default_rng(4))
    assert 0.05 < np.mean(np.linalg.norm(drawn - 6, axis=1) < 2) < 0.2


def test_train_prior_fits_a_flow_for_a_continuous_model_and_a_pixelcnn_for_a_vq_vae(runs):
    refused = cli("generate", runs["vae"], "--n", 4, "--sampler", "flow")
    assert refused.exit_code == 2 and "no learned flow" in refused.stderr and "train-prior" in refused.stderr
    fitted = cli("train-prior", runs["vae"], "--epochs", 3)
    assert fitted.exit_code == 0 and "flow.keras (code NLL" in fitted.stdout, fitted.output
    generated = cli("generate", runs["vae"], "--n", 4, "--sampler", "flow")
    assert generated.exit_code == 0 and "sampler flow: the learned RealNVP flow" in generated.stderr
    assert cli("generate", runs["vq-vae"], "--n", 4, "--sampler", "flow").exit_code == 2
    (runs["vae"] / "flow.keras").write_bytes((runs["ae"] / "model.keras").read_bytes())
    stale = cli("generate", runs["vae"], "--n", 4, "--sampler", "flow")
    assert stale.exit_code == 2 and "records no origin" in stale.stderr and "--overwrite" in stale.stderr
    trained = cli("train-prior", runs["vq-vae"], "--epochs", 2)
    assert trained.exit_code == 0 and "prior.keras (code NLL" in trained.stdout, trained.output
    again = cli("train-prior", runs["vq-vae"], "--epochs", 2)
    assert again.exit_code == 2 and "give --overwrite" in again.stderr
    generated = cli("generate", runs["vq-vae"], "--n", 4)
    assert generated.exit_code == 0 and "learned PixelCNN prior" in generated.stderr
    (runs["vq-vae"] / "prior.keras").write_bytes(b"damaged")
    damaged = cli("generate", runs["vq-vae"], "--n", 4)
    assert (
        damaged.exit_code == 2 and "records no origin" in damaged.stderr and "--overwrite" in damaged.stderr
    )
    assert cli("train-prior", runs["vq-vae"], "--epochs", 1, "--overwrite").exit_code == 0


def test_compare_measures_every_run_in_one_feature_space(runs):
    out = runs["root"] / "compare"
    result = cli("compare", runs["vae"], runs["ae"], "--out", out, "--quality-images", 12)
    assert result.exit_code == 0, result.output
    page = (out / "index.md").read_text()
    assert "## sample quality" in page and "(of vae), against 12 held-out images" in page
    assert "| vae | prior: N(0, I) |" in page and "| ae | gmm: a 10-Gaussian mixture" in page


def test_epochs_come_from_steps_and_the_learning_rate_follows_a_cosine():
    config = TrainConfig(steps=250, batch_size=32, learning_rate=2e-3)
    assert config.resolved(1000).epochs == 8  # 32 steps an epoch: 7 hold 224, 8 hold 256
    assert config.resolved(1000).kl_warmup_steps == 128  # at least 250 steps, or half of a shorter run
    assert TrainConfig(epochs=3, kl_warmup_steps=2).resolved(1000) == TrainConfig(epochs=3, kl_warmup_steps=2)
    schedule = config.learning_rate_of(1000)
    values = [float(keras.ops.convert_to_numpy(schedule(step))) for step in (0, 128, 256)]
    np.testing.assert_allclose(values, [2e-3, 1e-3, 0.0], atol=1e-9)
    assert TrainConfig(lr_schedule="constant", learning_rate=1e-3).learning_rate_of(1000) == 1e-3
    assert TrainConfig.from_dict({"epochs": 10}).lr_schedule == "constant"  # runs from before the schedule
    with pytest.raises(Exception, match="lr_schedule must be one of cosine, constant"):
        TrainConfig(lr_schedule="step")
