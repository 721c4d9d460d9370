"""bnn-bench's harness. The Python entry point (bench/api.py) is re-exported here:

    from bench import build_training, measure_config

Loaded on first use, so `import bench.results` (what `analysis` needs) never imports torch.
"""

_API = ("Training", "build_training", "measure_config")


def __getattr__(name):
    if name in _API:
        from bench import api

        return getattr(api, name)
    raise AttributeError(f"module 'bench' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_API))
