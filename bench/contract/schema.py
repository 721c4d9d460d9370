"""The results-directory format (docs/results-format.md), as data.

Kept free of torch (and of everything but the standard library) so `analysis/` can import it on a
machine that has only pandas, scipy and matplotlib.
"""

RUNS_FILE = "runs.csv"
REPEATS_FILE = "repeats.csv"
META_FILE = "meta.json"

#: Final statuses of a config. A row with one of these is final: `--resume` does not run it again.
STATUSES = ("ok", "oom", "timeout", "error", "skipped")

#: Columns of runs.csv, in file order. The contract names a minimum; the extra ones
#: (`warmup_steps`, `steps_timed`, `flops_per_step`, `cpu_model`) say how a row was produced.
RUNS_COLUMNS = (
    "run_id",
    "impl",
    "task",
    "kl",
    "prior",
    "n_mc",
    "samples",
    "batch_size",
    "device",
    "device_name",
    "dtype",
    "threads",
    "seed",
    "status",
    "error",
    "repeats",
    "warmup_steps",
    "steps_timed",
    "step_s_median",
    "step_s_iqr",
    "step_s_min",
    "steps_per_epoch",
    "epoch_s",
    "epoch_measured",
    "graph_bytes",
    "peak_allocated_bytes",
    "peak_reserved_bytes",
    "nvml_used_bytes",
    "energy_j_per_step",
    "rss_peak_bytes",
    "final_loss",
    "flops_per_step",
    "cpu_model",
    "torch_version",
    "git_commit",
    "timestamp",
    # Prior parameters, recorded in every row (the prior named in `prior` uses its own).
    "prior_sigma",
    "mixture_pi",
    "mixture_sigma1",
    "mixture_sigma2",
    # What the loss multiplied the KL by, and how it differs from our ELBO (peer libraries; "" for ours).
    "kl_weight",
    "loss_note",
    # Speed levers (bench/training/levers.py) and throughput against the GPU's datasheet peaks
    # (bench/measure/gpu_peaks.py).
    "step_mode",
    "precision",
    "optimizer",
    "achieved_tflops",
    "mfu_fp32",
    "mfu_tf32",
    "mfu_bf16",
    # Deterministic cost counters (bench/measure/counters.py), gated tightly by `check`.
    "aten_ops_per_step",
    "alloc_bytes_per_step",
    "instructions_per_step",
    "instructions_note",
    # Posterior initialization (bnn_impls/init_schemes.py).
    "init",
    "init_sigma",
    "data",
    "model",
    # How far the step is from this machine's matmul limit (bench/measure/ceiling.py): FLOPs per second
    # achieved, the step's GEMM/conv calls timed alone at their own shapes (the ceiling), and the
    # ceiling's share of the step time.
    "achieved_gflops",
    "ceiling_s_per_step",
    "ceiling_gflops",
    "fraction_of_ceiling",
    # Numeric state (bench/measure/numerics.py): flush-to-zero in force, and the share of gradient
    # elements that were denormal after the timed repeats.
    "flush_denormal",
    "denormal_grad_fraction",
    # A digest of the GEMM/conv calls the ceiling replayed (bench/measure/ceiling.py `calls_id`): rows
    # with the same one replayed the same work, and `analyze` takes the fastest of their replays.
    "ceiling_calls_id",
)

#: runs.csv columns that hold numbers (an empty cell is a missing value, any other text is corrupt).
RUNS_NUMERIC_COLUMNS = (
    "n_mc", "samples", "batch_size", "threads", "seed", "repeats", "warmup_steps", "steps_timed", "step_s_median",
    "step_s_iqr", "step_s_min", "steps_per_epoch", "epoch_s", "graph_bytes", "peak_allocated_bytes",
    "peak_reserved_bytes", "nvml_used_bytes", "energy_j_per_step", "rss_peak_bytes", "final_loss", "flops_per_step",
    "prior_sigma", "mixture_pi", "mixture_sigma1", "mixture_sigma2", "achieved_tflops", "mfu_fp32", "mfu_tf32",
    "mfu_bf16", "aten_ops_per_step", "alloc_bytes_per_step", "instructions_per_step", "init_sigma",
    "achieved_gflops", "ceiling_s_per_step", "ceiling_gflops", "fraction_of_ceiling", "denormal_grad_fraction",
)

#: Columns of repeats.csv: one row per timed repeat; `seconds` covers `steps` optimizer steps.
REPEATS_COLUMNS = ("run_id", "repeat", "seconds", "steps", "round")
#: Files written before columns were appended (a header that is a prefix of these) are still read,
#: the newer columns empty, and a resumed one is appended to in its own columns.

#: Per-config ATen operator counts of one step, long format (bench/measure/counters.py).
OPS_FILE = "ops.csv"
OPS_COLUMNS = ("run_id", "op", "count")

#: Where a profiled step's time goes (`profile`, and the default job for its MNIST S=10 configs):
#: one row per profiled config, milliseconds per step by part (bench/measure/profiler.py).
TIME_SPLIT_FILE = "profiles/time_split.csv"
#: The parts, in the order a stacked bar draws them; they add up to `wall_ms_per_step`.
TIME_SPLIT_PARTS = ("matmul_conv_ms", "sampling_ms", "elementwise_ms", "optimizer_ms", "overhead_ms")
TIME_SPLIT_COLUMNS = ("run_id", "task", "impl", "kl", "samples", "device", "device_name", "threads", "step_mode",
                      "precision", "optimizer", "flush_denormal", "steps", "wall_ms_per_step",
                      *TIME_SPLIT_PARTS, "torch_version")
