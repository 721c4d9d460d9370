"""Executors turn every way a config can end into one final row, and never stop the caller."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bench.contract.config import BenchConfig
from bench.contract.errors import UsageError
from bench.run.executors import (
    WORKER_STARTS,
    InlineExecutor,
    LocalExecutor,
    SlurmExecutor,
    child_environment,
    make_executor,
)
from bench.run.worker import classify_exception, resolve_target, run_config
from tests import fakes

CONFIG = BenchConfig("vmap", "regression", samples=2, steps=4, repeats=3)
MEASURED = ("step_s_median", "step_s_min", "epoch_s", "epoch_measured", "graph_bytes", "final_loss", "repeats")


def wait_until_gone(pid: int, within: float = 5.0) -> bool:
    """True once `pid` no longer runs (a zombie awaiting its reaper counts as gone)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(")")[-1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


# ---------------------------------------------------------------------------------------------
# Classification


@pytest.mark.parametrize(
    "exc, status, message",
    [
        (MemoryError(), "oom", "MemoryError"),
        (RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"), "oom", "RuntimeError: CUDA out of memory."),
        (RuntimeError("[enforce fail] DefaultCPUAllocator: can't allocate memory: you tried 8 GB"),
         "oom", "can't allocate"),
        (type("OutOfMemoryError", (RuntimeError,), {})("CUDA"), "oom", "OutOfMemoryError: CUDA"),
        (RuntimeError("shape mismatch"), "error", "RuntimeError: shape mismatch"),
        (ValueError("bad\nvalue"), "error", "ValueError: bad value"),
        (KeyError("x"), "error", "KeyError: 'x'"),
    ],
)
def test_classify_exception(exc, status, message):
    got_status, got_message = classify_exception(exc)
    assert got_status == status and message in got_message and "\n" not in got_message


def test_resolve_target_errors_are_usage_errors():
    assert resolve_target("tests.fakes:ok") is fakes.ok
    for spec, needle in [("tests.fakes", "module:function"), ("no_such_module:f", "cannot import"),
                         ("tests.fakes:nope", "no function 'nope'")]:
        with pytest.raises(UsageError, match=needle):
            resolve_target(spec)


# ---------------------------------------------------------------------------------------------
# Local: a process per config


@pytest.fixture(params=WORKER_STARTS)
def start(request, monkeypatch):
    """Every local-executor test runs with both ways of starting a worker."""
    monkeypatch.setenv("BNN_BENCH_WORKER_START", request.param)
    return request.param


def test_local_ok_row_and_repeats_come_back_exactly_and_rss_is_the_childs_own(start):
    ballast = bytearray(os.urandom(1)) * (400 * 2**20)  # the parent is big; the child's RSS must not include it
    result = LocalExecutor("tests.fakes:ok").run(CONFIG)
    expected = fakes.ok(CONFIG)
    assert result.repeats == expected.repeats
    assert {k: result.row[k] for k in MEASURED} == {k: expected.row[k] for k in MEASURED}
    assert result.row["run_id"] == CONFIG.run_id and result.row["status"] == "ok"
    # exec: a Python without torch; forkserver: one that has imported torch (~150 MB), never the ballast
    assert 0 < result.row["rss_peak_bytes"] < (150 if start == "exec" else 300) * 2**20
    assert len(ballast) == 400 * 2**20


def test_bad_worker_start_is_a_usage_error(monkeypatch):
    monkeypatch.setenv("BNN_BENCH_WORKER_START", "spawnish")
    with pytest.raises(UsageError, match="BNN_BENCH_WORKER_START='spawnish': choose one of forkserver, exec"):
        LocalExecutor("tests.fakes:ok")


def test_local_child_output_does_not_reach_the_result(start):
    result = LocalExecutor("tests.fakes:noisy_ok").run(CONFIG)
    assert result.row["status"] == "ok" and result.repeats == fakes.ok(CONFIG).repeats


@pytest.mark.parametrize(
    "target, status, needle",
    [
        ("raises", "error", "ValueError: fake failure for S=2"),
        ("raises_cuda_oom", "oom", "CUDA out of memory"),
        ("segfaults", "error", "killed by SIGSEGV"),
        ("sigkilled", "oom", "killed by SIGKILL, likely the out-of-memory killer"),
        ("exits", "error", "worker exited with status 3: fatal: giving up"),
        ("returns_nothing", "error", "returned NoneType, not a RunResult"),
        ("missing", "error", "has no function 'missing'"),
    ],
)
def test_local_failures_become_status_rows(target, status, needle, start):
    result = LocalExecutor(f"tests.fakes:{target}").run(CONFIG)
    assert result.row["status"] == status and needle in result.row["error"]
    assert result.row["run_id"] == CONFIG.run_id and result.repeats == () and result.row["repeats"] == 0


def test_local_memory_cap_turns_runaway_allocation_into_oom(start):
    config = CONFIG.replace(memory_limit_bytes=256 * 2**20)
    result = LocalExecutor("tests.fakes:allocates").run(config)
    assert result.row["status"] == "oom" and "MemoryError" in result.row["error"]
    assert "0.25 GiB" in result.row["error"]


def test_local_timeout_kills_the_whole_process_group(tmp_path, start):
    config = CONFIG.replace(timeout_s=1.0, data_dir=str(tmp_path))
    start = time.monotonic()
    result = LocalExecutor("tests.fakes:sleeps_with_grandchild").run(config)
    assert result.row["status"] == "timeout" and "timeout of 1 s" in result.row["error"]
    assert time.monotonic() - start < 6
    grandchild = int((tmp_path / "grandchild.pid").read_text())
    assert wait_until_gone(grandchild)


def test_local_executor_timeout_is_the_default_and_the_configs_own_wins(start):
    start = time.monotonic()
    result = LocalExecutor("tests.fakes:sleeps", timeout=30).run(CONFIG.replace(timeout_s=0.5))
    assert result.row["status"] == "timeout" and time.monotonic() - start < 5
    assert LocalExecutor("tests.fakes:sleeps", timeout=0.5).run(CONFIG).row["status"] == "timeout"


def test_local_ctrl_c_kills_the_child_and_propagates(tmp_path, start):
    config = CONFIG.replace(data_dir=str(tmp_path))
    main = threading.main_thread().ident
    # Ctrl-C as a terminal delivers it: Python's own handler, whatever an earlier test (or a library it
    # loaded) installed; in one full-suite run the SIGINT was swallowed and the child slept its 120 s.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(1.5, lambda: signal.pthread_kill(main, signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            LocalExecutor("tests.fakes:sleeps_with_grandchild").run(config)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert wait_until_gone(int((tmp_path / "grandchild.pid").read_text()))


def test_a_killed_sweep_takes_its_config_and_the_configs_children_with_it(tmp_path, start):
    scratch_root = tmp_path / "tmp"
    scratch_root.mkdir()
    sweep = subprocess.Popen(
        [sys.executable, "-c", "from bench.run.executors import LocalExecutor; "
                               "from bench.contract.config import BenchConfig; "
                               "LocalExecutor('tests.fakes:sleeps_with_grandchild').run("
                               f"BenchConfig('vmap', 'regression', 1, data_dir={str(tmp_path)!r}))"],
        env=dict(child_environment(), TMPDIR=str(scratch_root)), start_new_session=True,
    )
    pid_file = tmp_path / "grandchild.pid"
    deadline = time.monotonic() + 30
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)  # the pid is written before the file is closed
    grandchild = int(pid_file.read_text())
    worker = int(Path(f"/proc/{grandchild}/stat").read_text().rsplit(")", 1)[1].split()[1])
    (scratch,) = scratch_root.glob("bnn-bench-*")
    assert (scratch / "request.json").exists()
    sweep.kill()  # SIGKILL: the sweep gets no chance to clean up
    sweep.wait()
    assert wait_until_gone(worker, within=3) and wait_until_gone(grandchild, within=3)
    assert not scratch.exists()  # the config's scratch directory went with it


# ---------------------------------------------------------------------------------------------
# Inline: same process


def test_inline_classifies_like_the_worker_and_records_no_rss():
    assert InlineExecutor("tests.fakes:raises").run(CONFIG).row["error"] == "ValueError: fake failure for S=2"
    assert InlineExecutor(fakes.raises_cuda_oom).run(CONFIG).row["status"] == "oom"
    ok = InlineExecutor(fakes.ok).run(CONFIG)
    assert ok.row["status"] == "ok" and ok.repeats == fakes.ok(CONFIG).repeats
    assert "rss_peak_bytes" not in ok.row  # this process's RSS mixes every config run so far


def test_inline_timeout_interrupts_the_target():
    start = time.monotonic()
    result = InlineExecutor(fakes.sleeps, timeout=0.3).run(CONFIG)
    assert result.row["status"] == "timeout" and time.monotonic() - start < 3
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)  # the alarm does not outlive the call


def test_inline_never_caps_its_own_address_space():
    import resource

    before = resource.getrlimit(resource.RLIMIT_AS)
    InlineExecutor(fakes.ok).run(CONFIG.replace(memory_limit_bytes=2**20))
    assert resource.getrlimit(resource.RLIMIT_AS) == before


def test_run_config_restores_the_cap_it_set():
    import resource

    before = resource.getrlimit(resource.RLIMIT_AS)
    result = run_config(CONFIG.replace(memory_limit_bytes=512 * 2**20), fakes.ok, isolated=True)
    assert resource.getrlimit(resource.RLIMIT_AS) == before and result.row["rss_peak_bytes"] > 0


# ---------------------------------------------------------------------------------------------
# Slurm through submitit (its local executor stands in for a cluster)


@pytest.fixture
def slurm(tmp_path):
    submitit = pytest.importorskip("submitit")
    folder = tmp_path / "jobs"
    return lambda target: SlurmExecutor(folder, submitit.LocalExecutor(folder=str(folder)),
                                        target=f"tests.fakes:{target}", poll_s=0.05)


def test_slurm_job_returns_the_row_and_classifies_failures(slurm):
    ok = slurm("ok").run(CONFIG)
    assert ok.row["status"] == "ok" and ok.repeats == fakes.ok(CONFIG).repeats and ok.row["rss_peak_bytes"] > 0
    failed = slurm("raises").run(CONFIG)
    assert failed.row["status"] == "error" and failed.row["error"] == "ValueError: fake failure for S=2"


def test_slurm_timeout_cancels_the_job(slurm):
    start = time.monotonic()
    result = slurm("sleeps").run(CONFIG.replace(timeout_s=1.0))
    assert result.row["status"] == "timeout" and time.monotonic() - start < 10


@pytest.mark.slow
def test_slurm_job_killed_by_a_signal_is_an_error_row(slurm):
    result = slurm("segfaults").run(CONFIG)
    assert result.row["status"] == "error" and "slurm job" in result.row["error"]


def test_slurm_without_submitit_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(__import__("sys").modules, "submitit", None)  # makes `import submitit` fail
    with pytest.raises(UsageError, match=r"pip install 'bnn-bench\[slurm\]'"):
        SlurmExecutor(tmp_path)


def test_make_executor():
    assert isinstance(make_executor("local", target="tests.fakes:ok"), LocalExecutor)
    assert isinstance(make_executor("inline", target="tests.fakes:ok"), InlineExecutor)
    with pytest.raises(UsageError, match="choose one of local, inline, slurm"):
        make_executor("ssh")


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads through Linux's /proc")
def test_the_fork_servers_preloads_start_no_thread():
    """A thread pool started in the fork server would be forked into every worker without its threads
    (a hang or one-thread matmuls there): importing what it preloads must run no parallel op."""
    from bench.run.executors import FORKSERVER_PRELOAD

    script = ("import importlib, os, sys\n"
              "import torch\n"
              "threads = len(os.listdir('/proc/self/task'))\n"
              f"for name in {list(FORKSERVER_PRELOAD)!r}:\n"
              "    importlib.import_module(name)\n"
              "print(threads, len(os.listdir('/proc/self/task')), 'bench.measure.step' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         env=child_environment(), check=True).stdout.split()
    assert out[0] == out[1], f"importing the preloads started {int(out[1]) - int(out[0])} thread(s)"
    assert out[2] == "True"  # the default target's module is among them
