"""The regression check's statistics: compare a candidate run with a baseline, config by config.

What is compared, and why:
- **Ratios measured in one run.** Each implementation's step time over `sequential`'s at the same
  task, device and S. A machine that got uniformly slower (another job on the node, a slower cloud
  instance) moves numerator and denominator together and changes no ratio; one implementation that
  got slower does. This is the comparison that works across machines and noisy CI runners.
- **Absolute step times**, only when the machine fingerprint (CPU model or GPU name, torch version,
  threads) is the same on both sides; otherwise shown as `info`. These catch what ratios cannot: a
  slowdown of `sequential` itself, or of every implementation at once on the same machine. Their
  threshold is separate (`abs_threshold`, default 25%): on the 2-core CI machine, back-to-back runs
  of unchanged code moved absolute step times by up to 16% while ratios moved by at most 7%.
- **Memory.** `graph_bytes` is deterministic: growth beyond 1% is a regression. The CUDA allocator
  peak has workspace noise: beyond 10%.

The decision rule follows asv's `continuous` rather than pytest-benchmark's single-run percentage:
a change is a regression only if it is both large (more than `threshold`, default 10%) and
significant. Significance comes from the stored repeats: each side's medians are bootstrapped
(seeded, so a verdict is reproducible) and the one-sided bootstrap p-value of "no slowdown" must be
under `alpha`; for absolute times Mann-Whitney U (scipy) on the per-repeat step times must agree.
Point estimates are ratios of medians, which one slow repeat cannot move.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from analysis.errors import AnalysisInputError

MATCH_KEYS = ("task", "device", "impl", "kl", "prior", "n_mc", "samples", "batch_size", "dtype")
PARTNER_KEYS = ("task", "device", "samples", "prior", "batch_size", "dtype")
BASELINE_IMPL = "sequential"
N_BOOT = 4000
GRAPH_BYTES_TOLERANCE = 0.01
CUDA_PEAK_TOLERANCE = 0.10
TABLE_COLUMNS = ("config", "metric", "baseline", "candidate", "change", "verdict")


@dataclass(frozen=True)
class Side:
    """One run, normalized: a row per config (label, MATCH_KEYS, status, memory, fingerprint) and
    the per-step seconds of every counted repeat."""

    configs: pd.DataFrame  # indexed by label
    times: dict  # label -> np.ndarray of per-step seconds
    source: str


@dataclass(frozen=True)
class Comparison:
    table: pd.DataFrame
    regressed: bool

    def regressions(self) -> pd.DataFrame:
        return self.table[self.table["verdict"] == "REGRESSION"]


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
    from analysis.load import load_results

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
    runs["fingerprint"] = runs.apply(lambda r: (str(r["device_name"]), str(r["torch_version"]), str(r["threads"])), axis=1)
    reps = results.repeats
    times = {}
    labels = runs.set_index("run_id")["label"]
    for run_id, g in reps.groupby("run_id"):
        if run_id in labels.index:
            times[labels[run_id]] = (g["seconds"] / g["steps"]).to_numpy(float)
    return Side(runs.set_index("label"), times, str(directory))


def load_side(path) -> Side:
    path = Path(path)
    if path.is_file() and path.suffix == ".json":
        from analysis.benchmark_json import side_from_benchmark_json

        return side_from_benchmark_json(path)
    return side_from_results_dir(path)


# -- statistics ---------------------------------------------------------------------------------


def _boot_medians(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    idx = rng.integers(0, len(values), size=(N_BOOT, len(values)))
    return np.median(values[idx], axis=1)


@dataclass(frozen=True)
class Change:
    point: float  # candidate / baseline (> 1: slower)
    low: float
    high: float
    p_slower: float  # one-sided p-value of "not slower"
    p_faster: float


def change_of_medians(base: np.ndarray, cand: np.ndarray, rng) -> Change:
    point = np.median(cand) / np.median(base)
    boot = _boot_medians(cand, rng) / _boot_medians(base, rng)
    return _change(point, boot)


def change_of_ratios(base_num, base_den, cand_num, cand_den, rng) -> Change:
    """Change of (num / den) between the runs: (cand_num/cand_den) / (base_num/base_den)."""
    point = (np.median(cand_num) / np.median(cand_den)) / (np.median(base_num) / np.median(base_den))
    boot = (_boot_medians(cand_num, rng) / _boot_medians(cand_den, rng)) / (
        _boot_medians(base_num, rng) / _boot_medians(base_den, rng))
    return _change(point, boot)


def _change(point: float, boot: np.ndarray) -> Change:
    low, high = np.percentile(boot, [2.5, 97.5])
    # One-sided bootstrap p-values, with the +1 correction so p is never exactly 0.
    p_slower = (np.sum(boot <= 1.0) + 1) / (len(boot) + 1)
    p_faster = (np.sum(boot >= 1.0) + 1) / (len(boot) + 1)
    return Change(float(point), float(low), float(high), float(p_slower), float(p_faster))


def verdict(change: Change, threshold: float, alpha: float, extra_p_slower: float = 0.0,
            extra_p_faster: float = 0.0) -> str:
    if change.point > 1 + threshold and max(change.p_slower, extra_p_slower) < alpha:
        return "REGRESSION"
    if change.point < 1 / (1 + threshold) and max(change.p_faster, extra_p_faster) < alpha:
        return "improved"
    return "ok"


def _pct(x: float) -> str:
    return f"{(x - 1) * 100:+.1f}%"


def _change_text(c: Change) -> str:
    return f"{_pct(c.point)} [{_pct(c.low)}, {_pct(c.high)}]"


def _ms(x: float) -> str:
    return f"{x * 1000:.3g} ms"


# -- the comparison -----------------------------------------------------------------------------


def check_same_grid(base: Side, cand: Side) -> None:
    only_b = sorted(set(base.configs.index) - set(cand.configs.index))
    only_c = sorted(set(cand.configs.index) - set(base.configs.index))
    if only_b or only_c:
        what = []
        if only_b:
            what.append(f"only in the baseline: {', '.join(only_b[:3])}{' ...' if len(only_b) > 3 else ''}")
        if only_c:
            what.append(f"only in the candidate: {', '.join(only_c[:3])}{' ...' if len(only_c) > 3 else ''}")
        raise AnalysisInputError(f"grids differ ({'; '.join(what)}): compare runs of the same grid, or omit "
                                 "CANDIDATE to re-run the baseline's grid here")


def _partner(configs: pd.DataFrame, row) -> str | None:
    keys = [k for k in PARTNER_KEYS if k in configs.columns]
    mask = configs["impl"] == BASELINE_IMPL
    for k in keys:
        mask &= (configs[k] == row[k]) | (configs[k].isna() & pd.isna(row[k]))
    if "n_mc" in configs.columns:
        mask &= configs["n_mc"].fillna(1) == 1
    hits = configs.index[mask]
    return hits[0] if len(hits) else None


def compare_sides(base: Side, cand: Side, *, threshold: float = 0.10, alpha: float = 0.05, seed: int = 0,
                  abs_threshold: float = 0.25) -> Comparison:
    check_same_grid(base, cand)
    rng = np.random.default_rng(seed)
    rows = []

    def ok(side: Side, label: str) -> bool:
        return side.configs.loc[label, "status"] == "ok" and label in side.times and len(side.times[label]) > 0

    for label in base.configs.index:
        b_row, c_row = base.configs.loc[label], cand.configs.loc[label]
        if b_row["status"] == "ok" and c_row["status"] != "ok":
            rows.append((label, "status", "ok", c_row["status"], str(c_row.get("error", ""))[:60], "REGRESSION"))
            continue
        if b_row["status"] != "ok" and c_row["status"] == "ok":
            rows.append((label, "status", b_row["status"], "ok", "", "improved"))
        if not (ok(base, label) and ok(cand, label)):
            continue
        tb, tc = base.times[label], cand.times[label]

        # 1. the ratio to sequential in the same run
        if b_row["impl"] != BASELINE_IMPL:
            pb, pc = _partner(base.configs, b_row), _partner(cand.configs, c_row)
            if pb is not None and pc is not None and ok(base, pb) and ok(cand, pc):
                ch = change_of_ratios(tb, base.times[pb], tc, cand.times[pc], rng)
                ratio_b = np.median(tb) / np.median(base.times[pb])
                ratio_c = np.median(tc) / np.median(cand.times[pc])
                rows.append((label, "time / sequential", f"{ratio_b:.3f}", f"{ratio_c:.3f}", _change_text(ch),
                             verdict(ch, threshold, alpha)))

        # 2. absolute step time, judged only on the same machine fingerprint
        ch = change_of_medians(tb, tc, rng)
        same_machine = b_row["fingerprint"] == c_row["fingerprint"]
        if same_machine:
            mw_slower = stats.mannwhitneyu(tc, tb, alternative="greater").pvalue
            mw_faster = stats.mannwhitneyu(tc, tb, alternative="less").pvalue
            v = verdict(ch, abs_threshold, alpha, mw_slower, mw_faster)
        else:
            v = "info"
        rows.append((label, "step time", _ms(np.median(tb)), _ms(np.median(tc)), _change_text(ch), v))

        # 3. memory
        for col, tolerance in (("graph_bytes", GRAPH_BYTES_TOLERANCE), ("peak_allocated_bytes", CUDA_PEAK_TOLERANCE)):
            vb, vc = b_row.get(col), c_row.get(col)
            if pd.isna(vb) or pd.isna(vc) or float(vb) <= 0:
                continue
            growth = float(vc) / float(vb)
            v = "REGRESSION" if growth > 1 + tolerance else ("improved" if growth < 1 - tolerance else "ok")
            rows.append((label, col, f"{float(vb) / 2**20:.2f} MiB", f"{float(vc) / 2**20:.2f} MiB", _pct(growth), v))

    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    return Comparison(table, bool((table["verdict"] == "REGRESSION").any()))


def compare_paths(baseline, candidate, *, threshold: float = 0.10, alpha: float = 0.05, seed: int = 0,
                  abs_threshold: float = 0.25) -> Comparison:
    return compare_sides(load_side(baseline), load_side(candidate), threshold=threshold, alpha=alpha, seed=seed,
                         abs_threshold=abs_threshold)


def render(comparison: Comparison) -> str:
    table = comparison.table
    if table.empty:
        return "nothing to compare: no config finished in both runs"
    return table.to_string(index=False, justify="left")
