"""The report's published timings (Semko 2023, Table 2) as a results directory in our own format.

The committed copy lives in results/reference_a100/; `build_reference_dir` regenerates it from the
CSV in shared/references so a test can check that the two agree.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from bench.contract.files import make_dir, write_text_atomic
from bench.contract.schema import META_FILE, REPEATS_COLUMNS, REPEATS_FILE, RUNS_COLUMNS, RUNS_FILE

DEVICE_NAME = "NVIDIA A100 80GB PCIe (Semko 2023 report, Table 2)"
REPORT_KL = {"sequential": "sample", "vmap": "sample", "vmap_lrt": "closed"}
MNIST_STEPS_PER_EPOCH = 469  # 60,000 images in batches of 128

META = {
    "source": "D. Semko, 'Project Machine Learning, Milestone 3' (2023): vectorized Bayes by Backprop, Table 2",
    "note": "Published mean seconds per training epoch; no repeats were published. Timing was wall-clock "
            "without device synchronization on a shared cluster node.",
    "machine": {"gpus": ["NVIDIA A100 80GB PCIe"], "cpu_cores": 64, "ram_bytes": 755 * 2**30},
    "profile": "reference",
}


#: The schema's first release: columns are only ever appended and an older header still reads, so the
#: committed reference keeps this header and does not change each time a column is added.
REFERENCE_COLUMNS = RUNS_COLUMNS[: RUNS_COLUMNS.index("timestamp") + 1]


def reference_runs(table2: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for rec in table2.itertuples(index=False):
        mnist = rec.task == "mnist"
        rows.append({
            "run_id": f"report-{rec.task}-{rec.implementation}-S{rec.samples}",
            "impl": rec.implementation, "task": rec.task, "kl": REPORT_KL[rec.implementation], "prior": "gaussian",
            "n_mc": 1, "samples": int(rec.samples), "batch_size": 128 if mnist else None, "device": "cuda",
            "device_name": DEVICE_NAME, "dtype": "float32", "status": "ok", "repeats": 0,
            "steps_per_epoch": MNIST_STEPS_PER_EPOCH if mnist else None,
            "epoch_s": float(rec.epoch_seconds), "epoch_measured": "true",
            "step_s_median": float(rec.epoch_seconds) / MNIST_STEPS_PER_EPOCH if mnist else None,
        })
    return pd.DataFrame(rows).reindex(columns=list(REFERENCE_COLUMNS))


def build_reference_dir(table2_csv, out_dir) -> Path:
    out = Path(out_dir)
    make_dir(out)
    runs = reference_runs(pd.read_csv(table2_csv))
    write_text_atomic(out / RUNS_FILE, runs.to_csv(index=False))
    write_text_atomic(out / REPEATS_FILE, pd.DataFrame(columns=list(REPEATS_COLUMNS[:4])).to_csv(index=False))
    write_text_atomic(out / META_FILE, json.dumps(META, indent=2) + "\n")
    return out
