"""The command line: instant help with no framework imported, the version, `info`."""

import contextlib
import subprocess
import sys

import keras
import pytest
from typer.testing import CliRunner

from cli.main import app


def test_help_lists_the_commands():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "train" in result.output and "info" in result.output


def test_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("keras-vae ")


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"], ["info", "--help"]])
def test_help_imports_no_framework(args):
    code = (
        "import sys; from cli.main import app\n"
        f"try: app({args!r})\n"
        "except SystemExit: pass\n"
        "print(sorted({'keras', 'tensorflow', 'jax', 'torch'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip().endswith("[]")


def test_info_names_backend_devices_and_versions():
    result = CliRunner().invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    assert f"backend: {keras.backend.backend()}" in result.output
    assert "devices: " in result.output and f"keras: {keras.__version__}" in result.output


def test_python_m_keras_vae_is_the_command_and_its_backend_option_still_chooses():
    import os

    other = next(b for b in ("tensorflow", "jax", "torch") if b != keras.backend.backend())
    command = [sys.executable, "-m", "keras_vae", "info", "--backend", other]
    done = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "KERAS_BACKEND": keras.backend.backend()}
    )
    assert done.returncode == 0 and f"backend: {other}" in done.stdout, done.stderr


def test_importing_keras_vae_registers_its_models_for_load_model(tmp_path):
    import keras_vae

    keras_vae.build_model("iwae", "dense", 2, (8, 8, 1)).save(tmp_path / "m.keras")
    code = "import keras_vae, keras; print(type(keras.saving.load_model('m.keras')).__name__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert done.stdout.strip() == "IWAE", done.stderr


def test_the_package_ships_its_type_hints():
    from importlib.resources import files

    assert files("keras_vae").joinpath("py.typed").is_file()


def test_every_fixed_choice_is_an_enum_of_the_librarys_values_and_each_family_set_matches_the_models():
    from cli import options
    from keras_vae import MODELS
    from keras_vae.architectures import ARCHITECTURES
    from keras_vae.choices import (
        ANIMATIONS,
        BACKENDS,
        CODEBOOK_UPDATES,
        CROPS,
        DTYPE_POLICIES,
        LR_SCHEDULES,
        RECONSTRUCTION_LOSSES,
        REDUCTIONS,
        SAMPLERS,
        SINGLE_PROCESS,
        SPLITS,
        SUMMED_ONLY,
        VARIATIONAL,
    )
    from keras_vae.trained.export import WRITERS

    for enum, values in [
        (options.Arch, ARCHITECTURES),
        (options.ReconLoss, RECONSTRUCTION_LOSSES),
        (options.Reduction, REDUCTIONS),
        (options.AnimationKind, ANIMATIONS),
        (options.ExportFormat, WRITERS),
        (options.Backend, BACKENDS),
        (options.DtypePolicy, DTYPE_POLICIES),
        (options.Crop, CROPS),
        (options.ModelKind, (*MODELS, "both")),
        (options.Split, SPLITS),
        (options.Sampler, SAMPLERS),
        (options.LrSchedule, LR_SCHEDULES),
        (options.CodebookUpdate, CODEBOOK_UPDATES),
    ]:
        assert [member.value for member in enum] == list(values)
    assert VARIATIONAL == tuple(name for name, family in MODELS.items() if family.variational)
    assert SUMMED_ONLY == tuple(name for name, family in MODELS.items() if "k" in family.build_options)
    assert SINGLE_PROCESS == tuple(name for name, family in MODELS.items() if family.discrete)
    shown = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"}).output
    assert (
        "vae|ae|iwae|betatc-vae|cvae|vq-vae|rae|vamp-vae|both" in shown
        and "dense|conv|deep-conv" in shown
        and "env var: KERAS_BACKEND" in shown
    )


def test_a_bad_keras_backend_in_the_environment_is_one_line():
    result = CliRunner().invoke(app, ["info"], env={"KERAS_BACKEND": "theano"})
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "'theano' is not one of 'tensorflow', 'jax', 'torch'" in result.stderr


def test_shell_completion_can_be_installed():
    shown = CliRunner().invoke(app, ["--help"]).output
    assert "--install-completion" in shown and "--show-completion" in shown


@pytest.mark.parametrize("error, replayed", [(None, False), (RuntimeError("driver"), True), ("own", False)])
def test_native_messages_are_shown_when_a_command_fails_unexpectedly(capfd, error, replayed):
    import os

    from cli.boundary import native_stderr_captured
    from keras_vae.errors import KerasVAEError

    raised = KerasVAEError("bad input") if error == "own" else error
    with pytest.raises(type(raised)) if raised else contextlib.nullcontext():
        with native_stderr_captured():
            os.write(2, b"F0000 cuda_driver.cc: CUDA_ERROR_NO_DEVICE\n")
            if raised:
                raise raised
    assert ("CUDA_ERROR_NO_DEVICE" in capfd.readouterr().err) == replayed
