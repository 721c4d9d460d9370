"""report.md's Throughput and Levers sections (analysis/throughput.py)."""

import pandas as pd

from analysis.markdown import markdown_table
from analysis.throughput import lever_table, throughput_section, throughput_table


def _runs():
    base = dict(task="mnist", device="cuda", impl="vmap_lrt", kl="closed", n_mc=1, samples=10, flops_per_step=10e9)
    rows = [
        dict(base, step_mode="eager", precision="fp32", optimizer="adam", step_s_median=1e-3,
             achieved_tflops=10.0, mfu_fp32=10 / 67, mfu_tf32=10 / 494.5, mfu_bf16=10 / 989.5),
        dict(base, step_mode="cudagraphs", precision="fp32", optimizer="adam", step_s_median=0.5e-3,
             achieved_tflops=20.0, mfu_fp32=20 / 67, mfu_tf32=20 / 494.5, mfu_bf16=20 / 989.5),
        dict(base, step_mode="eager", precision="bf16", optimizer="adam_fused", step_s_median=0.8e-3,
             achieved_tflops=12.5, mfu_fp32=12.5 / 67, mfu_tf32=12.5 / 494.5, mfu_bf16=12.5 / 989.5),
    ]
    return pd.DataFrame(rows)


def test_lever_table_compares_each_lever_with_the_same_configs_baseline():
    table = lever_table(_runs())
    speedups = dict(zip(table["lever"], table["speedup"]))
    assert speedups == {"cudagraphs": 2.0, "bf16+adam_fused": 1.25}


def test_throughput_section_lists_mfu_and_the_best_lever():
    text = "\n".join(throughput_section(_runs(), markdown_table))
    assert "## Throughput" in text and "MFU fp32" in text and "## Levers" in text
    assert "cudagraphs on vmap_lrt mnist S = 10: 2.00x" in text


def test_cpu_runs_without_mfu_or_levers_get_only_tflops():
    runs = _runs().iloc[:1].assign(device="cpu", mfu_fp32=None, mfu_tf32=None, mfu_bf16=None)
    table = throughput_table(runs)
    assert "TFLOP/s" in table and "MFU fp32" not in table
    assert lever_table(runs).empty


def test_old_results_without_the_new_columns_get_no_sections():
    runs = _runs().drop(columns=["achieved_tflops", "step_mode", "precision", "optimizer"]).iloc[:1]
    assert throughput_section(runs, markdown_table) == []


def test_select_lever_keeps_one_setting_the_baseline_by_default():
    import pytest

    from analysis.throughput import select_lever

    runs = _runs()
    rows, label = select_lever(runs, None)
    assert label == "baseline" and list(rows["step_mode"]) == ["eager"] and list(rows["precision"]) == ["fp32"]
    rows, label = select_lever(runs, "cudagraphs")
    assert label == "cudagraphs" and list(rows["step_mode"]) == ["cudagraphs"]
    with pytest.raises(ValueError, match="holds baseline, cudagraphs, bf16"):
        select_lever(runs, "compile")
    without_baseline = runs.iloc[1:]
    with pytest.raises(ValueError, match="no baseline: pick one with --lever"):
        select_lever(without_baseline, None)
    only = runs.iloc[1:2]
    assert select_lever(only, None)[1] == "cudagraphs"  # a directory of one setting is that setting
    old = runs.drop(columns=["step_mode", "precision", "optimizer"]).iloc[:1]
    assert select_lever(old, None)[1] == "baseline"  # written before the lever columns existed


def test_a_grid_with_two_settings_fits_its_slopes_on_one(tmp_path):
    """The committed H200 grid holds eager and CUDA-graph rows of the same 16 MNIST configs: each
    slope is fitted on one setting's 4 points (not 8), and --lever picks the other's."""
    from pathlib import Path

    from analysis.report import analyze

    grid = Path(__file__).resolve().parents[1] / "results" / "gpu" / "20261204-h200" / "grid"
    analyze(grid, out_dir=tmp_path / "eager")
    slopes = pd.read_csv(tmp_path / "eager" / "slopes.csv")
    assert set(slopes["n_points"]) == {4}
    text = (tmp_path / "eager" / "report.md").read_text()
    assert "**baseline**" in text and "(cudagraphs) are in Throughput and Levers" in text
    assert "does not grow measurably with S" in text  # eager vmap on the GPU: flat in S, no ratio printed
    analyze(grid, out_dir=tmp_path / "graphs", lever="cudagraphs")
    slopes = pd.read_csv(tmp_path / "graphs" / "slopes.csv").set_index("impl")
    mnist = slopes[slopes["task"] == "mnist"]
    assert len(mnist) == 4 and (mnist["n_points"] == 4).all()
    assert mnist.loc["sequential", "slope_s_per_sample"] > 10 * mnist.loc["vmap_lrt", "slope_s_per_sample"]


def test_analyze_lever_flag_writes_beside_and_refuses_unknown_or_path_like_names(tmp_path, capsys):
    import shutil
    from pathlib import Path

    from bench.cli.main import main

    grid = tmp_path / "grid"
    shutil.copytree(Path(__file__).resolve().parents[1] / "results" / "gpu" / "20261204-h200" / "grid", grid,
                    ignore=shutil.ignore_patterns("lever-*", "figures"))
    assert main(["analyze", str(grid), "--lever", "cudagraphs"]) == 0
    assert (grid / "lever-cudagraphs" / "report.md").is_file()
    for bad, says in (("compile", "not in this directory; it holds baseline, cudagraphs"),
                      ("../x", "a lever name is letters")):
        assert main(["analyze", str(grid), "--lever", bad]) == 2
        err = capsys.readouterr().err.strip()
        assert says in err and "\n" not in err, err
