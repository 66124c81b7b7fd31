"""The memory estimates of keras_vae.budget beside measured peaks -> docs/reliability.md.

    KERAS_BACKEND=tensorflow python benchmarks/memory.py --out /tmp/keras-vae-memory

Each case is a whole command under /usr/bin/time -v with --no-memory-check, on a .npz of random images this
script writes: `train` for one epoch of two batches and a few images, per architecture at a large image
size (a run whose loss turns NaN on the random pixels still reaches its peak first, and the table says how
it ended), and `evaluate --k` on a deep-conv run, with the estimate the check would have used beside each
peak.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hostile import measured  # noqa: E402

TRAIN_CASES = {
    "dense, 64x64x3, batch 256": ("dense", (64, 64, 3), 256),
    "conv, 128x128x3, batch 256": ("conv", (128, 128, 3), 256),
    "deep-conv, 128x128x3, batch 256": ("deep-conv", (128, 128, 3), 256),
}
EVALUATE_CASES = {"deep-conv, 64x64x3, k = 1,000": 1000, "deep-conv, 64x64x3, k = 3,000": 3000}


def write_images(path: Path, shape: tuple[int, int, int], count: int) -> Path:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (count, *shape), dtype="u1")
    np.savez(path, x_train=images, y_train=np.arange(count) % 10)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from keras_vae.budget import evaluate_memory, training_memory

    cli = [sys.executable, "-m", "cli.main"]
    rows = ["| command | estimate | measured peak | estimate / peak |", "| --- | ---: | ---: | ---: |"]
    _, idle, _, _ = measured([*cli, "info"])
    rows.append(
        "| `info` (the process with TensorFlow and Keras loaded, which no estimate counts) | | "
        f"{idle:,.0f} MB | |"
    )
    for case, (arch, shape, batch) in TRAIN_CASES.items():
        data = write_images(args.out / f"{arch}.npz", shape, 2 * batch + 60)
        train = [
            *cli,
            "train",
            "--data-dir",
            str(data),
            "--arch",
            arch,
            "--batch-size",
            str(batch),
            "--epochs",
            "1",
            "--learning-rate",
            "1e-4",
        ]
        code, peak, _, said = measured(
            [
                *train,
                "--name",
                arch,
                "--output-dir",
                str(args.out / "runs"),
                "--overwrite",
                "--no-memory-check",
            ]
        )
        estimate = sum(training_memory(arch, shape, batch).values()) / 2**20
        ended = "" if code == 0 else f" (exit {code}: {said.removeprefix('keras-vae: error: ')[:60]}...)"
        rows.append(
            f"| `train` {case}{ended} | {estimate:,.0f} MB | {peak:,.0f} MB | {estimate / peak:.2f} |"
        )
    data = write_images(args.out / "small.npz", (64, 64, 3), 600)
    train = [
        *cli,
        "train",
        "--data-dir",
        str(data),
        "--arch",
        "deep-conv",
        "--epochs",
        "1",
        "--learning-rate",
        "1e-4",
        "--name",
        "eval",
        "--output-dir",
        str(args.out / "runs"),
    ]
    measured([*train, "--overwrite"])
    for case, k in EVALUATE_CASES.items():
        command = [
            *cli,
            "evaluate",
            str(args.out / "runs" / "eval"),
            "--k",
            str(k),
            "--quality-images",
            "0",
            "--no-memory-check",
        ]
        code, peak, _, said = measured(command)
        assert code == 0, said
        estimate = sum(evaluate_memory("deep-conv", (64, 64, 3), k, 0).values()) / 2**20
        rows.append(f"| `evaluate` {case} | {estimate:,.0f} MB | {peak:,.0f} MB | {estimate / peak:.2f} |")
    print("\n".join(rows))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
