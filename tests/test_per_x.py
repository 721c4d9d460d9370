"""analysis.per_x and the rule it enforces: every figure plots one point per x per series, at the median, with
the spread of the rows sharing that x; rows measured twice never join into vertical zigzags."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import figures, maxnmc_table, quality_figures
from analysis.per_x import per_x

ROOT = Path(__file__).resolve().parents[1]
MAXNMC = [ROOT / "results" / "cpu" / name for name in (
    "maxnmc-8g-quiet-exact-epyc-1thread", "maxnmc-8g-quiet-vgg11-epyc-1thread",
    "maxnmc-8g-quiet-lenet5-mc-epyc-1thread", "maxnmc-8g-epyc-1thread", "maxnmc-8g-lenet5-epyc-1thread")]


def test_duplicate_x_values_become_one_row_with_median_low_high_and_n():
    frame = pd.DataFrame({"series": ["b", "b", "a", "b", "a", "b"], "x": [2, 1, 1, 1, 3, 1],
                          "y": [5.0, 1.0, 7.0, 3.0, 2.0, 8.0]})
    out = per_x(frame, "x", "y", ["series"])
    assert list(out.columns) == ["series", "x", "median", "low", "high", "n"]
    assert out.values.tolist() == [["b", 1, 3.0, 1.0, 8.0, 3], ["b", 2, 5.0, 5.0, 5.0, 1],
                                   ["a", 1, 7.0, 7.0, 7.0, 1], ["a", 3, 2.0, 2.0, 2.0, 1]]


def test_a_rows_own_interval_widens_the_spread_and_missing_rows_are_left_out():
    frame = pd.DataFrame({"x": [1, 1, 2, 3, np.nan], "y": [2.0, 4.0, 5.0, np.nan, 1.0],
                          "lo": [1.5, 3.9, np.nan, 0.0, 0.0], "hi": [2.5, 6.0, 5.5, 9.0, 9.0]})
    out = per_x(frame, "x", "y", low="lo", high="hi")
    assert out[["x", "median", "low", "high", "n"]].values.tolist() == [[1, 3.0, 1.5, 6.0, 2], [2, 5.0, 5.0, 5.5, 1]]
    assert per_x(frame.iloc[:0], "x", "y", ["lo"]).empty


@pytest.fixture
def drawn(monkeypatch):
    """The figures the figure functions draw, kept open instead of written."""
    kept = []

    def keep(fig, out_dir, name):
        kept.append((name, fig))
        return [Path(out_dir) / f"{name}.png", Path(out_dir) / f"{name}.svg"]

    monkeypatch.setattr(figures, "save_figure", keep)
    monkeypatch.setattr(quality_figures, "save_figure", keep)
    yield kept
    for _, fig in kept:
        figures.plt.close(fig)


def _x_of_every_line(fig) -> list[np.ndarray]:
    """The x data of each plotted line (an axvline, a vertical mark at one x, is not a line over x)."""
    xs = []
    for ax in fig.axes:
        for line in ax.get_lines():
            x = np.asarray(line.get_xdata(), dtype=float)
            if not (len(x) == 2 and x[0] == x[1] and line.get_linestyle() == ":"):
                xs.append(x)
    return xs


def _one_point_per_x(fig) -> None:
    xs = _x_of_every_line(fig)
    assert xs, "no line drawn"
    for x in xs:
        assert np.all(np.diff(x) > 0), f"x not strictly increasing (a zigzag): {x}"


def test_the_maxnmc_and_kl_cost_figures_draw_one_point_per_n_mc(drawn, tmp_path):
    """The committed maxnmc table merges five searches: the same repar_exact probes were measured in two of
    them, which the old figure joined into vertical zigzags."""
    from analysis.merge import merge_results

    runs = merge_results(MAXNMC).runs
    repeated = maxnmc_table.search_runs(runs).query("status == 'ok'").duplicated(["model_name", "kl", "n_mc"])
    assert repeated.any(), "the fixture no longer has a probe measured twice"
    maxnmc_table.curves_figure(runs, "m", tmp_path)
    figures.kl_cost_vs_n_mc(runs, "m", tmp_path)
    assert [name for name, _ in drawn] == ["maxnmc_curves", "kl_cost_vs_n_mc"]
    for _, fig in drawn:
        _one_point_per_x(fig)


def _runs(duplicated: bool) -> pd.DataFrame:
    rows = []
    for impl in ("sequential", "vmap"):
        for s in (1, 2, 5):
            for copy in range(2 if duplicated else 1):
                rows.append(dict(run_id=f"{impl}-{s}-{copy}", task="mnist", device="cpu", impl=impl, kl="sample",
                                 n_mc=1, samples=s, epoch_s=s * (1.0 + 0.1 * copy), epoch_measured="True",
                                 machine="m"))
    return pd.DataFrame(rows)


def test_epoch_time_and_speedup_figures_draw_one_point_per_s(drawn, tmp_path):
    runs = _runs(duplicated=True)
    spread = pd.DataFrame({"q25": runs["epoch_s"] * 0.9, "q75": runs["epoch_s"] * 1.1}).set_index(runs["run_id"])
    figures.epoch_time_vs_samples(runs, spread, "m", tmp_path, reference=_runs(duplicated=True), reference_label="r")
    speedups = pd.DataFrame([dict(task="mnist", device="cpu", machine="m", impl="vmap", kl="sample",
                                  kind="epoch_time", samples=s, ratio=1.0 + k, ci_low=0.9, ci_high=1.5 + k)
                             for s in (1, 2) for k in (0, 1)])
    figures.speedup_vs_samples(speedups, "m", tmp_path)
    for _, fig in drawn:
        _one_point_per_x(fig)
    lines = drawn[1][1].axes[0].get_lines()
    assert list(lines[0].get_ydata()) == [1.5, 1.5]  # the median of the two rows at each S


def test_quality_figures_draw_one_point_per_epoch_and_eps(drawn, tmp_path):
    quality = pd.DataFrame([dict(run_id="r1", status="ok", epoch=e, train_s=10.0 * e, test_error=0.1 / e, lr=1e-3)
                            for e in (1, 2, 3) for _ in range(2)])
    fgsm = pd.DataFrame([dict(run_id="r1", impl="vmap", eps=eps, accuracy=0.9 - eps - 0.01 * k)
                         for eps in (0.0, 0.1, 0.2) for k in range(2)])
    configs = pd.DataFrame({"run_id": ["r1"], "config": ["vmap"]})
    quality_figures.error_curves(quality, configs, tmp_path)
    quality_figures.fgsm_curves(fgsm, configs, tmp_path)
    assert len(drawn) == 2
    for _, fig in drawn:
        _one_point_per_x(fig)
