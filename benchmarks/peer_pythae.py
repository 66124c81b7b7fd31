"""pythae's side of benchmarks/peers.py, run in its own environment (pythae 0.1.2 and PyTorch; never a
dependency of keras-vae): its VAE, VAMP (the VampPrior VAE) and RAE_L2 trained on the images of an .npz with
keras-vae's dense architecture (784-400-latent, latent-400-784 and a sigmoid), the same batch, steps,
learning rate and cosine schedule, then n samples from each of their samplers, written as SAMPLER-MODEL.npy
(N, H, W, 1) in [0, 1].

    python benchmarks/peer_pythae.py --data train.npz --out DIR [--epochs 29] [--latent-dim 16] [--n 1000]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
from pythae.models import RAE_L2, VAE, VAMP, RAE_L2_Config, VAEConfig, VAMPConfig
from pythae.models.base.base_utils import ModelOutput
from pythae.models.nn import BaseDecoder, BaseEncoder
from pythae.pipelines import TrainingPipeline
from pythae.samplers import (
    GaussianMixtureSampler,
    GaussianMixtureSamplerConfig,
    NormalSampler,
    VAMPSampler,
)
from pythae.trainers import BaseTrainerConfig, CoupledOptimizerTrainerConfig

HIDDEN = 400
MIXTURE = 10
PSEUDO_INPUTS = 500


class Encoder(BaseEncoder):
    """keras-vae's dense encoder: flatten, 400 ReLU units, then the code (and its log-variance)."""

    def __init__(self, pixels: int, latent_dim: int, variational: bool):
        super().__init__()
        self.trunk = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(pixels, HIDDEN), torch.nn.ReLU())
        self.mean = torch.nn.Linear(HIDDEN, latent_dim)
        self.log_var = torch.nn.Linear(HIDDEN, latent_dim) if variational else None

    def forward(self, x):
        features = self.trunk(x)
        if self.log_var is None:
            return ModelOutput(embedding=self.mean(features))
        return ModelOutput(embedding=self.mean(features), log_covariance=self.log_var(features))


class Decoder(BaseDecoder):
    """keras-vae's dense decoder: 400 ReLU units, then every pixel through a sigmoid."""

    def __init__(self, shape: tuple[int, ...], latent_dim: int):
        super().__init__()
        self.shape = shape
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(latent_dim, HIDDEN),
            torch.nn.ReLU(),
            torch.nn.Linear(HIDDEN, math.prod(shape)),
            torch.nn.Sigmoid(),
        )

    def forward(self, z):
        return ModelOutput(reconstruction=self.layers(z).reshape(-1, *self.shape))


def trained(name: str, images: torch.Tensor, args: argparse.Namespace, out: Path):
    shape = tuple(images.shape[1:])
    common = {"input_dim": shape, "latent_dim": args.latent_dim}
    configs = {
        "vae": (VAE, VAEConfig(**common, reconstruction_loss="bce"), True),
        "vamp": (
            VAMP,
            VAMPConfig(**common, reconstruction_loss="bce", number_components=PSEUDO_INPUTS),
            True,
        ),
        "rae-l2": (RAE_L2, RAE_L2_Config(**common), False),
    }
    family, config, variational = configs[name]
    model = family(
        config,
        encoder=Encoder(math.prod(shape), args.latent_dim, variational),
        decoder=Decoder(shape, args.latent_dim),
    )
    schedule = {"scheduler_cls": "CosineAnnealingLR", "scheduler_params": {"T_max": args.epochs}}
    run = {
        "output_dir": str(out / name),
        "per_device_train_batch_size": args.batch_size,
        "num_epochs": args.epochs,
        "seed": args.seed,
        "no_cuda": True,
    }
    if name == "rae-l2":
        training = CoupledOptimizerTrainerConfig(
            **run,
            encoder_learning_rate=args.learning_rate,
            decoder_learning_rate=args.learning_rate,
            **{f"{part}_{key}": value for part in ("encoder", "decoder") for key, value in schedule.items()},
        )
    else:
        training = BaseTrainerConfig(**run, learning_rate=args.learning_rate, **schedule)
    TrainingPipeline(model=model, training_config=training)(train_data=images)
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=29)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    images = torch.from_numpy(np.load(args.data)["images"]).permute(0, 3, 1, 2).contiguous()
    for name in ("vae", "vamp", "rae-l2"):
        model = trained(name, images, args, args.out)
        mixture = GaussianMixtureSampler(model, GaussianMixtureSamplerConfig(n_components=MIXTURE))
        mixture.fit(images)
        samplers = {"gmm": mixture}
        if name == "vae":
            samplers["prior"] = NormalSampler(model)
        if name == "vamp":
            samplers["prior"] = VAMPSampler(model)
        for sampler_name, sampler in samplers.items():
            torch.manual_seed(args.seed)
            drawn = sampler.sample(num_samples=args.n).detach().cpu().permute(0, 2, 3, 1).numpy()
            np.save(args.out / f"{sampler_name}-{name}.npy", drawn.astype("float32"))
            print(f"{name} {sampler_name}: {len(drawn)} samples", flush=True)


if __name__ == "__main__":
    main()
