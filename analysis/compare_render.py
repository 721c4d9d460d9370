"""The comparison rendered: a text table (terminal), markdown (a pull-request comment), github (text plus
`::error` annotations) and JSON (`check --json`, format bnn-bench-check/1, docs/results-format.md)."""

from __future__ import annotations

import json
import math

FORMATS = ("text", "markdown", "github")
#: The columns a comparison table prints (the JSON rows have more: compare.ALL_COLUMNS).
TABLE_COLUMNS = ("config", "metric", "baseline", "candidate", "change", "verdict")
#: Verdict of a `time / base code` row whose base side failed: the comparison is incomplete.
UNPAIRED = "UNPAIRED"


def pct(x: float) -> str:
    """A ratio as a signed percentage change: 1.05 -> +5.0%."""
    return f"{(x - 1) * 100:+.1f}%"


def change_text(c) -> str:
    """A Change as `+5.0% [+1.0%, +9.0%]`."""
    return f"{pct(c.point)} [{pct(c.low)}, {pct(c.high)}]"


def ms(x: float) -> str:
    return f"{x * 1000:.3g} ms"


def render(comparison, fmt: str = "text") -> str:
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
                         f"{_gh(row['metric'])}: {_gh(row['baseline'])} -> {_gh(row['candidate'])} "
                         f"({_gh(row['change'])})")
        return "\n".join(lines)
    return text


def _gh(text) -> str:
    """A value inside a GitHub workflow command: %, CR, LF escaped as the runner expects (and : , in titles)."""
    return str(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A").replace("::", "%3A%3A")


def _md(text) -> str:
    return str(text).replace("|", "\\|")


def render_markdown(comparison) -> str:
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


def comparison_json(comparison, *, baseline: str, candidate: str, settings: dict) -> str:
    """The comparison as JSON (format documented in docs/results-format.md, "check --json")."""
    def clean(v):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return None
        return v.item() if hasattr(v, "item") else v

    rows = [{k: clean(v) for k, v in row.items()} for row in comparison.table.to_dict(orient="records")]
    doc = {"format": "bnn-bench-check/1", "baseline": str(baseline), "candidate": str(candidate),
           "regressed": comparison.regressed, "settings": settings,
           "regressions": sorted(set(comparison.regressions()["config"])),
           "unpaired": sorted(set(comparison.unpaired()["config"])), "rows": rows}
    return json.dumps(doc, indent=2)
