"""`keras-vae export` of a model trained on this suite's backend, compared with that model."""

import importlib.util
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import make_images, to_numpy
from test_data import write_split
from typer.testing import CliRunner

from cli.main import app
from keras_vae.runs import Run
from keras_vae.trained.export import MARKER

onnxruntime_missing = (
    importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("tf2onnx") is None
)


def export(*args, env=None):
    """The real command in a child process: export runs on TensorFlow whatever this suite's backend is."""
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "export", *map(str, args)], capture_output=True, text=True, env=env
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A VAE and an AE trained for one epoch on this backend, and the inputs to compare on."""
    root = tmp_path_factory.mktemp("export")
    images = make_images()
    (root / "idx").mkdir()
    write_split(
        root / "idx", (images * 255).astype("u1")[..., 0], np.arange(32) % 4, compress=False, split="t10k"
    )
    args = [
        "train",
        "--data-dir",
        root / "idx",
        "--epochs",
        1,
        "--arch",
        "conv",
        "--batch-size",
        8,
        "--output-dir",
        root,
    ]
    assert CliRunner().invoke(app, [*map(str, args), "--model", "both", "--name", "m"]).exit_code == 0
    return root, images[:5]


def keras_outputs(run_dir, x):
    model = Run(run_dir).load_model()
    encoded = [to_numpy(t) for t in keras.tree.flatten(model.encoder(x))]
    return encoded, to_numpy(model(x)), to_numpy(model.decoder(encoded[0]))


@pytest.mark.parametrize("kind", ["vae", "ae"])
def test_saved_model_signatures_match_the_keras_model(trained, kind):
    tf = pytest.importorskip("tensorflow")
    root, x = trained
    run_dir = root / f"m-{kind}"
    done = export(run_dir)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "largest absolute difference" in done.stdout
    loaded = tf.saved_model.load(str(run_dir / "export" / "saved_model"))
    assert set(loaded.signatures) == {"encode", "decode", "reconstruct", "serving_default"}
    encoded, reconstructed, decoded = keras_outputs(run_dir, x)

    codes = loaded.signatures["encode"](images=tf.constant(x))
    names = ["z_mean", "z_log_var"] if kind == "vae" else ["z"]
    assert sorted(codes) == sorted(names)
    for name, expected in zip(names, encoded):
        np.testing.assert_allclose(codes[name].numpy(), expected, atol=1e-5)
    for signature in ("reconstruct", "serving_default"):
        np.testing.assert_allclose(
            loaded.signatures[signature](images=tf.constant(x))["images"].numpy(), reconstructed, atol=1e-5
        )
    np.testing.assert_allclose(
        loaded.signatures["decode"](z=tf.constant(encoded[0]))["images"].numpy(), decoded, atol=1e-5
    )
    for batch in (1, 3):
        assert loaded.signatures["reconstruct"](images=tf.constant(x[:batch]))["images"].shape == (
            batch,
            8,
            8,
            1,
        )
    assert loaded.signatures["encode"].structured_input_signature[1]["images"].shape.as_list() == [
        None,
        8,
        8,
        1,
    ]


@pytest.mark.skipif(onnxruntime_missing, reason="onnxruntime and tf2onnx (the onnx extra) are not installed")
def test_onnx_endpoints_match_the_keras_model(trained):
    import onnxruntime

    root, x = trained
    run_dir = root / "m-vae"
    done = export(run_dir, "--format", "onnx")
    assert done.returncode == 0, done.stderr[-2000:]
    folder = run_dir / "export" / "onnx"
    assert sorted(p.name for p in folder.iterdir()) == [
        "decode.onnx",
        "encode.onnx",
        MARKER,
        "reconstruct.onnx",
    ]
    encoded, reconstructed, decoded = keras_outputs(run_dir, x)

    def run(name, value):
        session = onnxruntime.InferenceSession(str(folder / f"{name}.onnx"))
        return session.run(None, {session.get_inputs()[0].name: value})

    for got, expected in zip(run("encode", x), encoded[:2], strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-5)
    (got_reconstructed,), (got_decoded,) = run("reconstruct", x), run("decode", encoded[0])
    np.testing.assert_allclose(got_reconstructed, reconstructed, atol=1e-5)
    np.testing.assert_allclose(got_decoded, decoded, atol=1e-5)


def test_keras_format_and_no_verify(trained):
    root, x = trained
    out = root / "copy.keras"
    done = export(root / "m-vae", "--format", "keras", "--out", out, "--no-verify")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "largest" not in done.stdout
    np.testing.assert_allclose(
        to_numpy(keras.saving.load_model(out)(x)), keras_outputs(root / "m-vae", x)[1], atol=1e-6
    )


def test_existing_target_is_kept_without_overwrite(trained):
    root, _ = trained
    out = root / "twice"
    assert export(root / "m-ae", "--out", out).returncode == 0
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    again = export(root / "m-ae", "--out", out)
    assert again.returncode == 2 and "--overwrite" in again.stderr and again.stderr.count("\n") == 1
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert export(root / "m-ae", "--out", out, "--overwrite").returncode == 0


@pytest.mark.parametrize("fmt, out", [("keras", "copy.keras"), ("onnx", "onnx-folder")])
def test_an_interrupted_overwrite_keeps_the_old_export(trained, monkeypatch, fmt, out):
    """The writer dies half-way through the new export: the old one stays whole and no temporary is left."""
    from keras_vae.trained import export as exporting

    root, _ = trained
    out = root / "interrupted" / out

    def finished(model, path):
        (path.mkdir(), (path / "encode.onnx").write_bytes(b"old")) if fmt == "onnx" else path.write_bytes(
            b"old"
        )

    def dies(model, path):
        (path.mkdir(), (path / "encode.onnx").write_bytes(b"half")) if fmt == "onnx" else path.write_bytes(
            b"half"
        )
        raise KeyboardInterrupt

    monkeypatch.setitem(exporting.WRITERS, fmt, finished)
    exporting.export_run(root / "m-vae", fmt, out, check=False)
    before = sorted((p.relative_to(out.parent), p.read_bytes()) for p in out.parent.rglob("*") if p.is_file())
    monkeypatch.setitem(exporting.WRITERS, fmt, dies)
    with pytest.raises(KeyboardInterrupt):
        exporting.export_run(root / "m-vae", fmt, out, overwrite=True, check=False)
    assert (
        sorted((p.relative_to(out.parent), p.read_bytes()) for p in out.parent.rglob("*") if p.is_file())
        == before
    )


def test_bad_input_is_one_line(trained, tmp_path):
    root, _ = trained
    missing = export(tmp_path / "no-run")
    assert (
        missing.returncode == 2 and "not a run folder" in missing.stderr and missing.stderr.count("\n") == 1
    )
    (tmp_path / "broken").mkdir()
    shutil.copy(root / "m-vae" / "config.json", tmp_path / "broken")
    (tmp_path / "broken" / "model.keras").write_bytes(b"PK\x03\x04 not a model")
    corrupt = export(tmp_path / "broken")
    assert corrupt.returncode == 2 and "cannot load" in corrupt.stderr and corrupt.stderr.count("\n") == 1
    bad_format = export(root / "m-vae", "--format", "pickle")
    assert bad_format.returncode == 2 and "Invalid value for '--format'" in bad_format.stderr


def test_without_tensorflow_export_says_so(trained):
    code = (
        "import sys\n"
        "sys.modules['tensorflow'] = None\n"
        "from cli.main import app\n"
        f"app(['export', {str(trained[0] / 'm-vae')!r}])"
    )
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 2 and "needs TensorFlow" in done.stderr and done.stderr.count("\n") == 1
