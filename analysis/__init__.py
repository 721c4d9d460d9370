"""Results directory in, tables and figures out. Needs pandas, scipy and matplotlib; never torch.

Import-light on purpose: matplotlib is imported only when figures are drawn.
"""

from analysis.errors import AnalysisInputError


def analyze(results_dir, reference_dir=None, out_dir=None, prefer=None):
    """Write slopes.csv, kl_cost.csv, speedups.csv, figures/ and report.md; return the path of report.md.

    `results_dir` may be a list of directories: merged into one report in `out_dir` (analysis.merge),
    with `prefer` ("newest" or one of them) settling a config measured twice by different code."""
    from analysis.report import analyze as _analyze

    return _analyze(results_dir, reference_dir=reference_dir, out_dir=out_dir, prefer=prefer)


__all__ = ["AnalysisInputError", "analyze"]
