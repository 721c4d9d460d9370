"""history.csv's rows for one commit (bench/contract/history_store.py), from the commit's paired results
directory: the commit's code beside the reference's in the same rounds. The ratio and its interval
are the gate's `time / base code` (analysis/compare.py `paired_change`: the median over rounds of
commit/reference per round, rounds bootstrapped), so a history step is judged as the gate judges."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from analysis.compare import paired_change
from analysis.compare_stats import Change, round_ratios, verdict
from analysis.side import config_label, side_from_results_dir
from bench.contract.history_store import HISTORY_COUNTERS, format_round_ratios


def _cell(value):
    """A pandas cell as a plain value (None for missing)."""
    if value is None:
        return None
    try:
        if value != value:  # nan
            return None
    except (TypeError, ValueError):
        return None
    return value.item() if hasattr(value, "item") else value


def _config_fields(config: dict) -> dict:
    return dict(run_id=config["run_id"], config=config_label(config), impl=config["impl"], task=config["task"],
                samples=config["samples"])


def unsupported_rows(common: dict, configs: Sequence[dict], reason: str) -> list[dict]:
    """One `unsupported` row per config: the commit's tree cannot be driven (the reason says why)."""
    return [dict(common, **_config_fields(c), status="unsupported", reason=reason) for c in configs]


def commit_rows(results_dir: Path, common: dict, configs: Sequence[dict], *, out_dir: Optional[Path] = None,
                seed: int = 0) -> list[dict]:
    """One row per config (`configs`: dicts with run_id, impl, task, samples, device, ...; `common`: the
    commit's fields: position, commit, subject, commit_date, reference)."""
    return [row for row, _ in _rows_and_changes(results_dir, common, configs, out_dir=out_dir, seed=seed)]


def _rows_and_changes(results_dir: Path, common: dict, configs: Sequence[dict], *, out_dir: Optional[Path],
                      seed: int) -> list[tuple[dict, Optional[Change]]]:
    """`commit_rows`' rows, each with its paired change (None where the row is not `ok`)."""
    results_dir = Path(results_dir)
    cand = side_from_results_dir(results_dir)
    base = side_from_results_dir(results_dir / "base") if (results_dir / "base" / "runs.csv").is_file() else None
    by_run = {str(row["run_id"]): label for label, row in cand.configs.iterrows()}
    base_by_run = {} if base is None else {str(row["run_id"]): label for label, row in base.configs.iterrows()}
    relative = str(results_dir.relative_to(out_dir)) if out_dir is not None else str(results_dir)
    rng = np.random.default_rng(seed)
    rows = []
    for config in configs:
        row = dict(common, **_config_fields(config), results_dir=relative)
        label = by_run.get(config["run_id"])
        if label is None:
            rows.append((dict(row, status="failed", reason="no row: the run was interrupted"), None))
            continue
        row["config"] = label  # as check labels it (the estimator resolved)
        mine = cand.configs.loc[label]
        row.update({c: _cell(mine.get(c)) for c in HISTORY_COUNTERS})  # the commit's own counts
        if mine["status"] != "ok" or label not in cand.times:
            rows.append((dict(row, status="failed", reason=f"{mine['status']}: {_cell(mine.get('error')) or ''}"),
                         None))
            continue
        row["step_s_median"] = float(np.median(cand.times[label]))
        base_label = base_by_run.get(config["run_id"])
        if base_label is None or base.configs.loc[base_label, "status"] != "ok" or base_label not in base.times:
            why = "no row" if base_label is None else (f"{base.configs.loc[base_label, 'status']}: "
                                                       f"{_cell(base.configs.loc[base_label].get('error')) or ''}")
            rows.append((dict(row, status="base_failed", reason=f"the reference's code did not run it ({why})"), None))
            continue
        row["reference_step_s_median"] = float(np.median(base.times[base_label]))
        change = paired_change(cand, base, label, rng) if base_label == label else None
        if change is None:
            rows.append((dict(row, status="base_failed", reason="no common rounds with the reference's code"), None))
            continue
        per_round = round_ratios(cand.times[label], cand.rounds[label], base.times[label], base.rounds[label])
        rows.append((dict(row, status="ok", reason="", ratio=change.point, ratio_low=change.low,
                          ratio_high=change.high, rounds=len(per_round), round_ratios=format_round_ratios(per_round)),
                     change))
    return rows


def paired_verdict(results_dir: Path, run_id: str, *, threshold: float, alpha: float,
                   seed: int = 0) -> tuple[Optional[Change], str, str]:
    """(change, verdict, detail) of one config of a paired results directory, by the gate's rule for its
    `time / base code` row (two-sided: alpha / 2 a side); change None where it has no pairs (detail: why)."""
    ((row, change),) = _rows_and_changes(Path(results_dir), {}, [{"run_id": run_id, "impl": "", "task": "",
                                                                  "samples": 1, "device": ""}], out_dir=None, seed=seed)
    if change is None:
        return None, "skip", f"{row['status']}: {row.get('reason', '')}"[:300]
    return change, verdict(change, threshold, alpha / 2), f"{row['rounds']} rounds"
