"""Peer libraries as implementations: each one's own step lowers its own loss; a missing one is a
clear error naming its install command; their capabilities are declared, not guessed."""

import math

import pytest
import torch

import bnn_impls as B
from bench.cli.main import main
from bench.contract.config import BenchConfig
from bench.measure.step import measure
from bnn_impls import peers, registry
from bnn_impls.tasks import Dataset, TaskSpec

#: A classification task small enough for the default suite (the peers build from task.sizes).
SMALL = TaskSpec("mnist", (16, 32, 10), B.CategoricalLikelihood(), 1e-2, 64, "16-32-10 for tests")


def _skip_unless_importable(name):
    why = registry.peer_status()[name]
    if why:
        pytest.skip(why)


def _small_batch(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 16, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return Dataset(x, y, x, y)


@pytest.mark.parametrize("name", list(peers.PEERS))
def test_each_peers_own_step_lowers_its_own_loss_on_a_small_batch(name):
    _skip_unless_importable(name)
    data = _small_batch()
    training = registry.get_implementation(name).make_training(
        SMALL, data, samples=2, lr=1e-2, batch_size=64, seed=0, generator=torch.Generator().manual_seed(0))
    losses = [float(training.step(data.x_train, data.y_train).loss) for _ in range(30)]
    assert all(math.isfinite(v) for v in losses), losses
    assert sum(losses[-5:]) / 5 < 0.97 * sum(losses[:5]) / 5, losses
    assert training.predict(data.x_train[:8], 3).shape == (3, 8, 10)
    assert training.loss_note and (training.kl_weight is None or training.kl_weight > 0)


@pytest.mark.parametrize("name", list(peers.PEERS))
def test_a_peer_seeds_its_own_draws(name):
    """Peers sample with torch's global generator: the config's seed fixes it, whatever ran before."""
    _skip_unless_importable(name)
    data = _small_batch()

    def first_losses():
        t = registry.get_implementation(name).make_training(
            SMALL, data, samples=1, lr=1e-2, batch_size=64, seed=3, generator=None)
        return [float(t.step(data.x_train, data.y_train).loss) for _ in range(2)]

    a = first_losses()
    torch.rand(1000)  # another config's use of the global generator in between
    assert first_losses() == a


def test_peer_capabilities_are_declared_for_the_harness():
    for name in peers.importable_peers():
        caps = registry.capabilities(name)
        assert caps.trains_own_model and caps.kl_estimators == (caps.default_kl,) and caps.loss_note
        with pytest.raises(B.BnnConfigError, match="supports only the KL estimator"):
            registry.check_combination(name, "repar", "gaussian")


def test_a_peer_row_records_its_kl_weight_and_loss_note():
    name = "torchbnn" if "torchbnn" in peers.importable_peers() else None
    if name is None:
        pytest.skip(registry.peer_status()["torchbnn"])
    row = measure(BenchConfig(impl=name, task="regression", samples=2, steps=1, repeats=1, warmup_steps=0)).row
    assert row["status"] == "ok" and row["kl"] == "closed" and row["graph_bytes"] > 0
    assert row["kl_weight"] > 0 and "0.01" in row["loss_note"]


@pytest.fixture
def blitz_missing(monkeypatch):
    real = peers.missing_requirement
    monkeypatch.setattr(peers, "missing_requirement", lambda n: "blitz" if n == "blitz" else real(n))
    saved = registry._REGISTRY.pop("blitz", None)
    yield
    if saved is not None:
        registry._REGISTRY["blitz"] = saved


def test_a_missing_peer_is_one_line_naming_its_install_command(blitz_missing):
    with pytest.raises(B.BnnConfigError, match=r"needs blitz-bayesian-pytorch 0.2.8.*pip install --no-deps "
                                               r"blitz-bayesian-pytorch==0.2.8, or scripts/setup.sh --peers"):
        registry.get_implementation("blitz")
    assert "blitz" not in registry.implementation_names()
    assert "blitz" in registry.peer_status() and registry.peer_status()["blitz"]


def test_selecting_a_missing_peer_on_the_command_line_is_exit_2(blitz_missing, capsys, tmp_path):
    out = tmp_path / "out"
    code = main(["sweep", "--impl", "blitz", "--task", "mnist", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "pip install --no-deps blitz-bayesian-pytorch" in err
    assert not out.exists()


def test_list_shows_peers_here_and_why_others_are_not(blitz_missing, capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "peer implementations not importable here" in out and "blitz-bayesian-pytorch==0.2.8" in out
    for name in peers.importable_peers():
        if name != "blitz":
            assert name in out


def test_an_unknown_implementation_name_fails_clearly(capsys, tmp_path):
    code = main(["sweep", "--impl", "blitzz", "--task", "mnist", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "unknown implementation 'blitzz'" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("name", ["torchbnn", "posteriors_vi"])  # its own Linear layers; torch.func.grad
def test_a_peers_counters_in_one_step_match_one_step_per_counter(name):
    """The measurement counts FLOPs, operators and GEMM calls in one step of nested dispatch modes
    (bench.measure.step.counted_together): a peer's own step must look to each mode as it does alone."""
    _skip_unless_importable(name)
    from bench.measure.ceiling import record_step_calls
    from bench.measure.counters import count_ops
    from bench.measure.flops import count_flops
    from bench.measure.step import counted_together
    from bench.training.builder import build_config_training

    config = BenchConfig(impl=name, task="mnist", samples=2, threads=1, data="synthetic", batch_size=8)
    together, apart = build_config_training(config), build_config_training(config)
    together.step(), apart.step()
    flops, ops, calls = counted_together(together.instrumented_step)
    assert flops == count_flops(apart.instrumented_step) > 0
    assert ops == count_ops(apart.instrumented_step)
    assert sorted(calls, key=repr) == sorted(record_step_calls(apart.instrumented_step), key=repr)
