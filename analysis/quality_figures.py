"""Figures of quality runs: error curves, the report's Figures 6 and 8 for whole sets, and the regression band.

Lines plot one point per x per run at the median of its rows there, with their range (analysis.per_x): a run
has one row per epoch and per eps, so the spread shows only if a row was written twice."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.figures import save_figure
from analysis.per_x import groups, per_x, plot_per_x


def _names(configs: pd.DataFrame) -> pd.Series:
    return configs.set_index("run_id")["config"] if len(configs) else pd.Series(dtype=str)


def error_curves(quality: pd.DataFrame, configs: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Test error (log scale) against epoch and against training wall time, one line per config (run_id)."""
    ok = quality[(quality["status"] == "ok") & quality["test_error"].notna()]
    if ok.empty:
        return []
    names = _names(configs)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    rows = ok.assign(_error=ok["test_error"] * 100)
    lr = ok.groupby("run_id", sort=False)["lr"].first()
    for ax, x in zip(axes, ("epoch", "train_s")):
        for (run_id,), p in groups(per_x(rows, x, "_error", ["run_id"]), ["run_id"]):
            plot_per_x(ax, p, x, "o-", ms=3, label=f"{names.get(run_id, run_id)} (lr {lr[run_id]:g})")
    for ax, xlabel in zip(axes, ("epoch", "training wall time (s, evaluation excluded)")):
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test error (%)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("MNIST test error of the predictive mixture", fontsize=11)
    return save_figure(fig, out_dir, "quality_test_error")


def top_class_histograms(hist: pd.DataFrame, configs: pd.DataFrame, out_dir: Path) -> list[Path]:
    """The report's Figure 6 over whole sets: each posterior sample's probability of the predicted class,
    MNIST's test set against each OOD set, one row of panels per config. Bars, not lines: one row per
    (run, set, bin) by construction, nothing to aggregate."""
    if hist.empty:
        return []
    names = _names(configs)
    runs = list(hist["run_id"].unique())
    sets = [s for s in hist["set"].unique() if s != "mnist"]
    if not sets:
        return []
    fig, axes = plt.subplots(len(runs), len(sets), figsize=(2.6 * len(sets), 2.3 * len(runs)), squeeze=False)
    for i, run_id in enumerate(runs):
        h = hist[hist["run_id"] == run_id]
        ref = h[h["set"] == "mnist"].sort_values("bin_low")
        for j, name in enumerate(sets):
            ax = axes[i][j]
            g = h[h["set"] == name].sort_values("bin_low")
            width = (g["bin_high"] - g["bin_low"]).to_numpy()
            for frame, color, lab in ((ref, "tab:blue", "MNIST"), (g, "tab:red", name)):
                if frame.empty:
                    continue
                share = frame["count"].to_numpy() / max(1, frame["count"].sum())
                ax.bar(frame["bin_low"], share, width=width, align="edge", alpha=0.55, color=color, label=lab)
            ax.set_yscale("log")
            ax.set_ylim(1e-4, 1.2)
            if i == 0:
                ax.set_title(name, fontsize=9)
            if j == 0:
                ax.set_ylabel(f"{names.get(run_id, run_id)}\nshare of draws", fontsize=7)
            if i == len(runs) - 1:
                ax.set_xlabel("p(predicted class) per sample", fontsize=8)
            ax.tick_params(labelsize=7)
            if i == 0 and j == 0:
                ax.legend(fontsize=7)
    fig.suptitle("Probability of the predicted class over posterior samples: MNIST (blue) vs each set (red)",
                 fontsize=10)
    return save_figure(fig, out_dir, "ood_top_class_probability")


def fgsm_curves(fgsm: pd.DataFrame, configs: pd.DataFrame, out_dir: Path) -> list[Path]:
    """The report's Figure 8: test accuracy against FGSM eps, BNNs beside the MLPs; a line per run_id."""
    if fgsm.empty:
        return []
    names = _names(configs)
    fig, ax = plt.subplots(figsize=(6, 4.2))
    impls = fgsm.groupby("run_id", sort=False)["impl"].first()
    points = per_x(fgsm.assign(_accuracy=fgsm["accuracy"] * 100), "eps", "_accuracy", ["run_id"])
    for (run_id,), p in groups(points, ["run_id"]):
        impl = impls[run_id]
        plot_per_x(ax, p, "eps", "s--" if impl.startswith("mlp") else "o-", label=names.get(run_id, impl))
    ax.set_xlabel("FGSM eps")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("Accuracy under FGSM (MNIST test set)", fontsize=10)
    return save_figure(fig, out_dir, "fgsm_accuracy")


def regression_bands(band: pd.DataFrame, points: pd.DataFrame, configs: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Blundell et al. (2015) Figure 5: predictive mean and 95% band over twice the training range, with the data.
    The band already has one row per (run, x) (a grid the evaluation made) and gives its own interval; the
    data are points, not a line."""
    if band.empty:
        return []
    names = _names(configs)
    runs = list(band["run_id"].unique())
    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 4), squeeze=False)
    for ax, run_id in zip(axes[0], runs):
        b = band[band["run_id"] == run_id].sort_values("x")
        p = points[points["run_id"] == run_id]
        ax.plot(p["x"], p["y"], ".", ms=2, color="k", alpha=0.4, label="training data")
        ax.plot(b["x"], b["mean"], color="tab:red", label="predictive mean")
        ax.fill_between(b["x"], b["lower"], b["upper"], color="tab:red", alpha=0.25, label="95% band")
        inside = b[b["in_train_range"]]
        ax.axvspan(inside["x"].min(), inside["x"].max(), color="tab:gray", alpha=0.08)
        ax.set_title(names.get(run_id, run_id), fontsize=9)
        ax.set_xlabel("x")
        ax.set_ylim(np.nanmin(p["y"]) - 1.0, np.nanmax(p["y"]) + 1.0) if len(p) else None
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("y")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Regression: predictive mean and 95% band (grey: the training inputs' range)", fontsize=10)
    return save_figure(fig, out_dir, "regression_band")
