"""`keras-vae embed`: the latent means of a split's images (and their log-variances, for the variational
families; an AE's codes; a VQ-VAE's code indices), with labels, as a .npy record array or a .csv.
Deterministic: the encoder's means, never a draw of z."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from keras_vae.choices import EMBED_FORMATS, SPLITS
from keras_vae.errors import ConfigError
from keras_vae.files import write_atomic, write_text_atomic
from keras_vae.models.coding import conditioned, encode_means
from keras_vae.runs import claim_output
from keras_vae.trained.loaded import LoadedRun

BATCH = 256


def embed_run(
    path: str | Path, out: Path, split: str = "val", data_dir: Path | None = None, overwrite: bool = False
) -> tuple[Path, int]:
    """Write the codes of one split of the run's data (or of data_dir's images, shaped as the run's) to out;
    return out and how many images it holds."""
    if out.suffix not in EMBED_FORMATS:
        raise ConfigError(f"out must end in {' or '.join(EMBED_FORMATS)}, got {out}", "out")
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}, got {split!r}", "split")
    claim_output(out, overwrite)
    run = LoadedRun.load(path)
    model = run.model
    data = run.load_data(data_dir)
    codes, labels = [], []
    for images, batch_labels in data.pairs(split, BATCH):
        codes.append(encode(model, images, batch_labels))
        labels.append(batch_labels)
    codes, labels = np.concatenate(codes).astype("float32"), np.concatenate(labels)
    (write_npy if out.suffix == ".npy" else write_csv)(
        out, codes, labels, data.class_names, code_names(model)
    )
    return out, len(labels)


def code_names(model) -> tuple[str, ...]:
    """z_mean and z_log_var for the variational families, z for an AE, code (the indices) for a VQ-VAE."""
    if model.discrete:
        return ("code",)
    return ("z_mean", "z_log_var") if model.variational else ("z",)


def encode(model, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """A batch's codes: (images, code_names, latent_dim)."""
    if model.variational:
        return np.stack(
            model.encoder.predict(conditioned(model, images, labels), batch_size=BATCH, verbose=0)[:2], 1
        )
    return encode_means(model, images, labels, BATCH)[:, None]


def records(codes: np.ndarray, labels: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """One record per image: its label and its codes (code_names)."""
    dtype = [("label", "int64"), *((name, "float32", (codes.shape[2],)) for name in names)]
    table = np.empty(len(labels), dtype)
    table["label"] = labels
    for i, name in enumerate(names):
        table[name] = codes[:, i]
    return table


def write_npy(
    out: Path, codes: np.ndarray, labels: np.ndarray, class_names: list[str] | None, names: tuple[str, ...]
) -> None:
    write_atomic(out, lambda temporary: np.save(temporary, records(codes, labels, names)))


def write_csv(
    out: Path, codes: np.ndarray, labels: np.ndarray, class_names: list[str] | None, names: tuple[str, ...]
) -> None:
    """A row per image: label, class (its name, where the data names its classes), z_mean_0.., z_log_var_0..
    (z_0.. for an AE, code_0.. for a VQ-VAE)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["label", "class", *(f"{name}_{d}" for name in names for d in range(codes.shape[2]))])
    for label, code in zip(labels, codes):
        name = class_names[label] if class_names and label >= 0 else ""
        writer.writerow([int(label), as_text(name), *(f"{value:.7g}" for value in code.ravel())])
    write_text_atomic(out, buffer.getvalue())


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What makes a spreadsheet read a cell as a formula (OWASP's CSV injection list)."""


def as_text(cell: str) -> str:
    """A cell a spreadsheet shows as the text it is: one that would start a formula gets a leading
    apostrophe."""
    return f"'{cell}" if cell.startswith(FORMULA_STARTS) else cell
