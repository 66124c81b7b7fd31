"""The command line: instant help, no Keras at start-up."""

import subprocess
import sys

from typer.testing import CliRunner

from cli.main import app


def test_help_lists_the_tool():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "keras-vae" in result.output or "Usage" in result.output


def test_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("keras-vae ")


def test_help_imports_no_framework():
    code = "import sys; from cli.main import app; print(sorted({'keras', 'tensorflow', 'jax', 'torch'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"
