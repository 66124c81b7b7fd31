"""Peak memory of the hostile inputs that keras-vae now bounds -> the table in docs/reliability.md.

    KERAS_BACKEND=tensorflow python benchmarks/hostile.py --out /tmp/hostile

Each case is a whole `keras-vae` command in its own process under /usr/bin/time -v, on files this script
writes: a folder with a PNG whose header declares 16,000 x 16,000 pixels and a 3 GB sparse file named .png
beside 32 real images; options whose training would not fit (--image-size 4096, --model iwae --k 10000, a CVAE
over 1,000 one-image classes); and a 150 MB request body sent to `keras-vae serve`.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import imageio.v2 as imageio
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_safety import png_declaring  # noqa: E402


def measured(command: list[str]) -> tuple[int, float, float, str]:
    """Exit code, peak resident memory in MB, wall seconds and the last stderr line of one command."""
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1)) / 1024
    said = [line for line in done.stderr.splitlines() if line.startswith("keras-vae")]
    return done.returncode, peak, seconds, said[-1] if said else done.stdout.strip().splitlines()[-1]


def write_data(root: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    folder = root / "bombs"
    folder.mkdir(parents=True)
    for index in range(32):
        imageio.imwrite(folder / f"{index}.png", rng.integers(0, 256, (28, 28), dtype="u1"))
    (folder / "bomb.png").write_bytes(png_declaring(16_000, 16_000))
    with open(folder / "sparse.png", "wb") as sparse:
        sparse.truncate(3 << 30)
    classes = root / "classes"
    for index in range(1000):
        (classes / f"c{index:04d}").mkdir(parents=True)
        imageio.imwrite(classes / f"c{index:04d}" / "0.png", np.full((28, 28), index % 256, "u1"))
    return {"bombs": folder, "classes": classes}


def serve_large_body(run: Path) -> tuple[int, float, float, str]:
    """A 150 MB POST to a running server: its status, and the server's peak memory."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        ["/usr/bin/time", "-v", sys.executable, "-m", "cli.main", "serve", str(run), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    server.stdout.readline()
    body = b'{"points": [' + b"[0, 0], " * (150_000_000 // 8) + b"[0, 0]]}"
    started = time.perf_counter()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/runs/0/decode", body, {"content-type": "application/json"}
    )
    try:
        status = urllib.request.urlopen(request, timeout=120).status
    except urllib.error.HTTPError as error:
        status = error.code
    except (ConnectionError, urllib.error.URLError):
        status = "closed"
    seconds = time.perf_counter() - started
    os.killpg(server.pid, signal.SIGINT)  # time(1) passes no Ctrl-C on, so the whole group gets it
    _, stderr = server.communicate(timeout=60)
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr).group(1)) / 1024
    return 0, peak, seconds, f"HTTP {status}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    data = write_data(args.out)
    train = [
        sys.executable,
        "-m",
        "cli.main",
        "train",
        "--output-dir",
        str(args.out / "runs"),
        "--epochs",
        "1",
    ]
    mnist = ["--data-dir", str(data["bombs"])]
    cases = {
        "a folder with a PNG declaring 16,000 x 16,000 pixels and a 3 GB sparse .png": [
            *train,
            *mnist,
            "--name",
            "bombs",
        ],
        "`--image-size 4096 --arch dense`": [
            *train,
            *mnist,
            "--name",
            "big",
            "--image-size",
            "4096",
            "--arch",
            "dense",
        ],
        "`--model iwae --k 10000` (batch 64)": [
            *train,
            *mnist,
            "--name",
            "iwae",
            "--model",
            "iwae",
            "--k",
            "10000",
        ],
        "`--model cvae` on 1,000 one-image classes": [
            *train,
            "--data-dir",
            str(data["classes"]),
            "--name",
            "cvae",
            "--model",
            "cvae",
        ],
    }
    rows = ["| case | exit | peak memory | seconds | said |", "| --- | ---: | ---: | ---: | --- |"]
    for case, command in cases.items():
        code, peak, seconds, said = measured(command)
        rows.append(f"| {case} | {code} | {peak:,.0f} MB | {seconds:.1f} | {said} |")
    code, peak, seconds, said = serve_large_body(args.out / "runs" / "bombs")
    rows.append(
        f"| a 150 MB body POSTed to `serve` (server's peak) | {code} | {peak:,.0f} MB | {seconds:.1f} | "
        f"{said} |"
    )
    print("\n".join(rows))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
