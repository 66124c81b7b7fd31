"""The ASGI app behind `keras-vae serve` (Starlette): the page and its static files from the package, and a JSON
API over the runs it was given, addressed by their place in that list, so no request names a path.

    GET  /                         the page
    GET  /static/NAME              app.js or style.css
    GET  /api/runs                 each run: name, model, latent size, classes, snapshot epochs
    GET  /api/runs/I/points        the fixed images on the plane with their labels (?epoch=N: as at that epoch)
    POST /api/runs/I/decode        {"points": [[x, y], ...]} or {"z": [[...], ...]}, optional "label": PNGs
    GET  /api/runs/I/images/J      a fixed image, its reconstruction and its code
    GET  /api/runs/I/samples       ?n=N (1 to 256) new images from ?sampler=prior|gmm (the run's own by default),
                                   and which sampler made them

Every error is JSON, {"error": "..."}, with status 400 (a bad request) or 404 (nothing there).
"""

from __future__ import annotations

import json
from importlib.resources import files

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from keras_vae.errors import ConfigError
from keras_vae.serve.runs import ServedRun

STATIC = {"app.js": "text/javascript", "style.css": "text/css"}


def asset(name: str) -> str:
    return (files("keras_vae.serve") / "static" / name).read_text(encoding="utf-8")


def create_app(runs: list[ServedRun]) -> Starlette:
    """The app serving these runs, and nothing else."""

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
        if epoch is not None and not epoch.isdigit():
            raise ConfigError(f"epoch must be a whole number, got {epoch!r}", "epoch")
        return JSONResponse(run_of(request).points(None if epoch is None else int(epoch)))

    async def decode(request: Request) -> Response:
        run = run_of(request)
        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ConfigError("the request body must be JSON: {\"points\": [[x, y], ...]} or {\"z\": [[...], ...]}") from None
        if not isinstance(body, dict) or ("points" in body) == ("z" in body):
            raise ConfigError("give either points or z, not both")
        label = body.get("label")
        if label is not None and (not isinstance(label, int) or isinstance(label, bool)):
            raise ConfigError(f"label must be a whole number, got {label!r}", "label")
        return JSONResponse({"images": run.decode(body.get("points"), body.get("z"), label)})

    async def samples(request: Request) -> Response:
        n = request.query_params.get("n", "10")
        if not n.isdigit():
            raise ConfigError(f"n must be a whole number, got {n!r}", "n")
        return JSONResponse(run_of(request).samples(int(n), request.query_params.get("sampler")))

    async def image(request: Request) -> Response:
        return JSONResponse(run_of(request).image(request.path_params["index"]))

    async def bad_request(request: Request, error: ConfigError) -> Response:
        return JSONResponse({"error": str(error)}, status_code=400)

    async def http_error(request: Request, error: HTTPException) -> Response:
        return JSONResponse({"error": error.detail}, status_code=error.status_code)

    routes = [
        Route("/", page),
        Route("/static/{name}", static),
        Route("/api/runs", list_runs),
        Route("/api/runs/{run:int}/points", points),
        Route("/api/runs/{run:int}/decode", decode, methods=["POST"]),
        Route("/api/runs/{run:int}/images/{index:int}", image),
        Route("/api/runs/{run:int}/samples", samples),
    ]
    return Starlette(routes=routes, exception_handlers={ConfigError: bad_request, HTTPException: http_error})
