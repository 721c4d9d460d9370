"""`bnn-bench list`: the names a sweep accepts, and the devices found here."""

from __future__ import annotations

import argparse

from bench.grid.devices import available_devices
from bench.grid.profiles import PROFILES

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


def _network(task) -> str:
    if task.architecture:
        return task.architecture + " " + "x".join(map(str, task.input_shape))
    return "MLP " + "-".join(map(str, task.sizes))


def listing() -> str:
    from bnn_impls import TASK_SPECS, names, registry

    status = registry.peer_status()  # imports every installed peer, so "importable" is tested, not guessed
    lines = ["implementations (default KL estimator; KL weight; how the loss differs from ours):"]
    for impl in registry.implementation_names():
        if status.get(impl):
            continue  # installed but not importable: listed below with the reason
        caps = registry.capabilities(impl)
        note = caps.loss_note or "ours: " + registry.ELBO_LOSS_NOTE
        lines.append(f"  {impl:<22} {caps.default_kl:<7} {caps.kl_weight:<8} {note}")
    lines += ["what each likelihood estimator is, per Bayesian layer type (docs/estimators.md):"]
    for impl in names.IMPLEMENTATIONS:
        lines.append(f"  {impl:<22} {registry.capabilities(impl).estimator}")
    missing = {name: why for name, why in status.items() if why}
    if missing:
        lines += ["peer implementations not importable here (why; how to install):"]
        lines += [f"  {name:<22} {why}" for name, why in missing.items()]
    lines += ["KL estimators (what they need):"]
    lines += [f"  {kl:<12} {KL_NEEDS.get(kl, '')}" for kl in names.KL_ESTIMATORS]
    lines += ["tasks (network):"]
    lines += [f"  {t.name:<12} {_network(t)}"
              for t in TASK_SPECS.values()]
    lines += ["profiles:"]
    lines += [f"  {p.name:<12} {p.description}" for p in PROFILES.values()]
    lines += ["devices found here:", "  " + ", ".join(available_devices())]
    return "\n".join(lines)


def run(args) -> int:
    print(listing())
    return 0
