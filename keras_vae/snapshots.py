"""Per-epoch snapshots of the latent space, taken while training, for the pictures and GIFs made later: the
callback that writes them, and the readers of their files.

`snapshots/fixed.npz` holds, once, a fixed labelled subset of the validation images and a fixed
noise batch; `snapshots/epoch_NNNN.npz` holds, each epoch, the subset's latent codes (z_mean for a
VAE), the noise batch decoded, and reconstructions of the first few subset images.
"""

from __future__ import annotations

import re
from pathlib import Path

import keras
import numpy as np

from keras_vae.backends import alone, process_local
from keras_vae.files import MB, check_regular, write_atomic
from keras_vae.models.coding import PREDICT_BATCH, cycled, decode, encode_means
from keras_vae.runs import RunError
from keras_vae.samplers import CodeFrequencySampler

EPOCH_SNAPSHOTS = 100
"""The most epoch snapshots a run keeps; longer runs are thinned evenly (kept_epochs)."""
SNAPSHOT_BYTES = 1024 * MB
"""The largest snapshot file read back (the fixed subset of 2,000 images of 256 x 256 x 3 is 393 MB)."""
SUBSET = 2000
SAMPLES = 64
RECONSTRUCTIONS = 16


def batches(images: int, batch_size: int) -> set[int]:
    """The sizes of the batches that cut a number of images: full ones and the last."""
    return {size for size in (min(images, batch_size), images % batch_size) if size}


def kept_epochs(latest: int, limit: int = EPOCH_SNAPSHOTS) -> set[int]:
    """The epochs whose snapshots a run keeps once `latest` epochs are done: the first, the latest, and every
    stride-th, with the smallest power-of-two stride that keeps at most limit, so a GIF spans the whole
    run."""
    stride = 1
    while latest // stride + (stride > 1) + (latest % stride > 0) > limit:
        stride *= 2
    return {1, latest, *range(stride, latest + 1, stride)}


EPOCH_NAME = re.compile(r"epoch_(\d{4,})\.npz")
FIXED_ARRAYS = {"images": 4, "labels": 1, "noise": 2}
EPOCH_ARRAYS = {"latent": 2, "samples": 4, "reconstructions": 4}
"""The arrays of each snapshot file, with their number of dimensions."""


def epoch_of(path: Path) -> int:
    """The epoch a snapshot's name gives; a name keras-vae does not write is refused."""
    name = EPOCH_NAME.fullmatch(path.name)
    if name is None:
        raise RunError(
            f"{path} is not a snapshot keras-vae wrote (they are named epoch_NNNN.npz): move it out of "
            f"{path.parent}"
        )
    return int(name[1])


def to_uint8(images: np.ndarray) -> np.ndarray:
    return np.round(np.clip(images, 0, 1) * 255).astype("uint8")


def save_npz(path: Path, **arrays) -> None:
    write_atomic(path, lambda temporary: np.savez_compressed(temporary, **arrays))


class Snapshots(keras.callbacks.Callback):
    def __init__(self, folder: Path, images: np.ndarray, labels: np.ndarray, latent_dim: int, seed: int):
        super().__init__()
        self.folder = folder
        self.images, self.labels = images[:SUBSET], labels[:SUBSET]
        self.rng_seed = seed
        self.noise = np.random.default_rng(seed).standard_normal((SAMPLES, latent_dim)).astype("float32")
        if not (folder / "fixed.npz").exists():
            save_npz(
                folder / "fixed.npz", images=to_uint8(self.images), labels=labels[:SUBSET], noise=self.noise
            )

    def samples(self, model, latent: np.ndarray) -> np.ndarray:
        """The fixed noise decoded (a CVAE's under the classes in turn; a VampPrior VAE's made codes of its
        prior); a VQ-VAE's codes drawn from the subset's, with the run's seed each epoch."""
        if model.discrete:
            codes = CodeFrequencySampler().fit(latent).sample(SAMPLES, np.random.default_rng(self.rng_seed))
            return decode(model, codes)
        labels = cycled(model.classes, SAMPLES) if model.conditional else None
        return decode(model, model.prior_draw(self.noise), labels)

    @staticmethod
    def batch_sizes(images: int) -> set[int]:
        """Every batch size on_epoch_end feeds the model, from that many validation images."""
        subset = min(images, SUBSET)
        return batches(subset, PREDICT_BATCH) | {min(subset, RECONSTRUCTIONS), SAMPLES}

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        with alone():
            self.take(process_local(self.model), epoch + 1)

    def take(self, model, epoch: int) -> None:
        """Write the snapshot of an epoch (counted from 1), and keep only the kept_epochs."""
        latent = encode_means(model, self.images, self.labels)
        save_npz(
            self.folder / f"epoch_{epoch:04d}.npz",
            latent=latent.astype("float32"),
            samples=to_uint8(self.samples(model, latent)),
            reconstructions=to_uint8(decode(model, latent[:RECONSTRUCTIONS], self.labels[:RECONSTRUCTIONS])),
        )
        kept = kept_epochs(epoch)
        for path in self.folder.glob("epoch_*.npz"):
            if EPOCH_NAME.fullmatch(path.name) and epoch_of(path) not in kept:
                path.unlink()


def read_snapshot(path: Path, arrays: dict[str, int], remedy: str) -> dict[str, np.ndarray]:
    """The arrays of one snapshot file, each there with its number of dimensions, or one line naming the
    file."""
    check_regular(path, SNAPSHOT_BYTES, "snapshot")
    try:
        with np.load(path) as data:
            found = {key: data[key] for key in data.files}
    except (
        Exception
    ) as error:  # a truncated zip, bad compression, a pickle, not an .npz: NumPy raises many kinds
        raise RunError(f"{path} is damaged ({type(error).__name__}): {remedy}") from error
    for key, ndim in arrays.items():
        if key not in found or found[key].ndim != ndim or found[key].dtype.kind not in "uif":
            raise RunError(f"{path} lacks its {ndim}-D array {key!r} (holds {sorted(found)}): {remedy}")
    return found


def read_fixed(folder: Path) -> dict[str, np.ndarray]:
    """snapshots/fixed.npz: the fixed images, their labels and the noise batch, one of each per image."""
    path = folder / "fixed.npz"
    fixed = read_snapshot(path, FIXED_ARRAYS, "train the run again with --overwrite")
    if len(fixed["labels"]) != len(fixed["images"]):
        raise RunError(
            f"{path} holds {len(fixed['images'])} images but {len(fixed['labels'])} labels: train the run "
            "again with --overwrite"
        )
    return fixed


def read_epochs(folder: Path) -> list[dict[str, np.ndarray]]:
    """Every epoch's snapshot, in order, each with its 'epoch' number."""
    paths = sorted((epoch_of(path), path) for path in folder.glob("epoch_*"))
    remedy = "delete it, and the other epochs' snapshots are used"
    return [{"epoch": epoch, **read_snapshot(path, EPOCH_ARRAYS, remedy)} for epoch, path in paths]
