"""Figures, drawn headless with matplotlib (Agg), each written as PNG and SVG.

Every line plots one point per x per series, at the median of the rows sharing that x, with their spread
(analysis.per_x): rows that share an x never zigzag."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
matplotlib.rcParams["svg.fonttype"] = "none"  # keep text as text: searchable, editable, and testable
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.per_x import groups, per_x, plot_per_x  # noqa: E402
from bench.contract.files import make_dir, write_atomic  # noqa: E402

COLORS = {"sequential": "tab:red", "vmap": "tab:blue", "vmap_lrt": "tab:green"}
#: Any other implementation (a plugin, a peer library) gets the next of these, in order of appearance, and
#: a dashed line, so it never takes one of our three colors.
OTHER_COLORS = ("tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray", "black",
                "gold", "navy")


def impl_styles(impls) -> dict:
    """impl -> (color, line format): ours solid in their fixed colors, every other name dashed in its own color."""
    styles, others = {}, 0
    for impl in dict.fromkeys(impls):
        if impl in COLORS:
            styles[impl] = (COLORS[impl], "o-")
        else:
            styles[impl] = (OTHER_COLORS[others % len(OTHER_COLORS)], "s--")
            others += 1
    return styles
KL_COLORS = {"mc": "tab:red", "repar": "tab:blue", "repar_exact": "tab:green", "closed": "tab:gray",
             "sample": "tab:purple"}


def _machine_key(frame: pd.DataFrame) -> pd.Series:
    """The machine of each row (analysis.load adds it; '' for frames without one), to group lines by."""
    return (frame["machine"].fillna("") if "machine" in frame.columns
            else pd.Series("", index=frame.index, name="machine"))


def _machines(frame: pd.DataFrame) -> int:
    return _machine_key(frame).nunique()


def _marker(frame: pd.DataFrame, machine: str) -> str:
    """Solid lines for the first machine of a merged report, then dashed and dotted."""
    styles = ("o-", "s--", "^:", "d-.")
    names = list(dict.fromkeys(_machine_key(frame)))
    return styles[names.index(machine) % len(styles)]


def save_figure(fig, out_dir: Path, name: str) -> list[Path]:
    """The figure as PNG and SVG, each written whole (bench.contract.files)."""
    make_dir(out_dir)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.svg"]
    for path, options in zip(paths, ({"format": "png", "dpi": 130}, {"format": "svg"})):
        buffer = io.BytesIO()
        fig.savefig(buffer, bbox_inches="tight", **options)
        write_atomic(path, buffer.getvalue())
    plt.close(fig)
    return paths


def _panels(n: int, width: float = 5.5, height: float = 4.2):
    fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False)
    return fig, axes[0]


def epoch_time_vs_samples(main: pd.DataFrame, spread: pd.DataFrame, machine: str, out_dir: Path,
                          reference: pd.DataFrame | None = None, reference_label: str = "") -> list[Path]:
    """Seconds per epoch against S, one panel per (task, device); the reference's lines dashed. A line per
    (impl, kl, n_mc, machine), its band the repeats' quartiles (and the range of rows that share an S)."""
    # Only lines over S: a KL-estimator check at a single S is a point, not a line, and has its own figure.
    keys = ["task", "device", "impl", "kl", "n_mc"]
    curves = main[main.groupby(keys, dropna=False)["samples"].transform("nunique") >= 2]
    panels = list(curves.groupby(["task", "device"], sort=False))
    if not panels:
        return []
    fig, axes = _panels(len(panels))
    styles = impl_styles(curves["impl"])
    for ax, ((task, device), group) in zip(axes, panels):
        several, n_mcs = _machines(group) > 1, group["n_mc"].nunique() > 1
        rows = group.assign(_machine=_machine_key(group), _q25=group["run_id"].map(spread["q25"]),
                            _q75=group["run_id"].map(spread["q75"]))
        keys = ["impl", "kl", "n_mc", "_machine"]
        points = per_x(rows, "samples", "epoch_s", keys, low="_q25", high="_q75")
        for (impl, kl, n_mc, mach), p in groups(points, keys):
            color, fmt = styles[impl]
            label = f"{impl} ({kl}" + (f", n_mc {n_mc}" if n_mcs else "") + ")" + (f", {mach}" if several else "")
            plot_per_x(ax, p, "samples", fmt if not several else _marker(group, mach), band=True, color=color,
                       label=label)
        if reference is not None:
            ref_points = per_x(reference[reference["task"] == task], "samples", "epoch_s", ["impl"])
            for (impl,), p in groups(ref_points, ["impl"]):
                plot_per_x(ax, p, "samples", "--", color=COLORS.get(impl), alpha=0.7,
                           label=f"{impl}, {reference_label}")
        measured = ("measured" if group["epoch_measured"].astype(str).str.lower().eq("true").all()
                    else "extrapolated from steps")
        ax.set_title(f"{task} on {device}: epoch time ({measured})", fontsize=10)
        ax.set_xlabel("weight samples per step, S")
        ax.set_ylabel("seconds per epoch")
        ax.set_yscale("log" if reference is not None else "linear")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"Training time per epoch against samples — {machine}", fontsize=11)
    return save_figure(fig, out_dir, "epoch_time_vs_samples")


def speedup_vs_samples(speedups: pd.DataFrame, machine: str, out_dir: Path) -> list[Path]:
    """Epoch-time speedup over sequential against S, with its bootstrap interval; a line per (impl, kl, machine)."""
    per_s = speedups[speedups["kind"] == "epoch_time"]
    per_s = per_s[per_s.groupby(["task", "device", "impl", "kl"])["samples"].transform("nunique") >= 2]
    panels = list(per_s.groupby(["task", "device"], sort=False))
    if not panels:
        return []
    fig, axes = _panels(len(panels))
    styles = impl_styles(per_s["impl"])
    for ax, ((task, device), group) in zip(axes, panels):
        several = _machines(group) > 1
        keys = ["impl", "kl", "_machine"]
        # A point ratio of medians can sit just outside its bootstrap interval: plot_per_x draws no negative bar.
        points = per_x(group.assign(_machine=_machine_key(group)), "samples", "ratio", keys, low="ci_low",
                       high="ci_high")
        for (impl, kl, mach), p in groups(points, keys):
            color, fmt = styles[impl]
            plot_per_x(ax, p, "samples", _marker(group, mach) if several else fmt, color=color,
                       label=f"{impl} ({kl})" + (f", {mach}" if several else ""))
        ax.axhline(1.0, color="tab:red", linestyle=":", label="sequential")
        ax.set_title(f"{task} on {device}: speedup over sequential", fontsize=10)
        ax.set_xlabel("weight samples per step, S")
        ax.set_ylabel("sequential epoch time / implementation's (x)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"Speedup against the sequential loop (95% bootstrap intervals) — {machine}", fontsize=11)
    return save_figure(fig, out_dir, "speedup_vs_samples")


def kl_cost_vs_n_mc(runs: pd.DataFrame, machine: str, out_dir: Path) -> list[Path]:
    """Step time and saved-tensor bytes against n_mc per KL estimator, log-log; failed configs marked. A line
    per (kl, task, device, impl, S, machine): impl and S are named in the label where they vary."""
    kl_runs = runs[runs["kl"].isin(["mc", "repar", "repar_exact"])]
    if kl_runs["n_mc"].nunique() < 2:
        return []
    fig, axes = _panels(2)
    several = _machines(kl_runs) > 1
    keys = ["kl", "task", "device", "impl", "samples", "_machine"]
    rows = kl_runs.assign(_machine=_machine_key(kl_runs), _ms=kl_runs["step_s_median"] * 1000,
                          _mib=kl_runs["graph_bytes"] / 2**20)
    ok = rows[rows["status"] == "ok"]
    named = [k for k in ("impl", "samples") if kl_runs[k].nunique() > 1]
    for ax, y in zip(axes, ("_ms", "_mib")):
        for key, p in groups(per_x(ok, "n_mc", y, keys), keys):
            k = dict(zip(keys, key))
            extra = "".join(f", {name if name != 'samples' else 'S'} {k[name]}" for name in named)
            label = f"{k['kl']} ({k['task']}, {k['device']}{extra}" + (f", {k['_machine']})" if several else ")")
            plot_per_x(ax, p, "n_mc", "o-", color=KL_COLORS.get(k["kl"]), label=label)
    for (kl, _), failed in rows[rows["status"] != "ok"].groupby(["kl", "n_mc"], sort=False):
        color = KL_COLORS.get(kl)
        for _, row in failed.head(1).iterrows():
            for ax in axes:
                ax.axvline(row["n_mc"], color=color, linestyle=":", alpha=0.6)
                ax.annotate(row["status"], (row["n_mc"], 1), xycoords=("data", "axes fraction"), rotation=90,
                            va="top", fontsize=7, color=color)
    for ax, ylabel in zip(axes, ["milliseconds per step", "MiB saved for backward per step"]):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("KL Monte Carlo draws, n_mc")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_title("time against n_mc", fontsize=10)
    axes[1].set_title("autograd memory against n_mc", fontsize=10)
    fig.suptitle(f"KL estimators: cost of more Monte Carlo draws — {machine}", fontsize=11)
    return save_figure(fig, out_dir, "kl_cost_vs_n_mc")
