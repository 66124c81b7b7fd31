"""One process against several on the same machine: `keras-vae train --distribute` of the conv AE on the MNIST
test set (10,000 images from ../shared/data/mnist-test, as IDX files), the same global batch and seed, on JAX
(a cluster of processes on 127.0.0.1, as Keras's environment describes it) and on torch (torchrun). Images/s
is history.csv's for the last epoch (the first one compiles) -> docs/benchmarks.md.

    python benchmarks/processes.py [--epochs 2] [--batch-size 128] [--backends jax torch] [--processes 2]
    python benchmarks/processes.py --processes 8 --one-gpu-each --batch-size 1024   # a machine of 8 GPUs

With --one-gpu-each, every process sees one GPU: JAX's through CUDA_VISIBLE_DEVICES=RANK, torchrun's
through LOCAL_RANK; the one-process baseline runs on GPU 0.
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


def launchers(
    backend: str, processes: int, port: int, one_gpu_each: bool
) -> list[tuple[list[str], dict[str, str]]]:
    """The commands that start one run's processes, each with its environment."""
    if processes == 1:
        return [([KERAS_VAE], {"CUDA_VISIBLE_DEVICES": "0"} if one_gpu_each else {})]
    if backend == "torch":
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node"]
        return [([*torchrun, str(processes), "--no-python", KERAS_VAE], {})]
    cluster = {
        "KERAS_DISTRIBUTION_JOB_ADDRESSES": f"127.0.0.1:{port}",
        "KERAS_DISTRIBUTION_NUM_PROCESSES": str(processes),
    }
    gpu = {"CUDA_VISIBLE_DEVICES": "{rank}"} if one_gpu_each else {}
    return [
        (
            [KERAS_VAE],
            {
                **cluster,
                "KERAS_DISTRIBUTION_PROCESS_ID": str(rank),
                **{key: value.format(rank=rank) for key, value in gpu.items()},
            },
        )
        for rank in range(processes)
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
        for command, extra in launchers(backend, processes, port, args.one_gpu_each)
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
    parser.add_argument("--processes", type=int, default=2, help="how many to set against one")
    parser.add_argument("--one-gpu-each", action="store_true", help="one GPU per process")
    args = parser.parse_args()
    print(
        f"| backend | processes | images/s | scaling efficiency | ({os.cpu_count()} CPU cores, batch "
        f"{args.batch_size})"
    )
    print("| --- | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as out:
        for backend in args.backends:
            one = images_per_s(backend, 1, args, Path(out))
            many = images_per_s(backend, args.processes, args, Path(out))
            print(f"| {backend} | 1 | {one:,.0f} | - |")
            print(
                f"| {backend} | {args.processes} | {many:,.0f} | {many / (args.processes * one):.0%} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
