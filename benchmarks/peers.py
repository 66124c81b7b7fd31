"""Sampling against the best peer: keras-vae's VAE, VampPrior VAE, RAE and AE, and pythae's VAE, VAMP and
RAE_L2 (benchmarks/peer_pythae.py, in an environment of its own that this script makes: pythae and its
PyTorch are never dependencies of keras-vae), trained on the same images (the MNIST sample bundled with
keras-vae, 9,000 after the hold-out) with the same architecture, latent size, batch, steps, learning rate
and seed; then n samples from each model's samplers, measured in one feature space (keras-vae's classifier
on this data) against n held-out images, beside the distance between two halves of the held-out images (the
floor). Writes the table and a strip of samples of each row into docs/models.md (its "Sampling against
pythae" section) and docs/images/peers/.

    python benchmarks/peers.py [--latent-dim 16] [--steps 4000] [--n 1000] [--peer-env benchmarks/.peer-env]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "keras_vae" / "sample" / "mnist"
PAGE = ROOT / "docs" / "models.md"
STRIPS = ROOT / "docs" / "images" / "peers"
BEGIN, END = "<!-- peers: benchmarks/peers.py writes this section -->", "<!-- /peers -->"
FAMILIES = {"vae": ["prior", "gmm", "flow"], "vamp-vae": ["prior", "gmm", "flow"], "rae": ["gmm", "flow"]}
FAMILIES["ae"] = ["gmm", "flow"]
PEER_SAMPLERS = {"vae": ["prior", "gmm"], "vamp": ["prior", "gmm"], "rae-l2": ["gmm"]}
STRIP = 12


def peer_python(env: Path) -> Path:
    """The Python of the peers' environment, made (pythae 0.1.2, PyTorch 2.13.0's CPU build) unless there."""
    python = env / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "torch==2.13.0"], check=True)
        subprocess.run([*pip, "pythae==0.1.2", "torch==2.13.0"], check=True)
    return python


def keras_vae(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    if done.returncode:
        raise SystemExit(f"keras-vae {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def write_strip(images, path: Path) -> None:
    """STRIP of the images, drawn at random: pythae's mixture sampler gives them grouped by component."""
    import imageio.v2 as imageio
    import numpy as np

    from keras_vae.plots import tile
    from keras_vae.snapshots import to_uint8

    chosen = np.random.default_rng(0).choice(len(images), STRIP, replace=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.imwrite(path, tile(to_uint8(images[chosen]), STRIP).squeeze())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--peer-env", type=Path, default=ROOT / "benchmarks" / ".peer-env")
    args = parser.parse_args()
    import keras
    import numpy as np

    from keras_vae.data import load_dataset
    from keras_vae.trained import LoadedRun
    from keras_vae.trained.quality import run_feature_space, sample_quality

    data = load_dataset(None, SAMPLE, 0.1, args.seed)
    epochs = math.ceil(args.steps / math.ceil(data.train.count / args.batch_size))
    real, labels = data.sample("val", args.n, args.seed)
    rows = []
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        space = run_feature_space(work / "classifier.keras", data)

        def measure(tool: str, model: str, sampler: str, fake: np.ndarray) -> None:
            quality = sample_quality(space, real, labels, fake)
            strip = f"{tool}-{model}-{sampler}.png"
            write_strip(fake, STRIPS / strip)
            rows.append((tool, model, sampler, quality, strip))
            print(tool, model, sampler, f"{quality['frechet_distance']:.1f}", flush=True)

        np.savez(work / "train.npz", images=data.take("train", data.train.count)[0])
        peer = peer_python(args.peer_env)
        subprocess.run(
            [
                str(peer),
                str(ROOT / "benchmarks" / "peer_pythae.py"),
                *("--data", str(work / "train.npz"), "--out", str(work / "pythae")),
                *("--epochs", str(epochs), "--latent-dim", str(args.latent_dim), "--n", str(args.n)),
                *("--batch-size", str(args.batch_size), "--seed", str(args.seed)),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        for model, samplers in PEER_SAMPLERS.items():
            for sampler in samplers:
                measure("pythae", model, sampler, np.load(work / "pythae" / f"{sampler}-{model}.npy"))
        for family, samplers in FAMILIES.items():
            run = work / "runs" / family
            keras_vae(
                "train",
                *("--model", family, "--latent-dim", str(args.latent_dim), "--steps", str(args.steps)),
                *("--batch-size", str(args.batch_size), "--seed", str(args.seed), "--data-dir", str(SAMPLE)),
                *("--output-dir", str(work / "runs"), "--name", family),
            )
            keras_vae("train-prior", str(run), "--seed", str(args.seed))
            loaded = LoadedRun.load(run)
            for sampler in samplers:
                measure("keras-vae", family, sampler, loaded.samples(args.n, args.seed, sampler=sampler))
    floor = rows[0][3]["frechet_distance_real_halves"]
    write_page(rows, floor, space.name, args, epochs, keras.__version__)


def write_page(
    rows: list, floor: float, space: str, args: argparse.Namespace, epochs: int, version: str
) -> None:
    """The section between BEGIN and END in PAGE, replaced (or added at its end)."""
    lines = [
        BEGIN,
        "## Sampling against pythae",
        "",
        f"`python benchmarks/peers.py --latent-dim {args.latent_dim} --steps {args.steps} --n {args.n}` on "
        f"{datetime.now(timezone.utc):%Y-%m-%d}, {platform.machine()}, keras {version}, pythae 0.1.2 "
        "(PyTorch 2.13.0, its own environment). Every model was trained on the 9,000 training images of the "
        f"bundled MNIST sample with the dense architecture (784-400-{args.latent_dim}), batch "
        f"{args.batch_size}, {epochs} epochs (at least {args.steps} steps), Adam from 3e-3 on a cosine "
        f"schedule, seed {args.seed}; pythae's RAE_L2 minimises squared error (its only loss), the others "
        "binary cross-entropy. "
        f"{args.n} samples of each sampler against {args.n} held-out images, in {space}. Fréchet distance: "
        f"lower is closer; two halves of the held-out images are {floor:.1f} apart (the floor for this many "
        "images).",
        "",
        "| tool | model | sampler | Fréchet distance | precision | recall | samples |",
        "| --- | --- | --- | ---: | ---: | ---: | --- |",
    ]
    for tool, model, sampler, quality, strip in rows:
        lines.append(
            f"| {tool} | {model} | {sampler} | {quality['frechet_distance']:.1f} "
            f"| {quality['precision']:.2f} | {quality['recall']:.2f} "
            f"| ![{tool} {model} {sampler}](images/peers/{strip}) |"
        )
    lines += ["", END]
    page = PAGE.read_text()
    if BEGIN in page:
        page = page[: page.index(BEGIN)] + "\n".join(lines) + page[page.index(END) + len(END) :]
    else:
        page = page.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n"
    PAGE.write_text(page)


if __name__ == "__main__":
    main()
