"""The first command's recipe: candidate training recipes for `keras-vae train` on the bundled MNIST sample, each
timed as a whole command and measured with evaluate's sample quality (all in one classifier's feature space), with
the keras.io VAE's recipe on the same data and budget beside them -> docs/defaults.md.

    KERAS_BACKEND=tensorflow python benchmarks/defaults.py --out /tmp/defaults

Each candidate is `keras-vae train` in its own process on this machine's cores; the table gives its wall time, the
Fréchet distance, precision and recall of 1,000 samples against the 1,000 held-out images, and how the samples
spread over the classifier's classes, for the prior N(0, I) and for the gmm sampler.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

CANDIDATES = {
    "today (10 epochs, batch 128, constant 1e-3)": ["--epochs", "10", "--lr-schedule", "constant"],
    "keras.io VAE recipe, same budget (13 epochs)": ["--epochs", "13", "--lr-schedule", "constant"],
    "batch 32, 3,000 steps, constant 1e-3": ["--batch-size", "32", "--steps", "3000", "--lr-schedule", "constant"],
    "batch 32, 3,000 steps, cosine 2e-3, KL warm-up 3": ["--batch-size", "32", "--steps", "3000", "--learning-rate", "2e-3", "--kl-warmup", "3"],
    "batch 64, 2,000 steps, cosine 3e-3, KL warm-up 3": ["--batch-size", "64", "--steps", "2000", "--learning-rate", "3e-3", "--kl-warmup", "3"],
    "dense, batch 32, 5,000 steps, cosine 2e-3": ["--arch", "dense", "--batch-size", "32", "--steps", "5000", "--learning-rate", "2e-3"],
    "dense, batch 64, 4,000 steps, cosine 3e-3, KL warm-up 5": ["--arch", "dense", "--batch-size", "64", "--steps", "4000", "--learning-rate", "3e-3", "--kl-warmup", "5"],
}


def train(name: str, flags: list[str], out: Path) -> float:
    """Wall seconds of one `keras-vae train` on the bundled sample, as a user runs it."""
    started = time.perf_counter()
    command = [sys.executable, "-m", "keras_vae", "train", "--name", name, "--output-dir", str(out), *flags]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    return time.perf_counter() - started


def measure(runs: dict[str, Path], images: int) -> dict[str, dict]:
    """Sample quality of every run for both samplers, in the first run's classifier's features."""
    from keras_vae.data import load_dataset
    from keras_vae.explore import RunData
    from keras_vae.quality import run_feature_space, run_sample_quality

    first = RunData.load(next(iter(runs.values())))
    config = first.run.read_options()
    source = load_dataset(config.dataset, config.data_dir, config.val_fraction, config.seed, config.image_options)
    space = run_feature_space(first.run.classifier, source)
    results = {}
    for name, path in runs.items():
        data = RunData.load(path)
        results[name] = {sampler: run_sample_quality(data, source, sampler, images, space=space) for sampler in ("prior", "gmm")}
    return results


def table(times: dict[str, float], results: dict[str, dict]) -> list[str]:
    lines = [
        "| recipe | wall s | sampler | Fréchet distance | precision | recall | largest class share | classes covered |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, by_sampler in results.items():
        for sampler, q in by_sampler.items():
            lines.append(
                f"| {name} | {times[name]:.0f} | {sampler} | {q['frechet_distance']:.1f} | {q['precision']:.3f} | "
                f"{q['recall']:.3f} | {q['largest_class_share']:.1%} | {q['classes_covered']} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/keras-vae-defaults"))
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--only", nargs="*", help="Candidates to run (substrings of their names); default: all.")
    args = parser.parse_args()
    chosen = {name: flags for name, flags in CANDIDATES.items() if not args.only or any(part in name for part in args.only)}
    times, runs = {}, {}
    for index, (name, flags) in enumerate(chosen.items()):
        runs[name] = args.out / f"candidate-{index}"
        if not (runs[name] / "model.keras").exists():
            times[name] = train(runs[name].name, flags, args.out)
            (runs[name] / "wall_seconds").write_text(f"{times[name]:.1f}")
        times[name] = float((runs[name] / "wall_seconds").read_text())
        print(f"{name}: {times[name]:.0f} s", flush=True)
    import keras

    print(f"backend {keras.backend.backend()}, {os.cpu_count()} cores")
    print("\n".join(table(times, measure(runs, args.images))))


if __name__ == "__main__":
    main()
