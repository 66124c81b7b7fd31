"""The input pipeline: memory of `keras-vae train` against the size of an image folder, the pipeline's speed
against the conv VAE's training step, and MNIST read from files against MNIST held in memory.

    python benchmarks/data.py [--folder-sizes 20000 80000] [--work /tmp/keras-vae-data-bench] [--out FILE]

Generated data: 64x64 RGB PNGs (smooth colour fields with random phases, about 5 KB each) and the MNIST test
set (../shared/data/mnist-test) written as 10,000 PNGs. Every case runs in its own process; peak memory is
the maximum resident set of that process (os.wait4). TensorFlow backend; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist-test"
BATCH = 128


def write_rgb_folder(folder: Path, count: int) -> Path:
    """count 64x64 RGB PNGs in ten class subfolders, made once and kept for later runs."""
    import imageio.v2 as imageio
    import numpy as np

    if (folder / "done").exists():
        return folder
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:64, 0:64] / 64
    for i in range(count):
        phase, frequency = rng.uniform(0, 6.3, 3), rng.uniform(1, 6, 3)
        image = 127.5 + 127.5 * np.sin(
            frequency * (x[..., None] + y[..., None] * frequency[::-1]) * 3 + phase
        )
        path = folder / f"class{i % 10}" / f"{i:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        imageio.imwrite(path, image.astype("uint8"))
    (folder / "done").touch()
    return folder


def write_mnist_folder(folder: Path) -> Path:
    """The MNIST test set as one PNG a digit, in a subfolder per class."""
    import imageio.v2 as imageio

    sys.path.insert(0, str(ROOT))
    from keras_vae.data.arrays import read_idx_split

    if (folder / "done").exists():
        return folder
    images, labels = read_idx_split(MNIST, "t10k")
    for i, (image, label) in enumerate(zip(images, labels)):
        path = folder / str(label) / f"{i:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        imageio.imwrite(path, image[..., 0])
    (folder / "done").touch()
    return folder


def pipeline(source: str) -> dict:
    """Images/s of the training stream alone: one warm-up pass, then one timed pass."""
    from keras_vae.data import load_dataset

    started = time.perf_counter()
    data = load_dataset(data_dir=source)
    loaded = time.perf_counter() - started
    stream = data.stream("train", BATCH, seed=0)
    for _ in stream:
        pass
    started = time.perf_counter()
    images = sum(len(batch) for batch in stream)
    return {"images_per_s": images / (time.perf_counter() - started), "load_s": loaded}


def train(source: str, in_memory: bool) -> dict:
    """Images/s of the conv VAE's fit: from the stream, or (in_memory) from one float32 array, as before
    streaming."""
    import keras
    import numpy as np

    from keras_vae import build_model
    from keras_vae.allocator import keep_freed_memory
    from keras_vae.data import load_dataset

    keep_freed_memory()
    data = load_dataset(data_dir=source)
    x = data.take("train", data.train.count)[0] if in_memory else data.stream("train", BATCH, seed=0)
    keras.utils.set_random_seed(0)
    model = build_model("vae", "conv", 2, data.input_shape, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    seconds = []
    timer = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: seconds.append(-time.perf_counter()),
        on_epoch_end=lambda epoch, logs: seconds.__setitem__(-1, seconds[-1] + time.perf_counter()),
    )
    options = {"batch_size": BATCH, "shuffle": True} if in_memory else {"shuffle": False}
    model.fit(x, epochs=3, verbose=0, callbacks=[timer], **options)
    return {"images_per_s": data.train.count / float(np.median(seconds[1:]))}


def train_command(source: str, work: Path) -> dict:
    """Peak memory and time of one epoch of `keras-vae train` (dense VAE) on a folder."""
    command = [
        sys.executable,
        "-m",
        "cli.main",
        "train",
        "--data-dir",
        source,
        "--arch",
        "dense",
        "--epochs",
        "1",
        "--name",
        "bench",
        "--output-dir",
        str(work / "runs"),
        "--overwrite",
    ]
    started = time.perf_counter()
    child = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "KERAS_BACKEND": "tensorflow"},
    )
    _, status, usage = os.wait4(child.pid, 0)
    if status:
        raise SystemExit(f"train failed on {source}: {child.stderr.read().decode()[-2000:]}")
    return {"seconds": time.perf_counter() - started, "peak_mb": usage.ru_maxrss / 1024}


def child(kind: str, source: str) -> dict:
    """One case in a fresh process, so each has its own backend and an honest peak memory."""
    code = (
        f"import json, sys; sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, "
        f"{str(ROOT / 'benchmarks')!r}); import data as b; "
    )
    call = {
        "pipeline": f"b.pipeline({source!r})",
        "stream": f"b.train({source!r}, False)",
        "memory": f"b.train({source!r}, True)",
    }[kind]
    done = subprocess.run(
        [sys.executable, "-c", code + f"print(json.dumps({call}))"],
        capture_output=True,
        text=True,
        env={**os.environ, "KERAS_BACKEND": "tensorflow"},
    )
    if done.returncode:
        raise SystemExit(f"{kind} on {source} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder-sizes", type=int, nargs="+", default=[20_000, 80_000])
    parser.add_argument("--work", type=Path, default=Path("/tmp/keras-vae-data-bench"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    lines = [
        f"Command: `python benchmarks/data.py --folder-sizes {' '.join(map(str, args.folder_sizes))}`",
        f"Machine: {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), TensorFlow "
        f"backend, batch {BATCH}.",
        "",
        "| case | data | images/s | peak memory (MB) | seconds |",
        "| --- | --- | --- | --- | --- |",
    ]

    def row(case: str, data: str, result: dict) -> None:
        cells = [
            f"{result[key]:,.0f}" if key in result else "-" for key in ("images_per_s", "peak_mb", "seconds")
        ]
        lines.append(f"| {case} | {data} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)

    for count in args.folder_sizes:
        folder = str(write_rgb_folder(args.work / f"rgb64-{count}", count))
        row("keras-vae train, 1 epoch, dense", f"{count:,} 64x64 RGB PNGs", train_command(folder, args.work))
    folder = str(args.work / f"rgb64-{args.folder_sizes[0]}")
    row("input pipeline alone", "64x64 RGB PNGs", child("pipeline", folder))
    row("conv VAE fit from the stream", "64x64 RGB PNGs", child("stream", folder))
    if MNIST.is_dir():
        mnist_png = str(write_mnist_folder(args.work / "mnist-png"))
        row("input pipeline alone", "MNIST, 10,000 PNG files", child("pipeline", mnist_png))
        row("input pipeline alone", "MNIST IDX, in memory", child("pipeline", str(MNIST)))
        row("conv VAE fit from the stream", "MNIST, 10,000 PNG files", child("stream", mnist_png))
        row("conv VAE fit from the stream", "MNIST IDX, in memory", child("stream", str(MNIST)))
        row("conv VAE fit from a float32 array", "MNIST IDX, in memory", child("memory", str(MNIST)))
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
