"""Does a short run's VAE keep its posterior? Each architecture trained by `keras-vae train` with the defaults
on the bundled MNIST sample for 2 epochs, 5 epochs and the default 4,000 steps, and its held-out posterior
measured: the KL per image, the active units and whether train and evaluate call it collapsed ->
docs/defaults.md.

    KERAS_BACKEND=torch python benchmarks/collapse.py --out /tmp/keras-vae-collapse
    KERAS_BACKEND=jax python benchmarks/collapse.py --arch conv --epochs 2 --out /tmp/keras-vae-collapse-jax

Each run is its own `keras-vae train` process; the posterior is read on the 1,000 held-out images.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ARCHS = ("dense", "conv", "deep-conv")
EPOCHS = ("2", "5", "default")


def train(name: str, arch: str, epochs: str, out: Path) -> float:
    """Wall seconds of one `keras-vae train`, as a user runs it; a run already in out is measured, not
    trained."""
    seconds = out / name / "wall_seconds"
    if not seconds.exists():
        started = time.perf_counter()
        flags = ["--arch", arch, *(["--epochs", epochs] if epochs != "default" else [])]
        command = [
            sys.executable,
            "-m",
            "keras_vae",
            "train",
            "--name",
            name,
            "--output-dir",
            str(out),
            "--overwrite",
            *flags,
        ]
        subprocess.run(
            command, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONWARNINGS": "ignore"}
        )
        seconds.write_text(f"{time.perf_counter() - started:.1f}")
    return float(seconds.read_text())


def posterior(path: Path) -> dict:
    """The kept model's held-out KL per image, active units and collapse verdict (metrics.collapse_note)."""
    import numpy as np

    from keras_vae.trained import LoadedRun
    from keras_vae.trained.metrics import active_units, collapse_note, kl_per_dimension

    run = LoadedRun.load(path)
    images, labels = run.dataset.sample("val", run.dataset.val.count)
    z_mean, z_log_var, _ = (
        np.asarray(a, "float64") for a in run.model.encoder.predict(images, batch_size=256, verbose=0)
    )
    kl = kl_per_dimension(z_mean, z_log_var).mean(0)
    return {
        "kl": float(kl.sum()),
        "active": active_units(z_mean),
        "collapsed": collapse_note(kl, active_units(z_mean)) is not None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/keras-vae-collapse"))
    parser.add_argument("--arch", choices=ARCHS, action="append")
    parser.add_argument("--epochs", choices=EPOCHS, action="append")
    args = parser.parse_args()
    import keras

    backend = keras.backend.backend()
    print(f"backend {backend}, {os.cpu_count()} cores")
    print("| backend | arch | epochs | wall s | held-out KL (nats) | active units | collapsed |")
    print("| --- | --- | --- | ---: | ---: | ---: | --- |")
    for arch in args.arch or ARCHS:
        for epochs in args.epochs or EPOCHS:
            name = f"{arch}-{epochs}"
            seconds = train(name, arch, epochs, args.out)
            found = posterior(args.out / name)
            verdict = "yes" if found["collapsed"] else "no"
            print(
                f"| {backend} | {arch} | {epochs} | {seconds:.0f} | {found['kl']:.2f} | {found['active']} "
                f"of 2 | {verdict} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
