"""The two tasks: the report's 1-D regression curve and MNIST, as whole tensors on the target device."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Optional

import torch

from bnn_impls.likelihood import CategoricalLikelihood, GaussianLikelihood
from bnn_impls.names import check_task
from bnn_impls import mnist


@dataclass(frozen=True)
class TaskSpec:
    name: str
    sizes: tuple[int, ...]
    likelihood: object
    lr: float
    batch_size: int
    description: str


TASK_SPECS = {
    "regression": TaskSpec(
        "regression", (1, 400, 400, 1), GaussianLikelihood(sigma=0.1), 1e-3, 128,
        "1-D curve y = x + 0.3 sin(2pi(x+e)) + 0.3 sin(4pi(x+e)) + e, 1,024 points, MLP 1-400-400-1",
    ),
    "mnist": TaskSpec(
        "mnist", (784, 800, 800, 10), CategoricalLikelihood(), 1e-4, 128,
        "MNIST digits (60,000 training images, flattened, scaled to [0, 1]), MLP 784-800-800-10",
    ),
}


@dataclass(frozen=True)
class Dataset:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def n_train(self) -> int:
        return self.x_train.shape[0]


def regression_curve(n: int, seed: int, noise_std: float = 0.02) -> tuple[torch.Tensor, torch.Tensor]:
    """The report's generator: x ~ U(0, 0.5), e ~ N(0, noise_std^2), seeded and device-independent."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, generator=g, dtype=torch.float64) * 0.5
    e = torch.randn(n, 1, generator=g, dtype=torch.float64) * noise_std
    y = x + 0.3 * torch.sin(2 * math.pi * (x + e)) + 0.3 * torch.sin(4 * math.pi * (x + e)) + e
    return x, y


def load_dataset(name: str, device, dtype, *, data_dir: Optional[str] = None, seed: int = 0,
                 allow_download: bool = True) -> Dataset:
    check_task(name)
    if name == "regression":
        x, y = regression_curve(1024, seed)
        # A held-out set from the same curve, with a different seed so it is not the training data.
        xt, yt = regression_curve(256, seed + 1)
        to = dict(device=device, dtype=dtype)
        return Dataset(x.to(**to), y.to(**to), xt.to(**to), yt.to(**to))
    arrays = mnist.load_mnist(data_dir, allow_download=allow_download)

    def images(a):
        return torch.from_numpy(a.reshape(a.shape[0], -1).copy()).to(device=device, dtype=dtype) / 255.0

    def labels(a):
        return torch.from_numpy(a.astype("int64")).to(device)

    return Dataset(images(arrays.train_images), labels(arrays.train_labels),
                   images(arrays.test_images), labels(arrays.test_labels))


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    return math.ceil(n_train / batch_size)


def epoch_batches(data: Dataset, batch_size: int, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of mini-batches from an on-device permutation (no DataLoader, no host copies)."""
    perm = torch.randperm(data.n_train, generator=generator, device=data.x_train.device)
    for idx in perm.split(batch_size):
        yield data.x_train[idx], data.y_train[idx]


def endless_batches(data: Dataset, batch_size: int, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    while True:
        yield from epoch_batches(data, batch_size, generator)
