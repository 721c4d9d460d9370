"""`bnn-bench list`: the names a sweep accepts, and the devices found here."""

from __future__ import annotations

import argparse

from bench.grid import available_devices
from bench.profiles import PROFILES

#: What each KL estimator needs, one line each (names.py holds the rules; this says them in words).
KL_NEEDS = {
    "sample": "sampled weights (sequential, vmap); any prior",
    "closed": "the gaussian prior",
    "mc": "n_mc fresh draws (--n-mc); any prior; memory grows with n_mc",
    "repar": "n_mc draws (--n-mc) and the gaussian prior; memory independent of n_mc",
    "repar_exact": "n_mc (--n-mc) and the gaussian prior; time and memory independent of n_mc",
}


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "list", help="implementations, KL estimators, tasks, profiles and devices",
        description="List the implementations (with their default KL estimator), the KL estimators "
                    "(with what they need), the tasks (layer sizes), the profiles and the devices found here.",
    )
    parser.set_defaults(run=run)
    return parser


def listing() -> str:
    from bnn_impls import TASK_SPECS, names
    from bnn_impls.registry import implementation_names

    lines = ["implementations (default KL estimator):"]
    lines += [f"  {impl:<12} {names.default_kl(impl)}" for impl in implementation_names()]
    lines += ["KL estimators (what they need):"]
    lines += [f"  {kl:<12} {KL_NEEDS.get(kl, '')}" for kl in names.KL_ESTIMATORS]
    lines += ["tasks (network):"]
    lines += [f"  {t.name:<12} {t.architecture + ' ' + 'x'.join(map(str, t.input_shape)) if t.architecture else 'MLP ' + '-'.join(map(str, t.sizes))}"
              for t in TASK_SPECS.values()]
    lines += ["profiles:"]
    lines += [f"  {p.name:<12} {p.description}" for p in PROFILES.values()]
    lines += ["devices found here:", "  " + ", ".join(available_devices())]
    return "\n".join(lines)


def run(args) -> int:
    print(listing())
    return 0
