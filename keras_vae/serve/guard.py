"""What keeps other sites and careless clients out of `keras-vae serve`: an ASGI layer in front of the app
that answers only requests naming a host it serves (so DNS rebinding cannot reach it), refuses requests a page
from another origin sends, and takes a POST only as JSON of a bounded size. Each refusal is JSON, {"error":
"..."}."""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK = ("127.0.0.1", "localhost", "::1")
"""The names of this machine that every server answers to."""

MAX_BODY = 1 << 20
"""The largest request body, in bytes: 256 latent vectors of 512 numbers written out take about 1.3 MB
less."""


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")


MAX_PATH = 2048
"""The longest request path answered: the app's own are a few dozen characters."""


def host_name(value: str) -> str:
    """The name in a Host header or an origin's netloc, without its port: "[::1]:8000" is "::1"; "" for one
    that does not parse ("[::1" with no closing bracket)."""
    try:
        return (urlsplit(f"//{value}").hostname or "").lower()
    except ValueError:
        return ""


class Guard:
    """Refuses, before the app sees them, requests whose Host is not one of hosts (or does not parse), paths
    longer than MAX_PATH, requests from another origin, and POSTs that are not JSON or say they are larger
    than MAX_BODY."""

    def __init__(self, app: ASGIApp, hosts: Collection[str]):
        self.app = app
        self.hosts = {host.lower() for host in hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = self.refusal(scope) if scope["type"] == "http" else None
        if refusal is None:
            await self.app(scope, receive, send)
        else:
            status, message = refusal
            await JSONResponse({"error": message}, status_code=status)(scope, receive, send)

    def refusal(self, scope: Scope) -> tuple[int, str] | None:
        headers = Headers(scope=scope)
        host = host_name(headers.get("host", ""))
        if host not in self.hosts:
            return (
                403,
                f"this server answers requests for {', '.join(sorted(self.hosts))}, not "
                f"{host or 'no host'}: add it with --allow-host",
            )
        if len(scope["path"]) > MAX_PATH:
            return 414, f"the request path must be at most {MAX_PATH:,} characters"
        origin = headers.get("origin")
        if origin is not None and host_name(origin.partition("://")[2]) not in self.hosts:
            return 403, f"requests from pages of other sites are refused (Origin {origin})"
        if scope["method"] == "POST":
            if headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
                return 415, "the request body must be JSON, sent as Content-Type: application/json"
            length = headers.get("content-length", "0")
            if not length.isascii() or not length.isdigit() or int(length) > MAX_BODY:
                return 413, f"the request body must be at most {MAX_BODY:,} bytes"
        return None
