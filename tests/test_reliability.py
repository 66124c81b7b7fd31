"""Faults never lose a run: SIGKILL at any moment, NaN losses, corrupt files, two trainings of one run, bad bytes."""

import csv
import gzip
import io
import json
import math
import signal
import subprocess
import time
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_data import write_split
from test_train_cli import command, history, invoke

import keras_vae
from keras_vae.config import ConfigError, TrainConfig
from keras_vae.data import DataError, ImageOptions, read_idx
from keras_vae.data.arrays import load_npz

FAST = ["--arch", "dense", "--batch-size", "8"]
PROPERTY = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def npz(tmp_path, images) -> Path:
    """A keras-style .npz with 1,600 training images: 200 steps an epoch at batch size 8."""
    many = np.tile((images * 255).astype("u1")[..., 0], (50, 1, 1))
    np.savez(tmp_path / "data.npz", x_train=many, y_train=np.arange(len(many)) % 4)
    return tmp_path / "data.npz"


def train_process(*args) -> subprocess.Popen:
    return subprocess.Popen(command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, child: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)


def assert_every_file_complete(run: Path) -> None:
    """Every file of the run reads back whole; the temporary files of a killed write are not the run's files."""
    for path in run.rglob("*"):
        if not path.is_file() or ".tmp" in path.name:
            continue
        if path.suffix == ".json":
            assert json.loads(path.read_text())["run_format"] == 1
        elif path.suffix == ".csv":
            rows = list(csv.DictReader(io.StringIO(path.read_text())))
            assert rows and all(len(row) == len(rows[0]) and all(math.isfinite(float(v)) for v in row.values()) for row in rows)
        elif path.suffix == ".keras":
            assert isinstance(keras.saving.load_model(path, compile=False), keras_vae.VAE)
        elif path.suffix == ".npz":
            with np.load(path) as arrays:
                assert all(arrays[key].size for key in arrays.files)
        elif path.name.endswith(".weights.h5"):
            with h5py.File(path, "r") as weights:
                weights.visititems(lambda name, item: item[()] if isinstance(item, h5py.Dataset) else None)
        elif "tfevents" in path.name:
            from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

            list(EventFileLoader(str(path)).Load())  # an append-only stream: a cut last record is skipped
        elif not path.name.endswith(".lock"):
            raise AssertionError(f"unexpected file {path}")


def test_sigkill_at_any_moment_loses_nothing_and_resume_matches_an_uninterrupted_run(npz, tmp_path):
    args = ("--data-dir", npz, "--epochs", 5, "--output-dir", tmp_path / "runs", "--seed", 3, *FAST)
    reference = subprocess.run(command(*args, "--name", "whole"), capture_output=True, text=True)
    assert reference.returncode == 0, reference.stderr
    epoch_seconds = min(float(row["epoch_seconds"]) for row in history(tmp_path / "runs" / "whole"))
    delays = np.random.default_rng(0).uniform(0, epoch_seconds, size=3)  # an epoch is 0.2 s on one backend, 2 s on another
    run, killed_while_training = tmp_path / "runs" / "killed", 0
    child = train_process(*args, "--name", "killed")
    for delay in delays:  # each time: once the process has finished a new epoch, kill it somewhere in the next
        rows = len(history(run)) if (run / "history.csv").exists() else 0
        wait_for(lambda: (run / "history.csv").exists() and len(history(run)) > rows, child)
        time.sleep(delay)
        killed_while_training += child.poll() is None
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert_every_file_complete(run)
        finished = not (run / "backup").exists() and len(history(run)) == 5  # the process ended before the kill
        child = train_process("--name", "killed", "--output-dir", tmp_path / "runs", "--resume")
    _, stderr = child.communicate(timeout=300)
    if finished:
        assert child.returncode == 2 and "already finished its 5 epochs" in stderr, stderr
    else:
        assert child.returncode == 0, stderr
    assert killed_while_training >= 2
    assert_every_file_complete(run)
    assert [row["epoch"] for row in history(run)] == ["1", "2", "3", "4", "5"]
    assert not (run / "backup").exists() and not list(run.rglob(".*.tmp*"))
    whole, killed = float(history(tmp_path / "runs" / "whole")[-1]["val_loss"]), float(history(run)[-1]["val_loss"])
    assert killed == pytest.approx(whole, rel=0.1)
    assert len({row["val_loss"] for row in history(run)}) == 5, "every epoch trained on: no epoch repeats another's loss"


def test_nan_loss_stops_naming_the_epoch_and_keeps_the_last_good_model(npz, tmp_path):
    runs = tmp_path / "runs"
    diverged = invoke("--data-dir", npz, "--epochs", 2, "--learning-rate", 1e30, "--name", "fresh", "--output-dir", runs, *FAST)
    assert diverged.exit_code == 2 and diverged.stderr.count("\n") == 1
    assert "the loss became nan in epoch 1" in diverged.stderr and "no epoch finished" in diverged.stderr
    assert not (runs / "fresh").exists(), "a new run that finished no epoch leaves nothing behind"

    child = train_process("--data-dir", npz, "--epochs", 50, "--name", "good", "--output-dir", runs, *FAST)
    wait_for(lambda: (runs / "good" / "backup").exists() and any((runs / "good" / "backup").glob("epoch_*")), child)
    child.send_signal(signal.SIGINT)
    assert child.wait(timeout=120) == 130
    model_bytes = (runs / "good" / "model.keras").read_bytes()
    config = json.loads((runs / "good" / "config.json").read_text())
    config["options"] |= {"reconstruction_weight": 3e38}  # near float32's largest: the resumed epoch's loss overflows to inf
    (runs / "good" / "config.json").write_text(json.dumps(config))
    result = subprocess.run(command("--name", "good", "--output-dir", runs, "--resume"), capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    best = min(history(runs / "good"), key=lambda row: float(row["val_loss"]))
    assert f"the best model so far (epoch {best['epoch']}" in result.stderr and "stays in" in result.stderr
    assert (runs / "good" / "model.keras").read_bytes() == model_bytes
    assert isinstance(keras.saving.load_model(runs / "good" / "model.keras"), keras_vae.VAE)


def test_a_second_training_of_the_same_run_refuses_while_the_first_runs(npz, tmp_path):
    runs = tmp_path / "runs"
    first = train_process("--data-dir", npz, "--epochs", 200, "--name", "same", "--output-dir", runs, *FAST)
    wait_for(lambda: (runs / ".same.lock").exists() and (runs / "same" / "history.csv").exists(), first)
    second = subprocess.run(
        command("--data-dir", npz, "--epochs", 1, "--name", "same", "--output-dir", runs, "--overwrite", *FAST),
        capture_output=True, text=True,
    )
    assert second.returncode == 2 and second.stderr.count("\n") == 1
    assert f"is being trained by process {first.pid}" in second.stderr
    assert first.poll() is None, "the first training goes on"
    first.send_signal(signal.SIGINT)
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 130, stderr
    epochs = [int(row["epoch"]) for row in history(runs / "same")]
    assert epochs == list(range(1, len(epochs) + 1)) and epochs, "the first run's history is its own, every epoch once"
    assert not (runs / ".same.lock").exists()


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("reliability")
    pixels = np.random.default_rng(0).integers(0, 256, (40, 8, 8), dtype="u1")
    write_split(root, pixels, np.arange(40) % 4, compress=True, split="train")
    result = invoke("--data-dir", root, "--epochs", 1, "--name", "run", "--output-dir", root, *FAST)
    assert result.exit_code == 0, result.output
    return root / "run"


def spoiled_copy(run: Path, tmp_path: Path, name: str, spoil) -> Path:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    spoil(copy / name)
    return copy


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def edit_config(change):
    def spoil(path: Path) -> None:
        config = json.loads(path.read_text())
        change(config)
        path.write_text(json.dumps(config))

    return spoil


@pytest.mark.parametrize(
    "name, spoil, message",
    [
        ("model.keras", truncate, "cannot load"),
        ("model.keras", lambda p: p.write_bytes(b"\0" * 100), "cannot load"),
        ("config.json", truncate, "cannot read"),
        ("config.json", lambda p: p.write_text("[1, 2]"), "is damaged"),
        ("config.json", edit_config(lambda c: c.update(run_format=99, keras_vae_version="9.0.0")), "written by keras-vae 9.0.0"),
        ("config.json", edit_config(lambda c: c.pop("run_format")), "run format None"),
        ("config.json", edit_config(lambda c: c["options"].update(latent_dim="two")), "options of the wrong type"),
    ],
    ids=["model-truncated", "model-zeros", "config-truncated", "config-not-an-object", "newer-version", "older-version", "config-types"],
)
@pytest.mark.parametrize("command_name", ["explore", "evaluate", "generate", "export"])
def test_damaged_run_files_are_one_line(trained, tmp_path, name, spoil, message, command_name):
    from typer.testing import CliRunner

    from cli.main import app

    if command_name == "export" and keras.backend.backend() != "tensorflow":
        pytest.skip("export runs on TensorFlow; its process is tested in test_export")
    run = spoiled_copy(trained, tmp_path, name, spoil)
    extra = {"evaluate": ["--k", "2"], "generate": ["--out", str(tmp_path / "g.png")], "export": ["--no-verify"]}.get(command_name, [])
    result = CliRunner().invoke(app, [command_name, str(run), *extra])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("keras-vae: error: ") and result.stderr.count("\n") == 1 and message in result.stderr


def test_resuming_a_damaged_run_is_one_line(trained, tmp_path):
    run = spoiled_copy(trained, tmp_path, "config.json", edit_config(lambda c: c.update(run_format=2)))
    result = invoke("--name", run.name, "--output-dir", run.parent, "--resume")
    assert result.exit_code == 2 and "reads run format 1" in result.stderr and result.stderr.count("\n") == 1


def test_a_model_with_code_in_it_is_refused_by_safe_mode(trained, tmp_path):
    from typer.testing import CliRunner

    from cli.main import app

    marker = Path("/tmp/keras-vae-test-code-ran")
    inputs = keras.Input((8, 8, 1))
    code = keras.layers.Lambda(lambda x: x if __import__("pathlib").Path("/tmp/keras-vae-test-code-ran").write_text("ran") else x)
    evil = keras.Model(inputs, code(inputs))
    run = spoiled_copy(trained, tmp_path, "model.keras", lambda path: evil.save(path))
    marker.unlink(missing_ok=True)
    result = CliRunner().invoke(app, ["explore", str(run)])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "cannot load" in result.stderr and "Lambda" in result.stderr
    assert not marker.exists()


@pytest.mark.parametrize("name", ["../outside", "a/b", "/tmp/abs", "..", ".hidden"])
def test_run_names_never_reach_outside_the_output_dir(tmp_path, name):
    result = invoke("--name", name, "--output-dir", tmp_path / "runs", "--data-dir", tmp_path)
    assert result.exit_code == 2 and "plain folder name" in result.stderr
    assert not (tmp_path / "outside").exists() and not list(tmp_path.rglob("*.json"))


def test_nan_pixels_are_refused(tmp_path):
    x = np.full((4, 8, 8), 0.5, "float32")
    x[1, 2, 3] = np.nan
    np.savez(tmp_path / "nan.npz", x_train=x, y_train=np.zeros(4))
    with pytest.raises(DataError, match="no NaN"):
        load_npz(tmp_path / "nan.npz", ImageOptions(), 0.5, 0)


def valid_idx() -> bytes:
    return b"\0\0\x08\x03" + np.array([2, 3, 3], ">u4").tobytes() + bytes(range(18))


@PROPERTY
@given(st.binary(max_size=200) | st.integers(0, 33).map(lambda n: valid_idx()[:n]), st.booleans())
def test_idx_reader_raises_only_data_error(tmp_path, data, compress):
    path = tmp_path / ("f.gz" if compress else "f")
    path.write_bytes(gzip.compress(data) if compress and len(data) % 2 else data)  # half the .gz files are not gzip
    try:
        array = read_idx(path)
    except DataError:
        return
    assert array.dtype.kind in "uif"


def valid_npz() -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x_train=np.zeros((3, 4, 4), "u1"), y_train=np.zeros(3, "u1"))
    return buffer.getvalue()


@PROPERTY
@given(st.binary(max_size=400) | st.integers(0, len(valid_npz())).map(lambda n: valid_npz()[:n]) | st.integers(30, 200).map(
    lambda n: valid_npz()[:n] + b"\xff" * 8 + valid_npz()[n + 8 :]
))
def test_npz_reader_raises_only_data_error(tmp_path, data):
    path = tmp_path / "f.npz"
    path.write_bytes(data)
    try:
        data = load_npz(path, ImageOptions(), 0.5, 0)
    except DataError:
        return
    assert data.train.count >= 1 and data.val.count >= 1


NUMBER = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-10**6, 10**6)


@PROPERTY
@given(epochs=NUMBER, latent_dim=NUMBER, batch_size=NUMBER, learning_rate=NUMBER, beta=NUMBER, val_fraction=NUMBER, kl_warmup=NUMBER)
def test_numeric_options_are_accepted_exactly_within_their_bounds(epochs, latent_dim, batch_size, learning_rate, beta, val_fraction, kl_warmup):
    options = dict(epochs=epochs, latent_dim=latent_dim, batch_size=batch_size, learning_rate=learning_rate, beta=beta, val_fraction=val_fraction, kl_warmup=kl_warmup)
    within = (
        epochs >= 1 and latent_dim >= 1 and batch_size >= 1 and kl_warmup >= 0
        and 0 < learning_rate < math.inf and 0 <= beta < math.inf and 0 < val_fraction < 1
    )
    try:
        TrainConfig(**options)
    except ConfigError:
        assert not within
    else:
        assert within


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--learning-rate", "nan"], "--learning-rate must be a finite number > 0"),
        (["train", "--learning-rate", "0"], "--learning-rate must be a finite number > 0"),
        (["train", "--beta", "inf"], "--beta must be a finite number >= 0"),
        (["train", "--val-fraction", "1"], "--val-fraction must lie strictly between 0 and 1"),
        (["train", "--kl-warmup", "-1"], "Invalid value for '--kl-warmup'"),
        (["explore", "RUN", "--radius", "0"], "--radius must be a finite number > 0"),
        (["explore", "RUN", "--radius", "inf"], "Invalid value for '--radius'"),
        (["evaluate", "RUN", "--k", "0"], "--k must lie between 1 and 10000"),
        (["generate", "RUN", "--n", "0"], "--n"),
        (["animate", "RUN", "--fps", "nan"], "--fps must lie between 0.01 and 100"),
    ],
)
def test_numeric_options_beyond_their_bounds_are_one_line(trained, tmp_path, args, message):
    from typer.testing import CliRunner

    from cli.main import app

    args = [str(trained) if a == "RUN" else a for a in args]
    result = CliRunner().invoke(app, [*args, *(["--output-dir", str(tmp_path)] if args[0] == "train" else [])])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and message in result.stderr
