"""`python -m keras_vae`: the keras-vae command."""

from cli.main import app

app(prog_name="keras-vae")
