"""Grid parsing and expansion, and the profiles built on them."""

import pytest

from bench.contract.errors import UsageError
from bench.grid import devices as grid
from bench.grid.expand import Axes, expand
from bench.grid.parse import parse_bytes, parse_int_list, parse_name_list
from bench.grid.profiles import PROFILES, Common, Overrides, build_grid, get_profile


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1,2,5,10", (1, 2, 5, 10)),
        ("1:10", tuple(range(1, 11))),
        ("1:10:3", (1, 4, 7, 10)),
        (" 3 , 1:2 ", (3, 1, 2)),
        ("2,2,1", (2, 1)),
        ("1,1e2,1e6", (1, 100, 1_000_000)),
    ],
)
def test_parse_int_list_lists_and_ranges(text, expected):
    assert parse_int_list(text) == expected


@pytest.mark.parametrize("text", ["", "1:x", "1,,2", "a", "1:2:3:4", "5:1", "1.5", "1:10:0", "0", "-1", "1,0"])
def test_parse_int_list_rejects_malformed_or_nonpositive(text):
    with pytest.raises(UsageError) as e:
        parse_int_list(text, flag="--samples")
    assert "--samples" in str(e.value) and "\n" not in str(e.value)


def test_parse_name_list():
    assert parse_name_list(None) is None
    assert parse_name_list("vmap, vmap_lrt,vmap") == ("vmap", "vmap_lrt")
    with pytest.raises(UsageError):
        parse_name_list(" , ")


@pytest.mark.parametrize("text, expected", [("4G", 4 * 2**30), ("1024M", 2**30), (str(2**31), 2**31),
                                            ("1.5GiB", 3 * 2**29), ("2097152kb", 2**31)])
def test_parse_bytes(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["", "4X", "G", "-1G", "0", "1K", "512M"])
def test_parse_bytes_rejects(text):
    with pytest.raises(UsageError):
        parse_bytes(text)


def test_expand_uses_each_implementations_default_kl_and_orders_points():
    configs = expand(Axes(impls=("sequential", "vmap_lrt"), tasks=("regression",), samples=(1, 2)), steps=3)
    assert [(c.impl, c.kl, c.samples) for c in configs] == [
        ("sequential", "sample", 1), ("sequential", "sample", 2), ("vmap_lrt", "closed", 1), ("vmap_lrt", "closed", 2)
    ]
    assert all(c.steps == 3 and c.device == "cpu" for c in configs)
    assert len({c.run_id for c in configs}) == 4


def test_n_mc_varies_only_for_estimators_that_draw_it():
    configs = expand(Axes(impls=("vmap",), tasks=("regression",), samples=(1,), kls=("sample", "closed", "mc", "repar"),
                          n_mc=(1, 100)))
    assert [(c.kl, c.n_mc) for c in configs] == [("sample", 1), ("closed", 1), ("mc", 1), ("mc", 100),
                                                  ("repar", 1), ("repar", 100)]


@pytest.mark.parametrize(
    "axes, needle",
    [
        (Axes(impls=("vmap_lrt",), tasks=("regression",), samples=(1,), kls=("sample",)), "sampled weights"),
        (Axes(impls=("vmap",), tasks=("regression",), samples=(1,), kls=("closed",), priors=("mixture",)), "gaussian"),
        (Axes(impls=("loop",), tasks=("regression",), samples=(1,)), "unknown implementation 'loop'"),
        (Axes(impls=("vmap",), tasks=("cifar",), samples=(1,)), "unknown task 'cifar'"),
        (Axes(impls=("vmap",), tasks=("regression",), samples=(1,), kls=("exact",)), "unknown KL estimator 'exact'"),
        (Axes(impls=("vmap",), tasks=("regression",), samples=(1,), devices=("tpu",)), "unknown device 'tpu'"),
    ],
)
def test_expand_rejects_bad_names_and_combinations_as_usage_errors(axes, needle):
    with pytest.raises(UsageError, match=needle):
        expand(axes)


def test_expand_turns_config_value_errors_into_usage_errors():
    with pytest.raises(UsageError, match="repeats must be >= 1"):
        expand(Axes(impls=("vmap",), tasks=("regression",), samples=(1,)), repeats=0)


def test_cuda_is_refused_where_torch_finds_none(monkeypatch):
    monkeypatch.setattr(grid, "_cuda_count", lambda: 0)
    for device in ("cuda", "cuda:0"):
        with pytest.raises(UsageError, match="no CUDA device"):
            grid.check_device(device)
    assert grid.available_devices()[0] == "cpu" and "cuda" not in grid.available_devices()


def test_cuda_index_must_exist(monkeypatch):
    monkeypatch.setattr(grid, "_cuda_count", lambda: 2)
    assert grid.check_device("cuda:1") == "cuda:1"
    with pytest.raises(UsageError, match="cuda:0..cuda:1"):
        grid.check_device("cuda:2")
    assert "cuda" in grid.available_devices()


# ---------------------------------------------------------------------------------------------
# Profiles


def test_quick_profile_covers_what_the_issue_asks():
    configs = build_grid(get_profile("quick"))
    regression = [c for c in configs if c.task == "regression" and c.kl in ("sample", "closed")]
    mnist = [c for c in configs if c.task == "mnist"]
    repar = [c for c in configs if c.kl in ("mc", "repar", "repar_exact")]
    assert {(c.impl, c.samples) for c in regression} == {(i, s) for i in PROFILES["quick"].blocks[0].impls
                                                        for s in (1, 2, 5, 10)}
    assert all(c.epochs == 1 and c.steps is None for c in regression)  # whole epochs: measured, not extrapolated
    assert {(c.impl, c.samples) for c in mnist} == {(c.impl, c.samples) for c in regression}
    assert all(c.steps is not None and c.epochs is None for c in mnist)
    # four values of n_mc: enough for analyze to fit the cost per extra draw with an interval
    assert {(c.kl, c.n_mc) for c in repar} == {(k, n) for k in ("mc", "repar", "repar_exact") for n in (1, 10, 30, 100)}
    assert all(c.impl == "vmap_lrt" and c.samples == 1 for c in repar)
    assert len(configs) == 16 + 16 + 12 and all(c.timeout_s for c in configs)


def test_every_profile_builds_a_valid_grid():
    sizes = {name: len(build_grid(profile)) for name, profile in PROFILES.items()}
    assert sizes["paper"] == 2 * 3 * 10
    assert sizes["repar"] == 3 * 7
    assert sizes["ci"] == 3 + 3


def test_overrides_replace_the_axis_in_every_block_and_steps_replace_epochs():
    overrides = Overrides(impls=("vmap",), samples=(3,), steps=4, repeats=2)
    configs = build_grid(get_profile("paper"), overrides, Common(threads=1, seed=7))
    assert [(c.task, c.impl, c.samples) for c in configs] == [("regression", "vmap", 3), ("mnist", "vmap", 3)]
    assert all(c.steps == 4 and c.epochs is None and c.repeats == 2 and c.threads == 1 and c.seed == 7
               for c in configs)
    epochs = build_grid(get_profile("ci"), Overrides(epochs=2, tasks=("regression",)))
    assert all(c.epochs == 2 and c.steps is None for c in epochs)


def test_overlapping_blocks_are_deduplicated_in_order():
    # ci's two blocks differ in task and timing; made identical by the flags, they are one grid
    configs = build_grid(get_profile("ci"), Overrides(tasks=("regression",), samples=(2,), steps=3, repeats=5))
    assert [c.impl for c in configs] == ["sequential", "vmap", "vmap_lrt"]


def test_unknown_profile():
    with pytest.raises(UsageError, match="choose one of quick, paper, repar, ci"):
        get_profile("fast")


def test_a_new_config_field_at_its_default_keeps_old_run_ids():
    """Fields added after the first release must not re-key configs that leave them at their default."""
    import dataclasses

    from bench.contract.config import HASHED_ALWAYS, VOLATILE_FIELDS, BenchConfig

    config = BenchConfig(impl="vmap", task="mnist", samples=2)
    added = [f.name for f in dataclasses.fields(BenchConfig) if f.name not in HASHED_ALWAYS + VOLATILE_FIELDS]
    # The id the first release computed for this config, recorded in the committed CI baseline's format.
    assert config.run_id == "mnist-vmap-default-S2-n1-cpu-55dadf5a"
    for name in added:
        default = {f.name: f.default for f in dataclasses.fields(BenchConfig)}[name]
        if isinstance(default, bool):
            changed = dataclasses.replace(config, **{name: not default})
        elif isinstance(default, float):  # halved: stays valid for probabilities and scales alike
            changed = dataclasses.replace(config, **{name: default / 2 if default else 0.5})
        elif isinstance(default, int):
            changed = dataclasses.replace(config, **{name: default + 1})
        else:
            continue
        assert changed.run_id != config.run_id, name


def test_round_workers_come_from_the_flag_else_the_profile_else_warm():
    from argparse import Namespace

    from bench.cli.cmd_sweep import round_workers_from_args

    assert round_workers_from_args(Namespace(profile="peers", round_workers=None)) == "fresh"  # 36 warm would not fit
    assert round_workers_from_args(Namespace(profile="ci", round_workers=None)) == "warm"
    assert round_workers_from_args(Namespace(profile=None, round_workers=None)) == "warm"
    assert round_workers_from_args(Namespace(profile="peers", round_workers="warm")) == "warm"
