"""Files and columns of quality runs (`bnn-bench train`), as data: standard library only, so
`analysis/` reads them without torch. docs/results-format.md documents every column.

Every row carries its config's `run_id` and the `attempt` that wrote it. A config's post-training
rows (OOD, FGSM, regression band) are written before its final quality.csv row, so a final row
implies they are complete; rows of an attempt without a final row (a killed run) are ignored.
"""

QUALITY_FILE = "quality.csv"
OOD_FILE = "ood.csv"
OOD_HIST_FILE = "ood_hist.csv"
FGSM_FILE = "fgsm.csv"
BAND_FILE = "regression_band.csv"
BAND_POINTS_FILE = "regression_train.csv"

#: Deterministic baselines trained beside the BNNs (same layers, same epochs), each for one task:
#: the task's own network with PyTorch's default init, without and with dropout 0.5.
BASELINE_TASKS = {"mlp": "mnist", "mlp_dropout": "mnist", "lenet5": "lenet5", "lenet5_dropout": "lenet5"}
BASELINES = tuple(BASELINE_TASKS)

#: One row per config and evaluated epoch.
QUALITY_COLUMNS = (
    "run_id", "attempt", "impl", "task", "kl", "prior", "prior_sigma", "init", "init_sigma", "n_mc", "samples",
    "batch_size", "lr", "device", "device_name", "dtype", "threads", "seed", "epochs", "test_samples",
    "stop_at_error", "status", "error", "epoch", "final", "steps", "steps_per_epoch", "epoch_train_s", "train_s",
    "eval_s", "train_loss", "test_error", "test_nll", "ece", "brier", "rmse", "coverage95",
    "cpu_model", "torch_version", "git_commit", "timestamp",
)

#: One row per config and input set: uncertainty on MNIST's test set and on each shifted / OOD set.
OOD_COLUMNS = (
    "run_id", "attempt", "impl", "samples", "seed", "init", "prior_sigma", "test_samples", "set", "status", "reason",
    "n", "accuracy", "mean_entropy", "mean_mi", "mean_top_prob", "auroc_entropy", "auroc_mi",
)

#: Histogram (20 equal bins over [0, 1]) of each posterior sample's probability for the class the
#: mixture predicts, pooled over the set's examples: the report's Figure 6 for a whole set.
OOD_HIST_COLUMNS = ("run_id", "attempt", "set", "bin_low", "bin_high", "count")

#: Accuracy under FGSM of size eps (inputs clamped to [0, 1]), one row per model and eps.
FGSM_COLUMNS = ("run_id", "attempt", "impl", "samples", "seed", "epochs", "attack_samples", "test_samples",
                "eps", "n", "accuracy")

#: The regression task's predictive mean and central 95% band on a grid twice as wide as the training inputs.
BAND_COLUMNS = ("run_id", "attempt", "x", "mean", "lower", "upper", "epistemic_sd", "in_train_range")
BAND_POINTS_COLUMNS = ("run_id", "attempt", "x", "y")

QUALITY_TABLES = {
    QUALITY_FILE: QUALITY_COLUMNS, OOD_FILE: OOD_COLUMNS, OOD_HIST_FILE: OOD_HIST_COLUMNS, FGSM_FILE: FGSM_COLUMNS,
    BAND_FILE: BAND_COLUMNS, BAND_POINTS_FILE: BAND_POINTS_COLUMNS,
}
