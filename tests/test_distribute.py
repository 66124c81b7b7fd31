"""`keras-vae train --distribute`: the same losses as one device, on 4 virtual JAX devices and 2 logical TF CPUs."""

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


def train_both(data_dir: Path, output_dir: Path) -> None:
    """In the child process: one run on one device, one data-parallel, same options and seed."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * DEVICES[BACKEND])
    for name, flags in (("single", []), ("distributed", ["--distribute"]), ("uneven", ["--distribute", "--batch-size", "15"])):
        result = CliRunner().invoke(app, [*TRAIN, "--data-dir", str(data_dir), "--output-dir", str(output_dir), "--name", name, *flags])
        print(name, result.exit_code, result.output)


def losses(run: Path) -> np.ndarray:
    rows = list(csv.DictReader((run / "history.csv").open()))
    return np.array([[float(row["loss"]), float(row["val_loss"])] for row in rows])


@pytest.fixture
def data_dir(tmp_path) -> Path:
    pixels = (make_images() * 255).astype("u1")[..., 0]
    write_split(tmp_path, pixels, np.arange(len(pixels)) % 4, compress=True, split="train")
    write_split(tmp_path, pixels[:8], np.arange(8) % 4, compress=True, split="t10k")
    return tmp_path


@pytest.mark.skipif(BACKEND == "torch", reason="--distribute runs on jax and tensorflow")
def test_distributed_losses_match_one_device(data_dir, tmp_path):
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={DEVICES['jax']}"}
    child = subprocess.run(
        [sys.executable, __file__, str(data_dir), str(tmp_path / "runs")], env=env, capture_output=True, text=True, timeout=600
    )
    assert child.returncode == 0, child.stdout + child.stderr
    assert "single 0" in child.stdout and "distributed 0" in child.stdout
    assert f"Data-parallel over {DEVICES[BACKEND]} devices" in child.stdout
    if BACKEND == "jax":  # 32 images in batches of 15: 15, 15 and 2 do not split over 4 devices; TF splits them unevenly
        assert "uneven 2 keras-vae: error: --distribute splits every batch over 4 devices, and batches of [2, 15]" in child.stdout
        assert not (tmp_path / "runs" / "uneven").exists()
    single, distributed = losses(tmp_path / "runs" / "single"), losses(tmp_path / "runs" / "distributed")
    assert single.shape == distributed.shape == (3, 2)
    np.testing.assert_allclose(distributed, single, rtol=1e-4)


@pytest.mark.skipif(BACKEND != "torch", reason="torch refuses --distribute")
def test_distribute_on_torch_says_what_to_do(data_dir, tmp_path):
    result = CliRunner().invoke(app, [*TRAIN, "--data-dir", str(data_dir), "--output-dir", str(tmp_path), "--distribute"])
    assert result.exit_code == 2
    assert "--distribute runs on the jax and tensorflow backends" in result.output
    assert "Traceback" not in result.output


if __name__ == "__main__":
    train_both(Path(sys.argv[1]), Path(sys.argv[2]))
