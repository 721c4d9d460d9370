"""Speed of repar_exact's chi-square draw: bnn_impls.gamma (public ops) against torch._standard_gamma.

    python3 scripts/gamma_speed.py [--threads N]

One chi2(df) draw per weight, at a small net's size and the MNIST MLP's (1,275,010 weights), for
df of 1, 99 and 999,999 (n_mc = 2, 100, 10^6); median of 15 timed calls after 3 warm-up calls.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from bnn_impls.gamma import sample_chi2


def median_seconds(fn, repeats: int = 15, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    print("| weights | df | bnn_impls.gamma ms | torch._standard_gamma ms | ratio |")
    print("|---|---|---|---|---|")
    for n in (10_000, 1_275_010):
        for df in (1, 99, 999_999):
            ours = median_seconds(lambda df=df, n=n: sample_chi2(df, (n,), generator=generator))
            private = median_seconds(lambda df=df, n=n: 2 * torch._standard_gamma(torch.full((n,), df / 2.0)))
            print(f"| {n} | {df} | {ours * 1e3:.2f} | {private * 1e3:.2f} | {ours / private:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
