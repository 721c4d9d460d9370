"""Peer libraries as implementations: what each is, what it needs, and whether it imports here.

Torch-free on purpose (only `importlib.util.find_spec`), so `list`, the grid and the `peers` profile
can say which peers are installed without importing them. The registry imports a peer's module
(`bnn_impls.peers.<module>`) only when the peer is first asked for by name.

Install all of them without touching torch: `scripts/setup.sh --peers` (every one with
`pip install --no-deps`, from scripts/peers-requirements.txt).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Optional

INSTALL_ALL = "scripts/setup.sh --peers"


@dataclass(frozen=True)
class PeerSpec:
    name: str  # the implementation name
    module: str  # bnn_impls.peers.<module> defines the implementation class
    cls: str
    library: str  # the PyPI distribution and the version it was written against
    requires: tuple[str, ...]  # import names that must be findable
    install: str  # one command that installs it without replacing torch


_BAYESIAN_TORCH = "pip install --no-deps bayesian-torch==0.5.0"
_POSTERIORS = ("pip install --no-deps posteriors==0.1.3 torchopt==0.7.3 optree tensordict pyvers graphviz "
               "orjson cloudpickle")

PEERS = {
    p.name: p
    for p in (
        PeerSpec("bayesian_torch_reparam", "bayesian_torch_peer", "BayesianTorchReparam", "bayesian-torch 0.5.0",
                 ("bayesian_torch",), _BAYESIAN_TORCH),
        PeerSpec("bayesian_torch_flipout", "bayesian_torch_peer", "BayesianTorchFlipout", "bayesian-torch 0.5.0",
                 ("bayesian_torch",), _BAYESIAN_TORCH),
        PeerSpec("torchbnn", "torchbnn_peer", "TorchBnn", "torchbnn 1.2", ("torchbnn",),
                 "pip install --no-deps torchbnn==1.2"),
        PeerSpec("blitz", "blitz_peer", "Blitz", "blitz-bayesian-pytorch 0.2.8", ("blitz",),
                 "pip install --no-deps blitz-bayesian-pytorch==0.2.8"),
        PeerSpec("ivon", "ivon_peer", "Ivon", "ivon-opt 0.1.3", ("ivon",), "pip install --no-deps ivon-opt==0.1.3"),
        PeerSpec("posteriors_vi", "posteriors_peer", "PosteriorsVI", "posteriors 0.1.3",
                 ("posteriors", "torchopt", "optree", "tensordict", "pyvers", "graphviz"), _POSTERIORS),
    )
}


def missing_requirement(name: str) -> Optional[str]:
    """The first import name the peer needs that is not installed here, or None when all are findable."""
    for module in PEERS[name].requires:
        try:
            if importlib.util.find_spec(module) is None:
                return module
        except (ImportError, ValueError):
            return module
    return None


def importable_peers() -> tuple[str, ...]:
    """Peers whose libraries are installed here, in catalogue order."""
    return tuple(name for name in PEERS if missing_requirement(name) is None)


def not_installed_message(name: str) -> str:
    spec = PEERS[name]
    return (f"implementation {name!r} needs {spec.library} (module {missing_requirement(name)!r} is not installed): "
            f"{spec.install}, or {INSTALL_ALL} for every peer")
