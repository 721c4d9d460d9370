"""The estimator-bias table (from `bnn-bench bias`): per task, posterior width and implementation, how far
the expected loss and gradient lie from weight sampling's. pandas only, never torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.load import read_checked_table
from bench.contract.bias_schema import BIAS_COLUMNS, BIAS_FILE, NUMERIC_BIAS_COLUMNS
from bench.contract.files import make_dir, write_text_atomic

GROUPS = ("conv mu", "conv rho", "dense mu", "dense rho")


def has_bias(directory) -> bool:
    path = Path(directory) / BIAS_FILE
    return path.is_file() and path.stat().st_size > 0


def load_bias(directory) -> pd.DataFrame:
    """bias.csv's rows, typed; a cell that is not a number is refused naming its file, line and column."""
    path = Path(directory) / BIAS_FILE
    rows = read_checked_table(path, BIAS_COLUMNS, NUMERIC_BIAS_COLUMNS)
    frame = pd.DataFrame(rows, columns=list(BIAS_COLUMNS))
    for col in NUMERIC_BIAS_COLUMNS:
        frame[col] = pd.to_numeric(frame[col].replace("", np.nan), errors="coerce")  # validated above
    return frame


def bias_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, model, init, sigma, implementation): the loss z and each group's excess
    (rel_diff / noise floor), with the worst verdict."""
    rows = []
    keys = ["task", "model", "init", "init_sigma", "impl"]
    for key, g in frame.groupby(keys, sort=False):
        by = g.set_index("group")
        row = dict(zip(keys, key))
        row["draws"] = int(g["draws"].iloc[0])
        row["loss z"] = float(by.loc["loss", "z"]) if "loss" in by.index else np.nan
        for group in GROUPS:
            if group in by.index:
                r = by.loc[group]
                row[f"{group} rel. diff (floor)"] = f"{r['rel_diff']:.1%} ({r['noise_floor']:.1%})"
                row[f"{group} excess"] = float(r["excess"])
        row["verdict"] = "differs" if (g["verdict"] == "differs").any() else "agrees"
        rows.append(row)
    table = pd.DataFrame(rows)
    if len(table) and (table["model"] == "").all():
        table = table.drop(columns=["model"])
    return table


def report_lines(directory) -> list[str]:
    from analysis.markdown import markdown_table

    frame = load_bias(directory)
    if frame.empty:
        return []
    table = bias_table(frame)
    ref = ", ".join(sorted(frame["reference"].unique()))
    return ["## Estimators against weight sampling (bnn-bench bias)", "",
            f"Expected NLL and its gradient on one fixed batch and posterior, each implementation against {ref} "
            "(weight sampling). `loss z`: difference of the mean NLL over its standard error (|z| > 4 differs). "
            "Per layer kind and parameter: relative difference of the mean gradients, with in brackets the "
            "difference two unbiased estimators show from noise alone; `excess` is their ratio (about 1 when "
            "unbiased, > 1.5 differs). init_sigma 0 is the init scheme's own posterior width.", "",
            markdown_table(table, digits=3), ""]


def write_report(directory, out_dir=None) -> Path:
    """report.md for a directory that holds bias.csv only."""
    directory = Path(directory)
    out = Path(out_dir) if out_dir is not None else directory
    make_dir(out)
    write_text_atomic(out / "bias_table.csv", bias_table(load_bias(directory)).to_csv(index=False))
    lines = [f"# bnn-bench estimator bias: {directory.name}", ""] + report_lines(directory)
    report = out / "report.md"
    write_text_atomic(report, "\n".join(lines) + "\n")
    return report
