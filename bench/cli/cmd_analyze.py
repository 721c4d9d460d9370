"""`bnn-bench analyze DIR [DIR ...]`: slopes, KL cost, speedup tables, figures and report.md from one results
directory, or from several merged into one report (a machine column tells their rows apart)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional

from bench.cli.args import open_unit_float, unit_fraction
from bench.contract.errors import UsageError


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "analyze", help="tables, figures and report.md from a results directory",
        description="Per-sample slopes with confidence intervals, speedup tables (beside a reference run's, "
                    "if given), figures and report.md, from a results directory written by `sweep`.",
    )
    parser.add_argument("dirs", metavar="DIR", nargs="+",
                        help="results directory (holds runs.csv); several are merged into one report (needs --out)")
    parser.add_argument("--reference", metavar="DIR",
                        help="a results directory to compare with (e.g. the report's A100 run)")
    parser.add_argument("--out", metavar="DIR", help="where tables, figures and report.md go (default: DIR; required "
                                                    "with several DIRs)")
    parser.add_argument("--prefer", metavar="newest|DIR",
                        help="with several DIRs, which row to keep when the same config on the same machine was "
                             "measured by different code (git_commit): the newest, or the one in DIR")
    parser.add_argument("--target-error", type=unit_fraction, metavar="E",
                        help="test error that time to accuracy is measured to, for quality runs (default 0.025)")
    parser.add_argument("--margin", type=open_unit_float, metavar="M",
                        help="equivalence margin on final test error across seeds, quality runs (default 0.003)")
    parser.add_argument("--step-times", metavar="DIR",
                        help="a sweep's results directory: quality runs' time to target = steps to it x its median "
                             "step time (timed apart, e.g. in interleaved rounds), beside the runs' own clock")
    parser.add_argument("--lever", metavar="NAME",
                        help="the lever setting the main tables compare implementations at, as the Levers table names "
                             "it (baseline, cudagraphs, compile+bf16, ...); default: the baseline. Output goes to "
                             "DIR/lever-NAME unless --out is given")
    parser.add_argument("--html", action="store_true",
                        help="also write report.html beside report.md: one self-contained page (figures inlined, "
                             "no scripts, nothing fetched) to open in any browser or attach to a mail")
    parser.set_defaults(run=run)
    return parser


def run_analysis(results_dir, reference_dir=None, out_dir=None, prefer=None, target_error=None, margin=None,
                 step_times=None, lever=None) -> Path:
    """`analysis.analyze`, imported only now: the sweep does not need pandas or matplotlib.

    `results_dir`: one directory, or a list (several are merged; one is analyzed as itself)."""
    import analysis

    # passed only when given: target_error, margin and step_times concern quality runs, lever a sweep's levers
    extra = {k: v for k, v in (("target_error", target_error), ("margin", margin), ("step_times_dir", step_times),
                               ("lever", lever)) if v is not None}
    if isinstance(results_dir, (list, tuple)) and len(results_dir) > 1:
        return Path(analysis.analyze([Path(d) for d in results_dir], reference_dir=_path(reference_dir),
                                     out_dir=_path(out_dir), prefer=prefer, **extra))
    if isinstance(results_dir, (list, tuple)):
        results_dir = results_dir[0]
    if prefer is not None:
        raise UsageError("--prefer only applies to several directories: drop it, or give more than one DIR")
    return Path(analysis.analyze(Path(results_dir), reference_dir=_path(reference_dir), out_dir=_path(out_dir),
                                 **extra))


def write_report_html(report: Path) -> Path:
    """report.html beside `report` (report.md), titled by its first heading."""
    from analysis.html_page import write_html_page

    first = report.read_text(encoding="utf-8", errors="replace").split("\n", 1)[0]
    title = first[2:].strip() if first.startswith("# ") else f"bnn-bench report: {report.parent.name}"
    return write_html_page(report, report.with_suffix(".html"), title)


def _path(value) -> Optional[Path]:
    return Path(value) if value is not None else None


def run(args) -> int:
    if len(args.dirs) > 1 and not args.out:
        raise UsageError("analyze of several directories needs --out DIR: where the merged report goes "
                         "(each directory keeps its own report)")
    out = args.out
    if args.lever and not out and len(args.dirs) == 1:
        if not all(c.isalnum() or c in "+_-" for c in args.lever):  # it names a folder: no paths
            raise UsageError(f"--lever {args.lever!r}: a lever name is letters, digits, '+', '_' and '-'")
        out = str(Path(args.dirs[0]) / f"lever-{args.lever}")
    report = run_analysis(args.dirs, args.reference, out, args.prefer, args.target_error, args.margin,
                          args.step_times, args.lever)
    print(f"report: {report}")
    if args.html:
        print(f"html: {write_report_html(report)}")
    return 0
