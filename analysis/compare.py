"""The regression check's statistics: compare a candidate run with a baseline, config by config.

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

The decision rule follows asv's `continuous` rather than pytest-benchmark's single-run percentage:
a change is a regression only if it is both large (more than `threshold`, default 10%) and
significant. Significance comes from the stored repeats: each side's medians are bootstrapped
(seeded, so a verdict is reproducible) and the one-sided bootstrap p-value of "no slowdown" must be
under `alpha`; for absolute times Mann-Whitney U (scipy) on the per-repeat step times must agree.
Point estimates are ratios of medians, which one slow repeat cannot move.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from analysis.errors import AnalysisInputError
from bench.contract.errors import UsageError
from bench.contract.store import read_ops

MATCH_KEYS = ("task", "device", "impl", "kl", "prior", "n_mc", "samples", "batch_size", "dtype")
PARTNER_KEYS = ("task", "device", "samples", "prior", "batch_size", "dtype")
BASELINE_IMPL = "sequential"
N_BOOT = 4000
GRAPH_BYTES_TOLERANCE = 0.01
CUDA_PEAK_TOLERANCE = 0.10
COUNTER_TOLERANCE = 0.01
#: Counters judged with `counter_threshold`: (column, label, unit divisor, unit name).
COUNTERS = (("flops_per_step", "FLOPs / step", 1e9, "GFLOP"),
            ("alloc_bytes_per_step", "alloc bytes / step", 2**20, "MiB"),
            ("instructions_per_step", "instructions / step", 1e6, "M"))
TABLE_COLUMNS = ("config", "metric", "baseline", "candidate", "change", "verdict")
#: Every column of Comparison.table (the JSON rows): the printed ones, then the numbers behind them.
ALL_COLUMNS = TABLE_COLUMNS + ("point", "low", "high", "threshold", "detail")


@dataclass(frozen=True)
class Side:
    """One run, normalized: a row per config (label, MATCH_KEYS, status, memory, fingerprint) and
    the per-step seconds of every counted repeat."""

    configs: pd.DataFrame  # indexed by label
    times: dict  # label -> np.ndarray of per-step seconds
    source: str
    rounds: dict = dataclasses.field(default_factory=dict)  # label -> round of each time (interleaved runs)
    ops: dict = dataclasses.field(default_factory=dict)  # label -> {ATen operator: count per step}


#: Verdict of a `time / base code` row whose base side failed: the comparison is incomplete.
UNPAIRED = "UNPAIRED"


@dataclass(frozen=True)
class Comparison:
    table: pd.DataFrame
    regressed: bool

    def regressions(self) -> pd.DataFrame:
        return self.table[self.table["verdict"] == "REGRESSION"]

    def unpaired(self) -> pd.DataFrame:
        """Configs a paired run meant to time beside the base code whose base side did not run."""
        return self.table[self.table["verdict"] == UNPAIRED]


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


def round_ratios(num: np.ndarray, num_rounds: np.ndarray, den: np.ndarray, den_rounds: np.ndarray) -> np.ndarray:
    """Per round, median(num) / median(den) over that round's repeats; rounds missing on either side dropped."""
    common = sorted(set(num_rounds.tolist()) & set(den_rounds.tolist()))
    return np.array([np.median(num[num_rounds == r]) / np.median(den[den_rounds == r]) for r in common], float)


def change_of_round_ratios(base: np.ndarray, cand: np.ndarray, rng) -> Change:
    """Change of the median per-round ratio, each side's rounds resampled (they are the independent units)."""
    point = np.median(cand) / np.median(base)
    boot = _boot_medians(cand, rng) / _boot_medians(base, rng)
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


def paired_change(cand: Side, base_code: Side, label, rng) -> Change | None:
    """Candidate over base code within each round of one paired run (None without common rounds)."""
    if label not in cand.rounds or label not in base_code.rounds:
        return None
    per_round = round_ratios(cand.times[label], cand.rounds[label], base_code.times[label], base_code.rounds[label])
    if len(per_round) < 2:
        return None
    point = float(np.median(per_round))
    return _change(point, _boot_medians(per_round, rng))


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


def _num(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(value) else value


def compare_sides(base: Side, cand: Side, *, threshold: float = 0.10, alpha: float = 0.05, seed: int = 0,
                  abs_threshold: float = 0.25, counter_threshold: float = COUNTER_TOLERANCE,
                  base_code: Side | None = None, paired_threshold: float = 0.05) -> Comparison:
    check_same_grid(base, cand)
    rng = np.random.default_rng(seed)
    rows = []

    def add(label, metric, b, c, change, v, point=None, low=None, high=None, limit=None, detail=""):
        rows.append(dict(config=label, metric=metric, baseline=b, candidate=c, change=change, verdict=v,
                         point=point, low=low, high=high, threshold=limit, detail=detail))

    def ok(side: Side, label: str) -> bool:
        return side.configs.loc[label, "status"] == "ok" and label in side.times and len(side.times[label]) > 0

    for label in base.configs.index:
        b_row, c_row = base.configs.loc[label], cand.configs.loc[label]
        if b_row["status"] == "ok" and c_row["status"] != "ok":
            add(label, "status", "ok", c_row["status"], str(c_row.get("error", ""))[:60], "REGRESSION",
                detail=str(c_row.get("error", "")))
            continue
        if b_row["status"] != "ok" and c_row["status"] == "ok":
            add(label, "status", b_row["status"], "ok", "", "improved")
        if not (ok(base, label) and ok(cand, label)):
            continue
        tb, tc = base.times[label], cand.times[label]
        # This config's time is judged by its pairs where the base code's side of them ran.
        paired = None
        if base_code is not None:
            if label in base_code.configs.index and ok(base_code, label):
                paired = paired_change(cand, base_code, label, rng)
            if paired is None:
                why = (f"{base_code.configs.loc[label, 'status']}: {base_code.configs.loc[label].get('error', '')}"
                       if label in base_code.configs.index else "no row")
                add(label, "time / base code", "", _ms(np.median(tc)), "not paired", UNPAIRED,
                    detail=f"the base code's side did not run ({why}); time judged as without pairs")
        has_pairs = paired is not None

        # 1. the ratio to sequential in the same run
        if b_row["impl"] != BASELINE_IMPL:
            pb, pc = _partner(base.configs, b_row), _partner(cand.configs, c_row)
            if pb is not None and pc is not None and ok(base, pb) and ok(cand, pc):
                ch, ratio_b, ratio_c, how = _ratio_change(base, cand, label, pb, pc, rng)
                # Where paired timing ran, the pairs judge time (they saw the same drift; a stored
                # ratio did not, and ratios move with the CPU model too: vmap/sequential 0.77 on an
                # AMD EPYC, 0.60 on an Intel Xeon, same code); this row is then shown for the record.
                # Without pairs, a ratio is judged on the baseline's own machine only (fingerprint).
                judged = not has_pairs and b_row["fingerprint"] == c_row["fingerprint"]
                add(label, "time / sequential", f"{ratio_b:.3f}", f"{ratio_c:.3f}", _change_text(ch),
                    verdict(ch, threshold, alpha) if judged else "info", ch.point, ch.low, ch.high,
                    threshold if judged else None,
                    f"bootstrap over {how}" + ("" if judged else "; the pairs judge time" if has_pairs
                                               else "; different machines"))

        # 1b. this code against the base commit's code, paired within each round of this run
        if has_pairs:
            ch = paired
            commit = str(base_code.configs.loc[label].get("git_commit", ""))[:10]
            # Two-sided: the 95% interval printed beside it must exclude "no change". With
            # alpha one-sided, a CI rehearsal on a VM whose steps ran 85% slower than usual
            # (host contention) flagged unchanged code at +6.5% [-1.2%, +26%]; every 10%
            # slowdown of the trials had its interval's low end at +2.4% or more.
            add(label, "time / base code", _ms(np.median(base_code.times[label])), _ms(np.median(tc)),
                _change_text(ch), verdict(ch, paired_threshold, alpha / 2), ch.point, ch.low, ch.high,
                paired_threshold, f"paired with {commit or 'the base commit'} in "
                                  f"{len(set(cand.rounds[label].tolist()))} rounds")

        # 2. absolute step time, judged only on the same machine fingerprint
        ch = change_of_medians(tb, tc, rng)
        same_machine = b_row["fingerprint"] == c_row["fingerprint"]
        judged = same_machine and not has_pairs
        if judged:
            mw_slower = stats.mannwhitneyu(tc, tb, alternative="greater").pvalue
            mw_faster = stats.mannwhitneyu(tc, tb, alternative="less").pvalue
            v = verdict(ch, abs_threshold, alpha, mw_slower, mw_faster)
        else:
            v = "info"
        add(label, "step time", _ms(np.median(tb)), _ms(np.median(tc)), _change_text(ch), v, ch.point, ch.low,
            ch.high, abs_threshold if judged else None,
            "the pairs judge time" if has_pairs else "" if same_machine else "different machines")

        # 3. memory
        for col, tolerance in (("graph_bytes", GRAPH_BYTES_TOLERANCE), ("peak_allocated_bytes", CUDA_PEAK_TOLERANCE)):
            vb, vc = b_row.get(col), c_row.get(col)
            if pd.isna(vb) or pd.isna(vc) or float(vb) <= 0:
                continue
            growth = float(vc) / float(vb)
            v = "REGRESSION" if growth > 1 + tolerance else ("improved" if growth < 1 - tolerance else "ok")
            add(label, col, f"{float(vb) / 2**20:.2f} MiB", f"{float(vc) / 2**20:.2f} MiB", _pct(growth), v,
                growth, limit=tolerance)

        # 4. deterministic counters: exact, so judged tightly, where both sides ran the same torch
        same_torch = str(b_row.get("torch_version")) == str(c_row.get("torch_version"))
        for col, name, unit, unit_name in COUNTERS:
            vb, vc = _num(b_row.get(col)), _num(c_row.get(col))
            if vb is None or vc is None or vb <= 0:
                continue
            growth = vc / vb
            v = ("REGRESSION" if growth > 1 + counter_threshold else
                 "improved" if growth < 1 / (1 + counter_threshold) else "ok") if same_torch else "info"
            add(label, name, f"{vb / unit:.4g} {unit_name}", f"{vc / unit:.4g} {unit_name}", _pct(growth), v, growth,
                limit=counter_threshold, detail="" if same_torch else "different torch versions")
        vb, vc = _num(b_row.get("aten_ops_per_step")), _num(c_row.get("aten_ops_per_step"))
        if vb is not None and vc is not None and vb > 0:
            changes = op_changes(base.ops.get(label, {}), cand.ops.get(label, {}))
            grew = [(n, d) for n, d in changes if d > 0]
            if not same_torch:
                v = "info"
            elif grew or vc > vb:
                v = "REGRESSION"
            else:
                v = "improved" if vc < vb else "ok"
            text = _pct(vc / vb) + (f": {_op_text(changes)}" if changes else "")
            add(label, "ATen ops / step", f"{vb:.0f}", f"{vc:.0f}", text, v, vc / vb, limit=0.0,
                detail="; ".join(f"{n} {d:+d}" for n, d in changes))

    table = pd.DataFrame(rows, columns=list(ALL_COLUMNS))
    return Comparison(table, bool((table["verdict"] == "REGRESSION").any()))


PAIRED_DIR = "base"  # inside a fresh run: the base commit's rows, timed in the same rounds


def compare_paths(baseline, candidate, *, threshold: float = 0.10, alpha: float = 0.05, seed: int = 0,
                  abs_threshold: float = 0.25, counter_threshold: float = COUNTER_TOLERANCE,
                  paired_threshold: float = 0.05) -> Comparison:
    paired = Path(candidate) / PAIRED_DIR
    base_code = side_from_results_dir(paired) if (paired / "runs.csv").is_file() else None
    return compare_sides(load_side(baseline), load_side(candidate), threshold=threshold, alpha=alpha, seed=seed,
                         abs_threshold=abs_threshold, counter_threshold=counter_threshold, base_code=base_code,
                         paired_threshold=paired_threshold)


# -- output formats -------------------------------------------------------------------------------

FORMATS = ("text", "markdown", "github")


def render(comparison: Comparison, fmt: str = "text") -> str:
    """The table as text (terminal), markdown (a pull-request comment) or github (the text table
    followed by one `::error` workflow command per regressed row, which GitHub Actions turns into
    an annotation)."""
    table = comparison.table
    if table.empty:
        return "nothing to compare: no config finished in both runs"
    shown = table[list(TABLE_COLUMNS)]
    if fmt == "markdown":
        return render_markdown(comparison)
    text = shown.to_string(index=False, justify="left")
    if fmt == "github":
        lines = [text]
        for _, row in comparison.regressions().iterrows():
            lines.append(f"::error title=performance regression: {_gh(row['config'])}::"
                         f"{_gh(row['metric'])}: {_gh(row['baseline'])} -> {_gh(row['candidate'])} ({_gh(row['change'])})")
        return "\n".join(lines)
    return text


def _gh(text) -> str:
    """A value inside a GitHub workflow command: %, CR, LF escaped as the runner expects (and : , in titles)."""
    return str(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A").replace("::", "%3A%3A")


def _md(text) -> str:
    return str(text).replace("|", "\\|")


def render_markdown(comparison: Comparison) -> str:
    table = comparison.table
    regressions = comparison.regressions()
    unpaired = comparison.unpaired()
    head = (f"**{len(set(regressions['config']))} config(s) regressed**" if len(regressions)
            else f"**Incomplete: the base code did not run {len(set(unpaired['config']))} config(s)**"
            if len(unpaired) else "**No performance regression**")
    lines = [head, "", "| " + " | ".join(TABLE_COLUMNS) + " |", "|" + "---|" * len(TABLE_COLUMNS)]
    for _, row in table.iterrows():
        cells = [_md(row[c]) for c in TABLE_COLUMNS]
        if row["verdict"] in ("REGRESSION", UNPAIRED):
            cells[-1] = f"**{row['verdict']}**"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparison_json(comparison: Comparison, *, baseline: str, candidate: str, settings: dict) -> str:
    """The comparison as JSON (format documented in the README, "check --json")."""
    def clean(v):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return None
        return v.item() if hasattr(v, "item") else v

    rows = [{k: clean(v) for k, v in row.items()} for row in comparison.table.to_dict(orient="records")]
    doc = {"format": "bnn-bench-check/1", "baseline": str(baseline), "candidate": str(candidate),
           "regressed": comparison.regressed, "settings": settings,
           "regressions": sorted(set(comparison.regressions()["config"])),
           "unpaired": sorted(set(comparison.unpaired()["config"])), "rows": rows}
    return json.dumps(doc, indent=2)
