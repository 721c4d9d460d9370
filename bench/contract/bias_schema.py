"""The file `bnn-bench bias` writes (docs/results-format.md#estimator-bias-bias): standard library only,
so `analysis/` reads it without torch."""

BIAS_FILE = "bias.csv"

#: One row per (task, posterior width, implementation, parameter group); group "loss" is the NLL.
BIAS_COLUMNS = (
    "task", "model", "init", "init_sigma", "impl", "reference", "group", "parameters", "groups", "samples", "draws",
    "batch_size", "seed", "mean", "reference_mean", "z", "rel_diff", "noise_floor", "excess", "verdict",
    "device", "dtype", "threads", "cpu_model", "torch_version", "git_commit", "timestamp",
)
NUMERIC_BIAS_COLUMNS = ("init_sigma", "parameters", "groups", "samples", "draws", "batch_size", "seed", "mean",
                        "reference_mean", "z", "rel_diff", "noise_floor", "excess", "threads")
