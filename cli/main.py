"""The `keras-vae` command, assembled from its rooms: boundary.py (errors and the backend), options.py
(choices, limits, shared options), train.py, read.py (the commands that read a trained run) and serve.py.
Keras and its backends are imported inside commands, never at start-up, so `--help` is instant and `--backend`
can still choose the backend."""

from __future__ import annotations

import typer

from cli import read, serve, train
from cli.boundary import OneLineErrors

app = typer.Typer(
    cls=OneLineErrors,
    name="keras-vae",
    help="Train, explore, evaluate and export autoencoders and VAEs with Keras 3 (TensorFlow, JAX or "
    "PyTorch).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"keras-vae {version('keras-vae')}")
        raise typer.Exit()


def main(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Autoencoders and variational autoencoders for Keras 3."""


app.callback()(main)
app.command()(train.train)
for command in (read.explore, read.compare, read.evaluate, read.generate):
    app.command()(command)
app.command("train-prior")(read.train_prior)
for command in (read.animate, read.embed, read.export, serve.serve, read.info):
    app.command()(command)


if __name__ == "__main__":
    app()
