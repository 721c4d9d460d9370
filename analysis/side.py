"""One side of a comparison: a run normalized to a row per config (its label, match keys, status,
memory, machine fingerprint) and the per-step seconds of every counted repeat, with their rounds and
operator counts. Built from a results directory here, from pytest-benchmark JSON in benchmark_json."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pandas as pd

from analysis.load import load_results
from bench.contract.errors import AnalysisInputError, UsageError
from bench.contract.store import read_ops


@dataclass(frozen=True)
class Side:
    """One run, normalized: a row per config (label, its task, device, impl, kl, prior, n_mc, samples, batch size
    and dtype, status, memory, fingerprint) and the per-step seconds of every counted repeat."""

    configs: pd.DataFrame  # indexed by label
    times: dict  # label -> np.ndarray of per-step seconds
    source: str
    rounds: dict = dataclasses.field(default_factory=dict)  # label -> round of each time (interleaved runs)
    ops: dict = dataclasses.field(default_factory=dict)  # label -> {ATen operator: count per step}


def config_label(row) -> str:
    parts = [str(row["task"]), str(row["impl"])]
    if pd.notna(row.get("kl")) and row.get("kl") != "":
        parts.append(str(row["kl"]))
    if pd.notna(row.get("n_mc")) and int(row["n_mc"]) != 1:
        parts.append(f"n_mc={int(row['n_mc'])}")
    if pd.notna(row.get("samples")):
        parts.append(f"S={int(row['samples'])}")
    for key in ("prior", "batch_size", "dtype"):
        if key in row and pd.notna(row[key]) and str(row[key]) not in ("gaussian", "float32", "128", "128.0", ""):
            parts.append(f"{key}={row[key]}")
    parts.append(str(row["device"]))
    return " ".join(parts)


def side_from_results_dir(directory) -> Side:
    results = load_results(directory)
    runs = results.runs.copy()
    if "device_name" not in runs or runs["device_name"].isna().all():
        runs["device_name"] = runs.get("cpu_model")
    for col in ("torch_version", "threads", "graph_bytes", "peak_allocated_bytes"):
        if col not in runs:
            runs[col] = pd.NA
    runs["label"] = runs.apply(config_label, axis=1)
    if runs["label"].duplicated().any():
        dup = runs.loc[runs["label"].duplicated(), "label"].iloc[0]
        raise AnalysisInputError(f"{directory}: two configs share {dup!r} (different seeds or threads in one run?): "
                                 "compare runs with one row per config")
    runs["fingerprint"] = runs.apply(lambda r: (str(r["device_name"]), str(r["torch_version"]), str(r["threads"])),
                                     axis=1)
    reps = results.repeats
    times, rounds = {}, {}
    labels = runs.set_index("run_id")["label"]
    for run_id, g in reps.groupby("run_id"):
        if run_id in labels.index:
            times[labels[run_id]] = (g["seconds"] / g["steps"]).to_numpy(float)
            if "round" in g and g["round"].notna().all():
                rounds[labels[run_id]] = g["round"].to_numpy(int)
    try:
        ops = {labels[k]: v for k, v in read_ops(directory).items() if k in labels.index}
    except UsageError as e:
        raise AnalysisInputError(str(e)) from None
    return Side(runs.set_index("label"), times, str(directory), rounds, ops)
