#!/usr/bin/env python3
"""The deterministic counters of every config of a baseline's grid, measured in this process and written
as JSON: ATen operators by name, FLOPs, bytes allocated and graph bytes per step (no timing).

    python3 scripts/ci_counters.py results/baseline/ci-rounds-xeon-1thread counters.json [--data-dir DIR]

Runs from any checkout of this repository, of the subpackage layout or of the older flat one (so the
counters before and after a restructure can be compared with `diff`): the checkout's own code is
measured, its root first on sys.path.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

try:  # the subpackage layout
    from bench.contract.meta import load_grid
    from bench.measure.step import measure
except ImportError:  # the flat layout, before 2026-12-04
    from bench.measure import measure
    from bench.results import load_grid


def counters(baseline: Path, data_dir: str) -> dict:
    out = {}
    for config in load_grid(baseline):
        config = config.replace(data_dir=os.path.abspath(data_dir), repeats=1, steps=1, warmup_steps=0)
        result = measure(config)
        out[f"{config.task} {config.impl} S={config.samples}"] = {
            "flops_per_step": result.row["flops_per_step"], "alloc_bytes_per_step": result.row["alloc_bytes_per_step"],
            "aten_ops_per_step": result.row["aten_ops_per_step"], "graph_bytes": result.row["graph_bytes"],
            "ops": result.op_counts}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("baseline", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--data-dir", default=os.environ.get("BNN_BENCH_DATA", "../shared/data/mnist"))
    args = parser.parse_args(argv)
    found = counters(args.baseline, args.data_dir)
    args.out.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    for label, c in found.items():
        print(f"{label}: {c['aten_ops_per_step']} ops, {c['flops_per_step']} FLOPs, "
              f"{c['alloc_bytes_per_step']} bytes allocated, {c['graph_bytes']} graph bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
