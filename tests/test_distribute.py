"""`keras-vae train --distribute`: the same losses and the same SGD step as one device, on 4 virtual JAX devices and
2 logical TF CPUs; batches that would not split evenly are refused before anything is written."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import make_images
from test_data import write_split
from typer.testing import CliRunner

from cli.main import app

BACKEND = keras.backend.backend()
DEVICES = {"jax": 4, "tensorflow": 2}
TRAIN = ["train", "--model", "ae", "--arch", "conv", "--epochs", "3", "--batch-size", "16"]


def split_cpu() -> None:
    """In the child process, before anything else: TensorFlow's one CPU as DEVICES logical ones (XLA_FLAGS does JAX's)."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * DEVICES[BACKEND])


def train_both(data_dir: Path, output_dir: Path) -> None:
    """In the child process: one run on one device, one data-parallel, same options and seed."""
    for name, flags in (("single", []), ("distributed", ["--distribute"]), ("uneven", ["--distribute", "--batch-size", "15"])):
        result = CliRunner().invoke(app, [*TRAIN, "--data-dir", str(data_dir), "--output-dir", str(output_dir), "--name", name, *flags])
        print(name, result.exit_code, result.output)


def one_sgd_step(out: Path) -> None:
    """In the child process: the weights after one SGD step on one batch, on one device and data-parallel. SGD moves
    each weight by its gradient, so a gradient scaled by the replica count shows; Adam would hide it."""
    import contextlib

    import keras_vae
    from keras_vae.backends import distribution

    x = make_images()[:16]
    weights = {}
    for name, context in (("single", contextlib.nullcontext()), ("distributed", distribution({16}))):
        with context:
            keras.utils.set_random_seed(0)
            model = keras_vae.build_model("ae", arch="conv", latent_dim=2, input_shape=(8, 8, 1), seed=0)
            model.compile(optimizer=keras.optimizers.SGD(0.5))
            model.train_on_batch(x)
            weights |= {f"{name}_{i}": np.asarray(keras.ops.convert_to_numpy(w)) for i, w in enumerate(model.weights)}
    np.savez(out, **weights)


def losses(run: Path) -> np.ndarray:
    rows = list(csv.DictReader((run / "history.csv").open()))
    return np.array([[float(row["loss"]), float(row["val_loss"])] for row in rows])


@pytest.fixture
def data_dir(tmp_path) -> Path:
    pixels = (make_images() * 255).astype("u1")[..., 0]
    write_split(tmp_path, pixels, np.arange(len(pixels)) % 4, compress=True, split="train")
    write_split(tmp_path, pixels[:8], np.arange(8) % 4, compress=True, split="t10k")
    return tmp_path


def child(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={DEVICES['jax']}"}
    done = subprocess.run([sys.executable, __file__, *map(str, args)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.mark.skipif(BACKEND == "torch", reason="--distribute runs on jax and tensorflow")
def test_one_data_parallel_sgd_step_matches_one_device(tmp_path):
    child("step", tmp_path / "weights.npz")
    with np.load(tmp_path / "weights.npz") as weights:
        count = len(weights.files) // 2
        assert count > 4
        for i in range(count):
            np.testing.assert_allclose(weights[f"distributed_{i}"], weights[f"single_{i}"], rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(BACKEND == "torch", reason="--distribute runs on jax and tensorflow")
def test_distributed_losses_match_one_device(data_dir, tmp_path):
    done = child("train", data_dir, tmp_path / "runs")
    assert "single 0" in done.stdout and "distributed 0" in done.stdout
    assert f"Data-parallel over {DEVICES[BACKEND]} devices" in done.stdout
    # 32 images in batches of 15: 15, 15 and 2 split over neither 4 nor 2 devices
    uneven = "[2, 15]" if BACKEND == "jax" else "[15]"
    assert f"uneven 2 keras-vae: error: --distribute splits every batch over {DEVICES[BACKEND]} devices, and batches of {uneven}" in done.stdout
    assert not (tmp_path / "runs" / "uneven").exists()
    single, distributed = losses(tmp_path / "runs" / "single"), losses(tmp_path / "runs" / "distributed")
    assert single.shape == distributed.shape == (3, 2)
    # The same batches in the same order; the sums across devices round differently, and three epochs of Adam
    # carry that on: 2e-4 apart at most on TensorFlow (one SGD step, below, matches to 1e-5).
    np.testing.assert_allclose(distributed, single, rtol=5e-4)


@pytest.mark.skipif(BACKEND != "torch", reason="torch refuses --distribute")
def test_distribute_on_torch_says_what_to_do(data_dir, tmp_path):
    result = CliRunner().invoke(app, [*TRAIN, "--data-dir", str(data_dir), "--output-dir", str(tmp_path), "--distribute"])
    assert result.exit_code == 2
    assert "--distribute runs on the jax and tensorflow backends" in result.output
    assert "Traceback" not in result.output


if __name__ == "__main__":
    split_cpu()
    if sys.argv[1] == "step":
        one_sgd_step(Path(sys.argv[2]))
    else:
        train_both(Path(sys.argv[2]), Path(sys.argv[3]))
