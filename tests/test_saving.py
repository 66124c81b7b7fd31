"""The .keras round trip, on this backend and across to the other two."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from conftest import to_numpy

import keras_vae

OPTIONS = {
    "recon_loss": "mse",
    "reduction": "mean",
    "beta": 0.5,
    "reconstruction_weight": 2.0,
    "kl_warmup_steps": 3,
}
OTHER_BACKENDS = [b for b in ("tensorflow", "jax", "torch") if b != keras.backend.backend()]


@pytest.fixture
def saved(tmp_path, images):
    """A trained deep-conv VAE (BatchNorm and dropout included) saved as .keras, and its outputs."""
    keras.utils.set_random_seed(0)
    model = keras_vae.build_model(
        "vae", arch="deep-conv", latent_dim=3, input_shape=(8, 8, 1), seed=5, **OPTIONS
    )
    model.compile(optimizer="adam")
    model.fit(images, epochs=1, batch_size=8, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    return model, path


def test_round_trip_keeps_options_and_outputs(saved, images):
    model, path = saved
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, keras_vae.VAE)
    assert {key: loaded.get_config()[key] for key in OPTIONS} == OPTIONS
    assert len(loaded.optimizer.variables) == len(model.optimizer.variables)
    for restored, original in zip(loaded.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(to_numpy(restored), to_numpy(original))
    assert loaded.encoder.get_layer("z").seed == 5
    np.testing.assert_array_equal(loaded.predict(images, verbose=0), model.predict(images, verbose=0))
    np.testing.assert_array_equal(to_numpy(loaded.encoder(images)[0]), to_numpy(model.encoder(images)[0]))


def test_autoencoder_round_trip(tmp_path, images):
    model = keras_vae.build_model("ae", arch="conv", input_shape=(8, 8, 1), recon_loss="mse")
    model.save(tmp_path / "ae.keras")
    loaded = keras.saving.load_model(tmp_path / "ae.keras")
    assert isinstance(loaded, keras_vae.AutoEncoder) and loaded.recon_loss == "mse"
    np.testing.assert_array_equal(loaded.predict(images, verbose=0), model.predict(images, verbose=0))


LOAD_ELSEWHERE = textwrap.dedent(
    """
    import sys, keras, numpy as np, keras_vae
    model = keras.saving.load_model(sys.argv[1])
    np.save(sys.argv[3], model.predict(np.load(sys.argv[2]), verbose=0))
    print(model.jit_compile)
    """
)


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_a_model_saved_here_loads_under_another_backend(saved, images, tmp_path, backend):
    model, path = saved
    np.save(tmp_path / "x.npy", images)
    env = {**os.environ, "KERAS_BACKEND": backend}
    child = subprocess.run(
        [sys.executable, "-c", LOAD_ELSEWHERE, str(path), str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    if backend == "torch":
        assert child.stdout.strip() == "False", (
            "a jit_compile saved by another backend must not turn on torch.compile"
        )
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), model.predict(images, verbose=0), atol=1e-5)
