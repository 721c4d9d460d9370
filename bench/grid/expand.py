"""Axes to configs: every combination of a rectangular grid, validated against the implementations'
declared capabilities before any process starts (each bad name or combination one UsageError)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterable, Optional

from bench.contract.config import BenchConfig
from bench.contract.errors import UsageError
from bench.grid.devices import check_device
from bnn_impls import names

#: Estimators whose cost depends on the number of KL draws; for the others n_mc is meaningless and fixed to 1.
N_MC_ESTIMATORS = ("mc", "repar", "repar_exact")


def check_implementation(impl: str) -> None:
    """Any registered name (built-in, plugin, or a peer library installed here); a known peer that is not
    installed is an error naming its install command."""
    from bnn_impls.registry import get_implementation

    get_implementation(impl)


@dataclass(frozen=True)
class Axes:
    """One rectangular grid: every combination of these values (kls None: each implementation's default)."""

    impls: tuple[str, ...]
    tasks: tuple[str, ...]
    samples: tuple[int, ...]
    devices: tuple[str, ...] = ("cpu",)
    kls: Optional[tuple[str, ...]] = None
    priors: tuple[str, ...] = ("gaussian",)
    n_mc: tuple[int, ...] = (1,)


def expand(axes: Axes, **fields) -> list[BenchConfig]:
    """Every config of the grid, in task, device, impl, kl, prior, n_mc, samples order, deduplicated by run_id.

    `fields` are the BenchConfig fields shared by every point (repeats, steps, threads, ...).
    n_mc only varies for the estimators that draw it; for the others it is 1, so `--n-mc 1,100`
    does not measure `closed` twice. A bad name or combination raises UsageError.
    """
    from bnn_impls import registry  # the one source of each implementation's default KL and capabilities

    for impl in axes.impls:
        as_usage_error(check_implementation, impl)
    for task in axes.tasks:
        as_usage_error(names.check_task, task)
    for device in axes.devices:
        check_device(device)
    configs: list[BenchConfig] = []
    for task, device, impl in itertools.product(axes.tasks, axes.devices, axes.impls):
        kls = axes.kls if axes.kls is not None else (as_usage_error(registry.default_kl, impl),)
        for kl, prior in itertools.product(kls, axes.priors):
            as_usage_error(registry.check_combination, impl, kl, prior, task)
            n_mcs = axes.n_mc if kl in N_MC_ESTIMATORS else (1,)
            for n_mc, samples in itertools.product(n_mcs, axes.samples):
                try:
                    config = BenchConfig(impl=impl, task=task, samples=samples, device=device, kl=kl,
                                         prior=prior, n_mc=n_mc, **fields)
                except ValueError as e:  # BenchConfig's own checks (repeats >= 1, steps xor epochs, ...)
                    raise UsageError(f"{e}: fix the matching flag") from None
                configs.append(config)
    return dedupe(configs)


def dedupe(configs: Iterable[BenchConfig]) -> list[BenchConfig]:
    """First occurrence of each run_id, order kept (blocks of a profile may overlap)."""
    first: dict[str, BenchConfig] = {}
    for config in configs:
        first.setdefault(config.run_id, config)
    return list(first.values())


def as_usage_error(check, *args):
    """Run a bnn_impls name check (or lookup), turning its BnnConfigError into the CLI's UsageError."""
    try:
        return check(*args)
    except names.BnnConfigError as e:
        raise UsageError(str(e)) from None
