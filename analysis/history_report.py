"""OUT/history.md of `run_bench.py history` (docs/history.md): per config a table of its commits (time
relative to the reference with its interval, the commit's own step time, its counters), the changes
analysis/history_changes.py found, and a figure of the ratio against the commit, changes marked."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from analysis.compare import number_or_none  # noqa: E402
from analysis.figures import save_figure  # noqa: E402
from analysis.history_changes import (  # noqa: E402
    CounterStep,
    TimeStep,
    describe_counter_step,
    describe_time_step,
)

FIGURES_DIR = "figures"


def _ratio_text(row: dict) -> str:
    if row["status"] != "ok" or number_or_none(row.get("ratio")) is None:
        return f"{row['status']}: {row.get('reason', '')[:80]}"
    return f"{float(row['ratio']):.3f} [{float(row['ratio_low']):.3f}, {float(row['ratio_high']):.3f}]"


def _cell(text) -> str:
    return str(text).replace("|", "\\|")


def _counter_text(row: dict) -> str:
    flops, ops = number_or_none(row.get("flops_per_step")), number_or_none(row.get("aten_ops_per_step"))
    return " / ".join(["" if flops is None else f"{flops / 1e6:.4g} MFLOP", "" if ops is None else f"{ops:.0f} ops"])


def history_figure(rows: Sequence[dict], steps: Sequence[TimeStep], counters: Sequence[CounterStep], out_dir: Path,
                   name: str, title: str) -> list[Path]:
    """Ratio to the reference against the commit (interval bars); time steps red, counter changes grey."""
    fig, ax = plt.subplots(figsize=(max(5.5, 0.45 * len(rows) + 2), 3.8))
    ok = [r for r in rows if r["status"] == "ok" and number_or_none(r.get("ratio")) is not None]
    xs = [int(r["position"]) for r in ok]
    ys = [float(r["ratio"]) for r in ok]
    errors = [[y - float(r["ratio_low"]) for r, y in zip(ok, ys)], [float(r["ratio_high"]) - y for r, y in zip(ok, ys)]]
    ax.errorbar(xs, ys, yerr=errors, fmt="o-", capsize=3, color="tab:blue", label="commit / reference")
    ax.axhline(1.0, color="black", linewidth=0.8)
    for i, step in enumerate(steps):
        ax.axvline(step.position, color="tab:red", linestyle="--", label="time step" if i == 0 else None)
    for i, step in enumerate(counters):
        ax.axvline(step.position, color="grey", linestyle=":", label="counters changed" if i == 0 else None)
    ax.set_xticks([int(r["position"]) for r in rows])
    ax.set_xticklabels([r["commit"][:7] for r in rows], rotation=60, fontsize=7)
    ax.set_ylabel("time / reference (median over rounds)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return save_figure(fig, out_dir, name)


def _config_section(run_id: str, rows: list[dict], steps: list[TimeStep], counters: list[CounterStep],
                    out_dir: Path, figure_index: int) -> list[str]:
    config = next((r["config"] for r in rows if r.get("config")), run_id)
    lines = [f"## {config}", "", f"run_id `{run_id}`", ""]
    name = f"history-{figure_index:02d}"
    if any(r["status"] == "ok" and r.get("ratio") for r in rows):
        history_figure(rows, steps, counters, out_dir / FIGURES_DIR, name, config)
        lines += [f"![{config}]({FIGURES_DIR}/{name}.svg)", ""]
    lines += ["| # | commit | subject | time / reference [95%] | step time | counters |",
              "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        step = number_or_none(r.get("step_s_median"))
        lines.append(f"| {r['position']} | `{r['commit'][:12]}` | {_cell(r.get('subject', ''))[:70]} | "
                     f"{_cell(_ratio_text(r))} | {'' if step is None else f'{step * 1e3:.2f} ms'} | "
                     f"{_counter_text(r)} |")
    lines.append("")
    found = [describe_time_step(s) for s in steps] + [describe_counter_step(s) for s in counters]
    lines += (["Changes:", ""] + [f"- {_cell(text)}" for text in found] if found else ["No change detected."]) + [""]
    return lines


def history_markdown(rows: Sequence[dict], steps: Sequence[TimeStep], counters: Sequence[CounterStep], out_dir: Path,
                     *, threshold: float, reference: str) -> str:
    """The whole report (its figures written under out_dir/figures)."""
    commits = sorted({(int(r["position"]), r["commit"]) for r in rows})
    lines = ["# Performance history", "",
             f"{len(commits)} commit(s), each timed beside the reference commit `{reference[:12]}`'s code in the "
             "same interleaved rounds (`run_bench.py history`). A time step: the ratio to the reference, pooled over "
             f"the commit and the next one, moved beyond {threshold:.0%} from the two commits before, with a 95% "
             "interval excluding no change; a counter change: FLOPs, ATen operators, graph or allocated bytes per "
             "step differ.", ""]
    summary = [describe_time_step(s) for s in steps] + [describe_counter_step(s) for s in counters]
    lines += ["## Changes found", ""] + ([f"- {_cell(t)}" for t in summary] or ["None."]) + [""]
    order = list(dict.fromkeys(r["run_id"] for r in sorted(rows, key=lambda r: int(r["position"]))))
    for index, run_id in enumerate(order):
        mine = [r for r in rows if r["run_id"] == run_id]
        mine.sort(key=lambda r: int(r["position"]))
        lines += _config_section(run_id, mine, [s for s in steps if s.run_id == run_id],
                                 [s for s in counters if s.run_id == run_id], out_dir, index)
    return "\n".join(lines)
