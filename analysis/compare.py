"""The regression check: compare a candidate run with a baseline, config by config.

What is compared, and why:
- **Ratios measured in one run.** Each implementation's step time over `sequential`'s at the same
  task, device and S. A machine that got uniformly slower (another job on the node, a slower cloud
  instance) moves numerator and denominator together and changes no ratio; one implementation that
  got slower does. Across CPU models ratios move too (vmap/sequential on the `ci` regression
  config: 0.77 on an AMD EPYC, 0.60-0.68 on an Intel Xeon), so it is judged only on the same
  machine fingerprint (else `info`). Where a paired run judges time (below), this row and the
  next are `info` as well: they compare with numbers measured at another time, under other drift.
- **Absolute step times**, only when the machine fingerprint (CPU model or GPU name, torch version,
  threads) is the same on both sides; otherwise shown as `info`. These catch what ratios cannot: a
  slowdown of `sequential` itself, or of every implementation at once on the same machine. Their
  threshold is separate (`abs_threshold`, default 25%): on the 2-core CI machine, back-to-back runs
  of unchanged code moved absolute step times by up to 16% while ratios moved by at most 7%.
- **Memory.** `graph_bytes` is deterministic: growth beyond 1% is a regression. The CUDA allocator
  peak has workspace noise: beyond 10%.
- **Deterministic cost counters** (bench/measure/counters.py): FLOPs, bytes allocated and Callgrind
  instructions per step beyond `counter_threshold` (default 1%), and the ATen operators
  dispatched per step: their counts are exact, so any operator whose count grew is a regression
  and is named. Judged when both sides ran the same torch version (else `info`: another torch
  dispatches other operators).
- **Paired timing** (bench/gate/paired.py `run_rounds_paired`): where the fresh run also timed the
  baseline commit's code (its rows in `CANDIDATE/base/`), each config's two sides ran back to back
  in every round, so they saw the same drift. The change is the median over rounds of
  candidate/base per round, bootstrapped over rounds, judged against `paired_threshold` (derived
  from reruns of unchanged code, where it is far smaller than the time thresholds above). This is
  the comparison that sees a 10% slowdown of one implementation on a noisy 2-core machine.
- **Interleaved rounds** (bench/run/rounds.py): where both runs recorded the round of each repeat,
  the ratio to `sequential` is formed within each round (the two were timed minutes apart at
  most) and the change is the ratio of the medians over rounds, bootstrapped by resampling
  rounds. Runs without rounds fall back to the ratio of medians over repeats.

The decision rule (analysis/compare_stats.py) follows asv's `continuous` rather than
pytest-benchmark's single-run percentage: a change is a regression only if it is both large (more
than `threshold`, default 10%) and significant. Significance comes from the stored repeats: each
side's medians are bootstrapped (seeded, so a verdict is reproducible) and the one-sided bootstrap
p-value of "no slowdown" must be under `alpha`; for absolute times Mann-Whitney U (scipy) on the
per-repeat step times must agree. Point estimates are ratios of medians, which one slow repeat
cannot move.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
from scipy import stats

from analysis.compare_render import TABLE_COLUMNS, UNPAIRED, change_text, ms, pct
from analysis.compare_stats import (
    Change,
    boot_medians,
    change_from_boot,
    change_of_medians,
    change_of_ratios,
    change_of_round_ratios,
    round_ratios,
    verdict,
)
from analysis.side import Side, side_from_results_dir
from bench.contract.errors import AnalysisInputError

PARTNER_KEYS = ("task", "device", "samples", "prior", "batch_size", "dtype")
BASELINE_IMPL = "sequential"
GRAPH_BYTES_TOLERANCE = 0.01
CUDA_PEAK_TOLERANCE = 0.10
COUNTER_TOLERANCE = 0.01
#: Counters judged with `counter_threshold`: (column, label, unit divisor, unit name).
COUNTERS = (("flops_per_step", "FLOPs / step", 1e9, "GFLOP"),
            ("alloc_bytes_per_step", "alloc bytes / step", 2**20, "MiB"),
            ("instructions_per_step", "instructions / step", 1e6, "M"))
#: Every column of Comparison.table (the JSON rows): the printed ones, then the numbers behind them.
ALL_COLUMNS = TABLE_COLUMNS + ("point", "low", "high", "threshold", "detail")
PAIRED_DIR = "base"  # inside a fresh run: the base commit's rows, timed in the same rounds


@dataclass(frozen=True)
class Comparison:
    table: pd.DataFrame
    regressed: bool

    def regressions(self) -> pd.DataFrame:
        return self.table[self.table["verdict"] == "REGRESSION"]

    def unpaired(self) -> pd.DataFrame:
        """Configs a paired run meant to time beside the base code whose base side did not run."""
        return self.table[self.table["verdict"] == UNPAIRED]


@dataclass(frozen=True)
class Thresholds:
    """What counts as a change, per comparison (see the module docstring)."""

    ratio: float = 0.10
    alpha: float = 0.05
    absolute: float = 0.25
    counter: float = COUNTER_TOLERANCE
    paired: float = 0.05


def load_side(path) -> Side:
    """A results directory, or a pytest-benchmark JSON file."""
    path = Path(path)
    if path.is_file() and path.suffix == ".json":
        from analysis.benchmark_json import side_from_benchmark_json

        return side_from_benchmark_json(path)
    return side_from_results_dir(path)


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


def paired_change(cand: Side, base_code: Side, label, rng) -> Change | None:
    """Candidate over base code within each round of one paired run (None without common rounds)."""
    if label not in cand.rounds or label not in base_code.rounds:
        return None
    per_round = round_ratios(cand.times[label], cand.rounds[label], base_code.times[label], base_code.rounds[label])
    if len(per_round) < 2:
        return None
    point = float(np.median(per_round))
    return change_from_boot(point, boot_medians(per_round, rng))


def _ratio_change(base: Side, cand: Side, label, pb, pc, rng) -> tuple[Change, float, float, str]:
    """(change, baseline ratio, candidate ratio, how): per round where both runs have rounds."""
    tb, tc = base.times[label], cand.times[label]
    if all(k in s.rounds for s, k in ((base, label), (base, pb), (cand, label), (cand, pc))):
        rb = round_ratios(tb, base.rounds[label], base.times[pb], base.rounds[pb])
        rc = round_ratios(tc, cand.rounds[label], cand.times[pc], cand.rounds[pc])
        if len(rb) and len(rc):
            return change_of_round_ratios(rb, rc, rng), float(np.median(rb)), float(np.median(rc)), "rounds"
    ch = change_of_ratios(tb, base.times[pb], tc, cand.times[pc], rng)
    return ch, np.median(tb) / np.median(base.times[pb]), np.median(tc) / np.median(cand.times[pc]), "repeats"


def op_changes(base_ops: dict, cand_ops: dict) -> list[tuple[str, int]]:
    """(operator, count change) for every operator whose count differs, largest growth first."""
    names = set(base_ops) | set(cand_ops)
    diffs = [(n, int(cand_ops.get(n, 0)) - int(base_ops.get(n, 0))) for n in names]
    return sorted(((n, d) for n, d in diffs if d), key=lambda nd: (-nd[1], nd[0]))


def _op_text(changes, limit: int = 4) -> str:
    text = ", ".join(f"{n} {d:+d}" for n, d in changes[:limit])
    return text + (f" (+{len(changes) - limit} more)" if len(changes) > limit else "")


def number_or_none(value) -> float | None:
    """`value` as a float; None where it is missing, not a number, or NaN (a CSV cell, a pandas value)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(value) else value


def _ok(side: Side, label: str) -> bool:
    return side.configs.loc[label, "status"] == "ok" and label in side.times and len(side.times[label]) > 0


@dataclass
class _Rows:
    """The comparison table being built, one row per (config, metric)."""

    rows: list = field(default_factory=list)

    def add(self, label, metric, b, c, change, v, point=None, low=None, high=None, limit=None, detail=""):
        self.rows.append(dict(config=label, metric=metric, baseline=b, candidate=c, change=change, verdict=v,
                              point=point, low=low, high=high, threshold=limit, detail=detail))


def _status_rows(out: _Rows, label, b_row, c_row) -> bool:
    """A config that stopped working is a regression (and nothing else is compared); True if it was."""
    if b_row["status"] == "ok" and c_row["status"] != "ok":
        out.add(label, "status", "ok", c_row["status"], str(c_row.get("error", ""))[:60], "REGRESSION",
                detail=str(c_row.get("error", "")))
        return True
    if b_row["status"] != "ok" and c_row["status"] == "ok":
        out.add(label, "status", b_row["status"], "ok", "", "improved")
    return False


def _paired_pairs(out: _Rows, label, cand: Side, base_code: Optional[Side], rng) -> Optional[Change]:
    """This config's change against the base code timed in the same rounds; an UNPAIRED row where that
    side did not run (its time is then judged as without pairs)."""
    if base_code is None:
        return None
    paired = None
    if label in base_code.configs.index and _ok(base_code, label):
        paired = paired_change(cand, base_code, label, rng)
    if paired is None:
        why = (f"{base_code.configs.loc[label, 'status']}: {base_code.configs.loc[label].get('error', '')}"
               if label in base_code.configs.index else "no row")
        out.add(label, "time / base code", "", ms(np.median(cand.times[label])), "not paired", UNPAIRED,
                detail=f"the base code's side did not run ({why}); time judged as without pairs")
    return paired


def _ratio_row(out: _Rows, label, base: Side, cand: Side, b_row, c_row, has_pairs: bool, limits: Thresholds,
               rng) -> None:
    """The ratio to sequential in the same run."""
    if b_row["impl"] == BASELINE_IMPL:
        return
    pb, pc = _partner(base.configs, b_row), _partner(cand.configs, c_row)
    if pb is None or pc is None or not (_ok(base, pb) and _ok(cand, pc)):
        return
    ch, ratio_b, ratio_c, how = _ratio_change(base, cand, label, pb, pc, rng)
    # Where paired timing ran, the pairs judge time (they saw the same drift; a stored ratio did not,
    # and ratios move with the CPU model too: vmap/sequential 0.77 on an AMD EPYC, 0.60 on an Intel
    # Xeon, same code); this row is then shown for the record. Without pairs, a ratio is judged on the
    # baseline's own machine only (fingerprint).
    judged = not has_pairs and b_row["fingerprint"] == c_row["fingerprint"]
    out.add(label, "time / sequential", f"{ratio_b:.3f}", f"{ratio_c:.3f}", change_text(ch),
            verdict(ch, limits.ratio, limits.alpha) if judged else "info", ch.point, ch.low, ch.high,
            limits.ratio if judged else None,
            f"bootstrap over {how}" + ("" if judged else "; the pairs judge time" if has_pairs
                                       else "; different machines"))


def _paired_row(out: _Rows, label, cand: Side, base_code: Side, ch: Change, limits: Thresholds) -> None:
    """This code against the base commit's code, paired within each round of this run."""
    commit = str(base_code.configs.loc[label].get("git_commit", ""))[:10]
    # Two-sided: the 95% interval printed beside it must exclude "no change". With alpha one-sided,
    # a CI rehearsal on a VM whose steps ran 85% slower than usual (host contention) flagged
    # unchanged code at +6.5% [-1.2%, +26%]; every 10% slowdown of the trials had its interval's low
    # end at +2.4% or more.
    out.add(label, "time / base code", ms(np.median(base_code.times[label])), ms(np.median(cand.times[label])),
            change_text(ch), verdict(ch, limits.paired, limits.alpha / 2), ch.point, ch.low, ch.high,
            limits.paired, f"paired with {commit or 'the base commit'} in "
                           f"{len(set(cand.rounds[label].tolist()))} rounds")


def _absolute_row(out: _Rows, label, base: Side, cand: Side, b_row, c_row, has_pairs: bool, limits: Thresholds,
                  rng) -> None:
    """Absolute step time, judged only on the same machine fingerprint (and without pairs)."""
    tb, tc = base.times[label], cand.times[label]
    ch = change_of_medians(tb, tc, rng)
    same_machine = b_row["fingerprint"] == c_row["fingerprint"]
    judged = same_machine and not has_pairs
    if judged:
        mw_slower = stats.mannwhitneyu(tc, tb, alternative="greater").pvalue
        mw_faster = stats.mannwhitneyu(tc, tb, alternative="less").pvalue
        v = verdict(ch, limits.absolute, limits.alpha, mw_slower, mw_faster)
    else:
        v = "info"
    out.add(label, "step time", ms(np.median(tb)), ms(np.median(tc)), change_text(ch), v, ch.point, ch.low,
            ch.high, limits.absolute if judged else None,
            "the pairs judge time" if has_pairs else "" if same_machine else "different machines")


def _memory_rows(out: _Rows, label, b_row, c_row) -> None:
    for col, tolerance in (("graph_bytes", GRAPH_BYTES_TOLERANCE), ("peak_allocated_bytes", CUDA_PEAK_TOLERANCE)):
        vb, vc = b_row.get(col), c_row.get(col)
        if pd.isna(vb) or pd.isna(vc) or float(vb) <= 0:
            continue
        growth = float(vc) / float(vb)
        v = "REGRESSION" if growth > 1 + tolerance else ("improved" if growth < 1 - tolerance else "ok")
        out.add(label, col, f"{float(vb) / 2**20:.2f} MiB", f"{float(vc) / 2**20:.2f} MiB", pct(growth), v,
                growth, limit=tolerance)


def _counter_rows(out: _Rows, label, base: Side, cand: Side, b_row, c_row, limits: Thresholds) -> None:
    """Deterministic counters: exact, so judged tightly, where both sides ran the same torch."""
    same_torch = str(b_row.get("torch_version")) == str(c_row.get("torch_version"))
    for col, name, unit, unit_name in COUNTERS:
        vb, vc = number_or_none(b_row.get(col)), number_or_none(c_row.get(col))
        if vb is None or vc is None or vb <= 0:
            continue
        growth = vc / vb
        v = ("REGRESSION" if growth > 1 + limits.counter else
             "improved" if growth < 1 / (1 + limits.counter) else "ok") if same_torch else "info"
        out.add(label, name, f"{vb / unit:.4g} {unit_name}", f"{vc / unit:.4g} {unit_name}", pct(growth), v, growth,
                limit=limits.counter, detail="" if same_torch else "different torch versions")
    vb, vc = number_or_none(b_row.get("aten_ops_per_step")), number_or_none(c_row.get("aten_ops_per_step"))
    if vb is None or vc is None or vb <= 0:
        return
    changes = op_changes(base.ops.get(label, {}), cand.ops.get(label, {}))
    grew = [(n, d) for n, d in changes if d > 0]
    if not same_torch:
        v = "info"
    elif grew or vc > vb:
        v = "REGRESSION"
    else:
        v = "improved" if vc < vb else "ok"
    text = pct(vc / vb) + (f": {_op_text(changes)}" if changes else "")
    out.add(label, "ATen ops / step", f"{vb:.0f}", f"{vc:.0f}", text, v, vc / vb, limit=0.0,
            detail="; ".join(f"{n} {d:+d}" for n, d in changes))


def compare_sides(base: Side, cand: Side, *, threshold: float = 0.10, alpha: float = 0.05, seed: int = 0,
                  abs_threshold: float = 0.25, counter_threshold: float = COUNTER_TOLERANCE,
                  base_code: Side | None = None, paired_threshold: float = 0.05) -> Comparison:
    """Every config of the grid, metric by metric (one seeded generator for every bootstrap, in a
    fixed order, so a verdict is reproducible)."""
    check_same_grid(base, cand)
    limits = Thresholds(threshold, alpha, abs_threshold, counter_threshold, paired_threshold)
    rng = np.random.default_rng(seed)
    out = _Rows()
    for label in base.configs.index:
        b_row, c_row = base.configs.loc[label], cand.configs.loc[label]
        if _status_rows(out, label, b_row, c_row) or not (_ok(base, label) and _ok(cand, label)):
            continue
        paired = _paired_pairs(out, label, cand, base_code, rng)
        _ratio_row(out, label, base, cand, b_row, c_row, paired is not None, limits, rng)
        if paired is not None:
            _paired_row(out, label, cand, base_code, paired, limits)
        _absolute_row(out, label, base, cand, b_row, c_row, paired is not None, limits, rng)
        _memory_rows(out, label, b_row, c_row)
        _counter_rows(out, label, base, cand, b_row, c_row, limits)
    table = pd.DataFrame(out.rows, columns=list(ALL_COLUMNS))
    return Comparison(table, bool((table["verdict"] == "REGRESSION").any()))


def compare_paths(baseline, candidate, *, threshold: float = 0.10, alpha: float = 0.05, seed: int = 0,
                  abs_threshold: float = 0.25, counter_threshold: float = COUNTER_TOLERANCE,
                  paired_threshold: float = 0.05) -> Comparison:
    paired = Path(candidate) / PAIRED_DIR
    base_code = side_from_results_dir(paired) if (paired / "runs.csv").is_file() else None
    return compare_sides(load_side(baseline), load_side(candidate), threshold=threshold, alpha=alpha, seed=seed,
                         abs_threshold=abs_threshold, counter_threshold=counter_threshold, base_code=base_code,
                         paired_threshold=paired_threshold)
