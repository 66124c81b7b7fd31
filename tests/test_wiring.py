"""How each model class calls its loss terms, the VQ-VAE's codebook over several steps, and data paths the
other tests never build, each checked against a computation of its own in NumPy."""

import math

import imageio.v2 as imageio
import keras
import numpy as np
import pytest
from conftest import make_images, to_numpy

import keras_vae
from keras_vae.data import load_dataset
from keras_vae.models.quantizer import VectorQuantizer

X = make_images()[:8]


def with_log_variances(model, value: float = 1.3):
    """Give the encoder's z_log_var layer a bias far from 0, so exp(log_var) and exp(log_var / 2) differ."""
    layer = model.encoder.get_layer("z_log_var")
    layer.bias.assign(np.full(layer.bias.shape, value, "float32"))
    return model


def bce_sum(x, x_hat):
    x_hat = np.clip(x_hat, 1e-7, 1 - 1e-7)
    return -np.sum(x * np.log(x_hat) + (1 - x) * np.log(1 - x_hat), axis=(1, 2, 3))


def log_normal(z, mean, log_var):
    return np.sum(-0.5 * (math.log(2 * math.pi) + log_var + (z - mean) ** 2 / np.exp(log_var)), axis=-1)


def replay_encoder(model, x, training: bool = False):
    """Run the terms, then rewind the sampling noise and encode again: z_mean, z_log_var and the very z the
    terms were computed with, in float64; and the noise's seed generator, with the state it was rewound to.
    These dense models have no dropout or batch normalisation, so training only changes the KL's warm-up
    weight."""
    generator = model.encoder.get_layer("z").seed_generator
    state = to_numpy(generator.state)
    terms = {
        name: float(to_numpy(value))
        for name, value in model.compute_terms(x, training=training).items()
        if name != "code_counts"
    }
    generator.state.assign(state)
    z_mean, z_log_var, z = (to_numpy(a).astype("float64") for a in model.encoder(x))
    return terms, z_mean, z_log_var, z, (generator, state)


@pytest.mark.parametrize("k", [1, 3])
def test_the_iwae_bound_is_the_importance_weighted_mean_of_its_own_draws(k):
    model = with_log_variances(keras_vae.build_model("iwae", "dense", 3, (8, 8, 1), seed=1, k=k))
    terms, z_mean, z_log_var, _, (generator, _) = replay_encoder(model, X)
    noise = to_numpy(keras.random.normal((len(X) * k, 3), seed=generator)).astype(
        "float64"
    )  # the IWAE's own draw
    means, log_vars = np.repeat(z_mean, k, axis=0), np.repeat(z_log_var, k, axis=0)
    z = means + np.exp(log_vars / 2) * noise
    log_px = -bce_sum(np.repeat(X, k, axis=0), to_numpy(model.decoder(z.astype("float32"))).astype("float64"))
    log_w = (log_px + log_normal(z, 0.0, 0.0) - log_normal(z, means, log_vars)).reshape(len(X), k)
    top = log_w.max(axis=1, keepdims=True)
    bound = np.mean(top[:, 0] + np.log(np.mean(np.exp(log_w - top), axis=1)))
    assert terms["iw_bound"] == pytest.approx(bound, rel=1e-4)
    assert terms["loss"] == pytest.approx(-bound, rel=1e-4)
    assert terms["reconstruction_loss"] == pytest.approx(np.mean(-log_px), rel=1e-4)
    assert terms["kl_loss"] == pytest.approx(
        np.mean(np.sum(0.5 * (z_mean**2 + np.exp(z_log_var) - 1 - z_log_var), 1)), rel=1e-4
    )


def test_the_vae_loss_weighs_its_terms_as_asked():
    model = with_log_variances(
        keras_vae.build_model("vae", "dense", 3, (8, 8, 1), seed=2, beta=2.5, reconstruction_weight=0.4)
    )
    model.kl_scale.assign(0.5)  # the warm-up's scale while training
    terms, z_mean, z_log_var, z, (generator, state) = replay_encoder(model, X, training=True)
    recon = np.mean(bce_sum(X, to_numpy(model.decoder(z.astype("float32"))).astype("float64")))
    kl = np.mean(np.sum(0.5 * (z_mean**2 + np.exp(z_log_var) - 1 - z_log_var), 1))
    assert terms["reconstruction_loss"] == pytest.approx(recon, rel=1e-4) and terms[
        "kl_loss"
    ] == pytest.approx(kl, rel=1e-4)
    assert terms["loss"] == pytest.approx(0.4 * recon + 2.5 * 0.5 * kl, rel=1e-4)
    generator.state.assign(state)
    whole = replay_encoder(model, X)[0]  # validation and evaluate weigh the KL in full, whatever the warm-up
    assert whole["loss"] == pytest.approx(0.4 * recon + 2.5 * kl, rel=1e-4)
    generator.state.assign(state)
    noise = to_numpy(keras.random.normal((len(X), 3), seed=generator)).astype("float64")
    np.testing.assert_allclose(
        z, z_mean + np.exp(z_log_var / 2) * noise, rtol=1e-5, atol=1e-6
    )  # the reparameterisation


@pytest.mark.parametrize("recon_loss, reduction", [("mse", "mean"), ("bce", "sum")])
def test_the_ae_loss_is_the_reconstruction_loss_it_was_given(recon_loss, reduction):
    model = keras_vae.build_model(
        "ae", "dense", 3, (8, 8, 1), seed=2, recon_loss=recon_loss, reduction=reduction
    )
    x_hat = to_numpy(model(X)).astype("float64")
    expected = np.mean(
        np.mean((X - x_hat) ** 2, axis=(1, 2, 3)) if recon_loss == "mse" else bce_sum(X, x_hat)
    )
    terms = model.compute_terms(X, training=False)
    assert float(to_numpy(terms["loss"])) == pytest.approx(expected, rel=1e-4) and set(terms) == {
        "loss",
        "reconstruction_loss",
    }


def test_the_betatc_loss_is_its_logged_terms_weighted_each_by_its_own_weight():
    model = with_log_variances(
        keras_vae.build_model(
            "betatc-vae",
            "dense",
            3,
            (8, 8, 1),
            seed=3,
            alpha=0.5,
            beta=3.0,
            gamma=2.0,
            reconstruction_weight=0.7,
            dataset_size=100,
        )
    )
    model.kl_scale.assign(0.8)
    terms, z_mean, z_log_var, z, _ = replay_encoder(model, X, training=True)
    # Minibatch-weighted sampling (Chen et al. 2018), from the same z: log q(z_i) over the batch of n out of
    # N = 100.
    pairwise = -0.5 * (
        math.log(2 * math.pi) + z_log_var[None] + (z[:, None] - z_mean[None]) ** 2 / np.exp(z_log_var[None])
    )  # (i, j, d)
    log_nm = math.log(len(X) * 100)
    log_qz = np.log(np.sum(np.exp(pairwise.sum(2)), axis=1)) - log_nm
    log_prod = np.sum(np.log(np.sum(np.exp(pairwise), axis=1)) - log_nm, axis=1)
    log_qz_x, log_pz = log_normal(z, z_mean, z_log_var), log_normal(z, 0.0, 0.0)
    expected = {
        "mutual_info": np.mean(log_qz_x - log_qz),
        "total_correlation": np.mean(log_qz - log_prod),
        "dimension_kl": np.mean(log_prod - log_pz),
    }
    for name, value in expected.items():
        assert terms[name] == pytest.approx(value, rel=1e-3, abs=1e-3), name
    weighted = 0.7 * terms["reconstruction_loss"] + 0.8 * (
        0.5 * terms["mutual_info"] + 3.0 * terms["total_correlation"] + 2.0 * terms["dimension_kl"]
    )
    assert terms["loss"] == pytest.approx(weighted, rel=1e-5)
    assert sum(expected.values()) == pytest.approx(
        np.mean(log_qz_x - log_pz), rel=1e-6
    )  # they split the sampled KL


def test_a_cvae_decodes_its_sample_under_the_label_it_was_given():
    model = with_log_variances(keras_vae.build_model("cvae", "dense", 3, (8, 8, 1), seed=4, classes=4))
    labels = np.eye(4, dtype="float32")[np.arange(8) % 4]
    generator = model.encoder.get_layer("z").seed_generator
    state = to_numpy(generator.state)
    terms = model.compute_terms((X, labels), training=False)
    generator.state.assign(state)
    z = to_numpy(model.encoder([X, labels])[2])
    recon = np.mean(bce_sum(X, to_numpy(model.decoder([z, labels])).astype("float64")))
    other = np.mean(bce_sum(X, to_numpy(model.decoder([z, np.roll(labels, 1, axis=0)])).astype("float64")))
    assert float(to_numpy(terms["reconstruction_loss"])) == pytest.approx(recon, rel=1e-4)
    assert abs(recon - other) > 1e-3


def ema_reference(codebook, count, sums, vectors, decay, epsilon=1e-5, restart=0.03):
    """One EMA step, in NumPy: nearest codes, moving counts and sums, dead codes restarted at the batch's
    vectors, Laplace-smoothed counts."""
    codes = len(codebook)
    nearest = np.argmin(((vectors[:, None] - codebook[None]) ** 2).sum(-1), axis=1)
    assigned = np.eye(codes)[nearest]
    count = decay * count + (1 - decay) * assigned.sum(0)
    sums = decay * sums + (1 - decay) * assigned.T @ vectors
    dead = count < restart
    count = np.where(dead, 1.0, count)
    sums = np.where(dead[:, None], vectors[np.arange(codes) % len(vectors)], sums)
    smoothed = (count + epsilon) / (count.sum() + codes * epsilon) * count.sum()
    return sums / smoothed[:, None], count, sums, nearest


def test_the_ema_codebook_follows_numpy_over_several_steps():
    rng = np.random.default_rng(5)
    quantizer = VectorQuantizer(6, ema_decay=0.8)
    quantizer.build((None, 3, 2))
    codebook = rng.uniform(-1, 1, (6, 2))
    quantizer.codebook.assign(codebook.astype("float32"))
    count, sums = np.zeros(6), np.zeros((6, 2))
    for step in range(6):
        batch = (rng.standard_normal((4, 3, 2)) + step * 0.3).astype("float32")
        indices, _ = quantizer(batch, training=True)
        codebook, count, sums, nearest = ema_reference(
            codebook, count, sums, batch.reshape(-1, 2).astype("float64"), 0.8
        )
        np.testing.assert_array_equal(to_numpy(indices).ravel(), nearest)
        np.testing.assert_allclose(to_numpy(quantizer.ema_count), count, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(to_numpy(quantizer.ema_sum), sums, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(to_numpy(quantizer.codebook), codebook, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("update", ["loss", "ema"])
def test_the_vq_vae_loss_decodes_its_codes_and_weighs_commitment_as_asked(update):
    """The decoder sees z_q itself (the straight-through estimator changes only gradients); the loss adds the
    commitment term weighted as asked, and the codebook term only when the codebook is trained by its loss."""
    model = keras_vae.build_model(
        "vq-vae", "dense", 2, (8, 8, 1), seed=7, codebook_size=8, commitment=0.7, codebook_update=update
    )
    terms = {
        name: to_numpy(value).astype("float64")
        for name, value in model.compute_terms(X, training=False).items()
    }
    z_e = to_numpy(model.encoder(X)).astype("float64")
    codebook = to_numpy(model.quantizer.codebook).astype("float64")
    codes = np.argmin(((z_e[..., None, :] - codebook) ** 2).sum(-1), axis=-1)
    z_q = codebook[codes]
    recon = np.mean(bce_sum(X, to_numpy(model.decoder(z_q.astype("float32"))).astype("float64")))
    distance = np.mean(((z_e - z_q) ** 2).sum(axis=(1, 2)))
    assert terms["reconstruction_loss"] == pytest.approx(recon, rel=1e-4) and terms[
        "commitment_loss"
    ] == pytest.approx(distance, rel=1e-4)
    assert terms["loss"] == pytest.approx(
        recon + 0.7 * distance + (distance if update == "loss" else 0.0), rel=1e-4
    )
    np.testing.assert_array_equal(terms["code_counts"], np.bincount(codes.ravel(), minlength=8))
    assert model.means_encoder.output.dtype == "int32", (
        "code indices, as export's encode endpoint declares them"
    )


def test_the_vq_vaes_epoch_means_weigh_each_batch_by_its_size():
    model = keras_vae.build_model("vq-vae", "dense", 2, (8, 8, 1), seed=6, codebook_size=16)
    model.compile(optimizer="adam")
    x = make_images()[:10]  # batches of 8 and 2
    logs = model.evaluate(x, batch_size=8, return_dict=True, verbose=0)
    batches = [
        to_numpy(model.compute_terms(x[i : i + 8], training=False)["reconstruction_loss"]) for i in (0, 8)
    ]
    assert logs["reconstruction_loss"] == pytest.approx((8 * batches[0] + 2 * batches[1]) / 10, rel=1e-4)


def test_the_quantizers_config_keeps_every_option():
    quantizer = VectorQuantizer(8, ema_decay=0.9, epsilon=1e-3, restart_below=0.5)
    again = VectorQuantizer.from_config(quantizer.get_config())
    assert (again.codes, again.ema_decay, again.epsilon, again.restart_below) == (8, 0.9, 1e-3, 0.5)


def test_the_logged_dead_codes_count_the_codes_no_image_used():
    model = keras_vae.build_model("vq-vae", "dense", 2, (8, 8, 1), seed=6, codebook_size=16)
    model.compile(optimizer="adam")
    x = make_images()
    logs = model.evaluate(x, batch_size=8, return_dict=True, verbose=0)
    used = np.unique(to_numpy(model.means_encoder(x)))
    assert logs["dead_codes"] == 16 - len(used)


def write_png(path, value: int, shape=(6, 6)):
    imageio.imwrite(path, np.full(shape, value, "uint8"))


def test_labels_stay_with_their_images_after_damaged_files_are_skipped(tmp_path):
    values = {"ant": 40, "bee": 120, "cat": 200}
    for name, value in values.items():
        (tmp_path / name).mkdir()
        for i in range(4):
            write_png(tmp_path / name / f"{i}.png", value + i)
    (tmp_path / "ant" / "2a-broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    (tmp_path / "bee" / "0a-broken.png").write_bytes(b"GIF89a broken")
    data = load_dataset(data_dir=tmp_path, val_fraction=0.25, seed=1)
    assert data.class_names == ["ant", "bee", "cat"] and len(data.skipped) == 2
    seen = []
    for split in ("train", "val"):
        for images, labels in data.pairs(split, 5):
            for image, label in zip(images, labels):
                value = round(float(image.mean()) * 255)
                assert values[data.class_names[label]] <= value < values[data.class_names[label]] + 4
                seen.append(value)
    assert sorted(seen) == sorted(v + i for v in values.values() for i in range(4))


def test_a_folder_of_images_is_streamed_whole_in_a_new_order_each_epoch(tmp_path):
    for i in range(24):
        write_png(tmp_path / f"{i:02d}.png", 10 * i)
    data = load_dataset(data_dir=tmp_path, val_fraction=0.25, seed=0)
    stream = data.stream("train", 6, seed=3)
    epochs = [
        [round(float(image.mean()) * 255) for batch in stream.as_numpy_iterator() for image in batch]
        for _ in range(2)
    ]
    assert sorted(epochs[0]) == sorted(epochs[1]) and len(epochs[0]) == data.train.count == 18
    assert epochs[0] != epochs[1]


def test_rgba_arrays_lose_their_alpha_and_keep_their_colours(tmp_path):
    rng = np.random.default_rng(7)
    rgba = rng.integers(0, 256, (12, 5, 5, 4), dtype="uint8")
    np.savez(tmp_path / "rgba.npz", x_train=rgba, y_train=np.arange(12) % 3)
    data = load_dataset(data_dir=tmp_path / "rgba.npz", val_fraction=0.25, seed=0)
    assert data.input_shape == (5, 5, 3)
    images, _ = data.take("train", 12)
    found = {tuple(np.round(image * 255).astype(int).ravel()) for image in images}
    assert (
        found <= {tuple(image[..., :3].astype(int).ravel()) for image in rgba}
        and len(found) == data.train.count
    )


def test_embed_crops_as_train_did_and_names_each_images_class(tmp_path):
    import csv

    from typer.testing import CliRunner

    from cli.main import app
    from keras_vae.runs import Run

    rng = np.random.default_rng(8)
    pictures = {}
    for name in ("left", "right"):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(6):
            image = rng.integers(
                0, 256, (6, 10), dtype="uint8"
            )  # 6 x 10: a centre crop to 6 x 6 keeps columns 2-7
            imageio.imwrite(tmp_path / "data" / name / f"{i}.png", image)
            pictures[(name, i)] = image
    flags = [
        "--data-dir",
        tmp_path / "data",
        "--epochs",
        1,
        "--arch",
        "dense",
        "--batch-size",
        4,
        "--image-size",
        6,
        "--crop",
        "center",
    ]
    assert (
        CliRunner()
        .invoke(app, ["train", *map(str, flags), "--output-dir", str(tmp_path / "runs"), "--name", "c"])
        .exit_code
        == 0
    )
    out = tmp_path / "z.csv"
    result = CliRunner().invoke(
        app, ["embed", str(tmp_path / "runs" / "c"), "--split", "train", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    model = Run(tmp_path / "runs" / "c").load_model()
    names = list(pictures)
    cropped = np.stack([pictures[key][:, 2:8, None] for key in names]).astype("float32") / 255
    expected = to_numpy(model.encoder(cropped)[0])
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 11  # 12 images, one held out (--val-fraction 0.1)
    for row in rows:
        z = np.array([float(row["z_mean_0"]), float(row["z_mean_1"])])
        match = int(np.argmin(np.abs(expected - z).sum(1)))
        np.testing.assert_allclose(expected[match], z, atol=1e-5)
        assert row["class"] == names[match][0] and int(row["label"]) == ("left", "right").index(
            names[match][0]
        )
