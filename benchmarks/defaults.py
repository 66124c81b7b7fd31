"""The first command's recipe: candidate training recipes for `keras-vae train` on the bundled MNIST sample,
each timed as a whole command and measured with evaluate's sample quality (all in one classifier's feature
space), with the keras.io VAE's recipe on the same data and budget beside them -> docs/defaults.md.

    KERAS_BACKEND=tensorflow python benchmarks/defaults.py --out /tmp/defaults

Each candidate is `keras-vae train` in its own process on this machine's cores; the table gives its wall time,
the Fréchet distance, precision and recall of 1,000 samples against the 1,000 held-out images, and how the
samples spread over the classifier's classes, for the prior and for the gmm sampler. An AE and a VQ-VAE
trained with the default recipe follow; the VQ-VAE's prior is measured before and after `keras-vae
train-prior`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

KERAS_IO = [
    "--arch",
    "conv",
    "--batch-size",
    "128",
    "--learning-rate",
    "1e-3",
    "--lr-schedule",
    "constant",
    "--kl-warmup-steps",
    "0",
]
"""The keras.io VAE example's recipe: its convolutional VAE, Adam at 1e-3, batch 128, no schedule, no
warm-up."""
CANDIDATES = {
    "before: keras.io recipe, 10 epochs (the old default)": [*KERAS_IO, "--epochs", "10"],
    "keras.io recipe, same budget (13 epochs)": [*KERAS_IO, "--epochs", "13"],
    "conv, batch 32, 10 epochs (2,810 steps), constant 1e-3": [
        *KERAS_IO,
        "--batch-size",
        "32",
        "--epochs",
        "10",
    ],
    "conv, batch 32, 3,000 steps, cosine 2e-3, KL warm-up 3 epochs": [
        "--arch",
        "conv",
        "--batch-size",
        "32",
        "--steps",
        "3000",
        "--learning-rate",
        "2e-3",
        "--kl-warmup-steps",
        "846",
    ],
    "conv, batch 64, 2,000 steps, cosine 3e-3, KL warm-up 3 epochs": [
        "--arch",
        "conv",
        "--steps",
        "2000",
        "--kl-warmup-steps",
        "423",
    ],
    "dense, batch 32, 5,000 steps, cosine 2e-3": [
        "--batch-size",
        "32",
        "--steps",
        "5000",
        "--learning-rate",
        "2e-3",
        "--kl-warmup-steps",
        "0",
    ],
    "now: dense, batch 64, 4,000 steps, cosine 3e-3, KL warm-up (the default)": [],
}
FAMILIES = {"ae": ["--model", "ae"], "vq-vae": ["--model", "vq-vae"]}
"""The other families with the default recipe, for the samplers' table."""


def train(name: str, flags: list[str], out: Path) -> float:
    """Wall seconds of one `keras-vae train` on the bundled sample, as a user runs it."""
    started = time.perf_counter()
    command = [sys.executable, "-m", "keras_vae", "train", "--name", name, "--output-dir", str(out), *flags]
    subprocess.run(
        command, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONWARNINGS": "ignore"}
    )
    return time.perf_counter() - started


def measure(runs: dict[str, Path], images: int, prior_epochs: int) -> dict[str, dict]:
    """Sample quality of every run for both samplers, in the first run's classifier's features; a VQ-VAE's
    prior sampler before and after `keras-vae train-prior`."""
    from keras_vae.trained import LoadedRun
    from keras_vae.trained.generate import train_prior
    from keras_vae.trained.quality import run_feature_space, run_sample_quality

    first = LoadedRun.load(next(iter(runs.values())))
    space = run_feature_space(first.folder.classifier, first.dataset)
    results = {}
    for name, path in runs.items():
        run = LoadedRun.load(path)
        results[name] = {
            sampler: run_sample_quality(run, sampler, images, space=space) for sampler in ("prior", "gmm")
        }
        if run.model.discrete:
            started = time.perf_counter()
            _, nll = train_prior(path, prior_epochs, overwrite=True)
            print(
                f"{name}: train-prior {time.perf_counter() - started:.0f} s, held-out code NLL "
                f"{nll['val_nll']:.2f} nats",
                flush=True,
            )
            results[name]["learned prior"] = run_sample_quality(
                LoadedRun.load(path), "prior", images, space=space
            )
    return results


def table(times: dict[str, float], results: dict[str, dict]) -> list[str]:
    lines = [
        "| recipe | wall s | sampler | Fréchet distance | precision | recall | largest class share | "
        "classes covered |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, by_sampler in results.items():
        for sampler, q in by_sampler.items():
            lines.append(
                f"| {name} | {times[name]:.0f} | {q['sampler'].split(' (')[0]} | "
                f"{q['frechet_distance']:.1f} | {q['precision']:.3f} | "
                f"{q['recall']:.3f} | {q['largest_class_share']:.1%} | {q['classes_covered']} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/keras-vae-defaults"))
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--prior-epochs", type=int, default=30, help="train-prior's epochs for the VQ-VAE.")
    args = parser.parse_args()
    chosen = CANDIDATES | {f"{family}, the default recipe": flags for family, flags in FAMILIES.items()}
    times, runs = {}, {}
    for name, flags in chosen.items():
        runs[name] = args.out / slug(name)
        if not (runs[name] / "model.keras").exists():
            times[name] = train(runs[name].name, flags, args.out)
            (runs[name] / "wall_seconds").write_text(f"{times[name]:.1f}")
        times[name] = float((runs[name] / "wall_seconds").read_text())
        print(f"{name}: {times[name]:.0f} s", flush=True)
    import keras

    print(f"backend {keras.backend.backend()}, {os.cpu_count()} cores")
    print("\n".join(table(times, measure(runs, args.images, args.prior_epochs))))


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.split(":")[-1].strip().lower())[:60].strip("-")


if __name__ == "__main__":
    main()
