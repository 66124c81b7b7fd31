"""One process against two on the same machine: `keras-vae train --distribute` of the conv AE on the MNIST
test set (10,000 images from ../shared/data/mnist-test, as IDX files), the same global batch and seed, on JAX
(a cluster of processes on 127.0.0.1, as Keras's environment describes it) and on torch (torchrun). Images/s
is history.csv's for the last epoch (the first one compiles) -> docs/benchmarks.md.

    python benchmarks/processes.py [--epochs 2] [--batch-size 128] [--backends jax torch]

On a machine with several GPUs the same commands run one process per GPU: for JAX, set
KERAS_DISTRIBUTION_NUM_PROCESSES to the GPU count and CUDA_VISIBLE_DEVICES to one GPU per process.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist-test"
KERAS_VAE = shutil.which("keras-vae", path=Path(sys.executable).parent)


def launchers(backend: str, processes: int, port: int) -> list[tuple[list[str], dict[str, str]]]:
    """The commands that start one run's processes, each with its environment."""
    if processes == 1:
        return [([KERAS_VAE], {})]
    if backend == "torch":
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node"]
        return [([*torchrun, str(processes), "--no-python", KERAS_VAE], {})]
    cluster = {
        "KERAS_DISTRIBUTION_JOB_ADDRESSES": f"127.0.0.1:{port}",
        "KERAS_DISTRIBUTION_NUM_PROCESSES": str(processes),
    }
    return [
        ([KERAS_VAE], {**cluster, "KERAS_DISTRIBUTION_PROCESS_ID": str(rank)}) for rank in range(processes)
    ]


def images_per_s(backend: str, processes: int, args: argparse.Namespace, out: Path) -> float:
    """The last epoch's images/s of one run of the conv AE, trained by that many processes."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    name = f"{backend}-{processes}"
    flags = [
        "train",
        "--model",
        "ae",
        "--arch",
        "conv",
        "--data-dir",
        str(DATA),
        "--epochs",
        str(args.epochs),
    ]
    flags += [
        "--batch-size",
        str(args.batch_size),
        "--output-dir",
        str(out),
        "--name",
        name,
        "--backend",
        backend,
    ]
    flags += ["--distribute"] if processes > 1 else []
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    started = [
        subprocess.Popen(
            [*command, *flags], env={**env, **extra}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        for command, extra in launchers(backend, processes, port)
    ]
    for process in started:
        _, error = process.communicate(timeout=1800)
        if process.returncode:
            raise SystemExit(error.decode()[-2000:])
    rows = list(csv.DictReader((out / name / "history.csv").open()))
    return float(rows[-1]["images_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--backends", nargs="+", default=["jax", "torch"])
    args = parser.parse_args()
    print(
        f"| backend | processes | images/s | scaling efficiency | ({os.cpu_count()} CPU cores, batch "
        f"{args.batch_size})"
    )
    print("| --- | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as out:
        for backend in args.backends:
            one = images_per_s(backend, 1, args, Path(out))
            two = images_per_s(backend, 2, args, Path(out))
            print(f"| {backend} | 1 | {one:,.0f} | - |")
            print(f"| {backend} | 2 | {two:,.0f} | {two / (2 * one):.0%} |", flush=True)


if __name__ == "__main__":
    main()
