"""Training step for the PyTorch backend: backward() on the loss the optimizer scaled (a LossScaleOptimizer
under mixed_float16), then the optimizer, as Keras's own torch trainer does."""

import torch

from keras_vae.backends import images_of
from keras_vae.errors import KerasVAEError


class TrainStep:
    def train_step(self, data):
        x = images_of(data)
        self.zero_grad()
        terms = self.compute_terms(x, training=True)
        self.optimizer.scale_loss(terms["loss"]).backward()
        variables = self.trainable_variables
        with torch.no_grad():
            self.optimizer.apply([v.value.grad for v in variables], variables)
        return self.update_trackers(terms, x.shape[0])

    def test_step(self, data):
        x = images_of(data)
        return self.update_trackers(self.compute_terms(x, training=False), x.shape[0])


def distribution(batch_sizes: set[int]):
    raise KerasVAEError(
        "--distribute runs on the jax and tensorflow backends; on torch, drop --distribute or add --backend jax"
    )


def devices() -> list[str]:
    return ["cpu"] + [f"cuda:{i} {torch.cuda.get_device_name(i)}" for i in range(torch.cuda.device_count())]
