"""The shape of the code, enforced: no import cycles, layers that only import downward, torch-free
analysis, modules and functions of a readable size, one name per module, and a clean linter.

The import graph is read from the source (ast), imports inside functions included, since those
run too: `from a import b` where `a.b` is a module is an edge to that module, otherwise to `a`
(a package's own `__init__` runs first either way, but is not counted as the importer's edge).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bnn_impls", "bench", "analysis")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80

#: bench's folders and the bench folders each may import (cli sits on top and may import anything).
BENCH_LAYERS = {
    "contract": {"contract"},
    "grid": {"contract", "grid"},
    "training": {"contract", "training"},
    "measure": {"contract", "training", "measure"},
    "run": {"contract", "measure", "run"},
    "gate": {"contract", "grid", "measure", "run", "gate"},
    "quality": {"contract", "training", "measure", "run", "quality"},
}
#: What bench/contract may import besides itself: the standard library only.
STDLIB = set(sys.stdlib_module_names)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every module `name` imports (top-level or not): ours by their module name, others by top package."""
    targets = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            targets |= {f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names}
    return {t if t in MODULES else t.split(".")[0] if t.split(".")[0] not in PACKAGES else t for t in targets}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _ours(target: str) -> str | None:
    """The module of ours a target names (an attribute of a module counts as that module)."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    edges = {m: {o for t in GRAPH[m] if (o := _ours(t)) and o != m} for m in MODULES}
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]

    def visit(root):
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

    for module in sorted(MODULES):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycles():
    assert _cycles() == []


def test_the_cycle_finder_finds_a_planted_cycle(monkeypatch):
    """The test above can fail: a two-module cycle is found."""
    monkeypatch.setitem(GRAPH, "bench.contract.errors", GRAPH["bench.contract.errors"] | {"bench.contract.config"})
    monkeypatch.setitem(GRAPH, "bench.contract.config", GRAPH["bench.contract.config"] | {"bench.contract.errors"})
    assert ["bench.contract.config", "bench.contract.errors"] in _cycles()


def _breaches() -> list[str]:
    breaches = []
    for module, targets in GRAPH.items():
        top = module.split(".")[0]
        for target in sorted(targets):
            head = target.split(".")[0]
            if top == "bnn_impls" and head in ("bench", "analysis"):
                breaches.append(f"{module} -> {target}: the math knows nothing of the harness")
            if top == "analysis" and (head == "torch" or (head == "bench" and not target.startswith("bench.contract"))):
                breaches.append(f"{module} -> {target}: analysis reads results through bench.contract only")
            if module.startswith("bench.contract") and not (target.startswith("bench.contract") or head in STDLIB):
                breaches.append(f"{module} -> {target}: the contract is standard library only")
            if top == "bench" and head == "analysis" and not module.startswith("bench.cli"):
                breaches.append(f"{module} -> {target}: only the command line sits on top of analysis")
            folder = module.split(".")[1] if module.count(".") >= 1 else None
            if folder in BENCH_LAYERS and head == "bench" and target.count(".") >= 1:
                used = target.split(".")[1]
                if used in BENCH_LAYERS or used == "cli":
                    if used not in BENCH_LAYERS[folder]:
                        breaches.append(f"{module} -> {target}: bench/{folder} may not import bench/{used}")
    return breaches


def test_layers_only_import_downward():
    assert _breaches() == []


def test_a_planted_layer_breach_is_found(monkeypatch):
    monkeypatch.setitem(GRAPH, "bnn_impls.names", GRAPH["bnn_impls.names"] | {"bench.contract.config"})
    monkeypatch.setitem(GRAPH, "bench.measure.timing", GRAPH["bench.measure.timing"] | {"bench.run.worker"})
    monkeypatch.setitem(GRAPH, "analysis.fit", GRAPH["analysis.fit"] | {"torch"})
    found = "\n".join(_breaches())
    assert "bnn_impls.names -> bench.contract.config" in found
    assert "bench/measure may not import bench/run" in found
    assert "analysis.fit -> torch" in found


def test_analysis_and_the_contract_import_with_torch_unimportable():
    """Every analysis module (and the contract it reads through) imports on a machine without torch."""
    names = sorted(m for m in MODULES if m.startswith(("analysis", "bench.contract")))
    code = (
        "import importlib, sys\n"
        "class NoTorch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ImportError('torch is blocked in this test')\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "assert 'torch' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def _sizes():
    long_modules, long_functions = [], []
    for name, path in MODULES.items():
        text = path.read_text()
        if text.count("\n") > MAX_MODULE_LINES:
            long_modules.append(f"{name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_functions.append(f"{name}.{node.name}: {length} lines")
    return long_modules, long_functions


def test_modules_and_functions_stay_readable():
    long_modules, long_functions = _sizes()
    assert long_modules == [] and long_functions == []


def test_no_two_modules_share_a_name():
    seen = defaultdict(list)
    for name in MODULES:
        leaf = name.rpartition(".")[2]
        if leaf not in PACKAGES and not MODULES[name].name.startswith("__"):
            seen[leaf].append(name)
    assert {leaf: names for leaf, names in seen.items() if len(names) > 1} == {}


def test_the_contract_repeats_the_math_packages_data_sources():
    from bench.contract.config import DATA_SOURCES, BenchConfig
    from bnn_impls.tasks import DATA_SOURCES as TASK_DATA_SOURCES

    assert DATA_SOURCES == TASK_DATA_SOURCES
    with pytest.raises(ValueError, match="data must be one of real, synthetic"):
        BenchConfig("vmap", "mnist", 1, data="bogus")


def test_ruff_finds_nothing():
    """The linter CI runs (configured in pyproject.toml)."""
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=ROOT,
                          capture_output=True, text=True)
    assert "No module named ruff" not in done.stderr, "ruff is missing: bash scripts/setup.sh installs it"
    assert done.returncode == 0, done.stdout[-3000:]
