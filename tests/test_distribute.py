"""`keras-vae train --distribute`: the same losses and the same SGD step as one device, on 4 virtual JAX
devices, 2 logical TF CPUs and 2 torch processes (torchrun, gloo); batches that would not split evenly are
refused before anything is written, and only one process writes the run folder."""

import csv
import os
import shutil
import socket
import subprocess
import sys
import time
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
TRAIN = [
    "train",
    "--model",
    "ae",
    "--arch",
    "conv",
    "--epochs",
    "3",
    "--batch-size",
    "16",
    "--learning-rate",
    "1e-3",
    "--lr-schedule",
    "constant",
]


def split_cpu() -> None:
    """In the child process, before anything else: TensorFlow's one CPU as DEVICES logical ones (XLA_FLAGS
    does JAX's)."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * DEVICES[BACKEND]
        )


def train_both(data_dir: Path, output_dir: Path) -> None:
    """In the child process: one run on one device, one data-parallel, same options and seed."""
    for name, flags in (
        ("single", []),
        ("distributed", ["--distribute"]),
        ("uneven", ["--distribute", "--batch-size", "15"]),
    ):
        result = CliRunner().invoke(
            app,
            [*TRAIN, "--data-dir", str(data_dir), "--output-dir", str(output_dir), "--name", name, *flags],
        )
        print(name, result.exit_code, result.output)


def one_sgd_step(out: Path) -> None:
    """In the child process: the weights after one SGD step on one batch, on one device and data-parallel. SGD
    moves each weight by its gradient, so a gradient scaled by the replica count shows; Adam would hide it."""
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
            weights |= {
                f"{name}_{i}": np.asarray(keras.ops.convert_to_numpy(w)) for i, w in enumerate(model.weights)
            }
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
    done = subprocess.run(
        [sys.executable, __file__, *map(str, args)], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.mark.skipif(BACKEND == "torch", reason="one process, several devices: jax and tensorflow")
def test_one_data_parallel_sgd_step_matches_one_device(tmp_path):
    child("step", tmp_path / "weights.npz")
    with np.load(tmp_path / "weights.npz") as weights:
        count = len(weights.files) // 2
        assert count > 4
        for i in range(count):
            np.testing.assert_allclose(
                weights[f"distributed_{i}"], weights[f"single_{i}"], rtol=1e-5, atol=1e-6
            )


@pytest.mark.skipif(BACKEND == "torch", reason="one process, several devices: jax and tensorflow")
def test_distributed_losses_match_one_device(data_dir, tmp_path):
    done = child("train", data_dir, tmp_path / "runs")
    assert "single 0" in done.stdout and "distributed 0" in done.stdout
    assert f"Data-parallel over {DEVICES[BACKEND]} devices" in done.stdout
    # 32 images in batches of 15: 15, 15 and 2 split over neither 4 nor 2 devices
    uneven = "[2, 15]" if BACKEND == "jax" else "[15]"
    assert (
        f"uneven 2 keras-vae: error: --distribute splits every batch over {DEVICES[BACKEND]} devices, and "
        f"batches of {uneven}" in done.stdout
    )
    assert not (tmp_path / "runs" / "uneven").exists()
    single, distributed = losses(tmp_path / "runs" / "single"), losses(tmp_path / "runs" / "distributed")
    assert single.shape == distributed.shape == (3, 2)
    # The same batches in the same order; the sums across devices round differently, and three epochs of Adam
    # carry that on: 2e-4 apart at most on TensorFlow (one SGD step, below, matches to 1e-5).
    np.testing.assert_allclose(distributed, single, rtol=5e-4)


def files(run: Path) -> list[str]:
    """What a run folder holds, TensorBoard's files by folder (their names hold a time and a process id)."""
    return sorted(
        str(path.parent if "tfevents" in path.name else path).removeprefix(str(run))
        for path in run.rglob("*")
    )


def keras_vae(*args, launcher: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    command = [*launcher, shutil.which("keras-vae", path=Path(sys.executable).parent), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


@pytest.mark.skipif(BACKEND != "torch", reason="torchrun launches torch's processes")
def test_two_torch_processes_match_one_and_only_rank_0_writes(data_dir, tmp_path):
    torchrun = (
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "--no-python",
    )
    flags = [*TRAIN, "--data-dir", data_dir, "--output-dir", tmp_path]
    single = keras_vae(*flags, "--name", "single")
    distributed = keras_vae(*flags, "--name", "distributed", "--distribute", launcher=torchrun)
    uneven = keras_vae(*flags, "--name", "uneven", "--distribute", "--batch-size", "15", launcher=torchrun)
    assert single.returncode == 0 and distributed.returncode == 0, single.stderr + distributed.stderr
    assert distributed.stdout.count("Data-parallel over 2 devices: 8 images each per step.") == 1
    assert distributed.stdout.count("keras-vae train") == 1  # one summary: the other process prints nothing
    # The same global batches, split in two and their gradients averaged by DistributedDataParallel.
    np.testing.assert_allclose(losses(tmp_path / "distributed"), losses(tmp_path / "single"), rtol=1e-4)
    assert files(tmp_path / "distributed") == files(tmp_path / "single")
    events = list((tmp_path / "distributed" / "logs").rglob("events.out.tfevents.*"))
    assert (
        len({name.name.split(".")[4] for name in events}) == 1
    )  # TensorBoard's files name their writer's process
    assert uneven.returncode != 0
    assert (
        "--distribute splits every batch over 2 devices, and batches of [15] images would not split"
        in uneven.stderr
    )
    assert not (tmp_path / "uneven").exists()


@pytest.mark.skipif(BACKEND != "torch", reason="torch's --distribute needs torchrun")
def test_torch_distribute_without_torchrun_says_what_to_do(data_dir, tmp_path):
    result = CliRunner().invoke(
        app, [*TRAIN, "--data-dir", str(data_dir), "--output-dir", str(tmp_path / "runs"), "--distribute"]
    )
    assert result.exit_code == 2
    assert "--distribute on torch trains one process per device: start it with torchrun" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


def start_jax_cluster(count: int, *args) -> list[subprocess.Popen]:
    """keras-vae started on count JAX processes of one device each, joined through 127.0.0.1 as Keras's
    environment describes a cluster; process 0 first."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cluster = {
        "KERAS_BACKEND": "jax",
        "KERAS_DISTRIBUTION_JOB_ADDRESSES": f"127.0.0.1:{port}",
        "KERAS_DISTRIBUTION_NUM_PROCESSES": str(count),
        "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
    }
    command = [shutil.which("keras-vae", path=Path(sys.executable).parent), *map(str, args)]
    return [
        subprocess.Popen(
            command,
            env={**os.environ, **cluster, "KERAS_DISTRIBUTION_PROCESS_ID": str(rank)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(count)
    ]


def finished(started: list[subprocess.Popen], timeout: float = 300) -> list[subprocess.CompletedProcess]:
    """Each process's outcome, once all have ended (killed if one takes longer than timeout)."""
    try:
        outputs = [process.communicate(timeout=timeout) for process in started]
    finally:
        for process in started:
            process.kill()
    return [subprocess.CompletedProcess(p.args, p.returncode, *out) for p, out in zip(started, outputs)]


def jax_cluster(count: int, *args) -> list[subprocess.CompletedProcess]:
    return finished(start_jax_cluster(count, *args))


@pytest.mark.skipif(BACKEND != "jax", reason="a JAX cluster's processes, joined by keras.distribution")
def test_two_jax_processes_match_one_only_process_0_writes_and_all_say_its_refusals(data_dir, tmp_path):
    flags = [*TRAIN, "--data-dir", data_dir, "--output-dir", tmp_path]
    single = keras_vae(*flags, "--name", "single")
    first, other = jax_cluster(2, *flags, "--name", "distributed", "--distribute")
    assert single.returncode == first.returncode == other.returncode == 0, (
        first.stderr[-3000:] + other.stderr[-3000:]
    )
    assert first.stdout.count("Data-parallel over 2 devices: 8 images each per step.") == 1
    assert "keras-vae train" in first.stdout and other.stdout == ""  # process 0 alone prints
    # Every process reads its own half of each global batch; the loss is the global batch's.
    np.testing.assert_allclose(losses(tmp_path / "distributed"), losses(tmp_path / "single"), rtol=1e-4)
    assert files(tmp_path / "distributed") == files(tmp_path / "single")
    # What process 0 refuses while it decides (here: a run that exists), every process says, and none waits.
    again = jax_cluster(2, *flags, "--name", "distributed", "--distribute")
    assert [done.returncode for done in again] == [2, 2]
    assert all("distributed exists" in done.stderr and "--overwrite" in done.stderr for done in again)
    uneven = jax_cluster(2, *flags, "--name", "uneven", "--distribute", "--batch-size", 15)
    assert [done.returncode for done in uneven] == [2, 2]
    assert "--distribute splits every batch over 2 devices, and batches of [15] images" in uneven[0].stderr
    assert not (tmp_path / "uneven").exists()


@pytest.fixture
def thirds_dir(tmp_path) -> Path:
    """Images whose every batch of 12 splits in three: 36 to train on, 12 to validate."""
    pixels = (make_images() * 255).astype("u1")[..., 0]
    pixels = np.concatenate([pixels, pixels[:4]])
    write_split(tmp_path, pixels, np.arange(36) % 4, compress=True, split="train")
    write_split(tmp_path, pixels[:12], np.arange(12) % 4, compress=True, split="t10k")
    return tmp_path


@pytest.mark.skipif(BACKEND != "jax", reason="a JAX cluster's processes, joined by keras.distribution")
@pytest.mark.parametrize("victim", [0, 1], ids=["coordinator", "worker"])
def test_a_killed_jax_process_ends_the_others_in_one_line_and_resume_finishes_the_run(
    thirds_dir, tmp_path, victim
):
    output = tmp_path / "runs"
    flags = [*TRAIN, "--data-dir", thirds_dir, "--output-dir", output, "--name", "run", "--distribute"]
    flags += ["--batch-size", 12]
    started = start_jax_cluster(3, *flags, "--epochs", 100_000)
    deadline = time.monotonic() + 240
    while not ((output / "run" / "history.csv").exists() and len(losses(output / "run")) >= 2):
        assert time.monotonic() < deadline and all(process.poll() is None for process in started)
        time.sleep(0.5)
    started[victim].kill()
    killed = time.monotonic()
    outcomes = finished(started, timeout=60)
    # The survivors learn through the lifeline to process 0 at once, not from JAX's heartbeats (100 s).
    assert time.monotonic() - killed < 30
    survivors = [outcome for rank, outcome in enumerate(outcomes) if rank != victim]
    for outcome in survivors:
        assert outcome.returncode == 3, outcome.stderr[-3000:]
        said = outcome.stderr.strip().splitlines()[-1]
        assert said.startswith("keras-vae: error: process ") and "--resume" in said
        assert "Check failure" not in outcome.stderr and "Traceback" not in outcome.stderr
    done = len(losses(output / "run"))
    resumed = jax_cluster(3, *flags, "--epochs", done + 1, "--resume")
    assert [outcome.returncode for outcome in resumed] == [0, 0, 0], resumed[0].stderr[-3000:]
    assert len(losses(output / "run")) == done + 1 and not (output / "run" / "backup").exists()


def test_the_lifeline_takes_only_the_processes_of_its_cluster_as_peers():
    """Process 0 listens on every interface: a stray connection, and one that claims a rank already taken or
    outside the cluster, are closed, and the real processes are still taken."""
    import queue
    import threading

    from keras_vae.backends.lifeline import connect

    port, taken = queue.Queue(), {}

    def listen() -> None:
        taken.update(connect(0, 3, "127.0.0.1", lambda value: port.put(value) or value, timeout=30))

    listening = threading.Thread(target=listen)
    listening.start()
    address = ("127.0.0.1", port.get(timeout=30))
    claims = [b"GET ", (7).to_bytes(4, "big"), (0).to_bytes(4, "big")]
    stray = [socket.create_connection(address) for _ in claims]
    for connection, claim in zip(stray, claims):
        connection.sendall(claim)
    first = connect(1, 3, "127.0.0.1", lambda value: address[1], timeout=30)
    duplicate = socket.create_connection(address)
    duplicate.sendall((1).to_bytes(4, "big"))
    second = connect(2, 3, "127.0.0.1", lambda value: address[1], timeout=30)
    listening.join(timeout=30)
    assert sorted(taken) == [1, 2] and list(first) == list(second) == [0]
    assert all(connection.recv(1) == b"" for connection in [*stray, duplicate])  # closed by process 0
    for connection in [*stray, duplicate, *taken.values(), first[0], second[0]]:
        connection.close()


@pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow's workers are refused")
def test_tensorflow_workers_are_refused_where_every_one_would_write_the_run(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{}")
    result = CliRunner().invoke(
        app, [*TRAIN, "--data-dir", str(data_dir), "--output-dir", str(tmp_path / "runs"), "--distribute"]
    )
    assert result.exit_code == 2
    assert "--distribute on tensorflow runs on one machine" in result.output and "torchrun" in result.output
    assert not (tmp_path / "runs").exists()


if __name__ == "__main__":
    split_cpu()
    if sys.argv[1] == "step":
        one_sgd_step(Path(sys.argv[2]))
    else:
        train_both(Path(sys.argv[2]), Path(sys.argv[3]))
