"""Figures, drawn headless with matplotlib (Agg), each written as PNG and SVG."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
matplotlib.rcParams["svg.fonttype"] = "none"  # keep text as text: searchable, editable, and testable
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

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
    """Seconds per epoch against S, one panel per (task, device); the reference's lines dashed."""
    # Only lines over S: a KL-estimator check at a single S is a point, not a line, and has its own figure.
    keys = ["task", "device", "impl", "kl", "n_mc"]
    curves = main[main.groupby(keys, dropna=False)["samples"].transform("nunique") >= 2]
    panels = list(curves.groupby(["task", "device"], sort=False))
    if not panels:
        return []
    fig, axes = _panels(len(panels))
    styles = impl_styles(curves["impl"])
    for ax, ((task, device), group) in zip(axes, panels):
        several = _machines(group) > 1
        for (impl, kl, machine), g in group.groupby(["impl", "kl", _machine_key(group)], sort=False):
            g = g.sort_values("samples")
            color, fmt = styles[impl]
            low = g["run_id"].map(spread["q25"]) if len(spread) else None
            high = g["run_id"].map(spread["q75"]) if len(spread) else None
            ax.plot(g["samples"], g["epoch_s"], fmt if not several else _marker(group, machine), color=color,
                    label=f"{impl} ({kl})" + (f", {machine}" if several else ""))
            if low is not None and low.notna().all():
                ax.fill_between(g["samples"], low, high, color=color, alpha=0.2, linewidth=0)
        if reference is not None:
            for impl, g in reference[reference["task"] == task].groupby("impl", sort=False):
                g = g.sort_values("samples")
                ax.plot(g["samples"], g["epoch_s"], "--", color=COLORS.get(impl), alpha=0.7,
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
    per_s = speedups[speedups["kind"] == "epoch_time"]
    per_s = per_s[per_s.groupby(["task", "device", "impl", "kl"])["samples"].transform("nunique") >= 2]
    panels = list(per_s.groupby(["task", "device"], sort=False))
    if not panels:
        return []
    fig, axes = _panels(len(panels))
    styles = impl_styles(per_s["impl"])
    for ax, ((task, device), group) in zip(axes, panels):
        several = _machines(group) > 1
        for (impl, kl, machine), g in group.groupby(["impl", "kl", _machine_key(group)], sort=False):
            g = g.sort_values("samples")
            yerr = None
            if g["ci_low"].notna().all():
                # A point ratio of medians can sit just outside its bootstrap interval: draw no negative bar.
                yerr = np.clip(np.vstack([g["ratio"] - g["ci_low"], g["ci_high"] - g["ratio"]]), 0, None)
            color, fmt = styles[impl]
            ax.errorbar(g["samples"], g["ratio"], yerr=yerr, fmt=_marker(group, machine) if several else fmt, capsize=3,
                        color=color, label=f"{impl} ({kl})" + (f", {machine}" if several else ""))
        ax.axhline(1.0, color="tab:red", linestyle=":", label="sequential")
        ax.set_title(f"{task} on {device}: speedup over sequential", fontsize=10)
        ax.set_xlabel("weight samples per step, S")
        ax.set_ylabel("sequential epoch time / implementation's (x)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"Speedup against the sequential loop (95% bootstrap intervals) — {machine}", fontsize=11)
    return save_figure(fig, out_dir, "speedup_vs_samples")


def kl_cost_vs_n_mc(runs: pd.DataFrame, machine: str, out_dir: Path) -> list[Path]:
    """Step time and saved-tensor bytes against n_mc per KL estimator, log-log; failed configs marked."""
    kl_runs = runs[runs["kl"].isin(["mc", "repar", "repar_exact"])]
    if kl_runs["n_mc"].nunique() < 2:
        return []
    fig, axes = _panels(2)
    several = _machines(kl_runs) > 1
    for (kl, task, device, machine), g in kl_runs.groupby(["kl", "task", "device", _machine_key(kl_runs)], sort=False):
        ok = g[g["status"] == "ok"].sort_values("n_mc")
        color = KL_COLORS.get(kl)
        label = f"{kl} ({task}, {device}" + (f", {machine})" if several else ")")
        axes[0].plot(ok["n_mc"], ok["step_s_median"] * 1000, "o-", color=color, label=label)
        axes[1].plot(ok["n_mc"], ok["graph_bytes"] / 2**20, "o-", color=color, label=label)
        failed = g[g["status"] != "ok"]
        for _, row in failed.iterrows():
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
