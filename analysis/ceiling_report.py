"""How far each step is from this machine's matmul ceiling, where the rest of its time goes, and
whether it ran on denormal floats: the report's CPU-efficiency sections.

The figures come from the run itself: runs.csv's ceiling columns (bench/measure/ceiling.py: the
step's own GEMM and convolution calls replayed alone at their shapes), meta.json's reference GEMM
rate, and profiles/time_split.csv (bench/measure/profiler.py: the profiler's self times by part).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import pandas as pd

from analysis.load import read_checked_table
from analysis.throughput import lever_labels
from bench.contract.errors import AnalysisInputError
from bench.contract.schema import TIME_SPLIT_COLUMNS, TIME_SPLIT_FILE, TIME_SPLIT_PARTS

#: A row's gradients count as "on denormals" from this share of denormal elements up.
DENORMAL_SHARE = 1e-4

PART_LABELS = {"matmul_conv_ms": "matmul / conv", "sampling_ms": "sampling (RNG)",
               "elementwise_ms": "elementwise and other ops", "optimizer_ms": "optimizer (Adam)",
               "overhead_ms": "Python, dispatch, autograd engine"}
PART_COLORS = {"matmul_conv_ms": "tab:blue", "sampling_ms": "tab:purple", "elementwise_ms": "tab:orange",
               "optimizer_ms": "tab:green", "overhead_ms": "tab:gray"}


def _numeric(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(float("nan"), index=frame.index)
    return pd.to_numeric(frame[column], errors="coerce")


def _with_lever_column(table: pd.DataFrame, rows: pd.DataFrame, after: str) -> pd.DataFrame:
    """`table` with a `lever` column after `after` where any of `rows` ran with a speed lever
    (compile, fused Adam, bf16, ...): rows of one implementation are then told apart. A directory of
    plain steps (the default job) keeps its columns."""
    labels = lever_labels(rows)
    if labels.empty or (labels == "baseline").all():
        return table
    table.insert(table.columns.get_loc(after) + 1, "lever", labels.to_numpy())
    return table


#: What must match, beside the calls, for two replays to be of the same work on the same machine: a
#: directory can hold rows of several machines (`analyze` of merged sources, a `--resume` elsewhere).
REPLAY_KEY_COLUMNS = ("device", "device_name", "cpu_model", "threads")


def _same_calls(ok: pd.DataFrame) -> tuple[pd.Series, pd.Series, Optional[object]]:
    """(each row's own ceiling time, which rows have a calls id and a ceiling, those rows grouped by
    calls id and REPLAY_KEY_COLUMNS; None where no row has an id: written before the column)."""
    own = _numeric(ok, "ceiling_s_per_step")
    if "ceiling_calls_id" not in ok.columns:
        return own, pd.Series(False, index=ok.index), None
    ids = ok["ceiling_calls_id"].astype(object).where(ok["ceiling_calls_id"].notna(), "").astype(str)
    keyed = (ids != "") & own.notna()
    if not keyed.any():
        return own, keyed, None
    keys = [ids[keyed]] + [ok.loc[keyed, c].astype(str) for c in REPLAY_KEY_COLUMNS if c in ok.columns]
    return own, keyed, own[keyed].groupby(keys)


def best_ceiling_s(ok: pd.DataFrame) -> pd.Series:
    """Each row's ceiling time, the fastest replay of its calls in the directory: rows with the same
    `ceiling_calls_id`, device, machine and threads replayed the very same GEMM/conv calls (a lever that leaves
    the matmuls alone: fused Adam, compile, flush-to-zero), and a replay is only ever slowed by the
    host, so the fastest is the machine's rate for that work (a 25% slower replay of identical calls
    was seen on the 2-vCPU VM). Rows without an id (written before it) keep their own."""
    own, keyed, groups = _same_calls(ok)
    return own if groups is None else own.where(~keyed, groups.transform("min"))


def ceiling_replays(ok: pd.DataFrame) -> pd.Series:
    """How many rows' replays `best_ceiling_s` took the fastest of (1 for a row alone or without an id)."""
    _, keyed, groups = _same_calls(ok)
    counts = pd.Series(1, index=ok.index)
    if groups is not None:
        counts[keyed] = groups.transform("size")
    return counts


def step_over_ceiling(ok: pd.DataFrame, best: Optional[pd.Series] = None) -> pd.Series:
    """Median step time over `best_ceiling_s` (`best`, where the caller has it): the row's own step /
    ceiling (1 / fraction_of_ceiling) rescaled from its own replay to the fastest (NaN where a row has
    no ceiling)."""
    fraction = _numeric(ok, "fraction_of_ceiling")
    own = _numeric(ok, "ceiling_s_per_step")
    best = best_ceiling_s(ok) if best is None else best
    rescale = (own / best.where(best > 0)).fillna(1.0)
    return (1.0 / fraction.where(fraction > 0)) * rescale


def ceiling_table(ok: pd.DataFrame) -> pd.DataFrame:
    """One row per config with a ceiling, at each task's largest S and n_mc 1: step time, achieved
    and ceiling GFLOP/s, and the step over its ceiling time (1.0 would be pure matmul work); with a
    `lever` column where the rows ran with different speed levers."""
    fraction = _numeric(ok, "fraction_of_ceiling")
    rows = ok[fraction.notna() & (fraction > 0)].copy()
    if rows.empty:
        return pd.DataFrame()
    # The fastest replay of each row's calls over every row that made them, before rows are dropped.
    rows["_best_s"], rows["_replays"] = best_ceiling_s(rows), ceiling_replays(rows)
    rows["_ratio"] = step_over_ceiling(rows, rows["_best_s"])
    rows = rows[_numeric(rows, "n_mc").fillna(1) == 1]
    rows = rows[rows["samples"] == rows.groupby(["task", "device"])["samples"].transform("max")]
    own = _numeric(rows, "ceiling_s_per_step")
    table = pd.DataFrame({
        "task": rows["task"], "device": rows["device"], "impl": rows["impl"], "kl": rows["kl"],
        "S": rows["samples"], "threads": rows.get("threads"),
        "step ms": _numeric(rows, "step_s_median") * 1e3,
        "ceiling ms": rows["_best_s"] * 1e3,
        "step / ceiling (x)": rows["_ratio"],
        "achieved GFLOP/s": _numeric(rows, "achieved_gflops"),
        "ceiling GFLOP/s": _numeric(rows, "ceiling_gflops") * own / rows["_best_s"],
    })
    if (rows["_replays"] > 1).any():
        table["ceiling replays"] = rows["_replays"]
    table = _with_lever_column(table, rows, after="impl")
    return table.sort_values(["task", "device", "step / ceiling (x)"]).reset_index(drop=True)


def _reference_sentence(meta: dict) -> list[str]:
    entries = [e for e in ((meta.get("ceiling") or {}).get("reference_gemm") or [])
               if isinstance(e, dict) and isinstance(e.get("gflops"), (int, float))]
    if not entries:
        return []
    parts = [f"{e['gflops']:.0f} GFLOP/s ({e.get('device')}, {e.get('dtype')}, {e.get('threads')} threads)"
             for e in entries]
    n = entries[0].get("n", "?")
    return [f"For scale, a square {n} x {n} x {n} GEMM ran at " + "; ".join(parts) + " on this machine when "
            "the sweep's last config had finished (meta.json `ceiling`)."]


def denormal_lines(ok: pd.DataFrame) -> list[str]:
    """A warning per config whose gradients were denormal when its timing ended."""
    share = _numeric(ok, "denormal_grad_fraction")
    hit = ok[share >= DENORMAL_SHARE]
    if hit.empty:
        return []
    lines = ["", f"**Denormal floats:** {len(hit)} config(s) ended their timing with at least "
             f"{DENORMAL_SHARE:.0e} of their gradient elements denormal, which CPUs process in microcode, several "
             "times slower; their step times are not those of a fresh model. Re-run with `--flush-denormal` "
             "(flush to zero) to measure without that cost:", ""]
    for _, row in hit.head(10).iterrows():
        lines.append(f"- {row['task']} {row['impl']} S = {row['samples']}: "
                     f"{float(share[row.name]):.2%} denormal (flush_denormal {row.get('flush_denormal', '?')})")
    return lines


def ceiling_section(ok: pd.DataFrame, meta: dict, table_fn: Callable) -> list[str]:
    table = ceiling_table(ok)
    lines = denormal_lines(ok)
    if table.empty:
        return lines
    head = ["", "## Distance from the matmul ceiling", "",
            "The ceiling of a step is its own GEMM and convolution calls, each replayed alone at its recorded "
            "shapes, dtype and threads on this machine, untimed and while no other config was timed "
            "(bench/measure/ceiling.py): what the step would take if it did nothing else. `step / ceiling` is "
            "the measured step over that time; the rest is sampling, elementwise work, the optimizer and "
            "Python (the time split below). At each "
            "task's largest S; every row's columns are in runs.csv.", ""]
    return head + [table_fn(table), ""] + _reference_sentence(meta) + lines


def read_time_split(directories) -> pd.DataFrame:
    """The time-split rows of the given results directories (none: an empty frame). The file is data,
    read and checked line by line by the store (bench/contract/store.py), as runs.csv is: a row whose
    numbers are missing or do not parse is an error naming the file, line and column, not a guess."""
    numeric = ("wall_ms_per_step", *TIME_SPLIT_PARTS, "samples")
    frames = []
    for directory in directories:
        path = Path(directory) / TIME_SPLIT_FILE
        rows = read_checked_table(path, TIME_SPLIT_COLUMNS, numeric)
        for number, row in enumerate(rows, start=2):
            empty = next((c for c in numeric if not row[c]), None)
            if empty:
                raise AnalysisInputError(f"{path} line {number}: {empty} is empty: move the file away or profile "
                                         "again")
        if rows:
            frame = pd.DataFrame(rows, columns=list(TIME_SPLIT_COLUMNS))
            frame[list(numeric)] = frame[list(numeric)].apply(pd.to_numeric)  # checked above
            frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=list(TIME_SPLIT_COLUMNS))
    # The same config profiled twice: the last row counts.
    return pd.concat(frames, ignore_index=True).drop_duplicates("run_id", keep="last").reset_index(drop=True)


#: The parts no fusion of elementwise work removes: the matmuls themselves, the RNG's draws and the
#: optimizer's update (each of which a lever can only make faster, not fold into another kernel).
FLOOR_PARTS = ("matmul_conv_ms", "sampling_ms", "optimizer_ms")
FLOOR_COLUMN = "step / ceiling without elementwise and Python (x)"


def time_split_table(split: pd.DataFrame, ok: Optional[pd.DataFrame] = None) -> pd.DataFrame:
    """The split per profiled config, its matmul share and its floor share (matmul + RNG + optimizer
    over the wall time). Where `ok` (runs.csv's ok rows) has the same run_id with a ceiling, also what
    step / ceiling would be if the elementwise work and the Python overhead cost nothing: the timed
    step's ratio scaled by the floor share (the profiler's inflation cancels in the share); CPU rows only."""
    table = pd.DataFrame({"task": split["task"], "impl": split["impl"], "S": split["samples"],
                          "threads": split["threads"], "wall ms": split["wall_ms_per_step"]})
    table = _with_lever_column(table, split, after="impl")
    for part in TIME_SPLIT_PARTS:
        table[PART_LABELS[part]] = split[part]
    table["matmul share"] = split["matmul_conv_ms"] / split["wall_ms_per_step"]
    floor_share = split[list(FLOOR_PARTS)].sum(axis=1) / split["wall_ms_per_step"]
    table["matmul + RNG + optimizer share"] = floor_share
    if ok is not None and not ok.empty and "run_id" in ok.columns:
        ratio_by_run = step_over_ceiling(ok)
        ratio_by_run = ratio_by_run[ratio_by_run.notna()].groupby(ok["run_id"]).last()
        # CPU rows only: on a GPU the profiler splits the host's time, not the kernels' (profiler.time_split).
        on_cpu = split["device"].astype(str).str.startswith("cpu")
        ratio = split["run_id"].map(ratio_by_run).where(on_cpu)
        if ratio.notna().any():
            table[FLOOR_COLUMN] = ratio * floor_share
    return table


def time_split_section(split: pd.DataFrame, table_fn: Callable, figure: Optional[Path],
                       ok: Optional[pd.DataFrame] = None) -> list[str]:
    if split.empty:
        return []
    table = time_split_table(split, ok)
    lines = ["", "## Where a step's time goes", "",
             "Milliseconds per step under torch.profiler (`profile`; the default job profiles its MNIST S = 10 "
             "configs): each operator's self CPU time in one part (a compiled graph's fused kernels count as "
             "elementwise); the optimizer's whole call tree in "
             "`optimizer`; what no operator accounts for (the step's Python, dispatch, autograd's engine, "
             "the profiler's own cost) in the last column, so the parts add up to the wall time. Profiled "
             "steps run slower than timed ones.", "",
             "`matmul + RNG + optimizer share`: the part of the step that fusing elementwise work and removing "
             "Python cannot touch."]
    if FLOOR_COLUMN in table.columns:
        lines[-1] += (f" `{FLOOR_COLUMN}`: the timed step's distance from its matmul ceiling (above) times "
                      "that share, i.e. the nearest the step could come to its ceiling without faster matmuls, "
                      "draws or optimizer.")
    lines += ["", table_fn(table)]
    if figure is not None:
        lines += ["", f"![time split](figures/{figure.name})"]
    return lines


def time_split_figure(split: pd.DataFrame, out_dir: Path, save: Callable) -> list[Path]:
    """A stacked horizontal bar per profiled config: milliseconds per step by part."""
    if split.empty:
        return []
    import matplotlib.pyplot as plt

    levers = lever_labels(split)
    labels = [f"{r.task} {r.impl} S={int(r.samples)}" + ("" if lever == "baseline" else f" {lever}")
              for r, lever in zip(split.itertuples(), levers)]
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(split) + 2.0))
    left = pd.Series(0.0, index=split.index)
    for part in TIME_SPLIT_PARTS:
        ax.barh(labels, split[part], left=left, color=PART_COLORS[part], label=PART_LABELS[part])
        left = left + split[part]
    ax.invert_yaxis()
    ax.set_xlabel("milliseconds per step (profiled)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False)
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_title("Where a step's time goes", fontsize=10)
    return save(fig, out_dir, "time_split")
