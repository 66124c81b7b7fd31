"""Faults never lose a run: SIGKILL at any moment, NaN losses, corrupt files, two trainings of one run, bad
bytes."""

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
from keras_vae.files import is_temporary

FAST = ["--arch", "dense", "--batch-size", "8"]
PROPERTY = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


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
    """Every file of the run reads back whole; the temporary files of a killed write are not the run's
    files."""
    for path in run.rglob("*"):
        if not path.is_file() or is_temporary(path.relative_to(run)):
            continue
        if path.suffix == ".json":
            assert json.loads(path.read_text())["run_format"] == 1
        elif path.suffix == ".csv":
            rows = list(csv.DictReader(io.StringIO(path.read_text())))
            assert rows and all(
                len(row) == len(rows[0]) and all(math.isfinite(float(v)) for v in row.values())
                for row in rows
            )
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


def test_a_job_that_runs_train_resume_again_after_each_kill_finishes_the_run_once(images, tmp_path):
    """A preempted job script repeats one command: `train --resume` starts the run, continues it, and once it
    is complete does nothing and exits 0. Killed (SIGKILL) at 5 random moments, one in each fifth of the time
    a whole run takes, from before its first file to mid-epoch, it loses nothing and ends as one uninterrupted
    run."""
    runs, npz = tmp_path / "runs", tmp_path / "data.npz"
    many = np.tile((images * 255).astype("u1")[..., 0], (20, 1, 1))  # 640 images: 80 steps an epoch
    np.savez(npz, x_train=many, y_train=np.arange(len(many)) % 4)
    options = ("--data-dir", npz, "--epochs", 3, "--output-dir", runs, "--seed", 3, *FAST)
    job = (*options, "--name", "job", "--resume")
    started = time.monotonic()
    whole = subprocess.run(command(*options, "--name", "whole"), capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr
    fifths = (np.arange(5) + np.random.default_rng(1).uniform(size=5)) / 5
    for delay in fifths * (time.monotonic() - started):
        child = train_process(*job)
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert_every_file_complete(runs / "job")
    for ending in ("", "already finished its 3 epochs: nothing to do"):
        done = subprocess.run(command(*job), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
        assert ending in done.stdout
    assert [row["epoch"] for row in history(runs / "job")] == ["1", "2", "3"]
    assert not (runs / "job" / "backup").exists() and not list((runs / "job").rglob(".*.tmp*"))
    assert float(history(runs / "job")[-1]["val_loss"]) == pytest.approx(
        float(history(runs / "whole")[-1]["val_loss"]), rel=0.1
    )
    assert len({row["val_loss"] for row in history(runs / "job")}) == 3, (
        "every epoch trained on: no epoch repeats another's loss"
    )


def test_nan_loss_stops_naming_the_epoch_and_keeps_the_last_good_model(npz, tmp_path):
    runs = tmp_path / "runs"
    diverged = invoke(
        "--data-dir",
        npz,
        "--epochs",
        2,
        "--learning-rate",
        1e30,
        "--name",
        "fresh",
        "--output-dir",
        runs,
        *FAST,
    )
    assert diverged.exit_code == 2 and diverged.stderr.count("\n") == 1
    assert "the loss became nan in epoch 1" in diverged.stderr and "no epoch finished" in diverged.stderr
    assert not (runs / "fresh").exists(), "a new run that finished no epoch leaves nothing behind"

    child = train_process("--data-dir", npz, "--epochs", 50, "--name", "good", "--output-dir", runs, *FAST)
    wait_for(
        lambda: (runs / "good" / "backup").exists() and any((runs / "good" / "backup").glob("epoch_*")), child
    )
    child.send_signal(signal.SIGINT)
    assert child.wait(timeout=120) == 130
    model_bytes = (runs / "good" / "model.keras").read_bytes()
    config = json.loads((runs / "good" / "config.json").read_text())
    config["options"] |= {
        "reconstruction_weight": 3e38
    }  # near float32's largest: the resumed epoch's loss overflows to inf
    (runs / "good" / "config.json").write_text(json.dumps(config))
    result = subprocess.run(
        command("--name", "good", "--output-dir", runs, "--resume"), capture_output=True, text=True
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    best = min(history(runs / "good"), key=lambda row: float(row["val_loss"]))
    assert f"the best model so far (epoch {best['epoch']}" in result.stderr and "stays in" in result.stderr
    assert (runs / "good" / "model.keras").read_bytes() == model_bytes
    assert isinstance(keras.saving.load_model(runs / "good" / "model.keras"), keras_vae.VAE)


def assert_released(path: Path) -> None:
    """The lock file stays (removing it would let two processes lock two files), released and naming no
    one."""
    from filelock import FileLock

    assert path.read_text() == ""
    with FileLock(path, timeout=0):
        pass


def test_a_second_training_of_the_same_run_refuses_while_the_first_runs(npz, tmp_path):
    runs = tmp_path / "runs"
    first = train_process("--data-dir", npz, "--epochs", 200, "--name", "same", "--output-dir", runs, *FAST)
    wait_for(lambda: (runs / ".same.lock").exists() and (runs / "same" / "history.csv").exists(), first)
    second = subprocess.run(
        command(
            "--data-dir", npz, "--epochs", 1, "--name", "same", "--output-dir", runs, "--overwrite", *FAST
        ),
        capture_output=True,
        text=True,
    )
    assert second.returncode == 2 and second.stderr.count("\n") == 1
    assert f"is being trained by process {first.pid}" in second.stderr
    assert first.poll() is None, "the first training goes on"
    first.send_signal(signal.SIGINT)
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 130, stderr
    epochs = [int(row["epoch"]) for row in history(runs / "same")]
    assert epochs == list(range(1, len(epochs) + 1)) and epochs, (
        "the first run's history is its own, every epoch once"
    )
    assert_released(runs / ".same.lock")


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
        (
            "config.json",
            edit_config(lambda c: c.update(run_format=99, keras_vae_version="9.0.0")),
            "written by keras-vae 9.0.0",
        ),
        ("config.json", edit_config(lambda c: c.pop("run_format")), "run format None"),
        (
            "config.json",
            edit_config(lambda c: c["options"].update(latent_dim="two")),
            "options of the wrong type",
        ),
    ],
    ids=[
        "model-truncated",
        "model-zeros",
        "config-truncated",
        "config-not-an-object",
        "newer-version",
        "older-version",
        "config-types",
    ],
)
@pytest.mark.parametrize("command_name", ["explore", "evaluate", "generate", "export"])
def test_damaged_run_files_are_one_line(trained, tmp_path, name, spoil, message, command_name):
    from typer.testing import CliRunner

    from cli.main import app

    if command_name == "export" and keras.backend.backend() != "tensorflow":
        pytest.skip("export runs on TensorFlow; its process is tested in test_export")
    run = spoiled_copy(trained, tmp_path, name, spoil)
    extra = {
        "evaluate": ["--k", "2"],
        "generate": ["--out", str(tmp_path / "g.png")],
        "export": ["--no-verify"],
    }.get(command_name, [])
    result = CliRunner().invoke(app, [command_name, str(run), *extra])
    assert result.exit_code == 2, result.output
    assert (
        result.stderr.startswith("keras-vae: error: ")
        and result.stderr.count("\n") == 1
        and message in result.stderr
    )


def write(content: bytes):
    return lambda path: path.write_bytes(content)


def swap_model(path: Path) -> None:
    """Another run's model: a VAE of the same architecture with a 3-D latent."""
    keras_vae.build_model("vae", "dense", 3, (8, 8, 1)).save(path)


def misname(path: Path) -> None:
    path.with_name("epoch_one.npz").write_bytes(path.read_bytes())


SNAPSHOT_READERS = ["explore", "generate", "animate", "compare"]
DAMAGED_FILES = {
    "fixed-truncated": ("snapshots/fixed.npz", truncate, "fixed.npz is damaged", SNAPSHOT_READERS),
    "fixed-zeros": ("snapshots/fixed.npz", write(b"\0" * 64), "fixed.npz is damaged", SNAPSHOT_READERS),
    "fixed-keys": (
        "snapshots/fixed.npz",
        lambda p: np.savez(p.with_suffix(""), pixels=np.zeros(3)),
        "lacks its 4-D array 'images'",
        SNAPSHOT_READERS,
    ),
    "epoch-truncated": ("snapshots/epoch_0001.npz", truncate, "epoch_0001.npz is damaged", ["animate"]),
    "epoch-misnamed": (
        "snapshots/epoch_0001.npz",
        misname,
        "epoch_one.npz is not a snapshot keras-vae wrote",
        ["animate"],
    ),
    "history-empty": ("history.csv", write(b""), "holds no finished epoch", ["compare"]),
    "history-missing": ("history.csv", Path.unlink, "holds no finished epoch", ["compare"]),
    "history-garbage": (
        "history.csv",
        write(b"\x89PNG\r\n\x1a\n\0\0"),
        "history.csv is damaged",
        ["compare"],
    ),
    "history-text": ("history.csv", write(b"epoch,loss\n1,low\n"), "history.csv is damaged", ["compare"]),
    "class-names-int": (
        "config.json",
        edit_config(lambda c: c["data"].update(class_names=5)),
        "data.class_names must be",
        SNAPSHOT_READERS,
    ),
    "latent-dim-3": (
        "config.json",
        edit_config(lambda c: c["options"].update(latent_dim=3)),
        "its latent_dim is 2",
        SNAPSHOT_READERS,
    ),
    "latent-dim-float": (
        "config.json",
        edit_config(lambda c: c["options"].update(latent_dim=2.0)),
        "latent_dim must be int",
        SNAPSHOT_READERS,
    ),
    "no-data": ("config.json", edit_config(lambda c: c.pop("data")), "no data section", SNAPSHOT_READERS),
    "model-swapped": ("model.keras", swap_model, "its latent_dim is 3", SNAPSHOT_READERS),
}


@pytest.mark.parametrize(
    "case, command_name",
    [(case, command_name) for case, (*_, commands) in DAMAGED_FILES.items() for command_name in commands],
)
def test_every_damaged_run_file_is_one_line_naming_it(trained, tmp_path, case, command_name):
    from typer.testing import CliRunner

    from cli.main import app

    name, spoil, message, _ = DAMAGED_FILES[case]
    run = spoiled_copy(trained, tmp_path, name, spoil)
    extra = {"generate": ["--out", tmp_path / "g.png"], "compare": [run, "--out", tmp_path / "compare"]}.get(
        command_name, []
    )
    result = CliRunner().invoke(app, [command_name, str(run), *map(str, extra)])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("keras-vae: error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr and str(run) in result.stderr


def test_resuming_a_damaged_run_is_one_line(trained, tmp_path):
    run = spoiled_copy(trained, tmp_path, "config.json", edit_config(lambda c: c.update(run_format=2)))
    result = invoke("--name", run.name, "--output-dir", run.parent, "--resume")
    assert result.exit_code == 2 and "reads run format 1" in result.stderr and result.stderr.count("\n") == 1


def test_a_model_with_code_in_it_is_refused_by_safe_mode(trained, tmp_path):
    from typer.testing import CliRunner

    from cli.main import app

    marker = Path("/tmp/keras-vae-test-code-ran")
    inputs = keras.Input((8, 8, 1))
    code = keras.layers.Lambda(
        lambda x: x if __import__("pathlib").Path("/tmp/keras-vae-test-code-ran").write_text("ran") else x
    )
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
    path.write_bytes(
        gzip.compress(data) if compress and len(data) % 2 else data
    )  # half the .gz files are not gzip
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
@given(
    st.binary(max_size=400)
    | st.integers(0, len(valid_npz())).map(lambda n: valid_npz()[:n])
    | st.integers(30, 200).map(lambda n: valid_npz()[:n] + b"\xff" * 8 + valid_npz()[n + 8 :])
)
def test_npz_reader_raises_only_data_error(tmp_path, data):
    path = tmp_path / "f.npz"
    path.write_bytes(data)
    try:
        data = load_npz(path, ImageOptions(), 0.5, 0)
    except DataError:
        return
    assert data.train.count >= 1 and data.val.count >= 1


NUMBER = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**6), 10**6)


@PROPERTY
@given(
    epochs=NUMBER,
    latent_dim=NUMBER,
    batch_size=NUMBER,
    learning_rate=NUMBER,
    beta=NUMBER,
    val_fraction=NUMBER,
    kl_warmup_steps=NUMBER,
)
def test_numeric_options_are_accepted_exactly_within_their_bounds(
    epochs, latent_dim, batch_size, learning_rate, beta, val_fraction, kl_warmup_steps
):
    options = dict(
        epochs=epochs,
        latent_dim=latent_dim,
        batch_size=batch_size,
        learning_rate=learning_rate,
        beta=beta,
        val_fraction=val_fraction,
        kl_warmup_steps=kl_warmup_steps,
    )
    counts = (epochs, latent_dim, batch_size, kl_warmup_steps)
    within = (
        all(isinstance(count, int) for count in counts)  # a config.json edited by hand may hold 2.0
        and epochs >= 1
        and latent_dim >= 1
        and batch_size >= 1
        and kl_warmup_steps >= 0
        and 0 < learning_rate < math.inf
        and 0 <= beta < math.inf
        and 0 < val_fraction < 1
    )
    try:
        TrainConfig(**options)
    except ConfigError as error:
        assert not within
        assert error.parameter in options and str(error).startswith(error.parameter), (
            "the library names its own parameter"
        )
    else:
        assert within


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--learning-rate", "nan"], "Invalid value for '--learning-rate'"),
        (["train", "--learning-rate", "0"], "--learning-rate must be a finite number > 0"),
        (["train", "--beta", "inf"], "--beta must be a finite number >= 0"),
        (["train", "--val-fraction", "1"], "--val-fraction must lie strictly between 0 and 1"),
        (["train", "--kl-warmup-steps", "-1"], "Invalid value for '--kl-warmup-steps'"),
        (["explore", "RUN", "--radius", "0"], "--radius must be a finite number > 0"),
        (["explore", "RUN", "--radius", "inf"], "Invalid value for '--radius'"),
        (["evaluate", "RUN", "--k", "0"], "Invalid value for '--k'"),
        (["generate", "RUN", "--n", "0"], "--n"),
        (["animate", "RUN", "--fps", "nan"], "Invalid value for '--fps'"),
    ],
)
def test_numeric_options_beyond_their_bounds_are_one_line(trained, tmp_path, args, message):
    from typer.testing import CliRunner

    from cli.main import app

    args = [str(trained) if a == "RUN" else a for a in args]
    result = CliRunner().invoke(
        app, [*args, *(["--output-dir", str(tmp_path)] if args[0] == "train" else [])]
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and message in result.stderr
