"""One benchmark config: everything that decides what a measured row means.

A config is a frozen dataclass so it can be hashed into a stable `run_id`, pickled to a
subprocess or a cluster node, and written beside its result without ambiguity.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Optional

DEFAULT_STEPS = 20
#: Where a config's inputs come from (bnn_impls.tasks.DATA_SOURCES; repeated here so the contract
#: needs no torch, and a test keeps the two the same).
DATA_SOURCES = ("real", "synthetic")

#: Fields that do not change what is measured: never part of the run_id.
VOLATILE_FIELDS = ("timeout_s", "data_dir", "memory_limit_bytes")
#: The fields of the first release: always hashed. Any field added later is hashed only when it is
#: not at its default (see `run_id`); add new fields at the end, with a default.
HASHED_ALWAYS = ("impl", "task", "samples", "device", "kl", "prior", "n_mc", "batch_size", "lr", "dtype",
                 "threads", "seed", "repeats", "warmup_steps", "steps", "epochs")


@dataclass(frozen=True)
class BenchConfig:
    impl: str
    task: str
    samples: int
    device: str = "cpu"
    kl: Optional[str] = None  # None: the implementation's default estimator (resolved by `resolved()`)
    prior: str = "gaussian"
    n_mc: int = 1
    batch_size: Optional[int] = None  # None: the task's default
    lr: Optional[float] = None  # None: the task's default
    dtype: str = "float32"
    threads: int = 2
    seed: int = 0
    repeats: int = 5
    warmup_steps: int = 3
    # Exactly one of these says what a repeat times: `steps` optimizer steps, or `epochs` whole epochs.
    steps: Optional[int] = None  # neither given: DEFAULT_STEPS timed steps per repeat
    epochs: Optional[int] = None
    timeout_s: Optional[float] = None
    data_dir: Optional[str] = None
    # Address-space cap for the child process (bytes); lets a sweep turn a runaway config into an
    # `oom` row instead of taking the machine down with it.
    memory_limit_bytes: Optional[int] = None
    # Prior parameters (bnn_impls.priors' defaults): sigma of the gaussian prior; pi, sigma1, sigma2 of
    # Blundell's scale mixture. Each config carries all four; the prior named in `prior` uses its own.
    prior_sigma: float = 1.0
    mixture_pi: float = 0.5
    mixture_sigma1: float = 1.0
    mixture_sigma2: float = math.exp(-6)
    # Speed levers (bench/training/levers.py): how the step runs, in which precision, with which Adam.
    step_mode: str = "eager"
    precision: str = "fp32"
    optimizer: str = "adam"
    # Also count one step's CPU instructions under Valgrind's Callgrind (bench/measure/counters.py): exact,
    # but minutes per config here, so only where asked for.
    count_instructions: bool = False
    # Posterior initialization (bnn_impls/init_schemes.py). The default is the report's setting, which
    # its timing tables used; init_sigma 0.0 means "the scheme's default".
    init: str = "report"
    init_sigma: float = 0.0
    # Where the inputs come from: "real" (the task's data set) or "synthetic" (seeded inputs of its shape).
    data: str = "real"
    # A user's model factory "package.module:factory" run on the task's data; None: the task's own network.
    model: Optional[str] = None
    # Flush denormal floats to zero (`torch.set_flush_denormal`, x86 FTZ/DAZ) in the run's process: a
    # CPU lever, since a step computing on denormal values can run several times slower.
    flush_denormal: bool = False

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise ValueError(f"samples must be >= 1, got {self.samples}")
        if self.n_mc < 1:
            raise ValueError(f"n_mc must be >= 1, got {self.n_mc}")
        if self.repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {self.repeats}")
        if self.steps is not None and self.epochs is not None:
            raise ValueError("give steps (timed steps per repeat) or epochs (whole epochs per repeat), not both")
        if self.steps is None and self.epochs is None:
            object.__setattr__(self, "steps", DEFAULT_STEPS)
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        for name in ("prior_sigma", "mixture_sigma1", "mixture_sigma2"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 < self.mixture_pi < 1:
            raise ValueError(f"mixture_pi must be strictly between 0 and 1, got {self.mixture_pi}")
        if self.data not in DATA_SOURCES:
            raise ValueError(f"data must be one of {', '.join(DATA_SOURCES)}, got {self.data!r}")

    def prior_params(self) -> dict:
        """The keyword arguments `bnn_impls.make_prior(self.prior, ...)` takes for this config's prior."""
        return prior_params(self.prior, sigma=self.prior_sigma, pi=self.mixture_pi, sigma1=self.mixture_sigma1,
                            sigma2=self.mixture_sigma2)

    @property
    def run_id(self) -> str:
        """Stable key of what is measured: same grid point, same id, so `--resume` can skip it.

        Readable prefix for humans, hash of every measurement-relevant field for uniqueness.
        Fields that do not change what is measured (timeout, data location, memory cap) are left out.
        """
        fields = dataclasses.asdict(self)
        for volatile in VOLATILE_FIELDS:
            fields.pop(volatile)
        # Fields added after the first release enter the hash only when set away from their default,
        # so every config that existed before keeps its run_id (resume and baselines stay valid).
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for name in list(fields):
            if name not in HASHED_ALWAYS and fields[name] == defaults[name]:
                fields.pop(name)
        digest = hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:8]
        kl = self.kl or "default"
        return f"{self.task}-{self.impl}-{kl}-S{self.samples}-n{self.n_mc}-{self.device.replace(':', '')}-{digest}"

    def replace(self, **changes) -> BenchConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> BenchConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def prior_params(prior: str, *, sigma: float, pi: float, sigma1: float, sigma2: float) -> dict:
    """Which of the four prior parameters the named prior takes (unknown names take none: make_prior
    rejects them with the list of valid ones)."""
    if prior == "gaussian":
        return {"sigma": sigma}
    if prior == "mixture":
        return {"pi": pi, "sigma1": sigma1, "sigma2": sigma2}
    return {}
