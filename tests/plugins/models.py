"""Test-only model factories for `--model tests.plugins.models:NAME`."""

from torch import nn


def tiny_cnn() -> nn.Module:
    """A small conv net for 1x28x28 inputs: conv (strided, grouped later), BatchNorm, Linear head."""
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=2), nn.ReLU(),
        nn.Flatten(), nn.Linear(4 * 7 * 7, 10),
    )


def decoder() -> nn.Module:
    """Has a ConvTranspose2d: Bayesian under sequential and vmap, but vmap_lrt has no moment rule for it."""
    return nn.Sequential(nn.Conv2d(1, 2, 3, stride=2, padding=1), nn.ReLU(),
                         nn.ConvTranspose2d(2, 1, 2, stride=2), nn.Flatten(), nn.Linear(784, 10))


def not_a_module():
    return 42


def exits():
    """A factory that ends the process (what `sweep --model` once passed on as its own exit status 3)."""
    import sys

    sys.exit(3)


def no_bayesian_layer() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.ReLU())


#: Files the hostile factory below leaves behind when anything runs it; tests look for them.
MARKER_ENV = "BNN_BENCH_HOSTILE_MARKER"


def hostile() -> nn.Module:
    """Stands for code a stranger's results directory names: it leaves a marker file if ever called."""
    import os
    from pathlib import Path

    Path(os.environ[MARKER_ENV]).write_text("called")
    return nn.Linear(1, 1)
