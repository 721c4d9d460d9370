"""Results directory in, tables and figures out. Needs pandas, scipy and matplotlib; never torch.

Import-light on purpose: matplotlib is imported only when figures are drawn.
"""

from analysis.errors import AnalysisInputError


def analyze(results_dir, reference_dir=None, out_dir=None):
    """Write slopes.csv, speedups.csv, figures/ and report.md; return the path of report.md."""
    from analysis.report import analyze as _analyze

    return _analyze(results_dir, reference_dir=reference_dir, out_dir=out_dir)


__all__ = ["AnalysisInputError", "analyze"]
