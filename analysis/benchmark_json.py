"""pytest-benchmark's `--benchmark-json` files as a side of the regression check.

Each benchmark becomes one config, its rounds the repeats (`stats.data`, seconds per iteration of
each round). Parameters named like our axes (impl, samples, task, kl) fill those columns, so a
suite parametrized by implementation gets the same ratio-to-sequential comparison as a sweep.
The fingerprint is the CPU brand and Python from `machine_info`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.side import Side
from bench.contract.errors import AnalysisInputError


def side_from_benchmark_json(path) -> Side:
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
        benchmarks = doc["benchmarks"]
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
        raise AnalysisInputError(f"{path} is not a pytest-benchmark JSON file ({type(e).__name__}): write one with "
                                 "`pytest --benchmark-json=FILE`") from None
    machine = doc.get("machine_info", {}) or {}
    cpu = (machine.get("cpu") or {}).get("brand_raw") or machine.get("processor") or ""
    fingerprint = (str(cpu), str(machine.get("python_version", "")), "")
    rows, times = [], {}
    for bench in benchmarks:
        data = (bench.get("stats") or {}).get("data")
        name = bench.get("fullname") or bench.get("name")
        if not data:
            raise AnalysisInputError(f"{path}: benchmark {name!r} has no raw timings (stats.data): "
                                     "write the file with pytest-benchmark 3.1 or newer, `--benchmark-json=FILE`")
        params = bench.get("params") or {}
        row = {
            "label": name,
            "task": params.get("task", bench.get("group") or ""),
            "impl": params.get("impl", ""),
            "kl": params.get("kl", ""),
            "samples": params.get("samples", np.nan),
            "device": params.get("device", ""),
            "prior": np.nan, "n_mc": np.nan, "batch_size": np.nan, "dtype": np.nan,
            "status": "ok", "graph_bytes": np.nan, "peak_allocated_bytes": np.nan,
            "fingerprint": fingerprint,
        }
        rows.append(row)
        times[name] = np.asarray(data, dtype=float)
    configs = pd.DataFrame(rows).set_index("label")
    return Side(configs, times, str(path))
