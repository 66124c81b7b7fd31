"""`keras-vae serve`'s decode round trip for the conv VAE: a request for one decoded point, from the browser's
fetch to the image drawn (headless Chromium, when installed), and over plain HTTP (urllib), against the server
running in this process.

    python benchmarks/serve.py [--requests 200]

Trains a conv VAE for one epoch on ../shared/data/mnist-test into a temporary folder first.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "mnist-test"
PORT = 8765
DRAWN = """
const done = arguments[arguments.length - 1];
const count = arguments[0];
(async () => {
const times = [];
for (let i = 0; i < count; i++) {
  const started = performance.now();
  const response = await fetch("/api/runs/0/decode", {method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({points: [[Math.random() * 2 - 1, Math.random() * 2 - 1]]})});
  const image = new Image();
  const url = (await response.json()).images[0];
  await new Promise((resolve) => { image.onload = resolve; image.src = url; });
  document.body.append(image);
  times.push(performance.now() - started);
}
done(times);
})();
"""


def summary(milliseconds: list[float]) -> str:
    ordered = sorted(milliseconds)
    return (
        f"median {statistics.median(ordered):.1f} ms, 95th percentile "
        f"{ordered[int(0.95 * len(ordered))]:.1f} ms"
    )


def serve(run: Path):
    import uvicorn

    from keras_vae.serve import ServedRun, create_app

    config = uvicorn.Config(
        create_app([ServedRun.load(run)]), host="127.0.0.1", port=PORT, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise SystemExit(f"the server did not start: is port {PORT} taken?")
        time.sleep(0.05)
    return server


def over_http(requests: int) -> list[float]:
    times = []
    for i in range(requests):
        body = json.dumps({"points": [[i / requests * 2 - 1, 0.5]]}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{PORT}/api/runs/0/decode", body, {"Content-Type": "application/json"}
        )
        started = time.perf_counter()
        with urllib.request.urlopen(request) as response:
            json.loads(response.read())
        times.append((time.perf_counter() - started) * 1000)
    return times


def in_browser(requests: int) -> list[float] | None:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        return None
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(driver), options=options)
    try:
        browser.get(f"http://127.0.0.1:{PORT}/")
        browser.set_script_timeout(600)
        return browser.execute_async_script(DRAWN, requests)
    finally:
        browser.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as runs:
        train = [
            sys.executable,
            "-m",
            "cli.main",
            "train",
            "--data-dir",
            str(DATA),
            "--epochs",
            "1",
            "--output-dir",
            runs,
            "--name",
            "vae",
        ]
        subprocess.run(train, check=True, capture_output=True, cwd=ROOT)
        import keras

        server = serve(Path(runs) / "vae")
        over_http(20)  # the first decodes trace the model
        http = over_http(args.requests)
        drawn = in_browser(args.requests)
        server.should_exit = True
    print(
        f"backend {keras.backend.backend()}, conv VAE (2-D latent, 28x28), {args.requests} requests of one "
        "decoded point"
    )
    print(f"over HTTP (urllib, request to JSON with the PNG): {summary(http)}")
    print(
        f"in headless Chromium (fetch to image drawn): {summary(drawn) if drawn else 'no chromium installed'}"
    )


if __name__ == "__main__":
    main()
