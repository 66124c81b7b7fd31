"""Answers to trust: no predictable temporary path, no spreadsheet formula smuggled into a CSV, fair random
subsets for every measurement, the best epoch chosen at full KL weight, collapse named, caches checked against
their origin, a run's own files never another command's --out, and memory bounded before it is taken."""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import make_images
from test_data import write_split
from test_safety import cli, one_line


@pytest.mark.parametrize("plant", ["symlink", "fifo"])
def test_no_command_opens_what_another_user_planted_at_the_old_stderr_name(tmp_path, plant):
    """A symlink at $TMPDIR/keras-vae-PID.stderr once made `info` overwrite what it pointed to; a FIFO hung
    it."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    make = (
        f"ln -s {victim} $TMPDIR/keras-vae-$$.stderr"
        if plant == "symlink"
        else "mkfifo $TMPDIR/keras-vae-$$.stderr"
    )
    script = f"{make}; exec {sys.executable} -m keras_vae info"
    env = {**os.environ, "TMPDIR": str(tmp_path), "KERAS_BACKEND": keras.backend.backend()}
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0 and "backend: " in done.stdout, done.stderr
    assert victim.read_text() == "precious"
    assert not [
        path
        for path in tmp_path.iterdir()
        if path.name.endswith(".stderr") and not path.is_symlink() and not path.is_fifo()
    ]


def test_a_csv_cell_that_would_start_a_formula_stays_text(tmp_path):
    import csv

    from keras_vae.trained.embed import write_csv

    names = ['=HYPERLINK("http://x","y")', "+1", "-2", "@SUM(A1)", "plain"]
    out = tmp_path / "z.csv"
    write_csv(out, np.zeros((5, 1, 2), "float32"), np.arange(5), names, ("z",))
    classes = [row["class"] for row in csv.DictReader(out.open())]
    assert classes == ['\'=HYPERLINK("http://x","y")', "'+1", "'-2", "'@SUM(A1)", "plain"]


def test_stratified_indices_give_each_class_its_share_in_random_order():
    from keras_vae.data.stream import stratified_indices

    labels = np.repeat(np.arange(10), 100)  # a split sorted by class, as class subfolders give it
    picked = stratified_indices(labels, 20, seed=3)
    assert len(set(picked)) == 20 and np.bincount(labels[picked], minlength=10).tolist() == [2] * 10
    np.testing.assert_array_equal(picked, stratified_indices(labels, 20, seed=3))
    assert not np.array_equal(picked, stratified_indices(labels, 20, seed=4))
    uneven = np.array([0] * 70 + [1] * 20 + [2] * 10)
    assert np.bincount(uneven[stratified_indices(uneven, 10, 0)]).tolist() == [7, 2, 1]
    assert sorted(stratified_indices(np.full(5, -1), 9, 0)) == [
        0,
        1,
        2,
        3,
        4,
    ]  # all of them, unlabelled, shuffled


@pytest.fixture(scope="module")
def sorted_folder(tmp_path_factory) -> Path:
    """4 classes of 12 distinct 8x8 images each, one subfolder per class: a split that comes sorted by
    class."""
    import imageio.v2 as imageio

    root = tmp_path_factory.mktemp("sorted") / "classes"
    rng = np.random.default_rng(0)
    for label in range(4):
        (root / f"c{label}").mkdir(parents=True)
        for index in range(12):
            imageio.imwrite(root / f"c{label}" / f"{index:02d}.png", rng.integers(0, 256, (8, 8), dtype="u1"))
    return root


def test_a_sample_of_a_class_sorted_split_holds_every_class_and_its_halves_do_too(sorted_folder):
    """evaluate's held-out subset was the first N images: on class folders, the first classes only, and the
    real-halves floor compared the first classes with the last."""
    from keras_vae.data import load_dataset

    data = load_dataset(data_dir=sorted_folder, val_fraction=0.5, seed=0)
    first = data.take("train", 8)[1]
    images, labels = data.sample("train", 8, seed=0)
    shares = np.bincount(data.train.all_labels(), minlength=4) * 8 / data.train.count
    assert len(set(first.tolist())) < 4 and np.all(np.abs(np.bincount(labels, minlength=4) - shares) < 1)
    assert len(set(labels[:4].tolist())) > 1 and len(set(labels[4:].tolist())) > 1
    everything, all_labels = data.take("train", data.train.count)
    for image, label in zip(images, labels):  # each drawn image is the split's own, with its own label
        match = np.flatnonzero(np.all(np.isclose(everything, image), axis=(1, 2, 3)))
        assert len(match) == 1 and all_labels[match[0]] == label


def test_warm_up_defaults_and_bounds():
    from keras_vae.config import ConfigError, TrainConfig, default_warmup

    assert [default_warmup(total) for total in (282, 705, 4000, 1)] == [141, 250, 667, 0]
    config = TrainConfig(epochs=2, kl_warmup_steps=283)
    with pytest.raises(
        ConfigError, match=r"kl_warmup_steps 283 is longer than the run's 282 steps \(2 epochs of 141\)"
    ):
        config.resolved(9000)
    assert TrainConfig(epochs=2, kl_warmup_steps=282).resolved(9000).kl_warmup_steps == 282


def test_collapse_is_named_only_when_no_dimension_carries_information():
    from keras_vae.trained.metrics import collapse_note

    assert collapse_note(2.0, 2.01, active=1, dimensions=2) is None
    assert collapse_note(20.0, 40.0, active=0, dimensions=2) is None  # means close, posteriors far narrower
    note = collapse_note(0.05, 0.07, active=1, dimensions=2)
    assert note.startswith(
        "the posterior has collapsed: a KL of 0.07 nats per image, 1 of 2 latent dimensions active"
    )
    assert "--kl-warmup-steps" in note


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A VAE and two VQ-VAEs of different seeds, two epochs each on 32 labelled 8x8 images (8 held out)."""
    root = tmp_path_factory.mktemp("trust")
    pixels = (make_images() * 255).astype("u1")[..., 0]
    write_split(root, pixels, np.arange(32) % 4, compress=True, split="train")
    write_split(root, pixels[:8], np.arange(8) % 4, compress=True, split="t10k")
    common = [
        "--data-dir",
        root,
        "--epochs",
        2,
        "--arch",
        "dense",
        "--batch-size",
        8,
        "--output-dir",
        root / "runs",
    ]
    for name, flags in {
        "vae": [],
        "vq": ["--model", "vq-vae", "--codebook-size", 8],
        "vq2": ["--model", "vq-vae", "--codebook-size", 8, "--seed", 1],
    }.items():
        trained = cli("train", *common, "--name", name, *flags)
        assert trained.exit_code == 0, trained.output
    return {name: root / "runs" / name for name in ("vae", "vq", "vq2")} | {"root": root, "common": common}


def test_the_summary_states_the_warm_up_and_the_kept_epoch_and_every_val_loss_is_the_full_objective(runs):
    import csv

    result = cli("train", *runs["common"], "--name", "said", "--kl-warmup-steps", 6, "--epochs", 3)
    assert result.exit_code == 0, result.output
    assert "kl_warmup" in result.stdout and "6 of 12 steps" in result.stdout and "kept_epoch" in result.stdout
    rows = list(csv.DictReader((runs["root"] / "runs" / "said" / "history.csv").open()))
    for row in rows:  # beta 1: validation weighs the KL in full from the first epoch on
        assert float(row["val_loss"]) == pytest.approx(
            float(row["val_reconstruction_loss"]) + float(row["val_kl_loss"]), rel=1e-5
        )
    best = min(rows, key=lambda row: float(row["val_loss"]))["epoch"]
    assert f"model.keras (epoch {best}: lowest val_loss)" in " ".join(result.stdout.split())
    one_line(
        cli("train", *runs["common"], "--name", "long", "--kl-warmup-steps", 100),
        "--kl-warmup-steps 100 is longer than the run's 8 steps",
    )


def test_a_collapsed_posterior_is_named_by_train_and_evaluate_and_a_kl_only_run_is_not(runs):
    collapsed = cli("train", *runs["common"], "--name", "collapsed", "--beta", 200, "--epochs", 3)
    assert collapsed.exit_code == 0, collapsed.output
    assert "Warning: collapsed: the posterior has collapsed" in " ".join(collapsed.stdout.split())
    evaluated = cli(
        "evaluate", runs["root"] / "runs" / "collapsed", "--k", 2, "--quality-images", 0, "--json"
    )
    assert "the posterior has collapsed" in json.loads(evaluated.stdout)["collapse_note"]
    kl_only = cli("train", *runs["common"], "--name", "kl-only", "--reconstruction-weight", 0)
    assert kl_only.exit_code == 0 and "collapsed" not in kl_only.stdout


def test_a_classifier_of_other_data_or_none_is_trained_again_and_a_weak_one_is_said(runs, monkeypatch):
    import shutil

    from keras_vae.origins import read_origin
    from keras_vae.trained import LoadedRun
    from keras_vae.trained.quality import build_classifier, run_feature_space

    loaded = LoadedRun.load(runs["vae"])
    path = runs["vae"] / "classifier.keras"
    first = run_feature_space(path, loaded.dataset)
    origin = read_origin(path)
    assert (
        origin["classes"] == 4
        and 0 <= origin["held_out_accuracy"] <= 1
        and "% right on held-out images)" in first.name
    )
    build_classifier((8, 8, 1), 4).save(path)  # untrained, and recording nothing
    again = run_feature_space(path, loaded.dataset)
    assert "records no origin" in again.note and "trained again" in again.note and read_origin(path) == origin
    monkeypatch.setattr("keras_vae.origins.data_fingerprint", lambda data: "other data")
    stale = run_feature_space(path, loaded.dataset)
    assert "was made for another data" in stale.note and read_origin(path)["data"] == "other data"
    monkeypatch.setattr("keras_vae.trained.quality.TRUSTED_ACCURACY", 1.01)
    weak = run_feature_space(path, loaded.dataset)
    assert "the classifier is right on only" in weak.note and "--fid-weights" in weak.note
    path.unlink()
    path.mkdir()
    try:
        one_line(cli("evaluate", runs["vae"], "--k", 2), "classifier.keras is not a file keras-vae wrote")
    finally:
        shutil.rmtree(path)


def test_a_prior_of_another_run_or_model_is_refused_in_one_line(runs):
    import shutil

    trained = cli("train-prior", runs["vq"], "--epochs", 1)
    assert trained.exit_code == 0, trained.output
    assert cli("generate", runs["vq"], "--n", 4).exit_code == 0
    evaluated = json.loads(cli("evaluate", runs["vq"], "--quality-images", 0, "--json").stdout)
    assert evaluated["prior_code_nll"] > 0 and "learned prior's negative log-likelihood" in evaluated["note"]
    shutil.copy(runs["vq"] / "prior.keras", runs["vq2"] / "prior.keras")
    one_line(
        cli("generate", runs["vq2"], "--n", 4),
        "prior.keras was made for another model",
        "train-prior",
        "--overwrite",
    )
    shutil.copy(runs["vae"] / "model.keras", runs["vq2"] / "prior.keras")
    one_line(cli("generate", runs["vq2"], "--n", 4), "prior.keras records no origin")
    (runs["vq2"] / "prior.keras").unlink()
    (runs["vq2"] / "prior.keras").mkdir()
    one_line(cli("generate", runs["vq2"], "--n", 4), "prior.keras is not a regular file")
    one_line(
        cli("train-prior", runs["vq2"], "--epochs", 1, "--overwrite"),
        "prior.keras is not a file keras-vae wrote",
    )
    (runs["vq2"] / "prior.keras").rmdir()


def test_a_runs_own_files_are_never_another_commands_out(runs):
    from keras_vae.errors import ConfigError
    from keras_vae.runs import Run
    from keras_vae.trained.export import check_target

    vae = runs["vae"]
    before = {name: (vae / name).read_bytes() for name in ("history.csv", "model.keras", "config.json")}
    one_line(
        cli("embed", vae, "--out", vae / "history.csv", "--overwrite"),
        "is",
        "own history.csv, which no command writes over",
    )
    one_line(cli("generate", vae, "--out", vae / "snapshots" / "x.npy", "--overwrite"), "own snapshots")
    one_line(cli("explore", vae, "--out", vae / "logs", "--overwrite"), "own logs")
    one_line(cli("compare", vae, runs["vq"], "--out", vae / "backup"), "own backup")
    with pytest.raises(ConfigError, match="own .vae.lock"):
        check_target(Run(vae), runs["root"] / "runs" / ".vae.lock", "saved_model", overwrite=True)
    assert {name: (vae / name).read_bytes() for name in before} == before


def test_what_killed_writes_left_long_ago_goes_when_a_command_opens_the_run(runs):
    import os
    import time

    old, fresh = runs["vae"] / ".classifier.123.tmp.keras", runs["vae"] / ".prior.x1y2.tmp"
    old.write_bytes(b"half a model")
    (runs["vae"] / ".model.abcd.tmp").mkdir()
    (runs["vae"] / ".model.abcd.tmp" / "model.keras").write_bytes(b"half")
    fresh.mkdir()
    long_ago = time.time() - 2 * 3600
    for path in (old, runs["vae"] / ".model.abcd.tmp", runs["vae"] / ".model.abcd.tmp" / "model.keras"):
        os.utime(path, (long_ago, long_ago))
    assert cli("generate", runs["vae"], "--n", 4, "--out", runs["root"] / "g.png").exit_code == 0
    assert not old.exists() and not (runs["vae"] / ".model.abcd.tmp").exists()
    assert fresh.exists(), "a temporary another process may be writing now stays"
    fresh.rmdir()


def test_an_atomic_write_goes_through_a_private_folder_of_a_random_name(tmp_path):
    """No name beside the target that someone else could guess and plant a link or a FIFO at."""
    import stat

    from keras_vae.files import write_atomic

    seen = []

    def write(temporary: Path) -> None:
        seen.append((temporary.parent, stat.S_IMODE(temporary.parent.stat().st_mode)))
        temporary.write_text("y")

    write_atomic(tmp_path / "out.txt", write)
    write_atomic(tmp_path / "out.txt", write)
    assert seen[0][0] != seen[1][0] and {mode for _, mode in seen} == {0o700}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out.txt"]


def test_evaluate_bounds_its_memory_up_front_and_either_command_can_take_the_risk(runs, monkeypatch):
    from keras_vae.budget import check_evaluate_memory, evaluate_memory
    from keras_vae.errors import ConfigError

    monkeypatch.setattr(
        "keras_vae.budget.memory_bytes", lambda: 24 << 30
    )  # CI's machine, whatever this one is
    assert (
        evaluate_memory("deep-conv", (128, 128, 3), 10_000, 0)["k"] > 12 << 30
    )  # what would pass the machine
    monkeypatch.setattr("keras_vae.budget.memory_bytes", lambda: 1 << 20)
    one_line(
        cli("evaluate", runs["vae"], "--k", 1000, "--quality-images", 0),
        "--k makes evaluate too large",
        "--no-memory-check",
    )
    with pytest.raises(
        ConfigError,
        match="^quality_images makes evaluate too large: 10,000 held-out 64x64 images and as many samples",
    ):
        check_evaluate_memory("dense", (64, 64, 3), 1, 10_000, available=1 << 30)
    assert cli("evaluate", runs["vae"], "--k", 2, "--quality-images", 0, "--no-memory-check").exit_code == 0
    one_line(
        cli("train", *runs["common"], "--name", "risky"), "makes training too large", "--no-memory-check"
    )
    assert cli("train", *runs["common"], "--name", "risky", "--no-memory-check").exit_code == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--steps", 9223372036854775807], "--steps"),
        (["--val-fraction", 0], "--val-fraction must lie strictly between 0 and 1"),
        (["--val-fraction", 1], "--val-fraction must lie strictly between 0 and 1"),
    ],
)
def test_extreme_training_options_are_one_line(runs, args, message):
    one_line(cli("train", *runs["common"], "--name", "extreme", *args), message)


def test_fid_weights_are_refused_in_one_line_when_wrong_or_when_nothing_would_use_them(runs, tmp_path):
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    other.save_weights(tmp_path / "other.weights.h5")
    one_line(
        cli(
            "evaluate",
            runs["vae"],
            "--k",
            2,
            "--quality-images",
            0,
            "--fid-weights",
            tmp_path / "other.weights.h5",
        ),
        "--fid-weights",
        "quality_images 0",
    )
    one_line(
        cli(
            "evaluate",
            runs["vae"],
            "--k",
            2,
            "--quality-images",
            8,
            "--fid-weights",
            tmp_path / "other.weights.h5",
        ),
        "does not hold InceptionV3's weights",
    )


def test_compare_with_too_few_held_out_images_leaves_quality_out_and_says_so(tmp_path):
    pixels = (make_images() * 255).astype("u1")[..., 0]
    write_split(tmp_path, pixels, np.arange(32) % 4, compress=True, split="train")
    write_split(tmp_path, pixels[:2], np.arange(2), compress=True, split="t10k")
    common = [
        "--data-dir",
        tmp_path,
        "--epochs",
        1,
        "--arch",
        "dense",
        "--batch-size",
        8,
        "--output-dir",
        tmp_path / "runs",
    ]
    for name in ("a", "b"):
        assert cli("train", *common, "--name", name).exit_code == 0
    result = cli("compare", tmp_path / "runs" / "a", tmp_path / "runs" / "b", "--out", tmp_path / "compare")
    assert result.exit_code == 0, result.output
    assert (
        "Sample quality needs more than 4 held-out images, and a, b has fewer"
        in (tmp_path / "compare" / "index.md").read_text()
    )


def test_notes_say_what_the_run_has(runs):
    from keras_vae.trained import LoadedRun

    assert "fitted on 32 training images' codes" in LoadedRun.load(runs["vae"]).sampler("gmm").description
    shown = " ".join(cli("train-prior", "--help").stdout.split())
    assert "RUN/prior.keras" in shown and "RUN/flow.keras" in shown and "serve (?sampler=flow)" in shown


def test_a_tfds_split_gives_its_labels_in_order_and_samples_from_them(monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    from keras_vae.data import load_dataset

    monkeypatch.setattr("keras_vae.data.tfds.can_download", lambda: True)
    with tfds.testing.mock_data(num_examples=12):
        data = load_dataset("svhn_cropped")
        in_order, labels = data.take("val", 12)
        images, drawn = data.sample("val", 6, seed=1)
        every = data.val.all_labels()
    assert every.tolist() == labels.tolist()
    for image, label in zip(images, drawn):
        match = np.flatnonzero(np.all(np.isclose(in_order, image), axis=(1, 2, 3)))
        assert len(match) >= 1 and label in labels[match]
