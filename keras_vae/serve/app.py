"""The ASGI app behind `keras-vae serve` (Starlette): the page and its static files from the package, and a
JSON API over the runs it was given, addressed by their place in that list, so no request names a path.

    GET  /                         the page
    GET  /static/NAME              app.js or style.css
    GET  /api/runs                 each run: name, model, latent size, classes, snapshot epochs
    GET  /api/runs/I/points        the fixed images on the plane with their labels (?epoch=N: at that epoch)
    POST /api/runs/I/decode        {"points": [[x, y], ...]} or {"z": [[...], ...]}, optional "label": PNGs
    GET  /api/runs/I/images/J      a fixed image, its reconstruction and its code
    GET  /api/runs/I/samples       ?n=N (1 to 256) new images from ?sampler=prior|gmm|flow (the run's own by
                                   default), and which sampler made them

Every error is JSON, {"error": "..."}, with status 400 (a bad request, or a client gone mid-body), 403
(another host or site: guard.py), 404 (nothing there), 408 (a body slower than body_seconds), 413, 414 or 415
(a body or path too large, or not JSON) or 500 (the server failed). The handlers that decode run in a thread
pool, one at a time per run, so a large request never stalls the page or the other runs; server.py bounds slow
headers and open connections.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Collection
from importlib.resources import files

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from keras_vae.errors import ConfigError
from keras_vae.serve.guard import LOOPBACK, MAX_BODY, Guard
from keras_vae.serve.runs import ServedRun

STATIC = {"app.js": "text/javascript", "style.css": "text/css"}


def asset(name: str) -> str:
    return (files("keras_vae.serve") / "static" / name).read_text(encoding="utf-8")


def whole_number(text: str, name: str) -> int:
    """A query parameter of ASCII digits as an int ("²" is a digit to str.isdigit, not here)."""
    if not re.fullmatch(r"[0-9]{1,9}", text):
        raise ConfigError(f"{name} must be a whole number, got {text!r}", name)
    return int(text)


BODY_SECONDS = 30.0
"""How long a request body may take to arrive, whole."""


async def json_body(request: Request, seconds: float = BODY_SECONDS):
    """The request's JSON, read up to MAX_BODY bytes (a chunked body names no length up front) within seconds;
    a client that leaves mid-body is answered 400 (to no one), not a server error."""
    body = bytearray()

    async def read() -> None:
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > MAX_BODY:
                raise HTTPException(413, f"the request body must be at most {MAX_BODY:,} bytes")

    try:
        await asyncio.wait_for(read(), seconds)
    except asyncio.TimeoutError:
        raise HTTPException(408, f"the request body must arrive within {seconds:g} s") from None
    except ClientDisconnect:
        raise HTTPException(400, "the client went away before its body arrived") from None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise ConfigError(
            'the request body must be JSON: {"points": [[x, y], ...]} or {"z": [[...], ...]}'
        ) from None


def create_app(
    runs: list[ServedRun], hosts: Collection[str] = LOOPBACK, body_seconds: float = BODY_SECONDS
) -> Starlette:
    """The app serving these runs, and nothing else, to requests that name one of hosts, each body within
    body_seconds."""

    def run_of(request: Request) -> ServedRun:
        index = request.path_params["run"]
        if not 0 <= index < len(runs):
            raise HTTPException(404, f"run {index} is not served: runs are 0 to {len(runs) - 1}")
        return runs[index]

    async def page(request: Request) -> Response:
        return HTMLResponse(asset("index.html"))

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            raise HTTPException(404, f"no static file {name!r}")
        return Response(asset(name), media_type=STATIC[name])

    async def list_runs(request: Request) -> Response:
        return JSONResponse({"runs": [run.describe() for run in runs]})

    async def points(request: Request) -> Response:
        epoch = request.query_params.get("epoch")
        return JSONResponse(
            await computed(request, "points", None if epoch is None else whole_number(epoch, "epoch"))
        )

    async def decode(request: Request) -> Response:
        body = await json_body(request, body_seconds)
        if not isinstance(body, dict) or (body.get("points") is None) == (body.get("z") is None):
            raise ConfigError("give either points or z, not both")
        label = body.get("label")
        if label is not None and (not isinstance(label, int) or isinstance(label, bool)):
            raise ConfigError(f"label must be a whole number, got {label!r}", "label")
        return JSONResponse(
            {"images": await computed(request, "decode", body.get("points"), body.get("z"), label)}
        )

    async def samples(request: Request) -> Response:
        n = whole_number(request.query_params.get("n", "10"), "n")
        return JSONResponse(await computed(request, "samples", n, request.query_params.get("sampler")))

    async def image(request: Request) -> Response:
        return JSONResponse(await computed(request, "image", request.path_params["index"]))

    async def computed(request: Request, method: str, *args):
        """What a run's method returns, called in the thread pool while the event loop serves other
        requests."""
        return await run_in_threadpool(run_of(request).locked, method, *args)

    async def bad_request(request: Request, error: ConfigError) -> Response:
        return JSONResponse({"error": str(error)}, status_code=400)

    async def http_error(request: Request, error: HTTPException) -> Response:
        return JSONResponse({"error": error.detail}, status_code=error.status_code)

    async def server_error(request: Request, error: Exception) -> Response:
        return JSONResponse({"error": f"the server failed: {type(error).__name__}: {error}"}, status_code=500)

    routes = [
        Route("/", page),
        Route("/static/{name}", static),
        Route("/api/runs", list_runs),
        Route("/api/runs/{run:int}/points", points),
        Route("/api/runs/{run:int}/decode", decode, methods=["POST"]),
        Route("/api/runs/{run:int}/images/{index:int}", image),
        Route("/api/runs/{run:int}/samples", samples),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(Guard, hosts=hosts)],
        exception_handlers={ConfigError: bad_request, HTTPException: http_error, Exception: server_error},
    )
