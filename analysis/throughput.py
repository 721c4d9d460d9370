"""report.md's "Throughput" and "Levers" sections: achieved TFLOP/s and MFU per config, and what each
speed lever (bench/training/levers.py) did to the step time against the baseline measured in the same directory.

Columns written by bench/measure/step.py: `flops_per_step`, `achieved_tflops`, `mfu_fp32`, `mfu_tf32`,
`mfu_bf16` (empty on CPUs and GPUs without datasheet peaks), `step_mode`, `precision`, `optimizer`.
Results directories written before those columns existed simply get no such sections.
"""

from __future__ import annotations

from typing import Optional

import pandas as pd

LEVER_COLUMNS = ("step_mode", "precision", "optimizer")
BASELINE = ("eager", "fp32", "adam")
KEYS = ["task", "device", "impl", "kl", "n_mc", "samples"]


#: A switch lever (bench/training/levers.py's `--flush-denormal`): named in the label when on.
SWITCH_LEVERS = ("flush_denormal",)


def _switched_on(value) -> bool:
    return str(value).strip().lower() in ("true", "1", "1.0")  # a bool from runs.csv, a string from other files


def _lever_label(row) -> str:
    changed = [str(row[c]) for c, base in zip(LEVER_COLUMNS, BASELINE) if str(row[c]) != base]
    changed += [c for c in SWITCH_LEVERS if c in row.index and _switched_on(row[c])]
    return "+".join(changed) if changed else "baseline"


def _with_levers(ok: pd.DataFrame) -> pd.DataFrame:
    frame = ok.copy()
    for column, default in zip(LEVER_COLUMNS, BASELINE):
        if column not in frame:
            frame[column] = default
        recorded = frame[column].notna() & (frame[column].astype(str) != "")  # an empty cell: not recorded
        frame[column] = frame[column].astype(object).where(recorded, default)
    frame["lever"] = frame.apply(_lever_label, axis=1)
    return frame


def lever_labels(runs: pd.DataFrame) -> pd.Series:
    """Each row's lever label ("baseline", "cudagraphs", "compile+bf16", ...), failed rows included."""
    if runs.empty:
        return pd.Series([], index=runs.index, dtype=object)
    return _with_levers(runs)["lever"]


def select_lever(runs: pd.DataFrame, lever: Optional[str]) -> tuple[pd.DataFrame, str]:
    """The rows of one lever setting, and its label: the main tables (slopes, Table 2, speedups,
    memory, figures) compare implementations at ONE setting; mixing eager and CUDA-graph rows of one
    config would fit a slope through both. `lever` None: the baseline where the directory has it,
    else its only setting. Raises ValueError naming the settings present when that is ambiguous or
    `lever` is not among them."""
    labels = lever_labels(runs)
    present = list(dict.fromkeys(labels))
    if lever is None:
        if "baseline" in present or len(present) <= 1:
            lever = "baseline" if "baseline" in present or not present else present[0]
        else:
            raise ValueError(f"this directory holds several lever settings ({', '.join(present)}) and no baseline: "
                             "pick one with --lever")
    if present and lever not in present:
        raise ValueError(f"--lever {lever}: not in this directory; it holds {', '.join(present)}")
    return runs[labels == lever] if present else runs, lever


def throughput_table(ok: pd.DataFrame) -> pd.DataFrame:
    """One row per ok config with FLOPs: ms per step, GFLOP per step, TFLOP/s and the MFU columns present."""
    if "achieved_tflops" not in ok or not ok["achieved_tflops"].notna().any():
        return pd.DataFrame()
    frame = _with_levers(ok[ok["achieved_tflops"].notna()])
    table = pd.DataFrame({
        "task": frame["task"], "device": frame["device"], "impl": frame["impl"], "S": frame["samples"],
        "lever": frame["lever"], "ms/step": frame["step_s_median"] * 1e3,
        "GFLOP/step": frame["flops_per_step"] / 1e9, "TFLOP/s": frame["achieved_tflops"],
    })
    for column in ("mfu_fp32", "mfu_tf32", "mfu_bf16"):
        if column in frame and frame[column].notna().any():
            table[column.replace("mfu_", "MFU ")] = frame[column]
    return table.sort_values(["task", "device", "impl", "S", "lever"]).reset_index(drop=True)


def lever_table(ok: pd.DataFrame) -> pd.DataFrame:
    """Step time of each lever and its speedup over the baseline of the same (task, device, impl, kl, n_mc, S)."""
    frame = _with_levers(ok)
    if frame["lever"].nunique() < 2 or not (frame["lever"] == "baseline").any():
        return pd.DataFrame()
    base = frame[frame["lever"] == "baseline"].groupby(KEYS)["step_s_median"].median().rename("baseline_s")
    levers = frame[frame["lever"] != "baseline"].join(base, on=KEYS)
    levers = levers[levers["baseline_s"].notna()]
    if levers.empty:
        return pd.DataFrame()
    return pd.DataFrame({
        "task": levers["task"], "device": levers["device"], "impl": levers["impl"], "S": levers["samples"],
        "lever": levers["lever"], "baseline ms/step": levers["baseline_s"] * 1e3,
        "lever ms/step": levers["step_s_median"] * 1e3, "speedup": levers["baseline_s"] / levers["step_s_median"],
    }).sort_values(["task", "device", "impl", "S", "lever"]).reset_index(drop=True)


def throughput_section(ok: pd.DataFrame, markdown_table) -> list[str]:
    """Lines of report.md; empty when the directory has neither FLOPs nor more than one lever."""
    lines: list[str] = []
    table = throughput_table(ok)
    if len(table):
        lines += ["", "## Throughput", "", markdown_table(table), "",
                  "TFLOP/s: matmul FLOPs of one step (torch's FLOP counter, forward and backward) over the median "
                  "step time. MFU: that over the GPU's dense datasheet peak for FP32 (CUDA cores), TF32 and BF16 "
                  "(tensor cores), from bench/measure/gpu_peaks.py; empty on CPUs and on GPUs not in its table."]
        if "MFU fp32" in table:
            best = table.loc[table["MFU fp32"].idxmax()]
            lines.append(f"- Highest: {best['impl']} on {best['task']} at S = {best['S']} ({best['lever']}), "
                         f"{best['TFLOP/s']:.3g} TFLOP/s, {best['MFU fp32']:.1%} of the FP32 peak.")
    levers = lever_table(ok)
    if len(levers):
        lines += ["", "## Levers", "", markdown_table(levers), "",
                  "speedup: the baseline's median step time (eager, fp32, torch's Adam) over the lever's, same "
                  "directory; one lever changed at a time."]
        for _, r in levers.sort_values("speedup", ascending=False).head(3).iterrows():
            lines.append(f"- {r['lever']} on {r['impl']} {r['task']} S = {r['S']}: {r['speedup']:.2f}x "
                         f"({r['baseline ms/step']:.3g} -> {r['lever ms/step']:.3g} ms/step).")
    return lines
