"""Conv tasks, --data synthetic, --model factories and maxnmc on the command line: bad input is one
line and exit 2 before anything is written; good input lands in runs.csv with its data and model."""

import pandas as pd
import pytest

import bench.grid.devices
from bench.cli.main import main
from bench.contract.store import read_runs
from bench.run.maxnmc_search import search_max_n_mc


@pytest.fixture(autouse=True)
def cpu_only(monkeypatch):
    monkeypatch.setattr(bench.grid.devices, "_cuda_count", lambda: 0)


def _one_line_error(capsys, needle):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bnn-bench: error:") and needle in err[0], err
    assert "Traceback" not in "\n".join(err)
    return err[0]


SMALL = ["--profile", "paper", "--samples", "1", "--steps", "1", "--repeats", "1", "--warmup", "0", "--device", "cpu"]


def test_missing_cifar_is_one_line_naming_the_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("bnn_impls.cifar.URL", (tmp_path / "no-such-archive.tar.gz").as_uri())  # no network
    out = tmp_path / "out"
    assert main(["sweep", *SMALL, "--task", "resnet18", "--impl", "vmap", "--data-dir", str(tmp_path / "data"),
                 "--out", str(out)]) == 2
    line = _one_line_error(capsys, "CIFAR-10 not found")
    assert "--data-dir" in line and "--data synthetic" in line
    assert not out.exists()


def test_unknown_model_factory_is_one_line(tmp_path, capsys):
    for spec, needle in [("tests.plugins.nowhere:net", "cannot import 'tests.plugins.nowhere'"),
                         ("tests.plugins.models:nothing", "has no callable 'nothing'"),
                         ("tests.plugins.models", "is malformed"),
                         ("tests.plugins.models:not_a_module", "not an nn.Module")]:
        out = tmp_path / "out"
        assert main(["sweep", *SMALL, "--task", "lenet5", "--impl", "vmap", "--model", spec, "--data", "synthetic",
                     "--out", str(out)]) == 2
        _one_line_error(capsys, needle)
        assert not out.exists()


def test_a_layer_without_an_lrt_rule_is_one_line_naming_the_type(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sweep", *SMALL, "--task", "lenet5", "--impl", "vmap,vmap_lrt", "--model",
                 "tests.plugins.models:decoder", "--data", "synthetic", "--out", str(out)]) == 2
    _one_line_error(capsys, "no moment rule for the Bayesian layer type ConvTranspose2d")
    assert not out.exists()


def test_bad_data_source_is_one_line(tmp_path, capsys):
    assert main(["sweep", *SMALL, "--task", "lenet5", "--data", "fake", "--out", str(tmp_path / "o")]) == 2
    _one_line_error(capsys, "--data 'fake' is not a data source")


def test_a_users_factory_runs_on_synthetic_task_data_and_is_recorded(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sweep", *SMALL, "--task", "lenet5", "--impl", "sequential,vmap,vmap_lrt", "--data", "synthetic",
                 "--model", "tests.plugins.models:tiny_cnn", "--batch-size", "16", "--executor", "inline",
                 "--out", str(out)]) == 0
    rows = read_runs(out)
    assert [r["status"] for r in rows] == ["ok"] * 3, [r["error"] for r in rows]
    assert ({r["data"] for r in rows} == {"synthetic"}
            and {r["model"] for r in rows} == {"tests.plugins.models:tiny_cnn"})
    assert pd.read_csv(out / "runs.csv")["graph_bytes"].gt(0).all()


def test_search_brackets_the_largest_fitting_n_mc():
    calls = []

    def fits(n):
        calls.append(n)
        return "ok" if n <= 37 else "oom"

    result = search_max_n_mc(fits, cap=10**4, precision=0)
    assert (result.max_fit, result.first_failure, result.stopped_by) == (37, 38, "oom")
    assert calls[:3] == [1, 10, 100] and len(calls) < 12


def test_search_stops_at_the_cap_and_on_other_failures():
    assert search_max_n_mc(lambda n: "ok", cap=1000) == search_max_n_mc(lambda n: "ok", cap=1000)
    capped = search_max_n_mc(lambda n: "ok", cap=1000)
    assert ((capped.max_fit, capped.first_failure, capped.stopped_by, capped.probes)
            == (1000, None, "cap", (1, 10, 100, 1000)))
    assert search_max_n_mc(lambda n: "oom", cap=100).max_fit == 0
    timed_out = search_max_n_mc(lambda n: "ok" if n < 100 else "timeout", cap=10**6)
    assert (timed_out.max_fit, timed_out.stopped_by) == (10, "timeout")
    coarse = search_max_n_mc(lambda n: "ok" if n <= 37 else "oom", cap=10**4, precision=0.25)
    assert coarse.max_fit <= 37 < coarse.first_failure <= 1.25 * coarse.max_fit + 1


def test_maxnmc_command_writes_rows_and_analyze_renders_the_table(tmp_path, capsys):
    out = tmp_path / "mx"
    # Two isolated probes (n_mc 1 and 10, the cap) on the regression MLP: the rows, the table and the figure.
    code = main(["maxnmc", "--task", "regression", "--impl", "vmap", "--kl", "repar_exact", "--cap", "repar_exact=10",
                 "--memory-limit", "6G", "--batch-size", "16", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    rows = read_runs(out)
    assert [(r["kl"], r["n_mc"], r["status"]) for r in rows] == [("repar_exact", "1", "ok"),
                                                                 ("repar_exact", "10", "ok")]
    from analysis import analyze
    from analysis.maxnmc_table import max_n_mc_table

    table = max_n_mc_table(pd.read_csv(out / "runs.csv"))
    assert table.loc[0, "model"] == "regression" and table.loc[0, "repar_exact"] == ">= 10 (search cap)"
    # A search stopped before its end (the H200's, cut by the campaign's --total) says so, not "cap".
    assert max_n_mc_table(pd.read_csv(out / "runs.csv"), interrupted=True).loc[0, "repar_exact"] == \
        ">= 10 (search interrupted)"
    report = analyze(out).read_text()
    assert "Largest n_mc within the memory budget" in report and "11 GB GPU" in report
    assert "Table 1" not in report  # S never varied: no slope table to miss, and no line saying so
    assert (out / "figures" / "maxnmc_curves.png").exists()
    # A second search (another estimator), analyzed together with the first: still one max-n_mc table.
    other = tmp_path / "mx2"
    assert main(["maxnmc", "--task", "regression", "--impl", "vmap", "--kl", "repar", "--cap", "repar=10",
                 "--memory-limit", "6G", "--batch-size", "16", "--out", str(other)]) == 0
    assert main(["analyze", str(out), str(other), "--out", str(tmp_path / "both")]) == 0
    merged = (tmp_path / "both" / "report.md").read_text()
    assert "Largest n_mc within the memory budget" in merged and "repar_exact" in merged


def test_maxnmc_bad_input_is_one_line(tmp_path, capsys):
    assert main(["maxnmc", "--task", "lenet5", "--kl", "closed", "--out", str(tmp_path / "o")]) == 2
    _one_line_error(capsys, "no n_mc to search")
    assert main(["maxnmc", "--task", "lenet5", "--cap", "mc:10", "--out", str(tmp_path / "o")]) == 2
    _one_line_error(capsys, "--cap 'mc:10' is malformed")
