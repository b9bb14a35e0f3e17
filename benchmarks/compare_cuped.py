"""Interleaved timings of EX1 (shared/benchmarking.md): CUPED z-test per segment and a ratio metric.

    python benchmarks/compare_cuped.py --full        # 10M rows, 50 segments
    python benchmarks/compare_cuped.py               # small sizes, a quick look

Each line times two callables on the same data, interleaved (A B A B ..., one warm-up
round first), and prints the median of each and the median over rounds of the ratio.
Answers are asserted to agree first (see test_bench_cuped.py for the tolerances).
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _peers  # noqa: E402
import test_bench_cuped as ex  # noqa: E402

import fastevals  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="standard sizes (10M rows)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--skip-peers", action="store_true", help="only ours: plain vs CUPED")
    args = ap.parse_args(argv)
    sizes = _peers.sizes(args.full)
    table = ex.ex1_table(_peers.ab_table(sizes["ab_rows"], sizes["ab_segments"]))
    print(f"EX1: {table.num_rows:,} rows, {sizes['ab_segments']} segments; {_peers.thread_info()}")

    def plain():
        return fastevals.z_test(table, group="variant", value="revenue", control="control", by="segment").table

    def cuped():
        return ex.ours_cuped(table)

    def cuped_hc1():
        return ex.ours_cuped(table, "hc1")

    def ratio():
        return fastevals.z_test(table, group="variant", value="revenue", denominator="sessions",
                                control="control", by="segment").table

    lines = []
    t = _peers.interleave({"ours": cuped, "peer": plain}, rounds=args.rounds)
    lines.append(("CUPED (welch) / plain z-test", t.median_ms("ours"), t.median_ms("peer"), t.ratio("ours", "peer"),
                  "target <= 1.5"))
    t = _peers.interleave({"ours": cuped_hc1, "peer": plain}, rounds=args.rounds)
    lines.append(("CUPED (hc1) / plain z-test", t.median_ms("ours"), t.median_ms("peer"), t.ratio("ours", "peer"), ""))
    t = _peers.interleave({"ours": ratio, "peer": plain}, rounds=args.rounds)
    lines.append(("ratio metric / plain z-test", t.median_ms("ours"), t.median_ms("peer"), t.ratio("ours", "peer"),
                  ""))
    if not args.skip_peers:
        df = table.to_pandas()
        ex._agree(cuped_hc1(), ex.statsmodels_cuped(df))
        ex._agree(cuped(), ex.tea_cuped(df), se_rtol=0.02, diff_in_se=0.02)
        ex._agree(ratio(), ex.numpy_ratio(df), se_rtol=1e-8)
        rounds = max(3, args.rounds // 2)
        for name, ours, peer in (("statsmodels OLS HC1 per segment / ours hc1", cuped_hc1,
                                  lambda: ex.statsmodels_cuped(df)),
                                 ("tea-tasting CUPED per segment / ours", cuped, lambda: ex.tea_cuped(df)),
                                 ("pandas+numpy delta method / ours ratio", ratio, lambda: ex.numpy_ratio(df))):
            t = _peers.interleave({"ours": ours, "peer": peer}, rounds=rounds)
            lines.append((name, t.median_ms("ours"), t.median_ms("peer"), t.ratio("peer", "ours"), "peer / ours"))
    print("\n| comparison | ours ms | other ms | median ratio | note |\n|---|---|---|---|---|")
    for name, a, b, r, note in lines:
        print(f"| {name} | {a:.1f} | {b:.1f} | {r:.2f} | {note} |")
    print("\nversions:", _peers.versions())
    return 0


if __name__ == "__main__":
    sys.exit(main())
