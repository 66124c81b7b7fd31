"""The backend seam: `TrainStep` (train_step and test_step), `conv` and `conv_transpose` (with the bias, which
torch adds in the same pass as its crop), `processes()` (a context in which the processes of one run join:
torchrun's workers, JAX's hosts), `distribution()` (a context in which models build and train data-parallel),
`replicate(model)` (what a backend does to a model before data-parallel training), `alone()` and
`process_local(model)` (where and with what process 0 saves and predicts on its own) and `devices()` for the
active Keras backend.

Each module here supplies the same two steps in its backend's idiom, as Keras keeps
`keras/src/backend/<name>/trainer.py`. They only need the model to provide
`compute_terms(x, training)` (x the model's input; a dict of loss terms, "loss" among them) and
`update_trackers(terms, batch_size)` (the logs); both are written once, in keras.ops.
`kernels/` holds the CPU convolutions of JAX and torch apart from the steps, as Keras keeps `nn.py` apart from
`trainer.py`; a convolution takes them when its input is on the CPU, Keras's own ops elsewhere (`route`).
"""

import contextlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import keras

from keras_vae.choices import BACKENDS
from keras_vae.errors import KerasVAEError

T = TypeVar("T")

KERNEL_BACKENDS = ("jax", "torch")
"""The backends with CPU convolution kernels of their own (keras_vae.backends.kernels)."""

if keras.backend.backend() not in BACKENDS:
    raise ImportError(
        f"keras_vae supports the Keras backends {', '.join(BACKENDS)}; "
        f"KERAS_BACKEND is {keras.backend.backend()!r}."
    )


def add_bias(x, bias):
    return x if bias is None else keras.ops.add(x, bias)


def keras_conv(x, kernel, strides: tuple[int, int], bias=None):
    """A 'same' convolution by Keras's own op, for backends with no faster route."""
    return add_bias(keras.ops.conv(x, kernel, strides, padding="same"), bias)


def keras_conv_transpose(x, kernel, strides: tuple[int, int], bias=None):
    """A 'same' transposed convolution by Keras's own op, for backends with no faster route."""
    return add_bias(keras.ops.conv_transpose(x, kernel, strides, padding="same"), bias)


def check_even(batch_sizes: set[int], replicas: int) -> None:
    """Data-parallel steps split every batch evenly across the devices: refuse, before anything is written,
    batch sizes that would not split (TensorFlow's MirroredStrategy crashed on them mid-training; JAX refuses
    them)."""
    uneven = sorted(size for size in batch_sizes if size % replicas)
    if uneven:
        raise KerasVAEError(
            f"--distribute splits every batch over {replicas} devices, and batches of {uneven} images "
            "would not split "
            f"evenly: pick a --batch-size that is a multiple of {replicas} and leaves a last batch that is "
            "one too"
        )


@dataclass(frozen=True)
class Processes:
    """The processes that train one run together (torchrun's workers, or a JAX cluster's processes; TensorFlow
    trains in one process): this one's rank among count. Rank 0 alone writes the run folder; decide() hands
    what it decided (the options, the epoch to resume from, the resume state) to the others."""

    rank: int = 0
    count: int = 1

    @property
    def writes(self) -> bool:
        return self.rank == 0

    def share(self, value):
        """Rank 0's value, on every process."""
        return value if self.count == 1 else _module.broadcast(value)

    def decide(self, decision: Callable[[], T]) -> T:
        """decision() run on rank 0, and what came of it on every process: its value, or the error it raised
        for the user (KerasVAEError), raised again on each, so that no process waits on a decision that
        failed."""
        if self.count == 1:
            return decision()
        outcome = None
        if self.writes:
            try:
                outcome = (decision(), None)
            except KerasVAEError as error:
                outcome = (None, error)
        value, error = self.share(outcome)
        if error is not None:
            raise error
        return value


@dataclass(frozen=True)
class Parallel:
    """How a run trains data-parallel: over how many replicas each batch is split, and which part of each
    batch this process reads, as (index, count): (0, 1) where the backend splits the whole batch itself
    (JAX and TensorFlow), (rank, processes) under torch DistributedDataParallel, where each process reads
    its own."""

    replicas: int = 1
    shard: tuple[int, int] = (0, 1)


def same_padding(length: int, size: int, stride: int) -> tuple[int, int]:
    """Padding before and after for a 'same' convolution: TensorFlow's, any odd pixel after."""
    total = max((-(-length // stride) - 1) * stride + size - length, 0)
    return total // 2, total - total // 2


def inputs_of(data):
    """A batch's model input (images, or a CVAE's (images, one-hot labels); a label as in fit(x, y) is
    ignored: the target is the image) and its number of images. A sample_weight is refused: these models weigh
    every image alike."""
    x, _, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    if sample_weight is not None:
        raise ValueError(
            "keras_vae models take no sample_weight: every image counts once in the loss; drop sample_weight "
            "(or repeat the images that should count more)"
        )
    return x, keras.ops.shape(keras.tree.flatten(x)[0])[0]


ROUTES = ("cpu", "accelerator")
_forced_route: str | None = None


@contextlib.contextmanager
def forced_route(route: str):
    """Send every seam convolution traced inside by one route, whatever device its input is on: 'cpu' (the
    backend's kernels in keras_vae.backends.kernels) or 'accelerator' (Keras's own ops, the route on a GPU).
    For tests, which train through the accelerator route on a CPU."""
    global _forced_route
    if route not in ROUTES:
        raise ValueError(f"route must be one of {ROUTES}, got {route!r}")
    previous, _forced_route = _forced_route, route
    try:
        yield
    finally:
        _forced_route = previous


def route(x) -> str:
    """'cpu' for an input on the CPU where the backend has CPU kernels, else 'accelerator'."""
    if _kernels is None:
        return "accelerator"
    return _forced_route or ("cpu" if _kernels.on_cpu(x) else "accelerator")


def conv(x, kernel, strides: tuple[int, int], bias=None):
    """A 'same' convolution of NHWC x, by the route x's device takes."""
    return (_kernels.conv if route(x) == "cpu" else keras_conv)(x, kernel, strides, bias)


def conv_transpose(x, kernel, strides: tuple[int, int], bias=None):
    """A 'same' transposed convolution of NHWC x, by the route x's device takes."""
    return (_kernels.conv_transpose if route(x) == "cpu" else keras_conv_transpose)(x, kernel, strides, bias)


# Defined before the backend modules are imported, which use them.
_backend = keras.backend.backend()
_module = importlib.import_module(f"keras_vae.backends.{_backend}")
_kernels = (
    importlib.import_module(f"keras_vae.backends.kernels.{_backend}") if _backend in KERNEL_BACKENDS else None
)
TrainStep = _module.TrainStep
devices = _module.devices
distribution = _module.distribution
processes = _module.processes
alone = _module.alone
process_local = _module.process_local
replicate = _module.replicate
