"""What a sweep shows while it runs and after: a bar (or plain lines) and a results table."""

from __future__ import annotations

import sys
import time
from typing import Optional, Sequence, TextIO

from bench.contract.config import BenchConfig
from bench.contract.records import RunResult


def _float(value) -> Optional[float]:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def config_label(config: BenchConfig) -> str:
    """`mnist vmap S=10` (plus the estimator and n_mc where they are not the implementation's default)."""
    label = f"{config.task} {config.impl} S={config.samples}"
    if config.kl is not None:
        label += f" kl={config.kl}"
    if config.n_mc != 1:
        label += f" n_mc={config.n_mc}"
    return label + ("" if config.device == "cpu" else f" {config.device}")


def result_summary(result: RunResult) -> str:
    """`41.2 ms/step` for a measured row; `oom: <reason>` for the others."""
    row = result.row
    status = row.get("status", "?")
    if status != "ok":
        return f"{status}: {row.get('error', '')}"[:120]
    step = _float(row.get("step_s_median"))
    return f"{step * 1e3:.1f} ms/step" if step is not None else "ok"


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class Progress:
    """A tqdm bar over configs with ETA and the last result; one plain line per config when the
    stream is not a terminal (CI logs, redirected output), so logs stay readable."""

    def __init__(self, total: int, *, already_done: int = 0, enabled: bool = True, stream: Optional[TextIO] = None):
        self.total = total
        self.done = 0
        self.already_done = already_done
        self.enabled = enabled
        self.stream = stream or sys.stdout
        self.started = time.monotonic()
        self.bar = None
        if enabled and self.stream.isatty() and total:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="config", file=self.stream, dynamic_ncols=True)
        if enabled and already_done:
            self._print(f"resuming: {already_done} configs already have a final row, {total} to run")

    def _print(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def update(self, config: BenchConfig, result: RunResult) -> None:
        self.done += 1
        if not self.enabled:
            return
        last = f"{config_label(config)}: {result_summary(result)}"
        if self.bar is not None:
            self.bar.set_postfix_str(last[:80], refresh=False)
            self.bar.update(1)
            return
        elapsed = time.monotonic() - self.started
        eta = elapsed / self.done * (self.total - self.done)
        self._print(f"[{self.done}/{self.total}] {last}  "
                    f"(elapsed {format_duration(elapsed)}, ETA {format_duration(eta)})")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# ---------------------------------------------------------------------------------------------

SUMMARY_COLUMNS = ("task", "impl", "kl", "n_mc", "S", "device", "status", "step ms", "epoch s", "graph MB")


def summary_table(rows: Sequence[dict]) -> str:
    """The compact table printed after a sweep, from runs.csv rows (text values)."""
    def cells(row: dict) -> tuple[str, ...]:
        step, epoch, graph = (_float(row.get(k)) for k in ("step_s_median", "epoch_s", "graph_bytes"))
        return (
            row.get("task", ""), row.get("impl", ""), row.get("kl", ""), str(row.get("n_mc", "")),
            str(row.get("samples", "")), row.get("device", ""), row.get("status", ""),
            "" if step is None else f"{step * 1e3:.2f}",
            "" if epoch is None else f"{epoch:.3f}",
            "" if graph is None else f"{graph / 2**20:.1f}",
        )

    table = [SUMMARY_COLUMNS] + [cells(r) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(SUMMARY_COLUMNS))]
    numeric = {"n_mc", "S", "step ms", "epoch s", "graph MB"}
    lines = [
        "  ".join(c.rjust(w) if SUMMARY_COLUMNS[i] in numeric else c.ljust(w)
                  for i, (c, w) in enumerate(zip(line, widths))).rstrip()
        for line in table
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
