"""Time of `keras-vae evaluate`'s metrics with k importance samples on the whole MNIST test set (10,000
images).

    python benchmarks/evaluate.py RUN [RUN ...] [--k 1000]

RUN is a run folder trained on ../shared/data/mnist-test (`keras-vae train --data-dir
../shared/data/mnist-test`). Each run is evaluated in a fresh process on the backend it names (KERAS_BACKEND).
Writes docs/benchmarks-evaluate.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "mnist-test"


def measure(run: Path, k: int) -> dict:
    sys.path.insert(0, str(ROOT))
    import keras

    from keras_vae.allocator import keep_freed_memory
    from keras_vae.config import TrainConfig
    from keras_vae.data import load_idx_split
    from keras_vae.runs import Run
    from keras_vae.trained.metrics import compute_likelihood

    keep_freed_memory()  # as `keras-vae evaluate` does
    config = TrainConfig.from_dict(Run(run).read_config()["options"])
    model = Run(run).load_model()
    x = load_idx_split(DATA)[0]
    started = time.perf_counter()
    metrics = compute_likelihood(model, x, k, config.recon_loss)
    seconds = time.perf_counter() - started
    return {
        "run": run.name,
        "arch": config.arch,
        "backend": keras.backend.backend(),
        "images": len(x),
        "k": k,
        "seconds": round(seconds, 1),
        "decodes_per_s": round(len(x) * k / seconds),
        "neg_elbo": round(metrics["neg_elbo"], 2),
        "iw_nll": round(metrics["iw_nll"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks-evaluate.md")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.runs[0], args.k)))
        return
    results = []
    for run in args.runs:
        command = [sys.executable, __file__, str(run.resolve()), "--k", str(args.k), "--child"]
        done = subprocess.run(
            command,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
            capture_output=True,
            text=True,
            check=True,
        )
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    lines = [
        "# Benchmark: evaluate",
        "",
        f"Command: `python benchmarks/evaluate.py {' '.join(sys.argv[1:])}`",
        f"Date: {datetime.now(timezone.utc):%Y-%m-%d}. Machine: {os.cpu_count()} CPU cores, no GPU.",
        "The -ELBO and the k-sample importance-weighted NLL bound on all 10,000 MNIST test images, as "
        "`keras-vae evaluate` computes them.",
        "Each run was trained by `keras-vae train --data-dir ../shared/data/mnist-test --arch ARCH` on "
        "9,000 of these images:",
        "the table times the computation; the numbers are not a held-out score.",
        "",
        "| run | arch | backend | images | k | time (s) | decodes/s | -ELBO | IW-NLL |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *(
            f"| {r['run']} | {r['arch']} | {r['backend']} | {r['images']:,} | {r['k']} | {r['seconds']} | "
            f"{r['decodes_per_s']:,} | {r['neg_elbo']} | {r['iw_nll']} |"
            for r in results
        ),
        "",
    ]
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
