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
