"""FA1 ratio table: fastevals.fairness against fairlearn's bootstrapped MetricFrame.

    python benchmarks/compare_fairness.py [--rows 10000000] [--resamples 1000]
        [--peer-rows 100000] [--peer-resamples 50] [--repeats 3]

Prints fastevals alone at the FA1 size (10M rows, 8 groups, B = 1,000), then both libraries
on the same data at the peer size (the largest fairlearn finishes in minutes here: its
bootstrap runs a pandas groupby per replicate), interleaved (A B A B), with the median ratio.
JIT compile time is reported on its own line.  The machine is a shared 2-core VM: quote the
load with the numbers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import pyarrow as pa

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_bench_fairness import GROUPS, fa1_data, fairlearn_bootstrap, ours  # noqa: E402


def _time(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--resamples", type=int, default=1_000)
    ap.add_argument("--peer-rows", type=int, default=100_000)
    ap.add_argument("--peer-resamples", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    import fairlearn
    import numba

    print(f"fastevals FA1 ({GROUPS} groups); fairlearn {fairlearn.__version__}, numba {numba.__version__}, "
          f"load {os.getloadavg()[0]:.2f}")
    small = pa.table(fa1_data(1000))
    jit, _ = _time(ours, small, 8)
    print(f"JIT compile (first call, includes cache load): {jit:.2f} s")
    table = pa.table(fa1_data(args.rows))
    times = [_time(ours, table, args.resamples)[0] for _ in range(args.repeats)]
    print(f"fastevals  {args.rows:>11,} rows  B={args.resamples:<6,}  median {statistics.median(times):8.3f} s")
    d = fa1_data(args.peer_rows)
    t_peer = pa.table(d)
    ratios = []
    for _ in range(args.repeats):
        a, res = _time(ours, t_peer, args.peer_resamples)
        b, (_, diff, _) = _time(fairlearn_bootstrap, d, args.peer_resamples)
        assert abs(res.demographic_parity_difference - diff["selection_rate"]) < 1e-12
        ratios.append(b / a)
        print(f"  peer size {args.peer_rows:,} rows B={args.peer_resamples}: fastevals {a:.3f} s, "
              f"fairlearn {b:.2f} s, ratio {b / a:,.0f}x")
    print(f"median ratio fairlearn / fastevals at {args.peer_rows:,} rows, B={args.peer_resamples}: "
          f"{statistics.median(ratios):,.0f}x  (load {os.getloadavg()[0]:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
