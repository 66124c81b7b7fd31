"""Training throughput of keras-vae on each backend and architecture, against two baselines of the `conv`
architecture: the keras.io VAE example's way (TensorFlow, GradientTape) and a plain PyTorch loop.

    python benchmarks/throughput.py [--epochs 4] [--repeats 2] [--batch-sizes 128] [--images 10000]
        [--archs dense conv deep-conv] [--dtype-policies float32 mixed_bfloat16 mixed_float16]
        [--steps-per-execution 1 8]

Each measurement runs in its own process (a fresh backend, an honest peak memory), every case once per
round, rounds repeated; a case's images/s is its best round, since a shared machine only ever slows a
run down, and beside it each round's ratio to plain PyTorch in that round shows the spread. Data: the
MNIST test set in ../shared/data/mnist-test (10,000 images; --images tiles it, e.g. to 60,000 for a GPU).
Without TensorFlow the keras.io baseline is left out; on a GPU the PyTorch baseline runs there. Each batch
size, dtype policy and steps-per-execution is a case of keras-vae's (torch runs one step per execution only);
the baselines run at each batch size in float32. Writes docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "mnist-test"
BACKENDS = ("tensorflow", "jax", "torch")


def load_images(count: int):
    """The MNIST test set, tiled or cut to count images."""
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from keras_vae.data import load_idx_split

    images = load_idx_split(DATA)[0]
    return np.resize(images, (count, *images.shape[1:]))


def keras_vae_epochs(
    arch: str, epochs: int, batch_size: int, count: int, policy: str = "float32", steps: int = 1
) -> list[float]:
    """keras-vae's model trained by fit(), in a process whose allocator keeps freed memory, as `keras-vae
    train`'s."""
    import keras

    from keras_vae import build_model
    from keras_vae.allocator import keep_freed_memory
    from keras_vae.training import dtype_policy

    keep_freed_memory()

    x = load_images(count)
    keras.utils.set_random_seed(0)
    with dtype_policy(policy):
        model = build_model("vae", arch=arch, latent_dim=2, input_shape=x.shape[1:])
        model.compile(optimizer=keras.optimizers.Adam(1e-3), steps_per_execution=steps)
    seconds = []
    timer = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: seconds.append(-time.perf_counter()),
        on_epoch_end=lambda epoch, logs: seconds.__setitem__(-1, seconds[-1] + time.perf_counter()),
    )
    model.fit(x, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0, callbacks=[timer])
    return seconds


def keras_io_epochs(epochs: int, batch_size: int, count: int) -> list[float]:
    """The keras.io VAE example (Variational AutoEncoder, fchollet) as written there: TensorFlow,
    GradientTape."""
    import keras
    import tensorflow as tf
    from keras import layers, ops

    class Sampling(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.seed_generator = keras.random.SeedGenerator(1337)

        def call(self, inputs):
            z_mean, z_log_var = inputs
            epsilon = keras.random.normal(shape=ops.shape(z_mean), seed=self.seed_generator)
            return z_mean + ops.exp(0.5 * z_log_var) * epsilon

    inputs = keras.Input(shape=(28, 28, 1))
    h = layers.Conv2D(32, 3, activation="relu", strides=2, padding="same")(inputs)
    h = layers.Conv2D(64, 3, activation="relu", strides=2, padding="same")(h)
    h = layers.Dense(16, activation="relu")(layers.Flatten()(h))
    z_mean, z_log_var = layers.Dense(2)(h), layers.Dense(2)(h)
    encoder = keras.Model(inputs, [z_mean, z_log_var, Sampling()([z_mean, z_log_var])])
    latent = keras.Input(shape=(2,))
    h = layers.Reshape((7, 7, 64))(layers.Dense(7 * 7 * 64, activation="relu")(latent))
    h = layers.Conv2DTranspose(64, 3, activation="relu", strides=2, padding="same")(h)
    h = layers.Conv2DTranspose(32, 3, activation="relu", strides=2, padding="same")(h)
    decoder = keras.Model(latent, layers.Conv2DTranspose(1, 3, activation="sigmoid", padding="same")(h))

    class VAE(keras.Model):
        def __init__(self, encoder, decoder, **kwargs):
            super().__init__(**kwargs)
            self.encoder, self.decoder = encoder, decoder
            self.total_loss_tracker = keras.metrics.Mean(name="total_loss")

        @property
        def metrics(self):
            return [self.total_loss_tracker]

        def train_step(self, data):
            with tf.GradientTape() as tape:
                z_mean, z_log_var, z = self.encoder(data)
                reconstruction = self.decoder(z)
                reconstruction_loss = ops.mean(
                    ops.sum(keras.losses.binary_crossentropy(data, reconstruction), axis=(1, 2))
                )
                kl_loss = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
                total_loss = reconstruction_loss + ops.mean(ops.sum(kl_loss, axis=1))
            grads = tape.gradient(total_loss, self.trainable_weights)
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
            self.total_loss_tracker.update_state(total_loss)
            return {"loss": self.total_loss_tracker.result()}

    x = load_images(count)
    keras.utils.set_random_seed(0)
    vae = VAE(encoder, decoder)
    vae.compile(optimizer=keras.optimizers.Adam())
    seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        vae.fit(x, epochs=1, batch_size=batch_size, verbose=0)
        seconds.append(time.perf_counter() - started)
    return seconds


def plain_torch_epochs(epochs: int, batch_size: int, count: int) -> list[float]:
    """The same conv VAE as a plain PyTorch module and loop."""
    import torch
    from torch import nn

    class ConvVAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Sequential(
                nn.Conv2d(1, 32, 3, stride=2, padding=1),
                nn.ReLU(),
                nn.Conv2d(32, 64, 3, stride=2, padding=1),
                nn.ReLU(),
                nn.Flatten(),
                nn.Linear(7 * 7 * 64, 16),
                nn.ReLU(),
            )
            self.mean, self.log_var = nn.Linear(16, 2), nn.Linear(16, 2)
            self.decoder = nn.Sequential(
                nn.Linear(2, 7 * 7 * 64),
                nn.ReLU(),
                nn.Unflatten(1, (64, 7, 7)),
                nn.ConvTranspose2d(64, 64, 3, stride=2, padding=1, output_padding=1),
                nn.ReLU(),
                nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1),
                nn.ReLU(),
                nn.ConvTranspose2d(32, 1, 3, padding=1),
                nn.Sigmoid(),
            )

        def forward(self, x):
            h = self.encoder(x)
            mean, log_var = self.mean(h), self.log_var(h)
            z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
            return self.decoder(z), mean, log_var

    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    x = torch.from_numpy(load_images(count)).permute(0, 3, 1, 2).contiguous().to(device)
    model = ConvVAE().to(device)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        for batch in x[torch.randperm(len(x), device=device)].split(batch_size):
            reconstruction, mean, log_var = model(batch)
            reconstruction_loss = nn.functional.binary_cross_entropy(
                reconstruction, batch, reduction="sum"
            ) / len(batch)
            kl = (-0.5 * (1 + log_var - mean.square() - log_var.exp())).sum(1).mean()
            optimizer.zero_grad()
            (reconstruction_loss + kl).backward()
            optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - started)
    return seconds


def measure(case: dict, epochs: int, count: int) -> dict:
    """Run in the child process: epoch times, then throughput over the steady epochs and peak memory."""
    batch_size = case["batch"]
    if case["kind"] == "keras-vae":
        seconds = keras_vae_epochs(case["arch"], epochs, batch_size, count, case["policy"], case["steps"])
    elif case["kind"] == "keras.io":
        seconds = keras_io_epochs(epochs, batch_size, count)
    else:
        seconds = plain_torch_epochs(epochs, batch_size, count)
    steady = sorted(seconds[1:])[len(seconds[1:]) // 2]
    return {
        **case,
        "first_epoch_s": round(seconds[0], 2),
        "images_per_s": round(count / steady),
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def run_child(case: dict, epochs: int, count: int) -> dict:
    env = {**os.environ, "KERAS_BACKEND": case["backend"], "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [
        sys.executable,
        __file__,
        "--child",
        json.dumps(case),
        "--epochs",
        str(epochs),
        "--images",
        str(count),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(json.dumps(result), flush=True)
    return result


def versions() -> str:
    from importlib import metadata

    found = []
    for package in ("keras", "tensorflow", "jax", "torch"):
        try:
            found.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def gpu_name() -> str | None:
    if not shutil.which("nvidia-smi"):
        return None
    done = subprocess.run(
        ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True
    )
    return ", ".join(done.stdout.split("\n")[:-1]) or None


def by_kind(rows: list[dict], kind: str, batch: int) -> dict | None:
    return next((row for row in rows if row["kind"] == kind and row["batch"] == batch), None)


def best_of(rounds: list[list[dict]]) -> list[dict]:
    """Each case's best round, with every round's images/s over plain PyTorch's at its batch size in that
    round."""
    results = [max(measured, key=lambda r: r["images_per_s"]) for measured in zip(*rounds)]
    for index, result in enumerate(results):
        result["round_ratios"] = [
            measured[index]["images_per_s"]
            / by_kind(measured, "plain PyTorch", result["batch"])["images_per_s"]
            for measured in rounds
        ]
    return results


def ratio(images_per_s: int, baseline: dict | None) -> str:
    return f"{images_per_s / baseline['images_per_s']:.2f}x" if baseline else "-"


def report(results: list[dict], command: str, epochs: int, repeats: int, count: int) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Command: `{command}`",
        f"Date: {datetime.now(timezone.utc):%Y-%m-%d}. Machine: {os.cpu_count()} CPU cores ({cpu_name()}), "
        f"{gpu_name() or 'no GPU'}. {versions()}.",
        f"Data: the MNIST test set tiled to {count:,} images; VAE with a 2-D latent; {epochs} epochs; each "
        "row in a fresh process.",
        f"Images/s is {count:,} over the median of epochs 2 onwards (the first compiles), the best of "
        f"{repeats} rounds that run every case in turn;",
        "first epoch and peak memory (the process's maximum resident set) are from that round.",
        "",
        "| implementation | backend | arch | batch | dtype policy | steps per execution | images/s | first "
        "epoch (s) "
        "| peak memory (MB) | vs plain PyTorch | vs keras.io TF | vs plain PyTorch, each round |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        torch_baseline, keras_io = (
            by_kind(results, "plain PyTorch", r["batch"]),
            by_kind(results, "keras.io", r["batch"]),
        )
        each_round = ", ".join(f"{round_ratio:.2f}x" for round_ratio in r["round_ratios"])
        against = (ratio(r["images_per_s"], torch_baseline), ratio(r["images_per_s"], keras_io), each_round)
        ratios = " | ".join(against) if r["arch"] == "conv" else "- | - | -"
        lines.append(
            f"| {r['kind']} | {r['backend']} | {r['arch']} | {r['batch']} | {r['policy']} | {r['steps']} | "
            f"{r['images_per_s']:,} "
            f"| {r['first_epoch_s']} | {r['peak_mb']:,} | {ratios} |"
        )
    lines += [
        "",
        "Ratios are against the two `conv` baselines measured in the same run, so only `conv` rows",
        "have them; the last column is each round's images/s over plain PyTorch's in that round,",
        "the spread this machine's load leaves.",
        "",
    ]
    return "\n".join(lines)


def cases(args) -> list[dict]:
    """The baselines at every batch size, then keras-vae at every combination the torch trainer can run."""
    baselines = [("plain PyTorch", "torch")] + (
        [("keras.io", "tensorflow")] if importlib.util.find_spec("tensorflow") else []
    )
    fixed = {"arch": "conv", "policy": "float32", "steps": 1}
    found = [
        {"kind": kind, "backend": backend, "batch": batch, **fixed}
        for batch in args.batch_sizes
        for kind, backend in baselines
    ]
    for batch, policy, steps, backend, arch in itertools.product(
        args.batch_sizes, args.dtype_policies, args.steps_per_execution, args.backends, args.archs
    ):
        if steps == 1 or backend != "torch":
            found.append(
                {
                    "kind": "keras-vae",
                    "backend": backend,
                    "arch": arch,
                    "batch": batch,
                    "policy": policy,
                    "steps": steps,
                }
            )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--images", type=int, default=10_000, help="tile the 10,000 test images to this many")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128])
    parser.add_argument(
        "--dtype-policies",
        nargs="+",
        default=["float32"],
        choices=["float32", "mixed_bfloat16", "mixed_float16"],
    )
    parser.add_argument("--steps-per-execution", type=int, nargs="+", default=[1])
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS))
    parser.add_argument("--archs", nargs="+", default=["dense", "conv", "deep-conv"])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(json.loads(args.child), args.epochs, args.images)))
        return
    if not DATA.is_dir():
        sys.exit(f"benchmarks need the MNIST test set in {DATA}")
    rounds = [
        [run_child(case, args.epochs, args.images) for case in cases(args)] for _ in range(args.repeats)
    ]
    results = best_of(rounds)
    command = "python benchmarks/throughput.py " + " ".join(sys.argv[1:])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report(results, command.strip(), args.epochs, args.repeats, args.images))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
