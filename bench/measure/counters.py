"""Deterministic cost counters of one training step: what `check` can gate tightly on a noisy machine.

Wall time on a shared 2-core VM drifts by tens of percent between runs of unchanged code; these
counts do not (same config, same seed: same numbers), so a 1-2% change in one of them is a change
in the code, not in the machine:

- `aten_ops_per_step`: every ATen operator dispatched in one step (forward, backward, optimizer),
  counted by a `TorchDispatchMode` below autograd and vmap, by name (`aten.mm.default`, ...), so
  `check` can say which operators were added or removed.
- `alloc_bytes_per_step`: bytes of every tensor those operators created (outputs whose storage is
  not one of the op's inputs', so views and in-place ops allocate nothing). It counts what the
  program asks for, not what the allocator's caching makes of it.
- `instructions_per_step`: CPU instructions of one step, from Valgrind's Callgrind through
  `torch.utils.benchmark.Timer.collect_callgrind` (what PyTorch's own CI gates on), denoised (the
  CPython interpreter's noisy bookkeeping removed). Valgrind runs the step ~50x slower in a fresh
  interpreter, so it is collected only for configs that ask (`count_instructions`, the `ci`
  profile) and is skipped, with the reason recorded, where valgrind is missing or fails.
"""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

#: Steps counted by Callgrind: one is enough (the counts are exact); the script warms up first.
CALLGRIND_STEPS = 1


@dataclass(frozen=True)
class OpCounts:
    ops: dict  # operator name -> times dispatched in one step
    alloc_bytes: int

    @property
    def total(self) -> int:
        return sum(self.ops.values())


def _storage_key(t: torch.Tensor) -> Optional[int]:
    try:
        return t.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):  # tensors without storage (e.g. some subclasses)
        return None


class OpCountingMode(TorchDispatchMode):
    """Counts every operator dispatched inside it and the bytes they allocate (`counts()` after)."""

    def __init__(self):
        super().__init__()
        self.ops: Counter = Counter()
        self.alloc_bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.ops[str(func)] += 1
        inputs = {_storage_key(t) for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)}
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                key = _storage_key(t)
                if key is not None and key not in inputs:
                    inputs.add(key)  # two outputs on one new storage (split, unbind) allocate once
                    self.alloc_bytes += t.untyped_storage().nbytes()
        return out

    def counts(self) -> OpCounts:
        return OpCounts(dict(sorted(self.ops.items())), int(self.alloc_bytes))


def count_ops(fn: Callable[[], object]) -> Optional[OpCounts]:
    """The operators `fn` dispatches and the bytes they allocate; None where the mode cannot run it."""
    try:
        with OpCountingMode() as mode:
            fn()
    except Exception:  # like the FLOP counter: a config the mode cannot follow keeps its row
        return None
    return mode.counts()


# -- Callgrind ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instructions:
    per_step: Optional[int]
    note: str  # why per_step is missing ("" when it is there)


def callgrind_step(config_dict: dict) -> Callable[[], object]:
    """The setup the Callgrind subprocess runs: the config's training step, built and warmed up once."""
    from bench.contract.config import BenchConfig
    from bench.training.builder import build_config_training

    training = build_config_training(BenchConfig.from_dict(config_dict))
    training.instrumented_step()
    return training.step


def count_instructions(config, *, steps: int = CALLGRIND_STEPS) -> Instructions:
    """Callgrind's denoised instruction count of one training step of `config` (CPU only)."""
    if not str(config.device).startswith("cpu"):
        return Instructions(None, f"callgrind counts host instructions only; skipped on {config.device}")
    missing = [cmd for cmd in ("valgrind", "callgrind_control", "callgrind_annotate") if shutil.which(cmd) is None]
    if missing:
        return Instructions(None, f"{', '.join(missing)} not installed (apt-get install valgrind)")
    from torch.utils.benchmark import Timer

    setup = f"from bench.measure.counters import callgrind_step\none_step = callgrind_step({config.to_dict()!r})"
    try:
        stats = Timer("one_step()", setup=setup, num_threads=config.threads).collect_callgrind(
            number=steps, collect_baseline=False)
        total = stats.counts(denoise=True)
    except Exception as e:  # valgrind present but unusable here (unsupported platform, a crash): say why
        return Instructions(None, f"callgrind failed: {' '.join(str(e).split())[:200]}")
    return Instructions(int(round(total / steps)), "")
