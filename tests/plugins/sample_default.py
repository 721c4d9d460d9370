"""Test-only plugin: an implementation under a new name that declares `default_kl = "sample"`.

Loaded through BNN_BENCH_PLUGINS=tests.plugins.sample_default; the harness must run it with "sample"
(its declaration), not a fallback.
"""

from bnn_impls.registry import get_implementation, register_implementation


class VmapUnderAnotherName:
    name = "vmap_plugin"
    default_kl = "sample"
    draws_weights = True

    def __init__(self):
        self._inner = get_implementation("vmap")

    def loss(self, model, x, y, **kwargs):
        return self._inner.loss(model, x, y, **kwargs)

    def predict(self, model, x, **kwargs):
        return self._inner.predict(model, x, **kwargs)


register_implementation("vmap_plugin", VmapUnderAnotherName(), replace=True)
