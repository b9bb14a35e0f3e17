"""Interleaved timings of fastevals' A/B tests against their peers: AB1, AB2, AB3 of
shared/benchmarking.md, as the markdown table of the README.

    python benchmarks/compare_abtest.py --full        # standard sizes (10M rows), a few minutes
    python benchmarks/compare_abtest.py               # small sizes, a quick look
    python benchmarks/compare_abtest.py --full --json ab.json && python benchmarks/report.py ab.json

AB3 / PQ1 (A/B statistics from a Parquet file) is compared with ``read_table`` of the same
columns, DuckDB SQL + scipy and polars ``scan_parquet().group_by()`` + scipy.

Each row times ours and one peer on the same data, interleaved (A B A B ..., one
warm-up round of each first, garbage collected between calls) and reports the median
of each and the median over rounds of peer time / our time.  Answers are asserted to
agree (statistic / p-value to rtol 1e-9) before anything is timed.  JIT compile time,
the first call in a new process, and peak memory are measured in fresh processes and
printed on their own lines.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _peers  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

import fastevals  # noqa: E402

RTOL = 1e-9
AB_ARGS = dict(group="variant", outcome="converted", value="revenue")


def ours(data, **kw):
    return fastevals.abtest(data, **AB_ARGS, **kw)


class Row:
    """One line of the table: ours against one peer.

    ``speedup`` = peer time / our time (median over rounds); the target is a minimum speed-up
    (0.5 = "ours at most 2x the peer's time").
    """

    def __init__(self, workload, peer, timing, target, note=""):
        self.workload, self.peer, self.timing, self.target, self.note = workload, peer, timing, target, note
        self.ours_ms = timing.median_ms("ours")
        self.peer_ms = timing.median_ms("peer")
        self.speedup = timing.ratio("peer", "ours")

    def met(self) -> str:
        if self.target is None:
            return "(report)"
        return "yes" if self.speedup >= self.target else "**no**"

    def target_text(self) -> str:
        if self.target is None:
            return "-"
        if self.target >= 1:
            return f">= {self.target:g}x faster"
        return f"ours <= {1 / self.target:.3g}x its time"

    def markdown(self) -> str:
        return (f"| {self.workload} | {self.peer} | {self.ours_ms:,.1f} | {self.peer_ms:,.1f} | "
                f"{self.speedup:,.2f} | {self.target_text()} | {self.met()} |")


def pair(ours_fn, peer_fn, rounds):
    return _peers.interleave({"ours": ours_fn, "peer": peer_fn}, rounds=rounds, warmup=1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="standard sizes (also FASTEVALS_BENCH_FULL=1)")
    ap.add_argument("--rounds", type=int, default=None,
                    help="interleaved rounds per row (default 9, 5 for the segment loops)")
    ap.add_argument("--skip-jit", action="store_true", help="skip the new-process JIT measurements")
    ap.add_argument("--skip-memory", action="store_true", help="skip the peak-RSS measurements")
    ap.add_argument("--growth", type=int, default=4,
                    help="also measure ours on a file this many times longer (0: skip)")
    ap.add_argument("--json", metavar="PATH", help="also write every timing (seconds) to PATH")
    args = ap.parse_args(argv)
    full = args.full or _peers.full_size_requested()
    sz = _peers.sizes(full)
    rounds = args.rounds or 9
    loop_rounds = args.rounds or 5
    rows, n_seg = sz["ab_rows"], sz["ab_segments"]

    print(f"# fastevals A/B benchmarks ({'standard' if full else 'small'} sizes)\n")
    t0 = time.perf_counter()
    ab2 = _peers.ab_table(rows, n_seg)
    ab1 = ab2.select(_peers.AB_COLUMNS)
    df2 = ab2.to_pandas()
    df1 = df2[_peers.AB_COLUMNS]
    arrays = _peers.ab_arrays(ab1)
    seg_codes = ab2.column("segment").combine_chunks().indices.to_numpy()
    built = time.perf_counter() - t0
    print(f"data: {rows:,} rows, {n_seg} segments, built in {built:.1f} s (seed {_peers.SEED})")

    # first call in this process: compiles, or loads the on-disk cache (reported on its own line)
    t0 = time.perf_counter()
    ref = _peers.ours_ab(ours(ab1))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours(ab1)
    second = time.perf_counter() - t0
    print(f"first call in this process (JIT compile or cache load + work): {first:.2f} s; "
          f"second call {second * 1e3:.1f} ms")
    ti = _peers.thread_info()
    print("threads: " + ", ".join(f"{k}={v}" for k, v in ti.items()))
    print("versions: " + ", ".join(f"{k} {v}" for k, v in _peers.versions().items()) + "\n")

    out: list[Row] = []
    agree = _peers.assert_agree

    # -- AB1 ---------------------------------------------------------------------------------
    v, c, x = arrays
    agree(ref, _peers.numpy_scipy_ab(v, c, x), RTOL, "numpy+scipy")
    exp = _peers.tea_experiment()
    agree(ref, _peers.tea_ab(exp, df1), RTOL, "tea-tasting")
    ab1_ours = lambda: ours(ab1)  # noqa: E731
    out.append(Row("AB1", "bare NumPy sum of the 3 columns (floor)",
                   pair(ab1_ours, lambda: _peers.numpy_floor(v, c, x), rounds), 0.5))
    out.append(Row("AB1", "NumPy bincount + scipy chi2_contingency + closed-form Welch z",
                   pair(ab1_ours, lambda: _peers.numpy_scipy_ab(v, c, x), rounds), 6.0))
    out.append(Row("AB1", "tea-tasting on pandas",
                   pair(ab1_ours, lambda: _peers.tea_ab(exp, df1), rounds), 30.0))

    # -- AB2 ---------------------------------------------------------------------------------
    ref2 = _peers.ours_ab_segments(ours(ab2, by="segment"))
    agree(ref2, _peers.tea_ab_segments(exp, df2), RTOL, "tea-tasting loop")
    agree(ref2, _peers.statsmodels_ab_segments(df2), RTOL, "statsmodels loop")
    agree(ref2, _peers.numpy_ab_segments(v, c, x, seg_codes, n_seg), RTOL, "numpy bincount")
    agree(_peers.ours_ab(ours(ab2)), ref, RTOL, "flat")
    ab2_ours = lambda: ours(ab2, by="segment")  # noqa: E731
    out.append(Row("AB2", "tea-tasting looped over segments",
                   pair(ab2_ours, lambda: _peers.tea_ab_segments(exp, df2), loop_rounds), 50.0))
    out.append(Row("AB2", "statsmodels (+ scipy G-test) looped over segments",
                   pair(ab2_ours, lambda: _peers.statsmodels_ab_segments(df2), loop_rounds), 50.0))
    out.append(Row("AB2", "NumPy bincount on segment*2+variant + scipy per segment",
                   pair(ab2_ours, lambda: _peers.numpy_ab_segments(v, c, x, seg_codes, n_seg), rounds), None))
    out.append(Row("AB2", "ours without by= (the flat case)",
                   pair(ab2_ours, lambda: ours(ab2), rounds), 1 / 1.5))

    # -- AB3 ---------------------------------------------------------------------------------
    tmp = tempfile.TemporaryDirectory(prefix="fastevals-ab3-")
    path = os.path.join(tmp.name, "ab1.parquet")
    _peers.write_parquet(ab1, path, sz["ab_row_group"])
    file_mb = os.path.getsize(path) / 2**20
    from_file = _peers.numpy_scipy_ab(*_peers.ab_arrays(pq.read_table(path, columns=_peers.AB_COLUMNS)))
    agree(_peers.ours_ab(ours(path)), from_file, RTOL, "numpy+scipy on the file")
    agree(ref, from_file, RTOL, "file round trip")
    out.append(Row("AB3", f"pyarrow.parquet.read_table of the same columns ({file_mb:.0f} MB file, "
                          f"row groups of {sz['ab_row_group']:,})",
                   pair(lambda: ours(path), lambda: pq.read_table(path, columns=_peers.AB_COLUMNS), rounds),
                   1 / 1.2))
    # PQ1: the peers a user with a Parquet log would really pick (sufficient statistics in the
    # engine, the tests in scipy); their answers are held to ours first
    import duckdb

    con = duckdb.connect()
    agree(ref, _peers.duckdb_ab(path, con), RTOL, "DuckDB SQL + scipy")
    agree(ref, _peers.polars_ab(path), RTOL, "polars group_by + scipy")
    out.append(Row("PQ1", "DuckDB SQL (GROUP BY variant: count, sum, avg, var_samp) + scipy",
                   pair(lambda: ours(path), lambda: _peers.duckdb_ab(path, con), rounds), 1.0))
    out.append(Row("PQ1", "polars scan_parquet + group_by + scipy",
                   pair(lambda: ours(path), lambda: _peers.polars_ab(path), rounds), 1.0))

    print("| workload | peer | ours (median ms) | peer (median ms) | speed-up (peer / ours) | target "
          "| met? |")
    print("|---|---|---:|---:|---:|---|---|")
    for r in out:
        print(r.markdown())
    print(f"\n(interleaved A B A B, {rounds} rounds, {loop_rounds} for the segment loops, after one warm-up "
          f"round; speed-up = median over rounds of peer time / our time)")
    report = {"kind": "compare_abtest", "sizes": "standard" if full else "small",
              "environment": _peers.environment(), "rows": rows, "segments": n_seg, "threads": ti,
              "versions": _peers.versions(),
              "first_call_s": first, "table": [dict(workload=r.workload, peer=r.peer, ours_ms=r.ours_ms,
                                                    peer_ms=r.peer_ms, speedup=r.speedup, target=r.target,
                                                    times=r.timing.times) for r in out]}

    # -- memory --------------------------------------------------------------------------------
    if not args.skip_memory:
        batch = rows // 20
        mem_ours = _peers.peak_rss(*_peers.ab3_memory_snippets(path, batch))
        agree(mem_ours["extra"], ref, RTOL, "streamed from Parquet")
        mem_peer = _peers.peak_rss(*_peers.pyarrow_memory_snippets(path))
        print(f"\nAB3 memory, fresh processes, peak RSS above the baseline after imports and a warm-up "
              f"({mem_ours['method']}):")
        print(f"- ours, batch_size={batch:,} (the file is 20x the batch): +{mem_ours['above_mb']:.0f} MB "
              f"(baseline {mem_ours['baseline_mb']:.0f} MB, {mem_ours['seconds']:.2f} s; Arrow pool peak "
              f"{mem_ours['extra']['arrow_pool_max_mb']:.0f} MB)")
        print(f"- pq.read_table of the same columns: +{mem_peer['above_mb']:.0f} MB "
              f"(baseline {mem_peer['baseline_mb']:.0f} MB, {mem_peer['seconds']:.2f} s; Arrow pool peak "
              f"{mem_peer['extra']['arrow_pool_max_mb']:.0f} MB)")
        print(f"- for scale: the columns take {ab1.nbytes / 2**20:.0f} MB in memory, "
              f"the file {file_mb:.0f} MB")
        report["memory"] = {"ours": mem_ours, "pyarrow": mem_peer, "batch_size": batch}
        if args.growth > 1:
            # bounded means: the peak does not grow with the file; same batch size, a file k times longer
            big = _peers.write_parquet_repeated(ab1, os.path.join(tmp.name, "abk.parquet"), sz["ab_row_group"],
                                                args.growth)
            mem_big = _peers.peak_rss(*_peers.ab3_memory_snippets(big, batch))
            print(f"- ours on a file {args.growth}x as long ({args.growth * rows:,} rows, the same batch_size): "
                  f"+{mem_big['above_mb']:.0f} MB (Arrow pool peak {mem_big['extra']['arrow_pool_max_mb']:.0f} MB, "
                  f"against {mem_ours['extra']['arrow_pool_max_mb']:.0f} MB on the {rows:,}-row file)")
            report["memory"]["ours_long_file"] = mem_big
            os.remove(big)

    # -- JIT -------------------------------------------------------------------------------------
    if not args.skip_jit:
        with tempfile.TemporaryDirectory(prefix="fastevals-numba-cache-") as cache:
            env = {"NUMBA_CACHE_DIR": cache}
            cold = _peers.run_python(_peers.jit_snippet(rows, preimport=True), env=env)
            warm_pre = _peers.run_python(_peers.jit_snippet(rows, preimport=True), env=env)
            warm = _peers.run_python(_peers.jit_snippet(rows), env=env)
            # the floor: numba itself, one trivial cached function, in a new process (best of 5)
            with tempfile.TemporaryDirectory(prefix="fastevals-numba-floor-") as mod_dir:
                _peers.run_python(_peers.numba_floor_snippet(mod_dir), env=env)
                floors = [_peers.run_python(_peers.numba_floor_snippet(mod_dir), env=env) for _ in range(5)]
            warm_runs = [warm] + [_peers.run_python(_peers.jit_snippet(rows), env=env) for _ in range(4)]
        for r in (cold, warm_pre, warm):
            agree(r["answer"], ref, RTOL, "new process")
        compile_s = cold["first_s"] - cold["second_s"]
        print("\nJIT, fresh processes on an empty NUMBA_CACHE_DIR, then on the cache it left:")
        print(f"- JIT compile time, first call (cold cache, dependencies imported beforehand): "
              f"{compile_s:.2f} s (first call {cold['first_s']:.2f} s, "
              f"second {cold['second_s'] * 1e3:.0f} ms)")
        firsts = sorted(r["first_s"] for r in warm_runs)
        met = "yes" if firsts[len(firsts) // 2] < 1.0 else "**no**"
        print(f"- new process, warm cache, first call: median {firsts[len(firsts) // 2]:.2f} s of {len(firsts)} "
              f"(min {firsts[0]:.2f}, max {firsts[-1]:.2f}; target < 1 s: {met}); "
              f"second call {warm['second_s'] * 1e3:.0f} ms; `import fastevals` {warm['import_s'] * 1e3:.1f} ms")
        fl = sorted(r["total_s"] for r in floors)
        print(f"- the floor under it, numba alone: a new process importing numba and calling one trivial "
              f"cached @njit function: median {fl[len(fl) // 2]:.2f} s of {len(fl)} (min {fl[0]:.2f}, "
              f"max {fl[-1]:.2f}; import {sorted(r['import_s'] for r in floors)[len(fl) // 2]:.2f} s, "
              f"first call {sorted(r['first_s'] for r in floors)[len(fl) // 2]:.2f} s)")
        print(f"- the same split in another new process: importing numba, scipy.stats, pyarrow.dataset and "
              f"the A/B module {warm_pre['deps_s']:.2f} s, then the first call (loading the cached kernels + "
              f"the work) {warm_pre['first_s']:.2f} s")
        report["jit"] = {"cold": cold, "warm_preimport": warm_pre, "warm": warm, "warm_runs": warm_runs,
                         "numba_floor": floors}

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nload average (1 min) at the end: {load:.2f} on {os.cpu_count()} CPUs")
    report["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1,
                      default=lambda o: o.tolist() if isinstance(o, np.ndarray) else str(o))
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
