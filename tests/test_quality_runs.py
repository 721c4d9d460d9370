"""`bnn-bench train` end to end on the small regression task, resume, orphan rows, the OOD and FGSM
evaluations on hand-made predictors, and the quality analysis (time to accuracy) on hand-made rows."""

import math

import pandas as pd
import pytest
import torch

import bench.grid.devices
from bench.cli.main import main
from bench.contract.quality_schema import BAND_FILE, BAND_POINTS_FILE, FGSM_FILE, QUALITY_FILE
from bench.contract.quality_store import QualityWriter, counted_rows, final_attempts, latest_rows, read_table
from bench.quality.run import FGSM_EPS, fgsm_accuracies, ood_rows
from bnn_impls.ood_data import InputSet


@pytest.fixture(autouse=True)
def cpu_only(monkeypatch):
    monkeypatch.setattr(bench.grid.devices, "_cuda_count", lambda: 0)


TRAIN = ["train", "--task", "regression", "--impl", "vmap,vmap_lrt", "--epochs", "2", "--test-samples", "4",
         "--threads", "1"]


def test_train_writes_a_row_per_epoch_the_band_and_resumes_without_rerunning(tmp_path, capsys):
    out = tmp_path / "q"
    assert main(TRAIN + ["--out", str(out)]) == 0
    rows = read_table(out, QUALITY_FILE)
    assert [(r["impl"], r["epoch"], r["final"]) for r in rows] == [
        ("vmap", "1", "false"), ("vmap", "2", "true"), ("vmap_lrt", "1", "false"), ("vmap_lrt", "2", "true")]
    for r in rows:
        assert r["status"] == "ok" and r["init"] == "report" and r["prior_sigma"] == "1.0"
        assert float(r["rmse"]) > 0 and 0 <= float(r["coverage95"]) <= 1 and r["test_error"] == ""
    # Training time accumulates; evaluation is timed apart from it.
    for impl in ("vmap", "vmap_lrt"):
        mine = [r for r in rows if r["impl"] == impl]
        assert float(mine[1]["train_s"]) == pytest.approx(float(mine[0]["train_s"]) + float(mine[1]["epoch_train_s"]))
    band = read_table(out, BAND_FILE)
    assert len(band) == 2 * 200
    xs = [float(b["x"]) for b in band[:200]]
    points = [float(p["x"]) for p in read_table(out, BAND_POINTS_FILE)[:1024]]
    width = max(points) - min(points)
    assert max(xs) - min(xs) == pytest.approx(2 * width)  # twice the training range
    assert all(float(b["lower"]) <= float(b["mean"]) <= float(b["upper"]) for b in band)
    before = (out / QUALITY_FILE).read_bytes()
    assert main(TRAIN + ["--out", str(out), "--resume"]) == 0
    assert (out / QUALITY_FILE).read_bytes() == before  # both configs were final: nothing re-run
    assert main(["analyze", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert "## Quality" in report and "vmap_lrt S=1" in report
    assert (out / "figures" / "regression_band.png").is_file()


def test_init_and_prior_options_are_recorded_and_bad_ones_are_usage_errors(tmp_path, capsys):
    out = tmp_path / "q"
    assert main(TRAIN[:4] + ["vmap_lrt", "--epochs", "1", "--test-samples", "2", "--threads", "1", "--init", "fan_in",
                             "--init-sigma", "0.02", "--prior-sigma", "0.1", "--out", str(out)]) == 0
    (row,) = read_table(out, QUALITY_FILE)
    assert (row["init"], row["init_sigma"], row["prior_sigma"]) == ("fan_in", "0.02", "0.1")
    for bad in (["--init", "xavier"], ["--prior-sigma", "0"], ["--baselines"], ["--stop-at-error", "3"]):
        code = main(TRAIN + bad + ["--out", str(tmp_path / "bad")])
        assert code == 2 and "error:" in capsys.readouterr().err
        assert not (tmp_path / "bad").exists()


def test_a_failing_config_is_a_final_error_row_and_the_next_one_runs(tmp_path, capsys, monkeypatch):
    import bench.quality.trainer as trainer

    out = tmp_path / "q"
    code = main(["train", "--task", "regression", "--impl", "vmap", "--kl", "closed", "--prior", "mixture",
                 "--epochs", "1", "--out", str(out)])
    assert code == 2  # caught before anything runs: the combination is invalid
    real = trainer.build_config_training

    def fails_for_one_sample(config):
        if config.samples == 1:
            raise RuntimeError("injected failure while building S=1")
        return real(config)

    monkeypatch.setattr(trainer, "build_config_training", fails_for_one_sample)
    assert main(TRAIN[:4] + ["vmap", "--samples", "1,2", "--epochs", "1", "--test-samples", "2", "--threads", "1",
                             "--out", str(out)]) == 0
    failed, ran = read_table(out, QUALITY_FILE)
    assert failed["status"] == "error" and failed["final"] == "true" and "injected failure" in failed["error"]
    assert ran["samples"] == "2" and ran["status"] == "ok" and ran["final"] == "true"


def _row(run_id, attempt, epoch, final, **kw):
    base = dict(run_id=run_id, attempt=attempt, impl="vmap", task="mnist", samples=1, lr=0.001, batch_size=128,
                init="report", init_sigma=0.0, prior="gaussian", prior_sigma=1.0, seed=0, device="cpu", threads=1,
                test_samples=20, status="ok", epoch=epoch, final=final, steps_per_epoch=10)
    base.update(kw)
    return base


def test_only_the_final_attempt_of_a_config_counts(tmp_path):
    w = QualityWriter(tmp_path)
    w.append(QUALITY_FILE, [_row("a", "killed", 1, False, test_error=0.5)])  # a run killed after one epoch
    w.append(FGSM_FILE, [dict(run_id="a", attempt="killed", eps=0.0, accuracy=0.1)])
    w.append(QUALITY_FILE, [_row("a", "second", 1, False, test_error=0.4),
                            _row("a", "second", 2, True, test_error=0.3)])
    w.append(FGSM_FILE, [dict(run_id="a", attempt="second", eps=0.0, accuracy=0.7)])
    assert final_attempts(tmp_path) == {"a": "second"}
    assert [r["test_error"] for r in counted_rows(tmp_path, QUALITY_FILE)] == ["0.4", "0.3"]
    assert [r["accuracy"] for r in counted_rows(tmp_path, FGSM_FILE)] == ["0.7"]
    # A config still running (or killed) with no final row: the analysis shows its latest attempt's curve.
    w.append(QUALITY_FILE, [_row("b", "old", 1, False, test_error=0.9), _row("b", "new", 1, False, test_error=0.8)])
    assert [r["test_error"] for r in latest_rows(tmp_path, QUALITY_FILE) if r["run_id"] == "b"] == ["0.8"]
    assert all(r["run_id"] == "a" for r in counted_rows(tmp_path, QUALITY_FILE))


def test_time_to_accuracy_and_speedups_by_hand(tmp_path):
    from analysis.quality_report import load_table, time_to_accuracy

    w = QualityWriter(tmp_path)
    seq = [(1, 0.05, 10.0), (2, 0.03, 20.0), (3, 0.024, 30.0)]  # reaches 2.5% at epoch 3: 30 s
    lrt = [(1, 0.04, 4.0), (2, 0.02, 8.0)]  # reaches it at epoch 2: 8 s
    never = [(1, 0.04, 2.0), (2, 0.03, 4.0)]
    for impl, curve, kl in (("sequential", seq, "sample"), ("vmap_lrt", lrt, "closed"), ("vmap", never, "sample")):
        w.append(QUALITY_FILE, [_row(impl, "x", e, e == len(curve), impl=impl, kl=kl, test_error=err, train_s=t,
                                     epoch_train_s=10.0 if impl == "sequential" else 4.0 if impl == "vmap_lrt" else 2.0)
                                for e, err, t in curve])
    table = time_to_accuracy(load_table(tmp_path, QUALITY_FILE), 0.025).set_index("impl")
    assert table.loc["sequential", "time_to_target_s"] == 30.0 and table.loc["sequential", "epoch_reached"] == 3
    assert table.loc["vmap_lrt", "speedup_time_to_target"] == pytest.approx(30.0 / 8.0)
    assert table.loc["vmap_lrt", "speedup_per_step"] == pytest.approx(10.0 / 4.0)
    assert not table.loc["vmap", "reached"] and math.isnan(table.loc["vmap", "speedup_time_to_target"])
    assert table.loc["vmap", "speedup_per_step"] == pytest.approx(5.0)


class _Fixed:
    """A predictor with fixed per-sample logits per input set: no model needed."""

    def __init__(self, table):
        self.table = table

    def __call__(self, x, samples, generator):
        return self.table[int(x[0, 0])][:, : x.shape[0]]


def test_ood_rows_find_the_set_where_samples_disagree():
    n = 50
    agree = torch.tensor([8.0, 0.0])[None, None].expand(3, n, 2)  # every sample certain of class 0
    disagree = torch.stack([torch.tensor([8.0, 0.0]), torch.tensor([0.0, 8.0]),
                            torch.tensor([8.0, 0.0])])[:, None].expand(3, n, 2)
    predict = _Fixed({0: agree, 1: disagree})
    sets = [InputSet("mnist", torch.zeros(n, 4), torch.zeros(n, dtype=torch.long)),
            InputSet("fashion_mnist", None, reason="absent"),
            InputSet("shifted", torch.ones(n, 4), torch.zeros(n, dtype=torch.long))]
    rows, hist = ood_rows(predict, sets, 3, None, 10_000)
    by = {r["set"]: r for r in rows}
    assert by["fashion_mnist"]["status"] == "skipped" and by["fashion_mnist"]["reason"] == "absent"
    assert by["shifted"]["auroc_mi"] == 1.0 and by["mnist"]["mean_mi"] == pytest.approx(0.0, abs=1e-9)
    assert by["mnist"]["accuracy"] == 1.0
    counts = {s: sum(h["count"] for h in hist if h["set"] == s) for s in ("mnist", "shifted")}
    assert counts == {"mnist": 3 * n, "shifted": 3 * n}  # every sample of every example, once


def test_fgsm_moves_inputs_against_the_gradient_of_the_mean():
    # Logits (0, w.x) with w = (1, -1): class 1 iff x0 > x1. x = (0.55, 0.5): margin 0.05, and FGSM moves
    # both coordinates by eps against it, so the label flips once 2 eps > 0.05.
    w = torch.tensor([1.0, -1.0])

    def predict(x, samples, generator):
        return torch.stack([torch.zeros(x.shape[0]), x @ w], -1)[None].expand(samples, -1, -1)

    x = torch.tensor([[0.55, 0.5]] * 4)
    y = torch.ones(4, dtype=torch.long)
    acc = fgsm_accuracies(predict, x, y, FGSM_EPS, 2, 3, None, 100)
    assert acc == [1.0, 0.0, 0.0, 0.0, 0.0]
    acc = fgsm_accuracies(predict, x, y, (0.0, 0.02), 2, 3, None, 100)
    assert acc == [1.0, 1.0]


def test_analysis_of_mnist_rows_draws_figures_6_and_8_and_states_the_claims(tmp_path):
    from analysis.quality_report import write_report

    w = QualityWriter(tmp_path)
    fgsm = {"bnn": [0.98, 0.8, 0.5, 0.3, 0.2], "mlp": [0.98, 0.3, 0.05, 0.01, 0.0],
            "mlp_dropout": [0.98, 0.5, 0.2, 0.1, 0.0]}
    for impl, accs in fgsm.items():
        name = "vmap_lrt" if impl == "bnn" else impl
        w.append("fgsm.csv", [dict(run_id=impl, attempt="a", impl=name, eps=e, accuracy=a, attack_samples=10,
                                   test_samples=20, n=100) for e, a in zip(FGSM_EPS, accs)])
        w.append("ood.csv", [dict(run_id=impl, attempt="a", impl=name, set="mnist", status="ok", n=10),
                             dict(run_id=impl, attempt="a", impl=name, set="rotated_90", status="ok", n=10,
                                  auroc_mi=0.9 if impl == "bnn" else 0.5, auroc_entropy=0.8),
                             dict(run_id=impl, attempt="a", impl=name, set="kmnist", status="skipped",
                                  reason="absent")])
        w.append("ood_hist.csv", [dict(run_id=impl, attempt="a", set=s, bin_low=i / 20, bin_high=(i + 1) / 20, count=i)
                                  for s in ("mnist", "rotated_90") for i in range(20)])
        w.append(QUALITY_FILE, [_row(impl, "a", 1, True, impl=name, test_error=0.02, train_s=1.0, epoch_train_s=1.0)])
    report = write_report(tmp_path, tmp_path / "out").read_text()
    assert ("FGSM eps = 0.1: every BNN keeps >= 0.500 accuracy, the better deterministic net (mlp or mlp_dropout) "
            "0.200" in report and "holds" in report)
    assert "OOD set rotated_90: AUROC of mutual information 0.900 to 0.900" in report
    assert "Not measured (not available here): kmnist" in report
    for name in ("fgsm_accuracy", "ood_top_class_probability", "quality_test_error"):
        assert (tmp_path / "out" / "figures" / f"{name}.png").is_file()
    table = pd.read_csv(tmp_path / "out" / "fgsm_accuracy.csv")
    assert list(table.columns[-5:]) == [f"acc@eps={e:g}" for e in FGSM_EPS]


def test_a_peer_library_trains_and_is_evaluated_like_ours(tmp_path, capsys):
    from bench.grid.profiles import importable_peers

    peers = [p for p in ("torchbnn", "blitz", "bayesian_torch_reparam") if p in importable_peers()]
    if not peers:
        pytest.skip("no peer library installed here (bash scripts/setup.sh --peers)")
    out = tmp_path / "peer"
    argv = ["train", "--task", "regression", "--impl", peers[0], "--epochs", "2", "--test-samples", "4",
            "--threads", "1", "--out", str(out)]
    assert main(argv) == 0
    rows = read_table(out, QUALITY_FILE)
    assert [(r["impl"], r["epoch"], r["status"]) for r in rows] == [(peers[0], "1", "ok"), (peers[0], "2", "ok")]
    assert all(float(r["rmse"]) > 0 and 0 <= float(r["coverage95"]) <= 1 for r in rows)
    assert float(rows[1]["train_s"]) > float(rows[0]["train_s"]) > 0


def test_quality_runs_in_several_directories_merge_into_one_report(tmp_path, capsys):
    one, two = tmp_path / "one", tmp_path / "two"
    base = ["train", "--task", "regression", "--epochs", "1", "--test-samples", "4", "--threads", "1"]
    assert main(base + ["--impl", "vmap", "--out", str(one)]) == 0
    assert main(base + ["--impl", "vmap_lrt", "--out", str(two)]) == 0
    merged = tmp_path / "both"
    assert main(["analyze", str(one), str(two), "--out", str(merged)]) == 0
    assert [r["impl"] for r in read_table(merged, QUALITY_FILE)] == ["vmap", "vmap_lrt"]
    report = (merged / "report.md").read_text()
    assert "Merged from:" in report and "vmap S=1" in report and "vmap_lrt S=1" in report
    # The same config trained in two directories: refused, naming both.
    capsys.readouterr()
    assert main(["analyze", str(one), str(one), "--out", str(tmp_path / "twice")]) == 2
    err = capsys.readouterr().err
    assert "was trained in both" in err and len(err.strip().splitlines()) == 1


def test_a_failure_after_training_keeps_the_last_epochs_metrics(tmp_path, capsys, monkeypatch):
    """OOD, FGSM or the band failing after the last epoch: the final row says so and still holds that
    epoch's test metrics (nothing measured is lost); the command goes on to the next config."""
    import bench.quality.run as quality_run

    def broken(*args, **kwargs):
        raise RuntimeError("shape mismatch in the OOD set")

    monkeypatch.setattr(quality_run, "post_training", broken)
    out = tmp_path / "q"
    assert main(["train", "--task", "regression", "--impl", "vmap,vmap_lrt", "--epochs", "1", "--test-samples", "4",
                 "--threads", "1", "--out", str(out)]) == 0
    rows = read_table(out, QUALITY_FILE)
    assert [(r["impl"], r["final"], r["status"]) for r in rows] == [("vmap", "true", "error"),
                                                                    ("vmap_lrt", "true", "error")]
    assert all("OOD/FGSM/band failed" in r["error"] and "shape mismatch" in r["error"] for r in rows)
    assert all(float(r["rmse"]) > 0 and r["epoch"] == "1" for r in rows)
