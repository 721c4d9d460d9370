"""Helpers for implementations that run the skeleton with each Bayesian layer swapped for a stand-in
(`vmap_lrt`, `vmap_flipout`): putting a module at a path, and the shapes each Bayesian layer sees."""

from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import nn


def set_submodule(root: nn.Module, path: str, module: nn.Module) -> nn.Module:
    """Put `module` at `path` in `root`; the new root (`module` itself for the empty path)."""
    if not path:
        return module
    parent_path, _, name = path.rpartition(".")
    setattr(root.get_submodule(parent_path) if parent_path else root, name, module)
    return root


def layer_io_shapes(skeleton: nn.Module, paths: Sequence[str],
                    x_shape: Sequence[int]) -> list[tuple[torch.Size, torch.Size]]:
    """Per layer path, the (input, output) shapes of that layer for a model input of shape x_shape,
    found by one forward pass on the meta device (nothing computed, nothing allocated)."""
    shapes: dict[str, tuple[torch.Size, torch.Size]] = {}

    def record(path):
        def hook(module, args, out):
            shapes.setdefault(path, (args[0].shape, out.shape))  # returns None: the output is left alone
        return hook

    # A copy: BatchNorm in training mode writes its (meta) running stats, and the hooks must not stay.
    probe = copy.deepcopy(skeleton)
    for p in paths:
        probe.get_submodule(p).register_forward_hook(record(p))
    with torch.no_grad():
        probe(torch.empty(tuple(x_shape), device="meta"))
    return [shapes[p] for p in paths]
