"""Checks of a whole grid that need the math package (and so torch), made before any process starts:
data sources and data sets present, every model factory buildable by every implementation asked for."""

from __future__ import annotations

from bench.contract.errors import UsageError


def parse_data_source(text: str) -> str:
    from bnn_impls.tasks import DATA_SOURCES

    if text not in DATA_SOURCES:
        raise UsageError(f"--data {text!r} is not a data source: choose one of {', '.join(DATA_SOURCES)}")
    return text


def check_models(configs) -> None:
    """Before any process starts: every --model factory imports and builds an nn.Module, and every
    implementation supports its layer types (vmap_lrt needs a moment rule per Bayesian layer type)."""
    from bnn_impls.model_factory import check_support
    from bnn_impls.names import BnnConfigError

    for key in dict.fromkeys((c.task, c.model, c.impl) for c in configs):
        try:
            check_support(*key)
        except BnnConfigError as e:
            raise UsageError(str(e)) from None


def check_data(configs) -> None:
    """Fail before the first config, not once per config, when a data set is missing."""
    from bnn_impls.tasks import ensure_data

    for task, data_dir, data in dict.fromkeys((c.task, c.data_dir, c.data) for c in configs):
        ensure_data(task, data_dir, data)

