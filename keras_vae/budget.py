"""Training's and evaluate's memory, estimated from the options before anything is built, so a command that
cannot fit is refused in one line naming the option that makes it large, instead of swapping or dying half-way
(docs/reliability.md has each estimate beside measured peaks; benchmarks/memory.py measures them). A user who
knows better takes the risk with --no-memory-check."""

from __future__ import annotations

from keras_vae.data.arrays import memory_bytes
from keras_vae.errors import ConfigError

SHARE = 0.5
"""The most of this machine's memory one training may plan to take."""

FLOAT = 4
STATE = 12
"""Copies of each weight while training: the weight, its gradient, Adam's two moments and its temporaries, and
the copies saving a model makes (a CVAE of 314 M weights peaked at 15.3 GB on TensorFlow: 12 copies)."""

FEATURES = {"dense": 0, "conv": 16, "deep-conv": 40}
"""Activations per pixel of one image in the trunk, as measured peaks set them (benchmarks/memory.py, on
TensorFlow): conv 16 (its 32 channels at a quarter of the pixels and 64 at a sixteenth, and their gradients);
deep-conv 40, not the 96 its convolution, batch norm and activation at full size would hold each, which
refused a 128x128x3 batch of 256 at 14.2 GB that peaked at 7.6 GB."""

DECODED_PIXELS = 2048 * 28 * 28
"""Pixels evaluate decodes in one step: 2,048 MNIST images' worth, whole images' k samples at a time."""


def decodes_in_one_step(input_shape: tuple[int, int, int]) -> int:
    """How many latent samples evaluate decodes in one step (at least one image's k go together)."""
    return max(1, DECODED_PIXELS // (input_shape[0] * input_shape[1]))


HIDDEN = 400
"""Activations of each decoded sample before its pixels: the dense decoder's hidden layer."""


def training_memory(
    arch: str, input_shape: tuple[int, int, int], batch_size: int, k: int = 1, classes: int = 0
) -> dict[str, int]:
    """Bytes, by what drives them: 'weights' (with their training state) and 'batch' (one step's activations
    forward and back, the decoder's k times for an IWAE). A CVAE's labels are extra input channels."""
    height, width, channels = input_shape
    pixels = height * width
    inputs = pixels * (channels + classes)
    if arch == "dense":
        weights = (inputs + pixels * channels) * 400
    else:
        weights = pixels // 16 * 64 * (16 if arch == "conv" else 256) * 2
    per_image = inputs + pixels * FEATURES[arch] + k * (pixels * (channels + FEATURES[arch]) * 3 + HIDDEN)
    return {"weights": weights * STATE * FLOAT, "batch": 2 * batch_size * per_image * FLOAT}


def check_training_memory(
    arch: str,
    input_shape: tuple[int, int, int],
    batch_size: int,
    k: int = 1,
    classes: int = 0,
    available: int | None = None,
) -> None:
    """Raise ConfigError, naming the option to lower, when training would plan for more than SHARE of
    available (this machine's memory by default)."""
    available = memory_bytes() if available is None else available
    parts = training_memory(arch, input_shape, batch_size, k, classes)
    needed = sum(parts.values())
    if needed <= SHARE * available:
        return
    shape = f"{input_shape[0]}x{input_shape[1]}"
    if parts["weights"] < parts["batch"]:
        parameter = "k" if k > 1 else "batch_size"
        subject, what = (
            parameter,
            f"{k} samples of each of {batch_size} images" if k > 1 else f"{batch_size} images of {shape}",
        )
        remedy = "lower --k or --batch-size" if k > 1 else "lower --batch-size or --image-size"
    elif classes > input_shape[2]:
        parameter, subject, what = (
            None,
            f"the data's {classes:,} classes",
            f"their label channels in a {arch} encoder",
        )
        remedy = (
            "use --arch conv, or a --model that needs no labels"
            if arch == "dense"
            else "use a --model that needs no labels"
        )
    else:
        parameter, subject, what = (
            "image_size",
            "image_size",
            f"the weights of a {arch} model of {shape} images",
        )
        remedy = "a smaller --image-size" + (", or --arch conv" if arch == "dense" else "")
    raise too_large(subject, "training", what, needed, available, remedy, parameter)


def too_large(
    subject: str, command: str, what: str, needed: int, available: int, remedy: str, parameter: str | None
) -> ConfigError:
    """The one line for a command that would take more than SHARE of the machine's memory."""
    return ConfigError(
        f"{subject} makes {command} too large: {what} need about {needed / 2**30:,.1f} GiB, more than half "
        "of this "
        f"machine's {available / 2**30:,.1f} GiB: {remedy}, or give --no-memory-check to take the risk",
        parameter,
    )


def evaluate_memory(
    arch: str, input_shape: tuple[int, int, int], k: int, quality_images: int
) -> dict[str, int]:
    """Bytes evaluate takes at its peak, by what drives them: 'k' (the latent samples decoded in one step: one
    image's k, or decodes_in_one_step of several images' when k is smaller; the decoder's activations and
    their temporaries, twice over as measured) and 'quality_images' (that many held-out images and as many
    samples, each held twice as float32: as drawn and in the feature space's input)."""
    height, width, channels = input_shape
    pixels = height * width
    decoded = (
        max(k, decodes_in_one_step(input_shape)) * (pixels * (channels + FEATURES[arch]) + HIDDEN) * FLOAT * 2
    )
    return {"k": decoded, "quality_images": 2 * quality_images * pixels * channels * FLOAT * 2}


def check_evaluate_memory(
    arch: str, input_shape: tuple[int, int, int], k: int, quality_images: int, available: int | None = None
) -> None:
    """Raise ConfigError, naming --k or --quality-images, when evaluate would take more than SHARE of
    available."""
    available = memory_bytes() if available is None else available
    parts = evaluate_memory(arch, input_shape, k, quality_images)
    needed = sum(parts.values())
    if needed <= SHARE * available:
        return
    shape = f"{input_shape[0]}x{input_shape[1]}"
    if parts["k"] >= parts["quality_images"]:
        per_step = decodes_in_one_step(input_shape)
        what = (
            f"{k:,} samples of one {shape} image decoded at once"
            if k > per_step
            else f"{per_step:,} samples of {shape} images decoded at once"
        )
        remedy = "lower --k" if k > per_step else "evaluate on a machine with more memory"
        raise too_large("k", "evaluate", what, needed, available, remedy, "k")
    what = f"{quality_images:,} held-out {shape} images and as many samples"
    raise too_large(
        "quality_images", "evaluate", what, needed, available, "lower --quality-images", "quality_images"
    )
