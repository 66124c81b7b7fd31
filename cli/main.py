"""The `keras-vae` command. Keras and its backends are imported inside commands, never at start-up."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="keras-vae",
    help="Train, explore, evaluate and export autoencoders and VAEs with Keras 3 (TensorFlow, JAX or PyTorch).",
    no_args_is_help=True,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"keras-vae {version('keras-vae')}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Autoencoders and variational autoencoders for Keras 3."""


if __name__ == "__main__":
    app()
