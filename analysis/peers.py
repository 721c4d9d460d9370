"""Implementations beyond our own (peer libraries, plugins) beside ours: order, step-time table, losses.

The peers table in results/cpu/peers-xeon-2threads-rounds-20261130/README.md is `peer_table` of that
committed run, printed by `scripts/peers_table.py` (so its numbers are the run's, not typed by hand).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

OURS = ("sequential", "vmap", "vmap_lrt", "vmap_flipout")
FASTEST_OURS = "vmap_lrt"
N_BOOT = 2000


def impl_order(impls) -> list:
    """Ours first (in their fixed order), then every other name in order of appearance."""
    seen = list(dict.fromkeys(str(i) for i in impls))
    return [i for i in OURS if i in seen] + [i for i in seen if i not in OURS]


def has_others(ok: pd.DataFrame) -> bool:
    return bool(len(ok)) and not set(ok["impl"].astype(str)) <= set(OURS)


def _ratio_interval(num: np.ndarray, den: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """95% bootstrap interval of median(num) / median(den), repeats resampled with replacement."""
    if len(num) < 2 or len(den) < 2:
        return np.nan, np.nan
    bn = np.median(num[rng.integers(0, len(num), (N_BOOT, len(num)))], axis=1)
    bd = np.median(den[rng.integers(0, len(den), (N_BOOT, len(den)))], axis=1)
    low, high = np.percentile(bn / bd, [2.5, 97.5])
    return float(low), float(high)


def _round_ratios(num: pd.DataFrame, den: pd.DataFrame) -> np.ndarray:
    """Per interleaved round, median(num) / median(den) over that round's repeats (rounds both ran)."""
    a, b = num.groupby("round")["step_s"].median(), den.groupby("round")["step_s"].median()
    common = a.index.intersection(b.index)
    return (a[common] / b[common]).to_numpy(float)


def round_ratio_interval(ratios: np.ndarray, rng: np.random.Generator) -> tuple[float, float, float]:
    """(median, 95% bootstrap interval) of per-round ratios, rounds resampled: drift within the run
    hit both implementations of a round alike, so it cancels here and not across repeats."""
    if len(ratios) < 2:
        return np.nan, np.nan, np.nan
    boot = np.median(ratios[rng.integers(0, len(ratios), (N_BOOT, len(ratios)))], axis=1)
    low, high = np.percentile(boot, [2.5, 97.5])
    return float(np.median(ratios)), float(low), float(high)


def peer_table(ok: pd.DataFrame, repeats: pd.DataFrame, task: str = "mnist", samples: int | None = None,
               seed: int = 0) -> pd.DataFrame:
    """One row per implementation on `task` (default KL, n_mc 1) at S = `samples` (default: the largest S
    every implementation ran): ms per step at S = 1 and S, its time over vmap_lrt's at S with a 95%
    bootstrap interval (over rounds where the run was timed in interleaved rounds: the median of the
    per-round ratios; else over repeats), peak RSS and graph MiB at S, and the KL weight of its loss."""
    rows = ok[(ok["task"] == task) & (ok["n_mc"].fillna(1) == 1)]
    if rows.empty:
        return pd.DataFrame()
    if samples is None:
        per_impl = rows.groupby("impl")["samples"].apply(set)
        common = set.intersection(*per_impl) if len(per_impl) else set()
        samples = int(max(common)) if common else int(rows["samples"].max())
    step_s = repeats.groupby("run_id")["step_s"].apply(lambda s: s.to_numpy(float)).to_dict() if len(repeats) else {}
    in_rounds = len(repeats) > 0 and "round" in repeats.columns and repeats["round"].notna().any()
    by_run = {k: g for k, g in repeats[repeats["round"].notna()].groupby("run_id")} if in_rounds else {}
    at_s = rows[rows["samples"] == samples].drop_duplicates("impl").set_index("impl")
    at_1 = rows[rows["samples"] == 1].drop_duplicates("impl").set_index("impl")
    rng = np.random.default_rng(seed)
    base = at_s.loc[FASTEST_OURS] if FASTEST_OURS in at_s.index else None
    out = []
    for impl in impl_order(at_s.index):
        r = at_s.loc[impl]
        ratio = low = high = np.nan
        how = "repeats"
        if base is not None:
            ratio = r["step_s_median"] / base["step_s_median"]
            if r["run_id"] in by_run and base["run_id"] in by_run:
                # Timed in interleaved rounds: the ratio is formed within each round (as `check` does).
                ratio, low, high = round_ratio_interval(
                    _round_ratios(by_run[r["run_id"]], by_run[base["run_id"]]), rng)
                how = "rounds"
            else:
                low, high = _ratio_interval(step_s.get(r["run_id"], np.array([])),
                                            step_s.get(base["run_id"], np.array([])), rng)
        out.append({
            "impl": impl,
            "kl": r["kl"],
            "ms/step S=1": at_1.loc[impl, "step_s_median"] * 1000 if impl in at_1.index else np.nan,
            f"ms/step S={samples}": r["step_s_median"] * 1000,
            f"time / {FASTEST_OURS}'s S={samples}": ratio,
            "95% interval": f"[{low:.2f}, {high:.2f}]" if np.isfinite(low) else "",
            "interval over": how,
            f"peak RSS MiB S={samples}": r.get("rss_peak_bytes", np.nan) / 2**20,
            f"graph MiB S={samples}": r.get("graph_bytes", np.nan) / 2**20,
            "KL weight": r.get("kl_weight", np.nan),
        })
    return pd.DataFrame(out)


def loss_table(ok: pd.DataFrame) -> pd.DataFrame:
    """impl, kl, kl_weight and loss_note, one row per (impl, task): where each loss differs from ours."""
    cols = [c for c in ("impl", "task", "kl", "kl_weight", "loss_note") if c in ok.columns]
    if "loss_note" not in cols:
        return pd.DataFrame()
    table = ok[cols].drop_duplicates(["impl", "task"]).copy()
    table["loss_note"] = table["loss_note"].fillna("").replace("", "ours (ELBO / N)")
    order = {impl: i for i, impl in enumerate(impl_order(table["impl"]))}
    return table.sort_values(["task", "impl"], key=lambda c: c.map(order) if c.name == "impl" else c)


def sentences(table: pd.DataFrame, machine: str) -> list[str]:
    """The comparison in words: vmap_lrt against the fastest peer, and where sequential and vmap stand."""
    if table.empty or FASTEST_OURS not in set(table["impl"]):
        return []
    ratio_col = next(c for c in table.columns if c.startswith("time / "))
    s = ratio_col.rsplit("S=", 1)[1]
    others = table[~table["impl"].isin(OURS)]
    if others.empty:
        return []
    fastest = others.loc[others[ratio_col].idxmin()]
    lines = [f"At S = {s} on {machine}, the fastest other implementation is {fastest['impl']}: "
             f"{fastest[ratio_col]:.2f}x vmap_lrt's step time {fastest['95% interval']}."]
    for ours in ("sequential", "vmap"):
        if ours in set(table["impl"]):
            r = table[table["impl"] == ours].iloc[0]
            slower = int((others[ratio_col] > r[ratio_col]).sum())
            lines.append(f"{ours} ({r[ratio_col]:.2f}x vmap_lrt's time) is faster than {slower} of the "
                         f"{len(others)} other implementations.")
    return lines


#: What a peer's recorded loss_note does not say, or (in runs recorded before 2026-12-04) said wrongly.
PEER_NOTES = {
    "bayesian_torch": (
        "bayesian-torch 0.5.0: `get_kl_loss` sums each tensor's MEAN elementwise KL, and the loss divides that "
        "by the batch size, so a weight in a tensor of n elements weighs 1/(B n) (first MNIST weight matrix: "
        "about 1/1,300 of our 1/N; last bias: about 47 times it); its `kl_weight` 1/B is the factor on that "
        "sum of means, not N/B times ours, as runs before 2026-12-04 said. Its step also recomputes the "
        "closed-form KL once per sample (S times a step): a share of its step time that ours, which compute "
        "the KL once, do not pay."
    ),
}


def peer_notes(impls) -> list[str]:
    """The notes of PEER_NOTES for the peers among `impls` (matched by name prefix)."""
    return [note for prefix, note in PEER_NOTES.items() if any(str(i).startswith(prefix) for i in impls)]
