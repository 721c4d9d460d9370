"""The registry is the one source of an implementation's defaults and capabilities."""

import pytest

import bnn_impls as B
from bench.contract.config import BenchConfig
from bench.contract.errors import UsageError
from bench.grid.expand import Axes, expand
from bench.measure.step import measure
from bnn_impls import registry

PLUGIN = "tests.plugins.sample_default"


@pytest.fixture
def sample_default_plugin(monkeypatch):
    monkeypatch.setenv(registry.PLUGINS_ENV, PLUGIN)
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    yield "vmap_plugin"
    registry._REGISTRY.pop("vmap_plugin", None)


def test_a_plugin_declaring_sample_gets_sample_everywhere(sample_default_plugin):
    name = sample_default_plugin
    assert registry.default_kl(name) == "sample"
    assert B.default_kl(name) == "sample"  # the names-level helper asks the registry too
    configs = expand(Axes(impls=(name,), tasks=("regression",), samples=(2,)), steps=1, repeats=1, warmup_steps=0)
    assert [c.kl for c in configs] == ["sample"]
    row = measure(BenchConfig(impl=name, task="regression", samples=2, steps=1, repeats=1, warmup_steps=0)).row
    assert row["kl"] == "sample" and row["status"] == "ok"
    assert row["kl_weight"] == pytest.approx(1 / 1024) and row["loss_note"] == ""


def test_built_in_defaults_come_from_the_registered_objects():
    assert {n: registry.default_kl(n) for n in B.IMPLEMENTATIONS} == {
        "sequential": "sample", "vmap": "sample", "vmap_lrt": "closed", "vmap_flipout": "sample"}
    assert registry.capabilities("vmap_lrt").draws_weights is False
    assert registry.valid_kl_for("vmap_lrt", "gaussian") == ("closed", "mc", "repar", "repar_exact")


def test_an_unknown_name_has_no_default():
    with pytest.raises(B.BnnConfigError, match="unknown implementation 'loop'"):
        registry.default_kl("loop")


class _Undeclared:
    def loss(self, *a, **k): ...

    def predict(self, *a, **k): ...


class _Impossible(_Undeclared):
    default_kl = "sample"
    draws_weights = False


@pytest.mark.parametrize("impl, match", [(_Undeclared(), "does not declare default_kl, draws_weights"),
                                         (_Impossible(), "declares default_kl='sample', which it cannot use")])
def test_registration_checks_the_declaration(impl, match):
    with pytest.raises(B.BnnConfigError, match=match):
        registry.register_implementation("bad_impl", impl)
    assert "bad_impl" not in registry.implementation_names()


def test_declared_kl_estimators_and_tasks_are_enforced():
    class OnlyClosedOnMnist:
        default_kl = "closed"
        draws_weights = True
        kl_estimators = ("closed",)
        tasks = ("mnist",)

    registry.register_implementation("only_closed", OnlyClosedOnMnist(), replace=True)
    try:
        with pytest.raises(B.BnnConfigError, match="supports only the KL estimator.*closed, not 'sample'"):
            registry.check_combination("only_closed", "sample", "gaussian")
        with pytest.raises(UsageError, match="does not run task 'regression': it runs mnist"):
            expand(Axes(impls=("only_closed",), tasks=("regression",), samples=(1,)))
    finally:
        registry._REGISTRY.pop("only_closed", None)
