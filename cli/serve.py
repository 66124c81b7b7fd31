"""`keras-vae serve`: the runs given, on a local web page, under the bounds of keras_vae.serve.server."""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path

import typer

from cli.boundary import fail, use_backend, user_errors
from cli.options import Backend, BackendOption


def serve(
    runs: list[Path] = typer.Argument(..., help="Run folders to show side by side, e.g. an AE and a VAE."),
    host: str = typer.Option("127.0.0.1", help="The address to listen on; the default is this machine only."),
    port: int = typer.Option(8000, min=1, max=65535),
    allow_host: list[str] = typer.Option(
        [],
        help="A name other machines reach this one by (repeat for more), answered besides the address and "
        "localhost.",
    ),
    backend: Backend = BackendOption,
) -> None:
    """Explore trained latent spaces live in the browser: hover to decode, drag to interpolate, one slider per
    latent dimension, the epochs replayed from snapshots. Serves only the runs given, only to requests naming
    this machine's address (never to pages of other sites); Ctrl-C stops it."""
    use_backend(backend)
    with user_errors():
        import socket

        import uvicorn

        from keras_vae.serve import ServedRun, create_app
        from keras_vae.serve.guard import LOOPBACK, is_loopback
        from keras_vae.serve.server import server_config

        served = [ServedRun.load(run) for run in runs]
        try:
            listening = socket.create_server(
                (host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET
            )
        except OSError as error:
            fail(
                f"cannot listen on {host} port {port} ({error.strerror}): choose another with --port, or "
                "stop what uses it"
            )
        if not is_loopback(host):
            typer.echo(
                f"keras-vae: warning: listening on {host}, beyond this machine: anyone who can reach it "
                "and names "
                f"{', '.join([host, *allow_host])} (--allow-host) sees the runs and decodes with their "
                "models",
                err=True,
            )
        app = create_app(served, hosts={host, *LOOPBACK, *allow_host})
        with suppress(
            KeyboardInterrupt
        ):  # Ctrl-C as soon as the URL is out, or the one uvicorn raises again once shut down
            typer.echo(
                f"keras-vae serve: http://{host}:{port}/ ({len(served)} run{'s' * (len(served) > 1)}; "
                "Ctrl-C stops it)"
            )
            uvicorn.Server(server_config(app)).run(sockets=[listening])
