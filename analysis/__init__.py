"""Results directory in, tables and figures out. Needs pandas, scipy and matplotlib; never torch.

Import-light on purpose: matplotlib is imported only when figures are drawn.
"""

from bench.contract.errors import AnalysisInputError


def analyze(results_dir, reference_dir=None, out_dir=None, prefer=None, target_error=None):
    """Write slopes.csv, kl_cost.csv, speedups.csv, figures/ and report.md; return the path of report.md.

    `results_dir` may be a list of directories: merged into one report in `out_dir` (analysis.merge),
    with `prefer` ("newest" or one of them) settling a config measured twice by different code.
    A directory of quality runs (quality.csv, from `bnn-bench train`) gets its quality section:
    in a report of its own when it has no runs.csv, appended to report.md when it has both; several
    directories of quality runs only are merged into `out_dir` (analysis.quality_report.merge_quality_dirs).
    """
    from pathlib import Path

    from analysis import quality_report as quality
    from analysis.report import analyze as _analyze

    target = quality.DEFAULT_TARGET_ERROR if target_error is None else target_error
    single = not isinstance(results_dir, (list, tuple))
    if single and quality.has_quality(results_dir) and not (Path(results_dir) / "runs.csv").is_file():
        return quality.write_report(results_dir, out_dir, target)
    if not single and all(quality.has_quality(d) and not (Path(d) / "runs.csv").is_file() for d in results_dir):
        if out_dir is None:
            raise AnalysisInputError("several directories of quality runs need --out DIR for the merged report")
        merged = quality.merge_quality_dirs(results_dir, out_dir)
        return quality.write_report(merged, merged, target)
    report = _analyze(results_dir, reference_dir=reference_dir, out_dir=out_dir, prefer=prefer)
    if single and quality.has_quality(results_dir):
        lines = quality.analyze_quality(results_dir, Path(report).parent, target)
        with open(report, "a") as f:
            f.write("\n" + "\n".join(lines) + "\n")
    return report


__all__ = ["AnalysisInputError", "analyze"]
