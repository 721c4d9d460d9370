"""Quality results (from `bnn-bench train`): final metrics, time to accuracy, OOD AUROC, FGSM, figures.

Reads quality.csv and the post-training tables through the harness's own reader (the same line
checks, the same rule that only a config's final attempt counts); pandas, numpy and matplotlib
only, never torch.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.quality_seeds import DEFAULT_MARGIN, seeds_section
from bench.contract.errors import AnalysisInputError, UsageError
from bench.contract.files import make_dir, write_text_atomic
from bench.contract.quality_schema import (
    BAND_FILE,
    BAND_POINTS_FILE,
    BASELINE_TASKS,
    BASELINES,
    FGSM_FILE,
    OOD_FILE,
    OOD_HIST_FILE,
    QUALITY_FILE,
    QUALITY_TABLES,
)
from bench.contract.quality_store import counted_rows, final_attempts, latest_rows

DEFAULT_TARGET_ERROR = 0.025
#: What makes two quality runs comparable except the implementation (and its default KL).
CONFIG_KEYS = ["task", "samples", "lr", "batch_size", "init", "init_sigma", "prior", "prior_sigma", "seed", "device",
               "threads", "test_samples", "stop_at_error"]
NUMERIC = ("samples", "lr", "batch_size", "init_sigma", "prior_sigma", "seed", "threads", "test_samples",
           "stop_at_error", "epoch", "epochs", "steps", "steps_per_epoch", "epoch_train_s", "train_s", "eval_s",
           "train_loss", "test_error", "test_nll", "ece", "brier", "rmse", "coverage95", "n", "accuracy",
           "mean_entropy", "mean_mi", "mean_top_prob", "auroc_entropy", "auroc_mi", "bin_low", "bin_high", "count",
           "eps", "attack_samples", "x", "y", "mean", "lower", "upper", "epistemic_sd")


def has_quality(directory) -> bool:
    path = Path(directory) / QUALITY_FILE
    return path.is_file() and path.stat().st_size > 0


def load_table(directory, name: str, *, unfinished: bool = False) -> pd.DataFrame:
    """A quality table's counted rows as a typed DataFrame (empty with its columns when the file is absent).

    `unfinished`: also the latest attempt of configs without a final row (a run still going or killed),
    marked by `finished` False.
    """
    try:
        rows = latest_rows(directory, name) if unfinished else counted_rows(directory, name)
        done = final_attempts(directory)
    except UsageError as e:
        raise AnalysisInputError(str(e)) from None
    frame = pd.DataFrame(rows, columns=list(QUALITY_TABLES[name]))
    frame["finished"] = [done.get(r) == a for r, a in zip(frame["run_id"], frame["attempt"])]
    for col in frame.columns:
        if col in NUMERIC:
            frame[col] = pd.to_numeric(frame[col].replace("", np.nan), errors="coerce")
    for col in ("final", "in_train_range"):
        if col in frame.columns:
            frame[col] = frame[col].eq("true")
    return frame


def label(row) -> str:
    """A config's short name: impl, S, and the init/prior where they are not the report's."""
    parts = [str(row["impl"])]
    if row["impl"] not in BASELINES:
        parts.append(f"S={int(row['samples'])}")
        if row.get("init", "report") != "report" or float(row.get("init_sigma", 0) or 0) != 0:
            sigma = float(row.get("init_sigma", 0) or 0)
            parts.append(str(row["init"]) + (f"(sigma {sigma:g})" if sigma else ""))
        if float(row.get("prior_sigma", 1) or 1) != 1.0:
            parts.append(f"prior {float(row['prior_sigma']):g}")
    if "seed" in row and int(row["seed"]) != 0:
        parts.append(f"seed {int(row['seed'])}")
    return " ".join(parts)


def final_metrics(quality: pd.DataFrame) -> pd.DataFrame:
    """The last evaluated epoch of every config, with its time per step (median epoch / steps per epoch)."""
    ok = quality[quality["status"] == "ok"]
    if ok.empty:
        return pd.DataFrame()
    step = ok.groupby("run_id")["epoch_train_s"].median() / ok.groupby("run_id")["steps_per_epoch"].first()
    last = ok.sort_values("epoch").groupby("run_id").tail(1).copy()
    last["step_s_median"] = last["run_id"].map(step)
    last["config"] = last.apply(label, axis=1)
    cols = ["config", "impl", "task", "kl", "samples", "lr", "init", "init_sigma", "prior_sigma", "seed", "epoch",
            "finished", "test_error", "test_nll", "ece", "brier", "rmse", "coverage95", "train_s", "step_s_median",
            "test_samples"]
    return (last[[c for c in cols if c in last.columns]].sort_values(["task", "samples", "config"])
            .reset_index(drop=True))


def time_to_accuracy(quality: pd.DataFrame, target: float) -> pd.DataFrame:
    """Per classification config: training seconds to the first epoch with test error <= target, and
    speedups over `sequential` at the same settings, on that measure and per step."""
    ok = quality[(quality["status"] == "ok") & quality["test_error"].notna()]
    rows = []
    for run_id, g in ok.groupby("run_id", sort=False):
        g = g.sort_values("epoch")
        hit = g[g["test_error"] <= target]
        first = g.iloc[0]
        row = {k: first[k] for k in ["impl", "kl"] + CONFIG_KEYS if k in g.columns}
        row.update(run_id=run_id, config=label(first), epochs_run=int(g["epoch"].max()),
                   steps_per_epoch=float(first["steps_per_epoch"]),
                   finished=bool(g["finished"].all()),
                   best_error=float(g["test_error"].min()),
                   step_s=float(g["epoch_train_s"].median() / first["steps_per_epoch"]),
                   reached=not hit.empty,
                   epoch_reached=int(hit["epoch"].iloc[0]) if not hit.empty else np.nan,
                   time_to_target_s=float(hit["train_s"].iloc[0]) if not hit.empty else np.nan)
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    keys = [k for k in CONFIG_KEYS if k in table.columns and k != "stop_at_error"]
    joined = _join_sequential(table, keys)
    table["speedup_time_to_target"] = joined["seq_time_s"] / table["time_to_target_s"]
    table["speedup_per_step"] = joined["seq_step_s"] / table["step_s"]
    table["target_error"] = target
    return table


def _join_sequential(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Each row's `sequential` counterpart (seq_time_s, seq_step_s) at the same settings. Where two
    sequential configs share those settings (they differ in kl), the one with the row's own kl; where
    none matches uniquely, nothing (NaN) rather than a guess."""
    cols = {"time_to_target_s": "seq_time_s", "step_s": "seq_step_s"}
    seq = table[table["impl"] == "sequential"]
    dup = seq.duplicated(keys, keep=False)
    by_keys = seq[~dup].set_index(keys)[list(cols)].rename(columns=cols)
    by_kl = seq[dup].set_index(keys + ["kl"])[list(cols)].rename(columns=cols)
    first = table.join(by_keys, on=keys)
    second = table.join(by_kl, on=keys + ["kl"])
    return first[list(cols.values())].combine_first(second[list(cols.values())])


def ood_table(ood: pd.DataFrame, configs: pd.DataFrame) -> pd.DataFrame:
    """AUROC of mutual information (and entropy) per config and set; skipped sets with their reason."""
    if ood.empty:
        return pd.DataFrame()
    names = configs.set_index("run_id")["config"] if "run_id" in configs else pd.Series(dtype=str)
    table = ood[ood["set"] != "mnist"].copy()
    table["config"] = table["run_id"].map(names).fillna(table["impl"])
    return table[["config", "set", "status", "n", "auroc_mi", "auroc_entropy", "mean_mi", "mean_entropy",
                  "mean_top_prob", "accuracy", "reason"]].reset_index(drop=True)


def fgsm_table(fgsm: pd.DataFrame, configs: pd.DataFrame) -> pd.DataFrame:
    if fgsm.empty:
        return pd.DataFrame()
    names = configs.set_index("run_id")["config"] if "run_id" in configs else pd.Series(dtype=str)
    table = fgsm.copy()
    table["config"] = table["run_id"].map(names).fillna(table["impl"])
    wide = table.pivot_table(index=["config", "attack_samples", "test_samples"], columns="eps", values="accuracy",
                             aggfunc="first")
    wide.columns = [f"acc@eps={c:g}" for c in wide.columns]
    return wide.reset_index()


def _configs(quality: pd.DataFrame) -> pd.DataFrame:
    if quality.empty:
        return pd.DataFrame(columns=["run_id", "config"])
    first = quality.groupby("run_id", sort=False).head(1).copy()
    first["config"] = first.apply(label, axis=1)
    return first


def claims(ood: pd.DataFrame, fgsm: pd.DataFrame, configs: pd.DataFrame) -> list[str]:
    """Plain sentences on the report's two claims, from the measured tables."""
    out = []
    if not fgsm.empty:
        acc = fgsm.pivot_table(index="run_id", columns="eps", values="accuracy", aggfunc="first")
        kinds = configs.set_index("run_id")["impl"] if len(configs) else pd.Series(dtype=str)
        tasks = configs.set_index("run_id")["task"] if len(configs) else pd.Series(dtype=str)
        for task in dict.fromkeys(tasks.get(r) for r in acc.index):
            runs = [r for r in acc.index if tasks.get(r) == task]
            bnn = [r for r in runs if kinds.get(r) not in BASELINES]
            nets = {k: [r for r in runs if kinds.get(r) == k] for k in BASELINES if BASELINE_TASKS[k] == task}
            if not bnn or not nets or not all(nets.values()):
                continue  # the claim needs every BNN beside both of the task's deterministic nets
            where = "" if len(set(tasks)) == 1 else f" ({task})"
            for eps in [e for e in acc.columns if e > 0]:
                worst_bnn = acc.loc[bnn, eps].min()
                best_net = max(acc.loc[v, eps].max() for v in nets.values())
                verdict = "holds" if worst_bnn > best_net else "does not hold"
                out.append(f"FGSM eps = {eps:g}{where}: every BNN keeps >= {worst_bnn:.3f} accuracy, the better "
                           f"deterministic net ({' or '.join(nets)}) {best_net:.3f}: the report's claim (BNN more "
                           f"robust than both deterministic nets) {verdict} here.")
    if not ood.empty:
        ok = ood[(ood["status"] == "ok") & ood["auroc_mi"].notna()]
        kinds = configs.set_index("run_id")["impl"] if len(configs) else pd.Series(dtype=str)
        ok = ok[~ok["run_id"].map(kinds).isin(BASELINES)]
        for name, g in ok.groupby("set", sort=False):
            out.append(f"OOD set {name}: AUROC of mutual information {g['auroc_mi'].min():.3f} to "
                       f"{g['auroc_mi'].max():.3f} over {len(g)} BNN config(s): "
                       + ("higher epistemic uncertainty than on MNIST for every config (AUROC > 0.5)."
                          if (g["auroc_mi"] > 0.5).all() else "not higher than on MNIST for every config."))
        skipped = ood[ood["status"] == "skipped"]["set"].unique()
        if len(skipped):
            out.append(f"Not measured (not available here): {', '.join(skipped)}.")
    return out


def _words(frame: pd.DataFrame) -> pd.DataFrame:
    """Booleans as true/false for markdown (the table formatter would print them as 1/0)."""
    frame = frame.copy()
    for col in frame.columns:
        if frame[col].dtype == bool:
            frame[col] = frame[col].map({True: "true", False: "false"})
    return frame


def analyze_quality(directory, out_dir, target_error: float = DEFAULT_TARGET_ERROR, margin: float = DEFAULT_MARGIN,
                    step_times: pd.DataFrame | None = None) -> list[str]:
    """Write the quality tables (CSV) and figures into out_dir; return the report's markdown lines."""
    from analysis.markdown import markdown_table as _table

    def markdown_table(frame, digits=3):
        return _table(_words(frame), digits)

    directory, out_dir = Path(directory), Path(out_dir)
    make_dir(out_dir)
    quality = load_table(directory, QUALITY_FILE, unfinished=True)
    configs = _configs(quality)
    ood, hist = load_table(directory, OOD_FILE), load_table(directory, OOD_HIST_FILE)
    fgsm = load_table(directory, FGSM_FILE)
    band, points = load_table(directory, BAND_FILE), load_table(directory, BAND_POINTS_FILE)
    finals = final_metrics(quality)
    tta = time_to_accuracy(quality, target_error)
    oods = ood_table(ood, configs)
    fgsms = fgsm_table(fgsm, configs)
    for frame, name in ((finals, "quality_final.csv"), (tta, "time_to_accuracy.csv"), (oods, "ood_auroc.csv"),
                        (fgsms, "fgsm_accuracy.csv")):
        write_text_atomic(out_dir / name, frame.to_csv(index=False))

    from analysis import quality_figures as qf

    fig_dir = out_dir / "figures"
    figures = qf.error_curves(quality, configs, fig_dir) + qf.top_class_histograms(hist, configs, fig_dir)
    figures += qf.fgsm_curves(fgsm, configs, fig_dir) + qf.regression_bands(band, points, configs, fig_dir)

    failed = quality[quality["status"] != "ok"]
    lines = ["## Quality (bnn-bench train)", "",
             f"{quality['run_id'].nunique()} config(s), "
             f"{int(quality.groupby('run_id')['finished'].all().sum())} finished "
             "(the others: their latest attempt so far, marked finished = false); "
             "test metrics from the predictive mixture over "
             f"S_test = {', '.join(str(int(s)) for s in sorted(quality['test_samples'].dropna().unique()))} "
             "posterior samples, evaluated after every epoch outside the timed region.", ""]
    if len(finals):
        lines += ["### Final epoch", "", markdown_table(finals.drop(columns=["impl"]), digits=4), ""]
    if len(tta):
        cols = ["config", "kl", "lr", "epochs_run", "finished", "best_error", "reached", "epoch_reached",
                "time_to_target_s", "step_s", "speedup_time_to_target", "speedup_per_step"]
        lines += [f"### Time to {target_error:.2%} test error", "", markdown_table(tta[cols], digits=4), "",
                  "time_to_target_s: training wall time (synchronized clock, evaluation excluded) up to the first "
                  "epoch whose test error is at or below the target; speedups are sequential's time over each "
                  "implementation's at the same S, lr, init, prior and seed (empty where sequential is not in the run "
                  "or a side never reached the target)."]
        for _, r in tta[~tta["reached"]].iterrows():
            unfinished = "" if r["finished"] else ", run unfinished"
            lines.append(f"- {r['config']} (lr {r['lr']:g}) did not reach {target_error:.2%} "
                         f"in {r['epochs_run']} epoch(s) (best {r['best_error']:.2%}{unfinished}).")
        lines.append("")
    seed_lines, seed_frames = seeds_section(finals, tta, target_error, margin, step_times, markdown_table)
    for name, frame in seed_frames.items():
        write_text_atomic(out_dir / name, frame.to_csv(index=False))
    lines += seed_lines
    if len(oods):
        lines += ["### Out-of-distribution inputs", "", markdown_table(oods, digits=3), "",
                  "AUROC for telling each set from MNIST's test set by the score (0.5 chance, 1 perfect); mutual "
                  "information is the epistemic part of the predictive entropy (zero for a deterministic net).", ""]
    if len(fgsms):
        lines += ["### FGSM", "", markdown_table(fgsms, digits=3), ""]
    said = claims(ood, fgsm, configs)
    if said:
        lines += ["### The report's claims, measured", ""] + [f"- {s}" for s in said] + [""]
    if len(failed):
        lines += ["### Configs that failed", "", markdown_table(failed[["run_id", "status", "error", "epoch"]]), ""]
    lines += ["### Quality figures", ""]
    lines += [f"![{p.stem}](figures/{p.name})" for p in figures if p.suffix == ".png"]
    return lines


def merge_quality_dirs(directories, out_dir) -> Path:
    """Several directories of quality runs as one (out_dir): every table's rows, in the order given,
    as `train --resume` into one directory would have appended them. A config (run_id) found in two
    of them is refused: say which to keep by leaving the other out."""
    import csv

    out = Path(out_dir)
    make_dir(out)
    owner: dict[str, Path] = {}
    for directory in directories:
        for run_id in {r["run_id"] for r in counted_rows(directory, QUALITY_FILE)}:
            if run_id in owner:
                raise AnalysisInputError(f"config {run_id} was trained in both {owner[run_id]} and {directory}: "
                                         "analyze one of them, or leave the other out")
            owner[run_id] = Path(directory)
    for name, columns in QUALITY_TABLES.items():
        parts = [Path(d) / name for d in directories if (Path(d) / name).is_file()]
        if not parts:
            continue
        merged = io.StringIO()
        writer = csv.writer(merged)
        writer.writerow(columns)
        for part in parts:
            with open(part, newline="") as src:
                rows = csv.reader(src)
                if tuple(next(rows, ())) != tuple(columns):
                    raise AnalysisInputError(f"{part}: header is not the {len(columns)} columns of {name} "
                                             "this version writes")
                writer.writerows(rows)
        write_text_atomic(out / name, merged.getvalue())
    write_text_atomic(out / "sources.txt", "\n".join(str(d) for d in directories) + "\n")
    return out


def write_report(directory, out_dir=None, target_error: float = DEFAULT_TARGET_ERROR, margin: float = DEFAULT_MARGIN,
                 step_times: pd.DataFrame | None = None) -> Path:
    """report.md for a directory that holds quality runs only."""
    directory = Path(directory)
    out = Path(out_dir) if out_dir is not None else directory
    lines = [f"# bnn-bench quality report: {directory.name}", ""]
    sources = directory / "sources.txt"
    if sources.is_file():
        lines += ["Merged from: " + ", ".join(f"`{s}`" for s in sources.read_text().split()), ""]
    lines += analyze_quality(directory, out, target_error, margin, step_times)
    report = out / "report.md"
    write_text_atomic(report, "\n".join(lines) + "\n")
    return report
