"""fit(), evaluate() and train_on_batch() through the per-backend train_step and test_step."""

from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import to_numpy

import keras_vae
from keras_vae.losses import kl_per_dimension, reconstruction_loss


def trained(model_kind: str, images: np.ndarray, epochs: int = 2, seed: int = 0, **options):
    """A dense model on the 8x8 images after `epochs` epochs, and its History."""
    keras.utils.set_random_seed(seed)
    model = keras_vae.build_model(model_kind, arch="dense", latent_dim=2, input_shape=(8, 8, 1), **options)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(images, epochs=epochs, batch_size=8, validation_data=(images[:10],), verbose=0)
    return model, history


@pytest.mark.parametrize("model_kind", ["vae", "ae"])
def test_a_few_epochs_reduce_the_loss(model_kind, images):
    _, history = trained(model_kind, images, epochs=8)
    losses = history.history["loss"]
    assert losses[-1] < 0.8 * losses[0], losses


def test_vae_logs_every_term_for_train_and_validation(images):
    model, history = trained("vae", images)
    names = {"loss", "reconstruction_loss", "kl_loss"}
    assert set(history.history) == names | {f"val_{name}" for name in names}
    assert set(model.evaluate(images, verbose=0, return_dict=True)) == names


def test_autoencoder_reports_no_kl(images):
    model, history = trained("ae", images)
    assert set(history.history) == {"loss", "reconstruction_loss", "val_loss", "val_reconstruction_loss"}
    assert "kl_loss" not in model.evaluate(images, verbose=0, return_dict=True)


def test_evaluate_matches_a_hand_computation_over_uneven_batches(images):
    """Batches of 4, 4 and 2: the logged means weight each batch by its size."""
    model, _ = trained("vae", images[:10], recon_loss="mse", reduction="mean")
    logs = model.evaluate(images[:10], batch_size=4, verbose=0, return_dict=True)
    z_mean, z_log_var, _ = model.encoder(images[:10])
    kl = to_numpy(kl_per_dimension(z_mean, z_log_var)).sum(1).mean()
    np.testing.assert_allclose(logs["kl_loss"], kl, rtol=1e-5)

    ae, _ = trained("ae", images[:10])
    recon = to_numpy(reconstruction_loss(images[:10], ae.predict(images[:10], verbose=0))).mean()
    np.testing.assert_allclose(ae.evaluate(images[:10], batch_size=4, verbose=0), recon, rtol=1e-5)


@pytest.mark.parametrize("steps_per_execution", [1, 2])
def test_kl_warmup_ramps_beta_over_steps_and_validation_weighs_it_in_full(images, steps_per_execution):
    """Four steps an epoch, a warm-up of 3 steps: the KL's weight is 1/4, 2/4, 3/4, then whole, counted in the
    step itself (so any steps_per_execution gives the same); the validation loss weighs it in full
    throughout."""
    if steps_per_execution > 1 and keras.backend.backend() == "torch":
        pytest.skip("Keras's torch trainer runs one step at a time")
    scales = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: scales.append(float(to_numpy(model.kl_scale)))
    )
    keras.utils.set_random_seed(0)
    model = keras_vae.build_model(
        "vae", arch="dense", input_shape=(8, 8, 1), beta=0.5, reconstruction_weight=2.0, kl_warmup_steps=3
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), steps_per_execution=steps_per_execution)
    history = model.fit(
        images, epochs=2, batch_size=8, callbacks=[record], validation_data=(images[:8],), verbose=0
    ).history
    np.testing.assert_allclose(scales, [1, 1], rtol=1e-6)
    first = model.compute_terms(images[:8], training=False)
    assert float(to_numpy(first["loss"])) == pytest.approx(
        2.0 * float(to_numpy(first["reconstruction_loss"])) + 0.5 * float(to_numpy(first["kl_loss"])),
        rel=1e-5,
    )
    expected_val = 2.0 * np.array(history["val_reconstruction_loss"]) + 0.5 * np.array(history["val_kl_loss"])
    np.testing.assert_allclose(history["val_loss"], expected_val, rtol=1e-5)
    weights = np.array(
        [1 / 4, 2 / 4, 3 / 4, 1.0]
    )  # the first epoch's four steps; its logged loss is their mean
    assert history["loss"][0] < 2.0 * history["reconstruction_loss"][0] + 0.5 * history["kl_loss"][0]
    assert (
        history["loss"][0]
        > 2.0 * history["reconstruction_loss"][0] + 0.5 * weights.min() * history["kl_loss"][0]
    )
    np.testing.assert_allclose(
        history["loss"][1], 2.0 * history["reconstruction_loss"][1] + 0.5 * history["kl_loss"][1], rtol=1e-5
    )


def test_the_kl_weight_of_each_warm_up_step(images):
    """The weight the KL gets in each of the first steps, read off kl_scale after each step (train_on_batch
    hands every backend's state back between steps; JAX's fit keeps it inside until the epoch ends)."""
    keras.utils.set_random_seed(0)
    model = keras_vae.build_model("vae", arch="dense", input_shape=(8, 8, 1), kl_warmup_steps=3)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    scales = []
    for start in range(0, 40, 8):
        model.train_on_batch(images[start % 32 : start % 32 + 8])
        scales.append(float(to_numpy(model.kl_scale)))
    np.testing.assert_allclose(scales, [1 / 4, 2 / 4, 3 / 4, 1, 1], rtol=1e-6)


def test_reconstruction_weight_zero_trains_kl_only(images):
    _, history = trained("vae", images, epochs=4, reconstruction_weight=0.0)
    np.testing.assert_allclose(history.history["loss"], history.history["kl_loss"], rtol=1e-6)
    assert history.history["kl_loss"][-1] < history.history["kl_loss"][0]


def test_same_seed_reproduces_a_run(images):
    first, first_history = trained("vae", images, seed=7)
    second, second_history = trained("vae", images, seed=7)
    assert first_history.history == second_history.history
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)
    _, other_history = trained("vae", images, seed=8)
    assert other_history.history != first_history.history


def test_sampling_noise_differs_every_step(images):
    """With a zero learning rate the weights stay put: only fresh noise can change the loss."""
    keras.utils.set_random_seed(0)
    model = keras_vae.build_model("vae", arch="dense", input_shape=(8, 8, 1))
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    steps = [model.train_on_batch(images, return_dict=True) for _ in range(3)]
    reconstruction = [step["reconstruction_loss"] for step in steps]
    assert len(set(reconstruction)) == 3, reconstruction
    np.testing.assert_allclose([step["kl_loss"] for step in steps], steps[0]["kl_loss"], rtol=1e-6)


@pytest.mark.parametrize(
    "family, options",
    [("vae", {}), ("cvae", {"classes": 4}), ("vq-vae", {"codebook_update": "ema", "codebook_size": 16})],
)
def test_backup_restores_weights_optimizer_and_seed_states_exactly(images, tmp_path, family, options):
    """A model restored from the resume state equals the one that wrote it, variable for variable (the
    optimizer's step count and moments, BatchNorm-free weights, the sampling seed, a VQ-VAE's moving
    codebook), and takes the very same next step."""
    from keras_vae.callbacks import Backup

    def compiled(seed: int):
        keras.utils.set_random_seed(seed)
        model = keras_vae.build_model(family, arch="dense", input_shape=(8, 8, 1), seed=seed, **options)
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        return model

    if family == "cvae":
        images = [images, np.eye(4, dtype="float32")[np.arange(32) % 4]]
    original = compiled(0)
    original.fit(images, epochs=2, batch_size=8, verbose=0)
    backup = Backup(tmp_path)
    backup.set_model(original)
    backup.on_epoch_end(1)
    restored = compiled(1)
    assert backup.restore(restored) == 2
    pairs = [
        *zip(original.variables, restored.variables),
        *zip(original.optimizer.variables, restored.optimizer.variables),
    ]
    assert int(to_numpy(restored.optimizer.iterations)) == 8
    for a, b in pairs:
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b), err_msg=a.path)
    batch = [x[:8] for x in images] if family == "cvae" else images[:8]
    steps = [model.train_on_batch(batch, return_dict=True) for model in (original, restored)]
    assert steps[0] == steps[1]


def test_best_model_is_saved_only_when_the_validation_loss_improves(tmp_path):
    from keras_vae.callbacks import BestModel

    saved = []

    class Recorder:
        def save(self, path):
            saved.append(epoch)
            Path(path).write_text(str(epoch))

    best = BestModel(tmp_path / "model.keras")
    best.set_model(Recorder())
    for epoch, value in enumerate([5.0, 3.0, 4.0, float("nan"), 3.0, 2.5]):
        best.on_epoch_end(epoch, {"val_loss": value})
    assert saved == [0, 1, 5] and (tmp_path / "model.keras").read_text() == "5"


def test_one_sgd_step_matches_keras_own_trainer(images):
    """The per-backend step against Keras's built-in train_step on a copy of the same network and loss. SGD
    moves each weight by its gradient, so a gradient scaled wrongly shows (Adam would hide a constant
    factor)."""
    keras.utils.set_random_seed(0)
    ours = keras_vae.build_model("ae", arch="dense", input_shape=(8, 8, 1))
    encoder, decoder = keras.models.clone_model(ours.encoder), keras.models.clone_model(ours.decoder)
    encoder.set_weights(ours.encoder.get_weights())
    decoder.set_weights(ours.decoder.get_weights())
    inputs = keras.Input((8, 8, 1))
    plain = keras.Model(inputs, decoder(encoder(inputs)))
    plain.compile(optimizer=keras.optimizers.SGD(0.05), loss=lambda x, x_hat: reconstruction_loss(x, x_hat))
    ours.compile(optimizer=keras.optimizers.SGD(0.05))
    before = ours.get_weights()
    ours.train_on_batch(images[:8])
    plain.train_on_batch(images[:8], images[:8])
    for mine, keras_own in zip(ours.get_weights(), plain.get_weights(), strict=True):
        np.testing.assert_allclose(mine, keras_own, rtol=1e-4, atol=1e-6)
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(ours.get_weights(), before)) > 1e-3, (
        "the step moved the weights"
    )
