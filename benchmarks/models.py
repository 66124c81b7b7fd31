"""Quality of every model family on the MNIST test set: each trained on 9,000 of its images with the same
architecture, latent size and epochs, then measured by `keras-vae evaluate` on the 1,000 held out.

    python benchmarks/models.py [--epochs 5] [--latent-dim 2] [--k 100] [--out docs/models.md]

Needs ../shared/data/mnist-test (the IDX files of the MNIST test set). Runs go to a temporary folder; the
table, with the command and the machine, goes to --out.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "mnist-test"
FAMILIES = {"ae": [], "vae": [], "iwae": ["--k", "5"], "betatc-vae": ["--beta", "6"]}
COLUMNS = ("model", "options", "train s", "val_loss", "reconstruction", "kl", "neg_elbo", "iw_nll", "pixel_accuracy", "active_units")


def keras_vae(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"keras-vae {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def measure(family: str, flags: list[str], runs: Path, args: argparse.Namespace) -> dict:
    common = ["--data-dir", str(DATA), "--epochs", str(args.epochs), "--latent-dim", str(args.latent_dim), "--output-dir", str(runs)]
    started = time.perf_counter()
    keras_vae("train", *common, "--model", family, "--name", family, *flags)
    seconds = time.perf_counter() - started
    result = json.loads(keras_vae("evaluate", str(runs / family), "--k", str(args.k), "--json"))
    last = list(csv.DictReader((runs / family / "history.csv").open()))[-1]
    return {
        "model": family,
        "options": " ".join(flags) or "-",
        "train s": round(seconds),
        "val_loss": float(last["val_loss"]),
        "reconstruction": result.get("reconstruction", result.get("reconstruction_loss")),
        "kl": result.get("kl"),
        "neg_elbo": result.get("neg_elbo"),
        "iw_nll": result.get("iw_nll"),
        "pixel_accuracy": result["pixel_accuracy"],
        "active_units": result.get("active_units"),
    }


def cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--latent-dim", type=int, default=2)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "models.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as runs:
        rows = [measure(family, flags, Path(runs), args) for family, flags in FAMILIES.items()]
    command = f"python benchmarks/models.py --epochs {args.epochs} --latent-dim {args.latent_dim} --k {args.k}"
    lines = [
        "# Model families on MNIST",
        "",
        f"`{command}` on {datetime.now(timezone.utc):%Y-%m-%d}, {platform.processor() or platform.machine()}, "
        f"backend {keras_vae('info').splitlines()[0].split(': ')[1]}: every family trained with `--arch conv "
        f"--latent-dim {args.latent_dim} --epochs {args.epochs}` on 9,000 images of the MNIST test set, then "
        f"`keras-vae evaluate --k {args.k}` on the 1,000 held out (nats per image; an AE has no likelihood).",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + " --- |" * len(COLUMNS),
        *("| " + " | ".join(cell(row[column]) for column in COLUMNS) + " |" for row in rows),
        "",
    ]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
