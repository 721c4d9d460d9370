"""What every peer shares: the same architecture built from its own layers, the task's data term,
and a seeded global RNG (the libraries sample with torch's global generator, not ours)."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from bnn_impls.names import BnnConfigError
from bnn_impls.objective import check_samples


def build_mlp(sizes: Sequence[int], linear: Callable[[int, int], nn.Module]) -> nn.Sequential:
    """Linear-ReLU-...-Linear with the library's linear layer: the same layout as bnn_impls.mlp's skeleton."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(linear(int(n_in), int(n_out)))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def data_term(task) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The mean over the batch of the task's per-example NLL for one sample's output (B, out).

    Cross-entropy for MNIST (what every peer's MNIST example uses) and, for the regression curve, the same
    Gaussian NLL (sigma fixed) as ours, so the data term is never the difference between a peer and us.
    """
    if task.likelihood.name == "categorical":
        return F.cross_entropy
    return lambda out, y: task.likelihood.nll(out, y).mean()


def seed_global_rng(seed: int) -> None:
    """The peers draw from torch's global generator (in `forward`, in the optimizer): seed it per config.

    Each config runs in its own process (the local executor), so this neither leaks into nor depends on
    another config; under `--executor inline` it reseeds the sweep process, whose own code uses explicit
    generators only.
    """
    torch.manual_seed(seed)


def stacked_predictions(model: nn.Module, x: torch.Tensor, samples: int) -> torch.Tensor:
    """S forward passes of a module that samples its weights in `forward`: (S, B, out)."""
    check_samples(samples)
    with torch.no_grad():
        return torch.stack([model(x) for _ in range(samples)])


class PeerImplementation:
    """The registry's view of a peer: its capabilities, and `make_training` instead of the shared model.

    `loss` and `predict` on the shared BayesianMLP do not exist for a library with its own layers: asking
    is a clear error rather than a silent fallback to one of ours.
    """

    name: str
    default_kl: str
    draws_weights: bool = True
    kl_estimators: tuple[str, ...]
    tasks = ("regression", "mnist")
    priors = ("gaussian",)  # the library's own prior, not ours: see `loss_note`
    kl_weight: str
    loss_note: str

    def loss(self, model, x, y, *, samples, spec, generator=None, noise=None):
        raise BnnConfigError(f"{self.name!r} trains its own model (make_training), not the shared BayesianMLP")

    def predict(self, model, x, *, samples, generator=None, noise=None):
        raise BnnConfigError(f"{self.name!r} predicts with its own model: use make_training(...).predict")
