"""Named grids (`--profile`): what `quick`, `paper`, `repar` and `ci` measure.

A profile is one or more blocks, each a rectangular partial grid with its own timing budget, so
`quick` can time whole regression epochs but only a few MNIST steps. Command-line flags override
the matching axis in every block; the fields no block decides (devices, threads, seed, ...) come
from `Common`.

Without a profile, a sweep is the one grid its flags describe (`flag_grid`): the axes given, and
`FLAG_DEFAULTS` plus each task's timing budget (`TASK_BUDGETS`) for the rest.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

from bench.contract.config import BenchConfig
from bench.contract.errors import UsageError
from bench.grid.expand import Axes, dedupe, expand
from bench.grid.parse import default_threads
from bnn_impls.names import IMPLEMENTATIONS
from bnn_impls.peers import importable_peers

ALL_IMPLS = tuple(IMPLEMENTATIONS)
#: The report's three: the `paper` grid it regenerates, and CI's gate, whose stored baseline and time
#: budget are for these (vmap_flipout is timed by `quick`, `peers` and any --impl list).
REPORT_IMPLS = ("sequential", "vmap", "vmap_lrt")
REPAR_KLS = ("mc", "repar", "repar_exact")
CI_ROUNDS = 12
PEERS_ROUNDS = 5


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
    rounds: Optional[int] = None  # time the grid in this many interleaved rounds (bench/run/rounds.py)
    round_workers: Optional[str] = None  # how rounds drive the configs: warm (default) or fresh


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


_CONFIG_DEFAULTS = {f.name: f.default for f in dataclasses.fields(BenchConfig)}


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
    # Prior parameters (--prior-sigma, --mixture-*), levers, init and data source: their defaults
    # are BenchConfig's own, read from it so the two cannot drift apart.
    prior_sigma: float = _CONFIG_DEFAULTS["prior_sigma"]
    mixture_pi: float = _CONFIG_DEFAULTS["mixture_pi"]
    mixture_sigma1: float = _CONFIG_DEFAULTS["mixture_sigma1"]
    mixture_sigma2: float = _CONFIG_DEFAULTS["mixture_sigma2"]
    step_mode: str = _CONFIG_DEFAULTS["step_mode"]
    precision: str = _CONFIG_DEFAULTS["precision"]
    optimizer: str = _CONFIG_DEFAULTS["optimizer"]
    init: str = _CONFIG_DEFAULTS["init"]
    init_sigma: float = _CONFIG_DEFAULTS["init_sigma"]
    data: str = _CONFIG_DEFAULTS["data"]
    model: Optional[str] = None


PROFILES = {
    p.name: p
    for p in (
        Profile(
            "quick",
            "the default job (about 2 min on 2 CPU cores): regression S=1,2,5,10 over whole epochs, MNIST S=1,2,5,10 "
            "over 5 timed steps, all implementations, plus the KL estimators' cost per draw (n_mc 1, 10, 30, 100)",
            (
                Block(("regression",), ALL_IMPLS, (1, 2, 5, 10), epochs=1, repeats=3, warmup=2),
                Block(("mnist",), ALL_IMPLS, (1, 2, 5, 10), steps=5, repeats=3, warmup=2),
                # Four values of n_mc, so `analyze` can fit the cost per extra KL draw with an interval.
                Block(("regression",), ("vmap_lrt",), (1,), kls=REPAR_KLS, n_mc=(1, 10, 30, 100), steps=5, repeats=3,
                      warmup=2),
            ),
        ),
        Profile(
            "paper",
            "the report's grid: regression and MNIST, S=1..10, the report's three implementations (sequential, "
            "vmap, vmap_lrt), one whole epoch per repeat",
            (Block(("regression", "mnist"), REPORT_IMPLS, tuple(range(1, 11)), epochs=1, repeats=3, timeout_s=1800.0),),
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
            "CI's regression check (~2 min on 2 CPU cores): regression S=10 (20 steps) and MNIST S=2 (10 steps), "
            "the report's three implementations, in 12 interleaved rounds of one repeat each",
            # Steps of >= 25 ms and repeats of >= 0.3 s: on a shared 2-core runner, shorter ones
            # moved by 10-15% between back-to-back runs, which no threshold can tell from a regression.
            # Interleaved rounds (bench/run/rounds.py) make the drift that remains hit every config alike.
            (
                Block(("regression",), REPORT_IMPLS, (10,), steps=20, repeats=CI_ROUNDS),
                Block(("mnist",), REPORT_IMPLS, (2,), steps=10, repeats=CI_ROUNDS),
            ),
            rounds=CI_ROUNDS,
        ),
        Profile(
            "peers",
            "MNIST S=1,2,5,10 (5 timed steps x 5 repeats, in 5 interleaved rounds) for our four implementations "
            "and every peer library installed here (bayesian-torch, torchbnn, blitz, ivon, posteriors; `list` "
            "shows which)",
            # Peers are listed only where importable, so the profile runs on any machine; a peer named
            # with --impl but not installed is a one-line error naming its install command.
            # Rounds as in `ci`, so every ratio comes from one run with drift spread alike; fresh
            # workers (one forked process per config and round), because 36 warm MNIST workers
            # (~0.6 GB each) would not fit in this machine's 24 GiB.
            (Block(("mnist",), ALL_IMPLS + importable_peers(), (1, 2, 5, 10), steps=5, repeats=PEERS_ROUNDS,
                   warmup=2, timeout_s=900.0),),
            rounds=PEERS_ROUNDS,
            round_workers="fresh",
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
            prior_sigma=common.prior_sigma, mixture_pi=common.mixture_pi, mixture_sigma1=common.mixture_sigma1,
            mixture_sigma2=common.mixture_sigma2,
            step_mode=common.step_mode, precision=common.precision, optimizer=common.optimizer,
            init=common.init, init_sigma=common.init_sigma,
            data=common.data, model=common.model,
        )
    return dedupe(configs)


# ---------------------------------------------------------------------------------------------
# A sweep without --profile: the grid its flags describe


@dataclass(frozen=True)
class TaskBudget:
    """How long to time one config of a task when no profile says (exactly one of steps and epochs)."""

    steps: Optional[int] = None
    epochs: Optional[int] = None
    repeats: int = 3
    warmup: int = 2
    timeout_s: Optional[float] = 300.0


#: The default timing budget per task of a sweep built from flags; a task added later adds its row.
TASK_BUDGETS = {
    "regression": TaskBudget(epochs=1),  # 8 steps per epoch: whole epochs are cheap, so time them
    "mnist": TaskBudget(steps=5),  # 469 steps per epoch: a few timed steps, epoch time extrapolated
}
#: For a task without a row above.
DEFAULT_BUDGET = TaskBudget(steps=5)

#: The axes a sweep without --profile uses where no flag is given (kl None: each implementation's own;
#: n_mc 1, gaussian prior, the task's batch size).
FLAG_DEFAULTS = Block(tasks=("mnist",), impls=ALL_IMPLS, samples=(1, 2, 5, 10))


def flag_profile(overrides: Overrides = Overrides()) -> Profile:
    """The grid of a sweep without --profile: the flags' axes, `FLAG_DEFAULTS` for the others, and each
    task's `TASK_BUDGETS` row unless --steps/--epochs/--repeats/--warmup/--timeout say otherwise.
    One block per task, so each task keeps its own budget; every other axis is the same for all."""
    per_task = dataclasses.replace(overrides, tasks=None)
    blocks = []
    for task in overrides.tasks or FLAG_DEFAULTS.tasks:
        budget = TASK_BUDGETS.get(task, DEFAULT_BUDGET)
        base = dataclasses.replace(FLAG_DEFAULTS, tasks=(task,), steps=budget.steps, epochs=budget.epochs,
                                   repeats=budget.repeats, warmup=budget.warmup, timeout_s=budget.timeout_s)
        blocks.append(per_task.apply(base))
    return Profile("flags", "the grid the flags describe", tuple(blocks))


def flag_grid(overrides: Overrides = Overrides(), common: Common = Common()) -> list[BenchConfig]:
    """Every config of a sweep without --profile (see `flag_profile`)."""
    return build_grid(flag_profile(overrides), Overrides(), common)
