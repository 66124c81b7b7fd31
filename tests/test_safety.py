"""Never destroy what the user did not ask to: --overwrite replaces only what keras-vae wrote, a replaced run
comes back when its successor fails, --out files are refused unless asked, no write leaves a run through a
link, resume refuses what it cannot honour, hostile files and extreme options are one line, full and read-only
disks lose nothing, and SIGTERM stops like Ctrl-C."""

import contextlib
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import make_images
from test_data import write_split
from test_reliability import assert_released, train_process, wait_for
from test_train_cli import history
from typer.testing import CliRunner

from cli.main import app
from keras_vae.runs import Run, open_run
from keras_vae.snapshots import kept_epochs
from keras_vae.trained.export import MARKER, check_target

FAST = ["--arch", "dense", "--batch-size", "8"]


def cli(*args):
    return CliRunner().invoke(app, [*map(str, args)])


def one_line(result, *messages: str) -> None:
    """The command failed with exit code 2 and one line on stderr that holds every message."""
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("keras-vae: error: ") and result.stderr.count("\n") == 1, result.stderr
    for message in messages:
        assert message in result.stderr, result.stderr


def snapshot(folder: Path) -> dict:
    """Every file under folder with its bytes."""
    return {
        path.relative_to(folder): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()
    }


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("safety-data")
    pixels = (make_images() * 255).astype("u1")[..., 0]
    write_split(root, pixels, np.arange(32) % 4, compress=True, split="train")
    write_split(root, pixels[:8], np.arange(8) % 4, compress=True, split="t10k")
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir) -> Path:
    root = tmp_path_factory.mktemp("safety")
    assert (
        cli(
            "train", "--data-dir", data_dir, "--epochs", 2, "--name", "run", "--output-dir", root, *FAST
        ).exit_code
        == 0
    )
    return root / "run"


@pytest.fixture
def run_copy(trained, tmp_path) -> Path:
    shutil.copytree(trained, tmp_path / "runs" / "run")
    return tmp_path / "runs" / "run"


def test_overwrite_leaves_a_folder_keras_vae_did_not_write(data_dir, tmp_path):
    (tmp_path / "X").mkdir()
    (tmp_path / "X" / "thesis.tex").write_text("\\chapter{One}")
    result = cli(
        "train", "--data-dir", data_dir, "--name", "X", "--output-dir", tmp_path, "--overwrite", *FAST
    )
    one_line(result, "is not a run keras-vae wrote", "--overwrite leaves it alone")
    assert (tmp_path / "X" / "thesis.tex").read_text() == "\\chapter{One}"


def test_a_replaced_run_comes_back_when_the_new_one_fails_before_its_first_epoch(data_dir, run_copy):
    before = snapshot(run_copy)
    result = cli(
        "train",
        "--data-dir",
        data_dir,
        "--name",
        "run",
        "--output-dir",
        run_copy.parent,
        "--overwrite",
        "--learning-rate",
        1e30,
        "--epochs",
        3,
        *FAST,
    )
    one_line(result, "the loss became nan in epoch 1")
    assert snapshot(run_copy) == before
    assert not Run(run_copy).aside.exists()


def test_a_replaced_run_goes_once_the_new_one_has_finished_an_epoch(data_dir, run_copy):
    result = cli(
        "train",
        "--data-dir",
        data_dir,
        "--name",
        "run",
        "--output-dir",
        run_copy.parent,
        "--overwrite",
        "--epochs",
        3,
        *FAST,
    )
    assert result.exit_code == 0, result.output
    assert [row["epoch"] for row in history(run_copy)] == ["1", "2", "3"]
    assert not Run(run_copy).aside.exists() and sorted(p.name for p in run_copy.parent.iterdir()) == [
        ".run.lock",
        "run",
    ]


def test_a_replacement_killed_before_its_first_epoch_puts_the_old_run_back(run_copy):
    before = snapshot(run_copy)
    run = Run(run_copy)
    os.replace(run.root, run.aside)  # what a SIGKILL in the new run's first epoch leaves: the old run aside,
    (run.root / "logs").mkdir(parents=True)  # and a new folder with no committed epoch
    (run.root / "config.json").write_text("{}")
    assert open_run(run_copy.parent, "run", resume=True, overwrite=False) == run
    assert snapshot(run_copy) == before and not run.aside.exists()


def test_a_failed_start_leaves_no_run_folder(data_dir, tmp_path, monkeypatch):
    from keras_vae import training
    from keras_vae.errors import KerasVAEError

    def broken(*args, **kwargs):
        raise KerasVAEError("the model cannot be built")

    monkeypatch.setattr(training, "build_model", broken)
    one_line(
        cli("train", "--data-dir", data_dir, "--name", "new", "--output-dir", tmp_path, *FAST),
        "cannot be built",
    )
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    "command_name, name", [("generate", "photo.png"), ("generate", "array.npy"), ("animate", "holiday.gif")]
)
def test_an_existing_out_file_is_replaced_only_with_overwrite(trained, tmp_path, command_name, name):
    out = tmp_path / name
    out.write_bytes(b"the user's own")
    one_line(cli(command_name, trained, "--out", out), f"{out} exists", "--overwrite")
    assert out.read_bytes() == b"the user's own"
    assert cli(command_name, trained, "--out", out, "--overwrite").exit_code == 0
    assert out.read_bytes() != b"the user's own"


def test_explore_into_a_folder_checks_every_name_before_drawing(trained, tmp_path):
    (tmp_path / "latent.png").write_bytes(b"mine")
    one_line(cli("explore", trained, "--out", tmp_path), "latent.png exists")
    assert (
        sorted(p.name for p in tmp_path.iterdir()) == ["latent.png"]
        and (tmp_path / "latent.png").read_bytes() == b"mine"
    )
    assert cli("explore", trained, "--out", tmp_path, "--overwrite").exit_code == 0
    assert (tmp_path / "latent.png").read_bytes().startswith(b"\x89PNG")


def test_compare_refuses_an_existing_page(trained, tmp_path):
    (tmp_path / "index.md").write_text("notes")
    one_line(cli("compare", trained, trained, "--out", tmp_path), "index.md exists")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.md"]


def test_no_write_follows_a_link_out_of_the_run(run_copy, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.rmtree(run_copy / "figures", ignore_errors=True)
    (run_copy / "figures").symlink_to(outside)
    for args in (["explore", run_copy], ["animate", run_copy], ["generate", run_copy]):
        one_line(cli(*args), "leads outside", "symbolic link")
    with pytest.raises(Exception, match="leads outside"):
        Run(run_copy).check_inside()  # what train checks before it writes into a run it resumes
    assert not list(outside.iterdir())


def test_export_targets_keras_vae_did_not_write_are_refused(trained, tmp_path):
    run = Run(trained)
    users = tmp_path / "mine"
    users.mkdir()
    (users / "notes.txt").write_text("keep")
    cases = [
        (users, "is not an export keras-vae wrote"),
        (trained, "is the run or holds it"),
        (trained.parent, "is the run or holds it"),
    ]
    for out, message in cases:
        with pytest.raises(Exception, match=message):
            check_target(run, out, "saved_model", overwrite=True)
    with pytest.raises(Exception, match="is a folder"):
        check_target(run, users, "keras", overwrite=True)
    (users / MARKER).write_text("{}")
    check_target(run, users, "saved_model", overwrite=True)


def test_export_overwrite_of_a_users_folder_is_one_line_and_harmless(trained, tmp_path):
    users = tmp_path / "mine"
    users.mkdir()
    (users / "notes.txt").write_text("keep")
    before = snapshot(trained.parent)
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "export", trained, "--out", users, "--overwrite"],
        capture_output=True,
        text=True,
    )
    assert (
        done.returncode == 2
        and done.stderr.count("\n") == 1
        and "is not an export keras-vae wrote" in done.stderr
    ), done.stderr
    assert (users / "notes.txt").read_text() == "keep" and sorted(p.name for p in users.iterdir()) == [
        "notes.txt"
    ]
    assert snapshot(trained.parent) == before


def test_resume_applies_more_epochs_and_refuses_other_changes(interrupted, tmp_path):
    runs = shutil.copytree(interrupted[0], tmp_path / "runs" / "r").parent
    done = len(history(runs / "r"))
    one_line(
        cli("train", "--name", "r", "--output-dir", runs, "--resume", "--arch", "conv"),
        "--arch conv differs from the run's dense",
    )
    one_line(
        cli("train", "--name", "r", "--output-dir", runs, "--resume", "--latent-dim", 3),
        "--latent-dim 3 differs",
    )
    one_line(
        cli("train", "--name", "r", "--output-dir", runs, "--resume", "--epochs", done), "is not more than"
    )
    result = cli("train", "--name", "r", "--output-dir", runs, "--resume", "--epochs", done + 1)
    assert result.exit_code == 0, result.output
    assert f"training to {done + 1} epochs instead of 500" in result.stdout
    assert json.loads((runs / "r" / "config.json").read_text())["options"]["epochs"] == done + 1
    assert [int(row["epoch"]) for row in history(runs / "r")] == list(range(1, done + 2))
    one_line(
        cli("train", "--name", "r", "--output-dir", runs, "--resume", "--epochs", done + 5),
        "keeps no resume state",
    )


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory, data_dir) -> tuple[Path, int, str]:
    """A real training process of 500 epochs stopped by SIGTERM (a batch scheduler's warning before it kills)
    once it has committed two epochs: its run folder, exit code and stderr."""
    runs = tmp_path_factory.mktemp("interrupted")
    child = train_process(
        "--data-dir",
        data_dir,
        "--epochs",
        500,
        "--name",
        "r",
        "--output-dir",
        runs,
        "--batch-size",
        1,
        "--arch",
        "dense",
    )
    wait_for(lambda: Run(runs / "r").committed_epoch() >= 2, child)
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=120)
    return runs / "r", child.returncode, stderr


@pytest.mark.parametrize("damage", ["deleted", "shortened"])
def test_resume_with_a_history_shorter_than_its_state_is_one_line(interrupted, tmp_path, damage):
    run = shutil.copytree(interrupted[0], tmp_path / "runs" / "r")
    path = run / "history.csv"
    if damage == "deleted":
        path.unlink()
    else:
        path.write_text("\n".join(path.read_text().splitlines()[:2]) + "\n")
    one_line(
        cli("train", "--name", "r", "--output-dir", run.parent, "--resume"),
        "history.csv holds",
        "would have gaps",
    )


def test_sigterm_stops_like_ctrl_c_and_releases_the_lock(interrupted):
    run, code, stderr = interrupted
    assert code == 143, stderr
    assert "stopped by SIGTERM (sent by another process" in stderr, (
        "a time limit's SIGTERM is not mistaken for a crash"
    )
    assert "--resume" in stderr and stderr.count("\n") == 1
    assert_released(run.parent / ".r.lock")
    assert Run(run).committed_epoch() == len(history(run)) >= 2


def gzip_bomb(folder: Path) -> None:
    header = b"\0\0\x08\x03" + np.array([10**9, 28, 28], ">u4").tobytes()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + bytes(1 << 20)))
    (folder / "train-labels-idx1-ubyte").write_bytes(b"\0\0\x08\x01" + np.array([10**9], ">u4").tobytes())


def npz(**arrays):
    def write(folder: Path) -> None:
        np.savez(folder / "data.npz", **arrays)

    return write


def npy_named_npz(folder: Path) -> None:
    with open(folder / "data.npz", "wb") as f:
        np.save(f, np.zeros((4, 8, 8)))


IMAGES = np.zeros((8, 8, 8), "u1")


@pytest.mark.parametrize(
    "write, message",
    [
        (gzip_bomb, "more than this machine's"),
        (
            npz(x_train=IMAGES, y_train=np.zeros(8), x_test=np.zeros((2, 4, 4), "u1"), y_test=np.zeros(2)),
            "both splits need images of one size",
        ),
        (npz(x_train=IMAGES, y_train=np.array(list("abcdefgh"))), "y_train holds <U1 values"),
        (npz(x_train=IMAGES, y_train=np.zeros((8, 4))), "labels must be one class number per image"),
        (npy_named_npz, "is a .npy file (one array), not a .npz"),
    ],
    ids=["idx-gzip-bomb", "npz-test-size", "npz-string-labels", "npz-2d-labels", "npy-named-npz"],
)
def test_hostile_data_files_are_one_line_before_any_run_folder(tmp_path, write, message):
    data = tmp_path / "data"
    data.mkdir()
    write(data)
    one_line(cli("train", "--data-dir", data, "--output-dir", tmp_path / "runs", *FAST), message)
    assert all(path.name.endswith(".lock") for path in (tmp_path / "runs").iterdir()), "no run folder"


@pytest.mark.parametrize("kind", ["fifo", "device", "folder", "huge"])
def test_a_model_file_that_is_not_a_sane_regular_file_is_refused(run_copy, kind, monkeypatch):
    from keras_vae import runs

    model = run_copy / "model.keras"
    model.unlink()
    if kind == "fifo":
        os.mkfifo(model)
    elif kind == "device":
        model.symlink_to("/dev/zero")
    elif kind == "folder":
        model.mkdir()
    else:
        model.write_bytes(b"PK" + bytes(2000))
        monkeypatch.setattr(runs, "MODEL_BYTES", 1000)
    one_line(
        cli("generate", run_copy),
        "model.keras is 0.0 MB, over the" if kind == "huge" else "model.keras is not a regular file",
    )


def test_a_snapshot_that_is_a_fifo_is_refused(run_copy):
    fixed = run_copy / "snapshots" / "fixed.npz"
    fixed.unlink()
    os.mkfifo(fixed)
    one_line(cli("explore", run_copy), "fixed.npz is not a regular file")


def test_a_resume_state_that_is_a_fifo_is_refused_not_read(tmp_path):
    from keras_vae import build_model
    from keras_vae.callbacks import Backup
    from keras_vae.errors import KerasVAEError

    model = build_model("ae", "dense", 2, (8, 8, 1))
    model.compile(optimizer="adam")
    os.mkfifo(tmp_path / "epoch_0001.weights.h5")
    with pytest.raises(KerasVAEError, match="weights.h5 is not a regular file: give the resume state"):
        Backup(tmp_path).restore(model)


def test_generate_writes_any_number_in_chunks_and_bounds_a_png(trained, tmp_path):
    from keras_vae.trained import LoadedRun

    out = tmp_path / "many.npy"
    assert cli("generate", trained, "--n", 2500, "--out", out, "--seed", 4).exit_code == 0
    np.testing.assert_array_equal(np.load(out), LoadedRun.load(trained).samples(2500, 4))
    one_line(
        cli("generate", trained, "--n", 10_001, "--out", tmp_path / "grid.png"),
        "more than a .png grid holds (10000)",
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--seed", "-1"], "Invalid value for '--seed'"),
        (["train", "--seed", str(2**32)], "Invalid value for '--seed'"),
        (["train", "--latent-dim", "5000"], "Invalid value for '--latent-dim'"),
        (["train", "--name", "n" * 250], "keep it to 100"),
        (["evaluate", "RUN", "--k", "20000"], "Invalid value for '--k'"),
        (["evaluate", "RUN", "--seed", "-3"], "Invalid value for '--seed'"),
        (["generate", "RUN", "--seed", str(2**40)], "Invalid value for '--seed'"),
        (
            ["animate", "RUN", "--fps", "1e9"],
            "Invalid value for '--fps': Input should be less than or equal to 100",
        ),
        (
            ["animate", "RUN", "--fps", "0.001"],
            "Invalid value for '--fps': Input should be greater than or equal to 0.01",
        ),
        (["explore", "RUN", "--radius", "1e300"], "Invalid value for '--radius'"),
        (["train", "--epochs", "0"], "Invalid value for '--epochs'"),
    ],
)
def test_extreme_options_are_one_line(trained, tmp_path, args, message):
    args = [str(trained) if a == "RUN" else a for a in args]
    extra = ["--output-dir", str(tmp_path)] if args[0] == "train" else []
    one_line(cli(*args, *extra), message)
    assert not list(tmp_path.iterdir())


def test_epoch_snapshots_are_thinned_evenly_within_their_bound():
    for latest in (1, 7, 100, 101, 257, 10**6):
        kept = sorted(kept_epochs(latest))
        assert len(kept) <= 100 and kept[0] == 1 and kept[-1] == latest
        inner = np.diff(kept[1:-1])
        assert len(set(inner)) <= 1, "evenly spaced between the first and the latest"
    assert kept_epochs(100) == set(range(1, 101))
    for latest in range(
        1, 3000
    ):  # a snapshot once deleted is never wanted again: what epoch n+1 keeps, epoch n kept
        assert kept_epochs(latest + 1) - {latest + 1} <= kept_epochs(latest), latest


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    """A small tmpfs at path, or a skip where mounting is not allowed."""
    path.mkdir(exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_full_disk_is_one_line_and_keeps_what_was_saved(data_dir, tmp_path):
    """The disk fills after the first epoch: training stops with one line naming the run and the space it
    needs, and the committed epochs, the best model and the history stay whole."""
    with tmpfs(tmp_path / "disk", "8m") as disk:
        args = (
            "--data-dir",
            data_dir,
            "--epochs",
            500,
            "--name",
            "full",
            "--output-dir",
            disk,
            "--batch-size",
            1,
            "--arch",
            "dense",
        )
        child = train_process(*args)
        run = Run(disk / "full")
        wait_for(lambda: run.committed_epoch() >= 1, child)
        (disk / "filler").write_bytes(bytes(shutil.disk_usage(disk).free - 100_000))
        _, stderr = child.communicate(timeout=300)
        assert child.returncode == 2 and stderr.count("\n") == 1, stderr[-3000:]
        assert (
            "not enough space for this epoch's files" in stderr
            and str(run.root) in stderr
            and "MB free" in stderr
        )
        kept = run.committed_epoch()
        assert [int(row["epoch"]) for row in history(run.root)][:kept] == list(range(1, kept + 1))
        assert keras.saving.load_model(run.model, compile=False) is not None


def test_a_write_that_fills_the_disk_is_one_line_and_keeps_the_old_file(tmp_path):
    from keras_vae.files import FileError, write_atomic

    with tmpfs(tmp_path / "disk", "1m") as disk:
        (disk / "model.keras").write_bytes(b"old")
        with pytest.raises(FileError, match="no space left writing .*model.keras: .* free"):
            write_atomic(disk / "model.keras", lambda temporary: temporary.write_bytes(bytes(2 << 20)))
        assert (disk / "model.keras").read_bytes() == b"old" and sorted(p.name for p in disk.iterdir()) == [
            "model.keras"
        ]


def test_a_read_only_disk_is_one_line(trained, data_dir, tmp_path):
    with tmpfs(tmp_path / "ro", "16m") as folder:
        shutil.copytree(trained, folder / "run")
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        before = snapshot(folder)
        one_line(cli("explore", folder / "run"), "read-only file system")
        one_line(
            cli("train", "--data-dir", data_dir, "--name", "new", "--output-dir", folder, *FAST),
            "read-only file system",
        )
        done = subprocess.run(
            [sys.executable, "-m", "cli.main", "export", folder / "run", "--no-verify"],
            capture_output=True,
            text=True,
        )
        assert (
            done.returncode == 2 and done.stderr.count("\n") == 1 and "read-only file system" in done.stderr
        ), done.stderr
        assert snapshot(folder) == before


def test_an_atomic_write_reaches_the_disk_before_its_rename_and_the_rename_after(tmp_path, monkeypatch):
    from keras_vae.files import write_text_atomic

    synced, fsync = [], os.fsync
    monkeypatch.setattr(
        os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}")) or fsync(fd)
    )
    write_text_atomic(tmp_path / "config.json", "{}")
    assert len(synced) == 2 and Path(synced[0]).parent.name.endswith(".tmp") and synced[1] == str(tmp_path)
    assert (tmp_path / "config.json").read_text() == "{}"


def png_declaring(width: int, height: int) -> bytes:
    """A small PNG whose header declares width x height grey pixels: what a decompression bomb looks like
    before it is decoded."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * (width + 1)))
        + chunk(b"IEND", b"")
    )


def test_a_folder_skips_bombs_and_huge_files_unread_and_takes_names_in_any_encoding(tmp_path):
    import imageio.v2 as imageio

    folder = tmp_path / "images"
    latin = os.fsdecode(b"caf\xe9")  # a class folder named in Latin-1, as an old archive may have it
    for index, name in enumerate(["plain", latin]):
        (folder / name).mkdir(parents=True)
        for image in range(6):
            file = os.fsdecode(b"\xff%d.png" % image) if image == 0 else f"{image}.png"
            imageio.imwrite(
                folder / name / file, (make_images()[image + 6 * index, ..., 0] * 255).astype("u1")
            )
    (folder / "plain" / "bomb.png").write_bytes(png_declaring(16_000, 16_000))
    with open(folder / "plain" / "sparse.png", "wb") as sparse:
        sparse.truncate(3 << 30)  # 3 GB on paper, none on disk
    result = cli(
        "train", "--data-dir", folder, "--epochs", 1, "--name", "r", "--output-dir", tmp_path / "runs", *FAST
    )
    assert result.exit_code == 0, result.output
    assert "Skipped 2 of 14 image files that cannot be read as images or are too large" in result.stdout
    data = json.loads((tmp_path / "runs" / "r" / "config.json").read_text())["data"]
    assert data["class_names"] == ["caf\\xe9", "plain"] and sorted(
        Path(p).name for p in data["skipped_examples"]
    ) == ["bomb.png", "sparse.png"]
    embedded = cli("embed", tmp_path / "runs" / "r", "--split", "train", "--out", tmp_path / "codes.csv")
    assert embedded.exit_code == 0 and "caf\\xe9" in (tmp_path / "codes.csv").read_text(), embedded.output


@pytest.mark.parametrize(
    "flags, message",
    [
        (
            ["--image-size", "4096", "--arch", "dense"],
            "--image-size makes training too large: the weights of a dense model of 4096x4096",
        ),
        (
            ["--image-size", "4096", "--arch", "conv"],
            "--image-size makes training too large: the weights of a conv model of 4096x4096",
        ),
        (
            ["--image-size", "512", "--arch", "conv", "--batch-size", "1024"],
            "--batch-size makes training too large: 1024 images of 512x512",
        ),
        (
            ["--model", "iwae", "--k", "10000", "--batch-size", "512"],
            "--k makes training too large: 10000 samples of each of 512 images",
        ),
    ],
)
def test_options_that_would_take_more_memory_than_the_machine_are_one_line_up_front(
    data_dir, tmp_path, flags, message, monkeypatch
):
    monkeypatch.setattr(
        "keras_vae.budget.memory_bytes", lambda: 24 << 30
    )  # CI's machine, whatever this one is
    train = [
        "train",
        "--data-dir",
        data_dir,
        "--output-dir",
        tmp_path / "runs",
        "--epochs",
        1,
        "--arch",
        "dense",
        "--batch-size",
        8,
    ]
    one_line(cli(*train, *flags), message, "more than half of this machine's 24.0 GiB")
    assert all(path.name.endswith(".lock") for path in (tmp_path / "runs").iterdir()), "no run folder"


def test_a_cvae_over_a_thousand_classes_is_refused_up_front(tmp_path, monkeypatch):
    """Each class is an input channel of a dense encoder's first layer: 314 M weights, 15.3 GB measured."""
    import imageio.v2 as imageio

    monkeypatch.setattr("keras_vae.budget.memory_bytes", lambda: 24 << 30)
    for index in range(1000):
        (tmp_path / "classes" / f"c{index:04d}").mkdir(parents=True)
        imageio.imwrite(
            tmp_path / "classes" / f"c{index:04d}" / "0.png", np.full((28, 28), index % 256, "u1")
        )
    train = [
        "train",
        "--data-dir",
        tmp_path / "classes",
        "--model",
        "cvae",
        "--arch",
        "dense",
        "--epochs",
        1,
        "--output-dir",
        tmp_path / "runs",
    ]
    one_line(
        cli(*train),
        "the data's 1,000 classes makes training too large: their label channels in a dense encoder need "
        "about 14.4 GiB",
    )


def test_the_memory_estimate_names_the_option_to_lower_and_passes_the_defaults():
    from keras_vae.budget import check_training_memory, training_memory
    from keras_vae.errors import ConfigError

    parts = training_memory("dense", (28, 28, 1), 64)
    assert (
        parts["weights"] == (784 + 784) * 400 * 12 * 4
        and parts["batch"] == 2 * 64 * (784 + 784 * 3 + 400) * 4
    )
    check_training_memory("dense", (28, 28, 1), 64, available=1 << 30)
    with pytest.raises(ConfigError, match="^k makes training too large"):
        check_training_memory("dense", (28, 28, 1), 64, k=5000, available=8 << 30)
    with pytest.raises(ConfigError, match="^batch_size makes"):
        check_training_memory("conv", (28, 28, 1), 1 << 16, available=8 << 30)


@pytest.mark.parametrize(
    "command_name, extra",
    [("explore", []), ("compare", ["RUN"])],
)
def test_an_out_folder_that_is_a_file_is_one_line(trained, tmp_path, command_name, extra):
    out = tmp_path / "notes.txt"
    out.write_text("mine")
    one_line(
        cli(command_name, trained, *[trained if a == "RUN" else a for a in extra], "--out", out),
        "notes.txt exists and is not a folder",
    )
    assert out.read_text() == "mine"


def test_export_keras_to_another_extension_is_refused_naming_out(trained, tmp_path):
    """In the library's terms (the CLI, which runs export on TensorFlow, says --out)."""
    from keras_vae.errors import ConfigError
    from keras_vae.trained.export import export_run

    with pytest.raises(
        ConfigError, match=r"^out x.onnx does not end in .keras, which --format keras writes"
    ) as refused:
        export_run(trained, "keras", tmp_path / "x.onnx")
    assert refused.value.parameter == "out" and not list(tmp_path.iterdir())


def test_evaluate_on_data_that_changed_shape_is_one_line(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    pixels = (make_images() * 255).astype("u1")[..., 0]
    write_split(data, pixels, np.arange(32) % 4, compress=True, split="train")
    assert (
        cli(
            "train", "--data-dir", data, "--epochs", 1, "--name", "r", "--output-dir", tmp_path, *FAST
        ).exit_code
        == 0
    )
    write_split(data, np.zeros((32, 10, 10), "u1"), np.arange(32) % 4, compress=True, split="train")
    one_line(cli("evaluate", tmp_path / "r"), "r was trained on 8x8x1 images", "now gives 10x10x1")
