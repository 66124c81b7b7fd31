"""Quality of every model family on the MNIST test set: each trained on 9,000 of its images with the same
architecture, latent size and epochs, then measured by `keras-vae evaluate` on the 1,000 held out. The CVAE's
samples of each class are checked by a logistic regression (scikit-learn) trained on the 9,000 training
images.

    python benchmarks/models.py [--epochs 5] [--latent-dim 2] [--k 100] [--out docs/models.md]
    python benchmarks/models.py --latent-dim 16 --families vae vq-vae --no-pictures --out docs/models-z16.md

Needs ../shared/data/mnist-test (the IDX files of the MNIST test set). Runs go to a temporary folder; the
table, with the command and the machine, goes to --out; one figure of each family to docs/images/models/.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "mnist-test"
FAMILIES = {
    "ae": [],
    "vae": [],
    "iwae": ["--k", "5"],
    "betatc-vae": ["--beta", "6"],
    "cvae": [],
    "vq-vae": [],
}
COLUMNS = (
    "model",
    "options",
    "train s",
    "val_loss",
    "recon (mean)",
    "reconstruction",
    "kl",
    "neg_elbo",
    "iw_nll",
    "pixel_accuracy",
    "active_units",
    "perplexity",
)
SAMPLES_PER_CLASS = 100
PICTURES = {
    "ae": "latent",
    "vae": "latent_grid",
    "iwae": "samples",
    "betatc-vae": "latent_grid",
    "cvae": "samples",
    "vq-vae": "reconstructions",
}
"""The figure of each family that the README shows, copied to docs/images/models/FAMILY.png."""
PEERS = "<!-- peers:"
"""Where the section that benchmarks/peers.py writes into the same page begins."""


def keras_vae(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"keras-vae {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def measure(family: str, flags: list[str], runs: Path, args: argparse.Namespace) -> dict:
    common = [
        "--data-dir",
        str(DATA),
        "--epochs",
        str(args.epochs),
        "--latent-dim",
        str(args.latent_dim),
        "--output-dir",
        str(runs),
    ]
    started = time.perf_counter()
    keras_vae("train", *common, "--model", family, "--name", family, *flags)
    seconds = time.perf_counter() - started
    result = json.loads(keras_vae("evaluate", str(runs / family), "--k", str(args.k), "--json"))
    if args.pictures:
        keras_vae("explore", str(runs / family))
        pictures = ROOT / "docs" / "images" / "models"
        pictures.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(runs / family / "figures" / f"{PICTURES[family]}.png", pictures / f"{family}.png")
    last = list(csv.DictReader((runs / family / "history.csv").open()))[-1]
    return {
        "model": family,
        "options": " ".join(flags) or "-",
        "train s": round(seconds),
        "val_loss": float(last["val_loss"]),
        "recon (mean)": result.get("reconstruction_through_mean", result.get("reconstruction_loss")),
        "reconstruction": result.get("reconstruction"),
        "kl": result.get("kl"),
        "neg_elbo": result.get("neg_elbo"),
        "iw_nll": result.get("iw_nll"),
        "pixel_accuracy": result["pixel_accuracy"],
        "active_units": result.get("active_units"),
        "perplexity": result.get("perplexity"),
    }


def cvae_label_accuracy(runs: Path) -> list[float]:
    """For each class, the fraction of the CVAE's samples of it (keras-vae generate --label) that a logistic
    regression trained on the run's training images assigns to it."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from keras_vae.data import load_dataset

    data = load_dataset(None, DATA, 0.1, 0)
    images, labels = data.take("train", data.train.count)
    classifier = LogisticRegression(max_iter=500).fit(images.reshape(len(images), -1), labels)
    fractions = []
    for label in range(10):
        out = runs / f"cvae-{label}.npy"
        keras_vae(
            "generate",
            str(runs / "cvae"),
            "--n",
            str(SAMPLES_PER_CLASS),
            "--label",
            str(label),
            "--out",
            str(out),
        )
        samples = np.load(out)
        fractions.append(float(np.mean(classifier.predict(samples.reshape(len(samples), -1)) == label)))
    return fractions


def cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def cvae_lines(fractions: list[float]) -> list[str]:
    return [
        f"CVAE samples (`keras-vae generate --label L --n {SAMPLES_PER_CLASS}`) that a logistic regression "
        "trained on "
        f"the 9,000 training images assigns to their label: {sum(fractions) / len(fractions):.1%} over all "
        "classes "
        f"(worst class {min(fractions):.0%}).",
        "",
        "| label | " + " | ".join(str(label) for label in range(10)) + " |",
        "|" + " --- |" * 11,
        "| assigned to it | " + " | ".join(f"{fraction:.0%}" for fraction in fractions) + " |",
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--latent-dim", type=int, default=2)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--families", nargs="+", choices=list(FAMILIES), default=list(FAMILIES))
    parser.add_argument(
        "--pictures",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Copy one figure a family to docs/images/models/.",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "models.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as runs:
        rows = [measure(family, FAMILIES[family], Path(runs), args) for family in args.families]
        fractions = cvae_label_accuracy(Path(runs)) if "cvae" in args.families else None
    command = (
        f"python benchmarks/models.py --epochs {args.epochs} --latent-dim {args.latent_dim} --k {args.k}"
    )
    if args.families != list(FAMILIES):
        command += " --families " + " ".join(args.families)
    if not args.pictures:
        command += " --no-pictures"
    lines = [
        "# Model families on MNIST",
        "",
        f"`{command}` on {datetime.now(timezone.utc):%Y-%m-%d}, "
        f"{platform.processor() or platform.machine()}, "
        f"backend {keras_vae('info').splitlines()[0].split(': ')[1]}: every family trained with `--arch conv "
        f"--latent-dim {args.latent_dim} --epochs {args.epochs}` on 9,000 images of the MNIST test set, then "
        f"`keras-vae evaluate --k {args.k}` on the 1,000 held out (nats per image). `recon (mean)` is the "
        "BCE "
        "summed over pixels of the deterministic reconstruction (through z_mean; an AE's z; a VQ-VAE's "
        "codes), "
        "`reconstruction` the Monte Carlo term of the ELBO; an AE and a VQ-VAE have no likelihood.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + " --- |" * len(COLUMNS),
        *("| " + " | ".join(cell(row[column]) for column in COLUMNS) + " |" for row in rows),
        "",
        *(cvae_lines(fractions) if fractions else []),
    ]
    kept = args.out.read_text() if args.out.exists() else ""
    peers = kept[kept.index(PEERS) :] if PEERS in kept else ""  # what benchmarks/peers.py wrote stays
    args.out.write_text("\n".join(lines) + ("\n" + peers if peers else ""))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
