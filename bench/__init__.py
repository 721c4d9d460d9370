"""bnn-bench's harness (docs/architecture.md has the map). The Python entry points are re-exported:

    from bench import build_training, measure_config

Loaded on first use, so `import bench.contract` (what `analysis` needs) never imports torch.
"""

#: name -> the module that defines it
_API = {
    "Training": "bench.training.builder",
    "build_training": "bench.training.builder",
    "build_config_training": "bench.training.builder",
    "measure_config": "bench.measure.step",
}


def __getattr__(name):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'bench' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_API))
