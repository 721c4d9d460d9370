"""Markdown tables for the reports (pandas' to_markdown needs tabulate, which we do not depend on)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def fmt_cell(x, digits: int = 3) -> str:
    """One cell: empty for missing or non-finite values, integers as integers, floats to `digits` figures."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)) or pd.isna(x):
        return ""
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        return f"{x:.{digits}g}"
    return str(x)


def markdown_table(frame: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub table (pandas' to_markdown needs tabulate, which we do not depend on)."""
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = ["| " + " | ".join(fmt_cell(v, digits) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])
