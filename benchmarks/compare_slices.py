"""SL1 at full size: fastevals.slices vs a pandas groupby loop (10M rows) and sliceline (capped rows).

    python benchmarks/compare_slices.py [--rows 10000000] [--sliceline-rows 200000] [--rounds 3]

Prints the median times and ratios (interleaved A B A B, warm-up first, JIT on its own line).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _peers  # noqa: E402
import test_bench_slices as tb  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--sliceline-rows", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    table = tb.sl1_table(a.rows)
    df = table.to_pandas()
    t0 = time.perf_counter()
    tb.ours(table.slice(0, 1000))
    print(f"JIT / first call: {time.perf_counter() - t0:.2f} s")
    res = tb.ours(table)
    n1, _ = tb.pandas_loop(df)
    assert res.n_tested == n1.size
    t = _peers.interleave({"ours": lambda: tb.ours(table), "pandas groupby loop": lambda: tb.pandas_loop(df)},
                          rounds=a.rounds, warmup=0)
    print(f"SL1 {a.rows:,} rows x {tb.N_COLS} columns, {res.n_tested:,} slices tested")
    med = {k: sorted(v)[len(v) // 2] for k, v in t.times.items()}
    for k, v in med.items():
        print(f"  {k:>22}: median {v:.2f} s  ratio {v / med['ours']:.1f}")
    r = min(a.sliceline_rows, a.rows)
    small = table.slice(0, r)
    t = _peers.interleave({"ours": lambda: tb.ours(small), "sliceline": lambda: tb.sliceline_top(df, r)},
                          rounds=1, warmup=0)
    med = {k: sorted(v)[len(v) // 2] for k, v in t.times.items()}
    print(f"SL1 at {r:,} rows (sliceline's largest run here)")
    for k, v in med.items():
        print(f"  {k:>22}: median {v:.2f} s  ratio {v / med['ours']:.1f}")
    print(_peers.versions(("fastevals", "numba", "numpy", "pandas", "pyarrow", "sliceline")))


if __name__ == "__main__":
    main()
