"""The command line: instant help with no framework imported, the version, `info`."""

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
