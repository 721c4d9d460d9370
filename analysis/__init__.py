"""Results directory in, tables and figures out. Needs pandas, scipy and matplotlib; never torch.

Import-light on purpose: matplotlib is imported only when figures are drawn.
"""

from bench.contract.errors import AnalysisInputError


def analyze(results_dir, reference_dir=None, out_dir=None, prefer=None, target_error=None, margin=None,
            step_times_dir=None, lever=None):
    """Write slopes.csv, kl_cost.csv, speedups.csv, figures/ and report.md; return the path of report.md.

    `results_dir` may be a list of directories: merged into one report in `out_dir` (analysis.merge),
    with `prefer` ("newest" or one of them) settling a config measured twice by different code.
    A directory of quality runs (quality.csv, from `bnn-bench train`) gets its quality section:
    in a report of its own when it has no runs.csv, appended to report.md when it has both; several
    directories of quality runs only are merged into `out_dir` (analysis.quality_report.merge_quality_dirs).
    `margin`: the equivalence margin on final test error across seeds (default 0.003); `step_times_dir`:
    a sweep's results directory whose median step times turn steps-to-target into time-to-target.
    `lever`: the lever setting the main tables compare implementations at (default: the baseline).
    """
    from pathlib import Path

    from analysis import bias_report
    from analysis import quality_report as quality
    from analysis.report import analyze as _analyze

    target = quality.DEFAULT_TARGET_ERROR if target_error is None else target_error
    extra = dict(margin=quality.DEFAULT_MARGIN if margin is None else margin,
                 step_times=_step_times(step_times_dir))
    single = not isinstance(results_dir, (list, tuple))
    no_runs = single and not (Path(results_dir) / "runs.csv").is_file()
    if no_runs and bias_report.has_bias(results_dir) and not quality.has_quality(results_dir):
        return bias_report.write_report(results_dir, out_dir)
    if no_runs and quality.has_quality(results_dir):
        report = quality.write_report(results_dir, out_dir, target, **extra)
        _append_bias(results_dir, report)
        return report
    if not single and all(quality.has_quality(d) and not (Path(d) / "runs.csv").is_file() for d in results_dir):
        if out_dir is None:
            raise AnalysisInputError("several directories of quality runs need --out DIR for the merged report")
        merged = quality.merge_quality_dirs(results_dir, out_dir)
        return quality.write_report(merged, merged, target, **extra)
    report = _analyze(results_dir, reference_dir=reference_dir, out_dir=out_dir, prefer=prefer, lever=lever)
    if single and quality.has_quality(results_dir):
        lines = quality.analyze_quality(results_dir, Path(report).parent, target, **extra)
        with open(report, "a") as f:
            f.write("\n" + "\n".join(lines) + "\n")
    if single:
        _append_bias(results_dir, report)
    return report


def _step_times(directory):
    """Median step times per (task, impl, samples) of a sweep's results directory, or None."""
    if directory is None:
        return None
    from analysis.load import load_results
    from analysis.quality_seeds import step_times_from_sweep

    return step_times_from_sweep(load_results(directory).ok)


def _append_bias(results_dir, report) -> None:
    """A directory that also holds bias.csv gets its table at the end of report.md."""
    from pathlib import Path

    from analysis import bias_report
    from bench.contract.files import write_text_atomic

    if bias_report.has_bias(results_dir):
        lines = bias_report.report_lines(results_dir)
        write_text_atomic(report, Path(report).read_text() + "\n" + "\n".join(lines) + "\n")


__all__ = ["AnalysisInputError", "analyze"]
