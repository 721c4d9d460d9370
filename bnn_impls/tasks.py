"""The tasks: the report's 1-D regression curve and MNIST MLP, LeNet-5 on MNIST, VGG-11 and ResNet-18 on
CIFAR-10; their data as whole tensors on the target device, real or (`data="synthetic"`) seeded inputs
of the same shape for timing and memory studies without the data set."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Optional

import torch

from bnn_impls import cifar, mnist
from bnn_impls.likelihood import CategoricalLikelihood, GaussianLikelihood
from bnn_impls.names import BnnConfigError, check_task


@dataclass(frozen=True)
class TaskSpec:
    name: str
    sizes: tuple[int, ...]
    likelihood: object
    lr: float
    batch_size: int
    description: str
    # Conv tasks: the input's shape per example, and the factory in bnn_impls.architectures
    # (None: the MLP of `sizes`, fed flattened inputs).
    input_shape: Optional[tuple[int, ...]] = None
    architecture: Optional[str] = None
    dataset: str = "mnist"  # whose data: regression, mnist, cifar10

    @property
    def example_shape(self) -> tuple[int, ...]:
        return self.input_shape if self.input_shape is not None else (self.sizes[0],)

    @property
    def classes(self) -> Optional[int]:
        """Number of classes of a classification task; None for regression."""
        return None if isinstance(self.likelihood, GaussianLikelihood) else self.sizes[-1]


TASK_SPECS = {
    "regression": TaskSpec(
        "regression", (1, 400, 400, 1), GaussianLikelihood(sigma=0.1), 1e-3, 128,
        "1-D curve y = x + 0.3 sin(2pi(x+e)) + 0.3 sin(4pi(x+e)) + e, 1,024 points, MLP 1-400-400-1",
        dataset="regression",
    ),
    "mnist": TaskSpec(
        "mnist", (784, 800, 800, 10), CategoricalLikelihood(), 1e-4, 128,
        "MNIST digits (60,000 training images, flattened, scaled to [0, 1]), MLP 784-800-800-10",
    ),
    "lenet5": TaskSpec(
        "lenet5", (784, 10), CategoricalLikelihood(), 1e-3, 128,
        "MNIST digits as 1x28x28 images, LeNet-5 (conv 6, conv 16, 120, 84, 10; 61,706 weights)",
        input_shape=(1, 28, 28), architecture="lenet5",
    ),
    "vgg11": TaskSpec(
        "vgg11", (3072, 10), CategoricalLikelihood(), 1e-3, 128,
        "CIFAR-10 3x32x32 images scaled to [0, 1], VGG-11 with BatchNorm, small-input variant (9.2M weights)",
        input_shape=(3, 32, 32), architecture="vgg11", dataset="cifar10",
    ),
    "resnet18": TaskSpec(
        "resnet18", (3072, 10), CategoricalLikelihood(), 1e-3, 128,
        "CIFAR-10 3x32x32 images scaled to [0, 1], ResNet-18, small-input variant (11.2M weights)",
        input_shape=(3, 32, 32), architecture="resnet18", dataset="cifar10",
    ),
}

#: Sizes of the real data sets (train, test): a synthetic stand-in has the same, so the KL weight
#: (1 / n_train) and the steps per epoch are the real task's.
DATASET_SIZES = {"regression": (1024, 256), "mnist": (60000, 10000), "cifar10": (50000, 10000)}
DATA_SOURCES = ("real", "synthetic")


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


def synthetic_dataset(task: TaskSpec, device, dtype, seed: int) -> Dataset:
    """Inputs U(0, 1) of the task's example shape, labels uniform over its classes (regression
    targets N(0, 1)), drawn from the seed on the CPU so every device gets the same data."""
    g = torch.Generator().manual_seed(seed)
    n_train, n_test = DATASET_SIZES[task.dataset]

    def part(n):
        x = torch.rand((n, *task.example_shape), generator=g, dtype=dtype if dtype != torch.bfloat16 else torch.float32)
        if task.classes is None:
            y = torch.randn((n, task.sizes[-1]), generator=g, dtype=x.dtype).to(device=device, dtype=dtype)
        else:
            y = torch.randint(0, task.classes, (n,), generator=g).to(device)
        return x.to(device=device, dtype=dtype), y

    (x, y), (xt, yt) = part(n_train), part(n_test)
    return Dataset(x, y, xt, yt)


def load_dataset(name: str, device, dtype, *, data_dir: Optional[str] = None, seed: int = 0,
                 allow_download: bool = True, data: str = "real") -> Dataset:
    check_task(name)
    if data not in DATA_SOURCES:
        raise BnnConfigError(f"unknown data source {data!r}: choose one of {', '.join(DATA_SOURCES)}")
    task = TASK_SPECS[name]
    if data == "synthetic":
        return synthetic_dataset(task, device, dtype, seed)
    if task.dataset == "regression":
        x, y = regression_curve(1024, seed)
        # A held-out set from the same curve, with a different seed so it is not the training data.
        xt, yt = regression_curve(256, seed + 1)
        to = dict(device=device, dtype=dtype)
        return Dataset(x.to(**to), y.to(**to), xt.to(**to), yt.to(**to))
    if task.dataset == "cifar10":
        arrays = cifar.load_cifar10(data_dir, allow_download=allow_download)
    else:
        arrays = mnist.load_mnist(data_dir, allow_download=allow_download)

    def images(a):
        return (torch.from_numpy(a.reshape(a.shape[0], *task.example_shape).copy()).to(device=device, dtype=dtype)
                / 255.0)

    def labels(a):
        return torch.from_numpy(a.astype("int64")).to(device)

    return Dataset(images(arrays.train_images), labels(arrays.train_labels),
                   images(arrays.test_images), labels(arrays.test_labels))


def ensure_data(name: str, data_dir: Optional[str] = None, data: str = "real") -> None:
    """DataError (one line naming the fix) unless the task's data is there (or could be downloaded) and
    reads: every file is decompressed and checked against its published checksum, so a truncated or
    corrupt file stops a sweep before its first config instead of turning every config into an error."""
    if data == "synthetic":
        return
    dataset = TASK_SPECS[name].dataset
    if dataset == "mnist":
        mnist.load_mnist(data_dir)
    elif dataset == "cifar10":
        cifar.verify(cifar.ensure_available(data_dir))


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    return math.ceil(n_train / batch_size)


def epoch_batches(data: Dataset, batch_size: int,
                  generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of mini-batches from an on-device permutation (no DataLoader, no host copies)."""
    perm = torch.randperm(data.n_train, generator=generator, device=data.x_train.device)
    for idx in perm.split(batch_size):
        yield data.x_train[idx], data.y_train[idx]


def endless_batches(data: Dataset, batch_size: int,
                    generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    while True:
        yield from epoch_batches(data, batch_size, generator)
