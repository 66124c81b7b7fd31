"""`keras-vae serve`: one local web page that explores the latent spaces of trained runs live (app.py), fed by
each run's model decoding on the server (runs.py); the page itself is plain HTML, JavaScript and CSS in
static/, served from the package, so it works offline."""

from keras_vae.serve.app import create_app
from keras_vae.serve.runs import ServedRun

__all__ = ["ServedRun", "create_app"]
