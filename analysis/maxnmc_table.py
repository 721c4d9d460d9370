"""The graph-reparameterization table from a `maxnmc` results directory: per model (rows) and KL
estimator (columns), the largest n_mc whose training step fitted the memory budget; and a figure of
step time and graph_bytes against n_mc, one column of panels per model."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

ESTIMATORS = ("mc", "repar", "repar_exact")

#: What the graph-reparameterization paper's code says (its README in shared/references/): the only
#: figures it states. The paper's own table was measured on an 11 GB GPU, not under our budget.
PAPER = {
    "mc": "runs out of GPU memory as n_mc grows (\"GPU memory explosion\")",
    "repar": "1000+ (\"almost no memory cost ... regardless of the number of samples\")",
    "repar_exact": "not in the paper (this project's exact-moment variant)",
}
PAPER_CITATION = ("Nazarovs, Mehta, Lokhande & Singh, \"Graph Reparameterizations for Enabling 1000+ Monte Carlo "
                  "Iterations in Bayesian Deep Neural Networks\", UAI 2021, as stated in the README of their code "
                  "(shared/references/graph_reparameterization_readme.txt); their budget was an 11 GB GPU")


def _model_name(frame: pd.DataFrame) -> pd.Series:
    model = frame["model"] if "model" in frame.columns else pd.Series(pd.NA, index=frame.index)
    return model.where(model.notna() & (model.astype(str) != ""), frame["task"]).astype(str)


def search_runs(runs: pd.DataFrame) -> pd.DataFrame:
    frame = runs[runs["kl"].isin(ESTIMATORS)].copy()
    frame["model_name"] = _model_name(frame)
    frame["n_mc"] = pd.to_numeric(frame["n_mc"], errors="coerce")
    return frame


def max_n_mc_table(runs: pd.DataFrame, interrupted: bool = False) -> pd.DataFrame:
    """One row per model: for each estimator the largest n_mc with status ok, the smallest larger one that
    ran out of memory, and a cell text: "N" (bracketed by an oom at the next probe), ">= N" (no probe
    above N failed: the cap, a timeout, or, with `interrupted`, a search stopped before its end),
    "0" when n_mc = 1 did not fit."""
    frame = search_runs(runs)
    rows = []
    for model, g in frame.groupby("model_name", sort=False):
        row = {"model": model}
        for kl in ESTIMATORS:
            k = g[g["kl"] == kl]
            if k.empty:
                row[kl] = ""
                continue
            ok = k.loc[k["status"] == "ok", "n_mc"]
            best = int(ok.max()) if len(ok) else 0
            # An oom row counts only when the probe failed under its own budget: the kernel's OOM killer
            # (machine RAM exhausted by other processes) says nothing about the budget.
            killed = k["error"].astype(str).str.contains("killed by SIGKILL", regex=False)
            oom = k.loc[(k["status"] == "oom") & ~killed & (k["n_mc"] > best), "n_mc"]
            other = k.loc[(~k["status"].isin(["ok", "oom"]) | killed) & (k["n_mc"] > best), "status"]
            other = other.where(~killed.reindex(other.index, fill_value=False), "killed by the system")
            if len(oom):
                row[kl] = f"{best:,} (oom at {int(oom.min()):,})"
            elif len(other):
                row[kl] = f">= {best:,} ({other.iloc[0]} above)"
            else:
                why = "search interrupted" if interrupted else "search cap"
                row[kl] = f">= {best:,} ({why})" if best else ""
            row[f"{kl}_max"] = best
        rows.append(row)
    return pd.DataFrame(rows)


def budget_text(runs: pd.DataFrame) -> str:
    """The memory budget as recorded by the probes' oom messages, or the meta's argv (analysis has no
    memory_limit column: it is not part of what a row measures)."""
    errors = runs.get("error", pd.Series(dtype=str)).dropna().astype(str)
    for text in errors:
        if "address-space cap of" in text:
            return text.split("address-space cap of", 1)[1].split(",")[0].strip()
    return ""


def curves_figure(runs: pd.DataFrame, machine: str, out_dir: Path) -> list[Path]:
    """Step time (top) and graph_bytes (bottom) against n_mc, one column per model, a line per estimator.
    A probe measured in several runs (a resumed search, merged directories) is one point at the median of
    its rows, with their range as an error bar (analysis.per_x)."""
    from analysis.figures import KL_COLORS, plt, save_figure
    from analysis.per_x import per_x, plot_per_x

    frame = search_runs(runs)
    models = list(dict.fromkeys(frame["model_name"]))
    if not models:
        return []
    fig, axes = plt.subplots(2, len(models), figsize=(4.6 * len(models), 7.5), squeeze=False)
    for j, model in enumerate(models):
        g = frame[frame["model_name"] == model]
        for kl in ESTIMATORS:
            k = g[g["kl"] == kl]
            ok = k[k["status"] == "ok"].assign(_mib=k["graph_bytes"] / 2**20)
            color = KL_COLORS.get(kl)
            plot_per_x(axes[0, j], per_x(ok, "n_mc", "step_s_median"), "n_mc", "o-", color=color, label=kl)
            plot_per_x(axes[1, j], per_x(ok, "n_mc", "_mib"), "n_mc", "o-", color=color, label=kl)
            for n in sorted(set(k.loc[k["status"] == "oom", "n_mc"])):
                for ax in axes[:, j]:
                    ax.plot([n], [1], marker="x", color=color, transform=ax.get_xaxis_transform(), clip_on=False)
        axes[0, j].set_title(model, fontsize=10)
        for ax, label in zip(axes[:, j], ("seconds per training step", "MiB saved for backward per step")):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("KL Monte Carlo draws, n_mc")
            ax.set_ylabel(label)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
    fig.suptitle(f"KL estimators against n_mc per model (x on the top edge: out of memory; bars: range of a "
                 f"probe measured in several runs) — {machine}", fontsize=11)
    return save_figure(fig, out_dir, "maxnmc_curves")


def report_lines(runs: pd.DataFrame, machine: str, out_dir: Path,
                 interrupted: bool = False) -> tuple[list[str], list[Path]]:
    """The report.md section and its figure; nothing when the directory holds no n_mc search.
    `interrupted`: the search was stopped before it ended (meta.json `interrupted_at`)."""
    from analysis.markdown import markdown_table

    frame = search_runs(runs)
    if frame.empty or frame["n_mc"].nunique() < 2:
        return [], []
    table = max_n_mc_table(runs, interrupted)
    shown = table[["model"] + [k for k in ESTIMATORS if k in table.columns]]
    budget = budget_text(runs)
    lines = ["", "## Largest n_mc within the memory budget (graph reparameterization)", "",
             f"Budget: {budget or 'see the command in meta.json'} per probe process, on {machine}.", "",
             markdown_table(shown), "",
             "Each cell: the largest n_mc whose training step finished, and the probe that ran out of memory "
             "under the budget above it (\">=\": no probe above it failed under the budget: the search stopped "
             "at its cap, was interrupted before its end, or a probe was killed by the kernel's OOM killer "
             "because the machine's RAM ran out, which says nothing about the budget).", "",
             f"The paper ({PAPER_CITATION}) states:", ""]
    lines += [f"- {kl}: {text}" for kl, text in PAPER.items()]
    per_model = []
    for model, g in frame[frame["status"] == "ok"].groupby("model_name", sort=False):
        for kl in ("repar", "repar_exact"):
            # A probe run twice (a resumed search) counts once: its last row.
            k = g[g["kl"] == kl].drop_duplicates("n_mc", keep="last").set_index("n_mc")
            if 1 in k.index and len(k) > 1:
                top = k.index.max()
                per_model.append(
                    f"- {model}, {kl}: at n_mc = {int(top):,} "
                    f"graph_bytes is {k.loc[top, 'graph_bytes'] / k.loc[1, 'graph_bytes']:.3f}x "
                    f"and step time {k.loc[top, 'step_s_median'] / k.loc[1, 'step_s_median']:.2f}x those at n_mc = 1")
    if per_model:
        lines += ["", "Cost at the largest n_mc against n_mc = 1:", ""] + per_model
    figures = curves_figure(runs, machine, out_dir / "figures")
    return lines, figures
