"""Named grids (`--profile`): what `quick`, `paper`, `repar` and `ci` measure.

A profile is one or more blocks, each a rectangular partial grid with its own timing budget, so
`quick` can time whole regression epochs but only a few MNIST steps. Command-line flags override
the matching axis in every block; the fields no block decides (devices, threads, seed, ...) come
from `Common`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

from bench.config import BenchConfig
from bench.errors import UsageError
from bench.grid import Axes, dedupe, default_threads, expand
from bnn_impls.names import IMPLEMENTATIONS

ALL_IMPLS = tuple(IMPLEMENTATIONS)
REPAR_KLS = ("mc", "repar", "repar_exact")


@dataclass(frozen=True)
class Block:
    """A partial grid and how long to time each of its points (exactly one of steps and epochs)."""

    tasks: tuple[str, ...]
    impls: tuple[str, ...]
    samples: tuple[int, ...]
    kls: Optional[tuple[str, ...]] = None  # None: each implementation's default estimator
    priors: tuple[str, ...] = ("gaussian",)
    n_mc: tuple[int, ...] = (1,)
    steps: Optional[int] = None
    epochs: Optional[int] = None
    repeats: int = 3
    warmup: int = 3
    timeout_s: Optional[float] = 300.0


@dataclass(frozen=True)
class Profile:
    name: str
    description: str  # one line, shown by `list`
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Overrides:
    """Axes given on the command line; None leaves the profile's value."""

    impls: Optional[tuple[str, ...]] = None
    tasks: Optional[tuple[str, ...]] = None
    samples: Optional[tuple[int, ...]] = None
    kls: Optional[tuple[str, ...]] = None
    priors: Optional[tuple[str, ...]] = None
    n_mc: Optional[tuple[int, ...]] = None
    steps: Optional[int] = None
    epochs: Optional[int] = None
    repeats: Optional[int] = None
    warmup: Optional[int] = None
    timeout_s: Optional[float] = None

    def apply(self, block: Block) -> Block:
        changes = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}
        # steps and epochs are one choice: giving either replaces the block's choice, not just one field of it.
        if self.steps is not None:
            changes["epochs"] = None
        if self.epochs is not None:
            changes["steps"] = None
        return dataclasses.replace(block, **changes)


@dataclass(frozen=True)
class Common:
    """Config fields that are the same for every point of a sweep."""

    devices: tuple[str, ...] = ("cpu",)
    threads: int = dataclasses.field(default_factory=default_threads)
    batch_size: Optional[int] = None
    seed: int = 0
    dtype: str = "float32"
    data_dir: Optional[str] = None
    memory_limit_bytes: Optional[int] = None
    data: str = "real"
    model: Optional[str] = None


PROFILES = {
    p.name: p
    for p in (
        Profile(
            "quick",
            "the default job (<= 5 min on 2 CPU cores): regression S=1,2,5,10 over whole epochs, MNIST S=1,2,5,10 "
            "over 5 timed steps, all implementations, plus a repar memory check (n_mc 1, 100)",
            (
                Block(("regression",), ALL_IMPLS, (1, 2, 5, 10), epochs=1, repeats=3, warmup=2),
                Block(("mnist",), ALL_IMPLS, (1, 2, 5, 10), steps=5, repeats=3, warmup=2),
                Block(("regression",), ("vmap_lrt",), (1,), kls=REPAR_KLS, n_mc=(1, 100), steps=5, repeats=3, warmup=2),
            ),
        ),
        Profile(
            "paper",
            "the report's grid: regression and MNIST, S=1..10, all implementations, one whole epoch per repeat",
            (Block(("regression", "mnist"), ALL_IMPLS, tuple(range(1, 11)), epochs=1, repeats=3, timeout_s=1800.0),),
        ),
        Profile(
            "repar",
            "KL estimators mc, repar, repar_exact on MNIST with vmap_lrt, n_mc = 1 .. 10^6, S=1",
            (
                Block(("mnist",), ("vmap_lrt",), (1,), kls=REPAR_KLS, n_mc=tuple(10**k for k in range(7)),
                      steps=3, repeats=3),
            ),
        ),
        Profile(
            "ci",
            "CI's regression check (~1 min on 2 CPU cores): regression S=10 (20 steps x 9 repeats) and MNIST S=2 "
            "(10 steps x 9 repeats), all implementations",
            # Steps of >= 25 ms and repeats of >= 0.3 s: on a shared 2-core runner, shorter ones
            # moved by 10-15% between back-to-back runs, which no threshold can tell from a regression.
            (
                Block(("regression",), ALL_IMPLS, (10,), steps=20, repeats=9),
                Block(("mnist",), ALL_IMPLS, (2,), steps=10, repeats=9),
            ),
        ),
    )
}

DEFAULT_PROFILE = "quick"


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise UsageError(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)}") from None


def build_grid(profile: Profile, overrides: Overrides = Overrides(), common: Common = Common()) -> list[BenchConfig]:
    """Every config of the profile with the flags applied, in block order, each run_id once."""
    configs: list[BenchConfig] = []
    for block in profile.blocks:
        b = overrides.apply(block)
        axes = Axes(impls=b.impls, tasks=b.tasks, samples=b.samples, devices=common.devices,
                    kls=b.kls, priors=b.priors, n_mc=b.n_mc)
        configs += expand(
            axes, steps=b.steps, epochs=b.epochs, repeats=b.repeats, warmup_steps=b.warmup, timeout_s=b.timeout_s,
            threads=common.threads, batch_size=common.batch_size, seed=common.seed, dtype=common.dtype,
            data_dir=common.data_dir, memory_limit_bytes=common.memory_limit_bytes,
            data=common.data, model=common.model,
        )
    return dedupe(configs)
