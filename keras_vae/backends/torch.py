"""Training step for the PyTorch backend: backward() on the loss the optimizer scaled (a LossScaleOptimizer
under mixed_float16), then the optimizer, as Keras's own torch trainer does.

Data-parallel training is torch's own: one process per device under torchrun, joined by torch.distributed
(NCCL on GPUs, gloo on CPUs), each reading its part of every batch; DistributedDataParallel averages the
gradients during backward(), as in Keras's multi-GPU example for torch. The logged terms are averaged across
the processes, so every process logs the whole batch's.
"""

import contextlib
import os
import weakref

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from keras_vae.backends import Parallel, Processes, check_even, inputs_of
from keras_vae.errors import KerasVAEError

_replicated: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
"""Each model training data-parallel, and the DistributedDataParallel that computes its loss terms."""


class TrainStep:
    def train_step(self, data):
        x, batch_size = inputs_of(data)
        self.zero_grad()
        replicated = _replicated.get(self)
        terms = replicated(x) if replicated else self.compute_terms(x, training=True)
        self.optimizer.scale_loss(terms["loss"]).backward()
        variables = self.trainable_variables
        with torch.no_grad():
            self.optimizer.apply([v.value.grad for v in variables], variables)
        return self.update_trackers(*across_processes(terms, batch_size))

    def test_step(self, data):
        x, batch_size = inputs_of(data)
        return self.update_trackers(*across_processes(self.compute_terms(x, training=False), batch_size))


class LossTerms(torch.nn.Module):
    """A model's training loss terms as a torch module's forward, which DistributedDataParallel wraps."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x) -> dict:
        return self.model.compute_terms(x, training=True)


def across_processes(terms: dict, batch_size: int) -> tuple[dict, int]:
    """The terms of this process's part of a batch averaged with the other processes' (the parts are of one
    size), and the whole batch's size; in one process, as they are."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return terms, batch_size
    values = torch.stack([value.detach().float() for value in terms.values()])
    dist.all_reduce(values)
    world = dist.get_world_size()
    return dict(zip(terms, values / world)), batch_size * world


@contextlib.contextmanager
def processes():
    """Join the processes torchrun started (WORLD_SIZE, RANK and the rendezvous in the environment): NCCL with
    one GPU each (LOCAL_RANK) where there are GPUs, gloo on CPUs."""
    if "WORLD_SIZE" not in os.environ:
        raise KerasVAEError(
            "--distribute on torch trains one process per device: start it with torchrun, e.g. "
            "torchrun --nproc-per-node 2 --no-python keras-vae train --distribute (see README)"
        )
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        yield Processes(dist.get_rank(), dist.get_world_size())
    finally:
        dist.destroy_process_group()


def broadcast(value):
    shared = [value]
    dist.broadcast_object_list(shared, src=0)
    return shared[0]


@contextlib.contextmanager
def distribution(batch_sizes: set[int]):
    """Every process reads its part of each batch: the batches must split evenly across them."""
    if not dist.is_initialized():
        raise KerasVAEError(
            "--distribute on torch needs its processes joined first (keras_vae.backends.processes)"
        )
    world = dist.get_world_size()
    check_even(batch_sizes, world)
    try:
        yield Parallel(world, (dist.get_rank(), world))
    finally:
        _replicated.clear()


def replicate(model) -> None:
    """Give every process rank 0's weights and optimizer state (restored from a resume state, maybe), and
    train the model's loss terms through DistributedDataParallel. Call it inside distribution()."""
    model.optimizer.build(model.trainable_variables)
    with torch.no_grad():
        for variable in model.optimizer.variables:
            dist.broadcast(variable.value, src=0)
    _replicated[model] = DistributedDataParallel(LossTerms(model))


def alone():
    """Nothing to step out of: process 0 saves and predicts on its own as it is."""
    return contextlib.nullcontext()


def process_local(model):
    """The model itself: every process holds all of it, so process 0 predicts with it alone."""
    return model


def devices() -> list[str]:
    return ["cpu"] + [f"cuda:{i} {torch.cuda.get_device_name(i)}" for i in range(torch.cuda.device_count())]
