"""CM1 at full size, once: ours (100 models x 1M items, all 4,950 pairs, analytic + B=1,000 paired
bootstrap) vs lm-evaluation-harness' bootstrap_stderr loop on ONE pair at the same N and B.

    python benchmarks/compare_compare.py [--k 100] [--n 1000000] [--b 1000] [--peer-rounds 1]

Prints each time, JIT compile on its own line, and the ratio. The peer is never scaled up: its
time is for one pair; "per pair" figures divide ours by the number of pairs, which is stated.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from test_bench_compare import cm1_table, ours, peer_one_pair  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--b", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--peer-rounds", type=int, default=1)
    a = ap.parse_args()
    table = cm1_table(a.k, a.n)
    t = time.perf_counter()
    ours(table.slice(0, 5000), 8)
    print(f"JIT warm-up (compile or cache load): {time.perf_counter() - t:.2f} s")
    tours, tpeer = [], []
    for r in range(max(a.rounds, a.peer_rounds)):
        if r < a.rounds:
            t = time.perf_counter()
            res = ours(table, a.b)
            tours.append(time.perf_counter() - t)
        if r < a.peer_rounds:
            t = time.perf_counter()
            se = peer_one_pair(table, a.b)
            tpeer.append(time.perf_counter() - t)
            first = res.table.slice(0, 1).to_pylist()[0]
            print(f"pair 0 bootstrap SE: ours {first['bootstrap_se']:.6g}  analytic {first['standard_error']:.6g}"
                  f"  lm-eval loop {se:.6g}")
    pairs = a.k * (a.k - 1) // 2
    mo = float(np.median(tours))
    if not tpeer:
        print(f"ours: {a.k} models x {a.n:,} items, {pairs:,} pairs, B={a.b}: median {mo:.2f} s {tours}")
        return
    mp_ = float(np.median(tpeer))
    print(f"ours: {a.k} models x {a.n:,} items, {pairs:,} pairs, B={a.b}: median {mo:.2f} s {tours}")
    print(f"lm-eval bootstrap_stderr, ONE pair, N={a.n:,}, B={a.b}: median {mp_:.2f} s {tpeer}")
    print(f"ratio (peer one pair / ours all {pairs:,} pairs): {mp_ / mo:.1f}x;  "
          f"per pair (ours / {pairs:,}): {mp_ / (mo / pairs):,.0f}x")


if __name__ == "__main__":
    main()
