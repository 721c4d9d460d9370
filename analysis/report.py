"""`analyze`: a results directory in; slopes.csv, speedups.csv, figures/ and report.md out."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

import pandas as pd

from analysis import maxnmc_table
from analysis.ceiling_report import ceiling_section, read_time_split, time_split_figure, time_split_section
from analysis.fit import fit_slopes
from analysis.kl_cost import fit_kl_cost, kl_cost_display, kl_cost_sentences
from analysis.load import Results, load_results, machine_summary, repeat_epoch_seconds
from analysis.markdown import fmt_cell, markdown_table
from analysis.peers import has_others, impl_order, loss_table, peer_notes, peer_table
from analysis.peers import sentences as peer_sentences
from analysis.speedups import speedup_table
from analysis.throughput import lever_labels, select_lever, throughput_section
from bench.contract.errors import AnalysisInputError
from bench.contract.files import make_dir, write_text_atomic


def _spread(results: Results) -> pd.DataFrame:
    reps = repeat_epoch_seconds(results)
    if reps.empty:
        return pd.DataFrame(columns=["q25", "q75"])
    g = reps.groupby("run_id")["epoch_s"]
    return pd.DataFrame({"q25": g.quantile(0.25), "q75": g.quantile(0.75)})


def _slope_sentences(slopes: pd.DataFrame, machine: str) -> list[str]:
    out = []
    for (task, device, _), g in slopes[slopes["n_mc"].fillna(1) == 1].groupby(["task", "device", "machine"], sort=False,
                                                                              dropna=False):
        seq = g[g["impl"] == "sequential"]
        if seq.empty:
            continue
        s0 = seq["slope_s_per_sample"].iloc[0]
        for _, r in g[g["impl"] != "sequential"].iterrows():
            slope, low = r["slope_s_per_sample"], r.get("slope_ci_low")
            if slope <= 0 or (pd.notna(low) and low <= 0):
                # A step bound by something S does not change (kernel launches, Python): no ratio to form.
                out.append(f"On {task} ({device}), {r['impl']}'s epoch time does not grow measurably with S "
                           f"(slope {slope:.3g} s [{fmt_cell(low)}, {fmt_cell(r.get('slope_ci_high'))}], the "
                           f"interval reaches 0) against sequential's {s0:.3g} s per sample: no slope ratio, on "
                           f"{machine}.")
                continue
            out.append(f"On {task} ({device}), {r['impl']} adds {slope:.3g} s per extra sample "
                       f"per epoch against sequential's {s0:.3g} s ({s0 / slope:.2g}x), on {machine}.")
    return out


def _reference_comparison(slopes: pd.DataFrame, ref_slopes: pd.DataFrame) -> pd.DataFrame:
    ours = slopes[slopes["n_mc"].fillna(1) == 1][["task", "device", "impl", "kl", "slope_s_per_sample", "r2"]]
    theirs = (ref_slopes[["task", "impl", "slope_s_per_sample"]]
              .rename(columns={"slope_s_per_sample": "reference_slope"}))
    table = ours.merge(theirs, on=["task", "impl"], how="left")
    table["ours_over_reference"] = table["slope_s_per_sample"] / table["reference_slope"]
    return table


def _table2(ok: pd.DataFrame, reference: Optional[pd.DataFrame], with_machine: bool = False) -> pd.DataFrame:
    default = ok[ok["n_mc"].fillna(1) == 1]
    index = ["task", "device"] + (["machine"] if with_machine else []) + ["samples"]
    pivot = default.pivot_table(index=index, columns="impl", values="epoch_s", aggfunc="first")
    pivot = pivot[impl_order(default["impl"])]
    pivot.columns = [f"{c} s/epoch" for c in pivot.columns]
    if reference is not None:
        ref = reference.pivot_table(index=["task", "samples"], columns="impl", values="epoch_s", aggfunc="first")
        ref.columns = [f"report {c}" for c in ref.columns]
        pivot = pivot.reset_index().merge(ref.reset_index(), on=["task", "samples"], how="left")
        return pivot
    return pivot.reset_index()


def _memory_table(ok: pd.DataFrame, with_machine: bool = False) -> pd.DataFrame:
    cols = {"graph_bytes": "graph MiB", "peak_allocated_bytes": "CUDA peak alloc MiB",
            "peak_reserved_bytes": "CUDA peak reserved MiB", "nvml_used_bytes": "NVML used MiB",
            "rss_peak_bytes": "peak RSS MiB", "energy_j_per_step": "J/step"}
    present = [c for c in cols if c in ok.columns and ok[c].notna().any()]
    where = ["task", "device"] + (["machine"] if with_machine else [])
    table = ok[where + ["impl", "kl", "n_mc", "samples"] + present].copy()
    order = {impl: i for i, impl in enumerate(impl_order(table["impl"]))}
    table = table.sort_values(where + ["impl", "samples"], kind="stable",
                              key=lambda c: c.map(order) if c.name == "impl" else c)
    for c in present:
        if c.endswith("_bytes"):
            table[c] = table[c] / 2**20
    return table.rename(columns=cols)


def _failures(runs: pd.DataFrame) -> pd.DataFrame:
    bad = runs[runs["status"] != "ok"]
    cols = [c for c in ("task", "device", "machine", "impl", "kl", "n_mc", "samples", "status", "error")
            if c in bad.columns and (c != "machine" or runs["machine"].nunique() > 1)]
    return bad[cols]


def _load(results_dir, out_dir, prefer) -> Results:
    """One directory, or several merged (analysis.merge) when a list of more than one is given."""
    if isinstance(results_dir, (list, tuple)):
        if len(results_dir) == 1:
            results_dir = results_dir[0]
        else:
            if out_dir is None:
                raise AnalysisInputError("analyze of several directories needs --out DIR: where the merged report "
                                         "goes (each directory keeps its own report)")
            from analysis.merge import merge_results

            return merge_results(results_dir, prefer=prefer)
    if prefer is not None:
        raise AnalysisInputError("--prefer only applies to several directories: drop it, or give more than one DIR")
    return load_results(results_dir)


def _header(results: Results, machine: str) -> list[str]:
    lines = [f"# bnn-bench report: {results.directory.name}", "", f"**Machine:** {machine}."]
    metas = results.sources or ({"directory": str(results.directory), **results.meta},)
    for meta in metas:
        hw = meta.get("machine", {})
        prefix = f"`{meta['directory']}`: " if results.sources else ""
        if hw:
            lines.append(f"{prefix}CPU {hw.get('cpu_model', '?')} ({hw.get('cpu_cores', '?')} cores, "
                         f"{(hw.get('ram_bytes') or 0) / 2**30:.0f} GiB RAM); "
                         f"GPUs: {', '.join(map(str, hw.get('gpus') or [])) or 'none'}; "
                         f"driver {hw.get('nvidia_driver') or '-'}; CUDA {hw.get('cuda_version') or '-'}; "
                         f"Python {hw.get('python', '?')}; commit {hw.get('git_commit', '?')}.")
        if meta.get("argv"):
            grid = f"profile {meta['profile']}" if meta.get("profile") else "a grid from its flags"
            lines.append(f"{prefix}Command: `{' '.join(meta['argv'])}` ({grid}).")
    dropped = results.meta.get("duplicates_dropped_same_code")
    if dropped:
        lines.append(f"{dropped} config(s) were measured in several of these directories by the same code on the same "
                     "machine: the newest row of each is used.")
    return lines


def _reference_label(reference: Optional[Results]) -> str:
    if reference is None:
        return ""
    names = reference.runs["device_name"].dropna().unique() if "device_name" in reference.runs else []
    return names[0] if len(names) else str(reference.directory.name)


def _table1_section(results: Results, slopes: pd.DataFrame, notes: list, reference: Optional[Results],
                    ref_label: str, machine: str, with_machine: bool) -> list[str]:
    """Table 1: the per-sample slopes, beside the reference's where there is one."""
    ok, lines = results.ok, []
    # A run that never varied S (a max-n_mc search, a KL-estimator study) has no Table 1 to miss.
    varied_s = len(slopes) > 0 or bool(notes) or ok.groupby(["task", "impl"])["samples"].nunique().gt(1).any()
    if varied_s:
        lines += ["## Table 1: seconds per epoch added by each extra weight sample", ""]
    if varied_s and len(slopes):
        table1 = slopes[["task", "device"] + (["machine"] if with_machine else []) + [
            "impl", "kl", "n_mc", "slope_s_per_sample", "slope_ci_low", "slope_ci_high", "intercept_s", "r2",
            "n_points"]]
        lines += [markdown_table(table1), "",
                  "Least-squares slope of epoch time against S (scipy.stats.linregress); the interval is the 95% "
                  "t interval from the slope's standard error (n - 2 degrees of freedom)."]
        lines += [""] + [f"- {s}" for s in _slope_sentences(slopes, machine)]
        if reference is not None:
            ref_slopes, _ = fit_slopes(reference.ok)
            comp = _reference_comparison(slopes, ref_slopes)
            lines += ["", f"Beside the report ({ref_label}):", "", markdown_table(comp), ""]
            for _, r in comp.dropna(subset=["reference_slope"]).iterrows():
                lines.append(f"- {r['task']} {r['impl']}: our slope is {r['ours_over_reference']:.2g}x the report's "
                             f"({r['slope_s_per_sample']:.3g} s vs {r['reference_slope']:.3g} s per sample).")
    elif varied_s:
        lines.append("No slope could be fitted (a slope needs at least 3 values of S with status ok).")
    return lines + [f"- Not fitted: {n}" for n in notes]


def _kl_cost_section(kl_cost: pd.DataFrame, kl_notes: list, with_machine: bool) -> list[str]:
    lines = []
    if len(kl_cost) or kl_notes:
        lines += ["", "## KL estimators: cost of each extra Monte Carlo draw (n_mc)", ""]
    if len(kl_cost):
        lines += [markdown_table(kl_cost_display(kl_cost, with_machine)), "",
                  "Least-squares slope of time per step and of the bytes saved for backward against n_mc, at fixed S "
                  "(the same fit and 95% t interval as Table 1; `kl_cost.csv`). R² is empty where the metric does not "
                  "change at all (deterministic memory)."]
        lines += [""] + [f"- {s}" for s in kl_cost_sentences(kl_cost)]
    return lines + [f"- Not fitted: {n}" for n in kl_notes]


def _table2_section(ok: pd.DataFrame, reference: Optional[Results], with_machine: bool) -> list[str]:
    lines = ["", "## Table 2: seconds per epoch for each number of samples", ""]
    if len(ok):
        t2 = _table2(ok, reference.ok if reference is not None else None, with_machine)
        lines += [markdown_table(t2), ""]
        measured = ok["epoch_measured"].astype(str).str.lower().eq("true")
        lines.append(f"Epoch times of {int(measured.sum())} config(s) were timed over whole epochs; "
                     f"{int((~measured).sum())} were extrapolated as median step time x steps per epoch.")
    return lines


def _speedups_section(speedups: pd.DataFrame, with_machine: bool) -> list[str]:
    lines = ["", "## Speedups over sequential", ""]
    if not len(speedups):
        return lines + ["No speedup: the run has no sequential baseline at matching S."]
    lines += [markdown_table(speedups if with_machine else speedups.drop(columns="machine")), "",
              "Ratios of sequential's epoch time (or slope) to each implementation's, measured in the same run; "
              "95% intervals from a seeded bootstrap over repeats (empty where a config has no repeats)."]
    best = speedups[speedups["kind"] == "epoch_time"].sort_values("samples").groupby(
        ["task", "device", "machine", "impl"], dropna=False).tail(1)
    for _, r in best.iterrows():
        lines.append(f"- At S = {int(r['samples'])}, {r['impl']} trains {r['task']} on {r['device']} "
                     f"{r['ratio']:.2f}x as fast as sequential [{fmt_cell(r['ci_low'])}, {fmt_cell(r['ci_high'])}].")
    return lines


def _peers_section(results: Results, machine: str) -> list[str]:
    ok = results.ok
    if not has_others(ok):
        return []
    reps = repeat_epoch_seconds(results)
    lines = ["", "## Beside the libraries: every implementation at the largest common S", ""]
    for task in ok["task"].unique():
        table = peer_table(ok, reps, task=task)
        if len(table):
            lines += [f"{task}:", "", markdown_table(table), ""]
            lines += [f"- {s}" for s in peer_sentences(table, machine)] + [""]
    lines += ["Time / vmap_lrt's: step time over vmap_lrt's in this run; in a run timed in interleaved rounds "
              "the median of the per-round ratios with a 95% bootstrap interval over rounds (`interval over`: "
              "rounds), else the ratio of medians with an interval over repeats. Each library trains with its own "
              "layers, loss and prior (table below); the KL weight is what its loss multiplies the KL by.", ""]
    losses = loss_table(ok)
    if len(losses):
        lines += ["### How each loss differs from ours", "", markdown_table(losses, digits=4)]
        lines += [""] + [f"- {note}" for note in peer_notes(losses["impl"])]
    return lines


def _memory_section(ok: pd.DataFrame, with_machine: bool) -> list[str]:
    lines = ["", "## Memory", "", markdown_table(_memory_table(ok, with_machine)), "",
             "graph MiB: tensors saved for backward in one step (deterministic); CUDA and NVML columns appear only "
             "where they apply."]
    if ok["graph_bytes"].notna().any():
        top = ok.loc[ok["graph_bytes"].idxmax()]
        lines.append(f"- The largest autograd graph is {top['impl']} ({top['kl']}, n_mc {top['n_mc']}) "
                     f"on {top['task']} at S = {top['samples']}: {top['graph_bytes'] / 2**20:.1f} MiB.")
    return lines


def _figures_section(figure_paths: list[Path]) -> list[str]:
    return ["", "## Figures", ""] + [f"![{p.stem}](figures/{p.name}) ([svg](figures/{p.stem}.svg))"
                                     for p in figure_paths if p.suffix == ".png"]


def _one_lever(results: Results, lever: Optional[str]) -> tuple[Results, list[str]]:
    """`results` narrowed to one lever setting (throughput.select_lever), and a note for the report."""
    try:
        runs, label = select_lever(results.runs, lever)
    except ValueError as e:
        raise AnalysisInputError(str(e)) from None
    others = len(results.runs) - len(runs)
    if not others:
        return results, []
    repeats = results.repeats[results.repeats["run_id"].isin(runs["run_id"])]
    rest = ", ".join(sorted(set(lever_labels(results.runs)) - {label}))
    note = (f"Lever setting of Tables 1-2, speedups, memory, ceiling and figures: **{label}**. The {others} rows of "
            f"other settings ({rest}) are in Throughput and Levers; `analyze DIR --lever NAME` gives their tables.")
    return dataclasses.replace(results, runs=runs.reset_index(drop=True), repeats=repeats), [note, ""]


def analyze(results_dir, reference_dir=None, out_dir=None, prefer=None, lever=None) -> Path:
    """`results_dir`: one results directory, or a list of several to merge into one report (then
    `out_dir` is required, and `prefer` settles configs measured twice by different code). `lever`:
    the lever setting the main tables compare implementations at (default: the baseline)."""
    from analysis import figures  # matplotlib only now

    every = _load(results_dir, out_dir, prefer)
    results, lever_note = _one_lever(every, lever)
    out = Path(out_dir) if out_dir is not None else results.directory
    make_dir(out)
    reference = load_results(reference_dir) if reference_dir is not None else None
    machine, ok = machine_summary(results), results.ok
    with_machine = results.runs["machine"].nunique() > 1

    slopes, notes = fit_slopes(ok, requested=results.runs)
    write_text_atomic(out / "slopes.csv", slopes.to_csv(index=False))
    kl_cost, kl_notes = fit_kl_cost(results.runs)
    write_text_atomic(out / "kl_cost.csv", kl_cost.to_csv(index=False))
    speedups = speedup_table(ok, repeat_epoch_seconds(results))
    write_text_atomic(out / "speedups.csv", speedups.to_csv(index=False))

    fig_dir, ref_label = out / "figures", _reference_label(reference)
    figure_paths = figures.epoch_time_vs_samples(ok, _spread(results), machine, fig_dir,
                                                 reference.ok if reference is not None else None, ref_label)
    figure_paths += figures.speedup_vs_samples(speedups, machine, fig_dir)
    figure_paths += figures.kl_cost_vs_n_mc(results.runs, machine, fig_dir)

    lines = _header(results, machine) + ["", f"{len(every.runs)} configs, {len(every.ok)} ok.", ""] + lever_note
    lines += _table1_section(results, slopes, notes, reference, ref_label, machine, with_machine)
    lines += _kl_cost_section(kl_cost, kl_notes, with_machine)
    lines += _table2_section(ok, reference, with_machine)
    lines += _speedups_section(speedups, with_machine)
    lines += _peers_section(results, machine)
    lines += _memory_section(ok, with_machine)
    lines += throughput_section(every.ok, markdown_table)  # every setting: the Levers table compares them
    # Every lever setting, as in the throughput table: each row is its own config's distance from its
    # own ceiling, and a `lever` column tells them apart.
    lines += ceiling_section(every.ok, results.meta, markdown_table)
    split = read_time_split([results.directory, *(Path(s["directory"]) for s in results.sources)])
    split_figures = time_split_figure(split, fig_dir, figures.save_figure)
    lines += time_split_section(split, markdown_table, split_figures[0] if split_figures else None, every.ok)
    # Only a directory written by `maxnmc` holds a search: a sweep's KL block varies n_mc too, but its
    # cost per draw is the KL-cost table's business, and it searched no memory budget.
    if results.meta.get("profile") == "maxnmc":
        maxnmc_lines, maxnmc_figures = maxnmc_table.report_lines(results.runs, machine, out,
                                                                 bool(results.meta.get("interrupted_at")))
        lines += maxnmc_lines
        figure_paths += maxnmc_figures
    lines += _figures_section(figure_paths)
    failures = _failures(results.runs)
    if len(failures):
        lines += ["", "## Configs that did not finish", "", markdown_table(failures)]
    report = out / "report.md"
    write_text_atomic(report, "\n".join(lines) + "\n")
    return report
