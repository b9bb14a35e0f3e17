"""Interleaved timings of fastevals on Dask against fastevals in one process and against the
same analysis written with dask.dataframe + scipy, as the markdown table of docs/dask.md.

    python benchmarks/compare_dask.py --full      # 50M rows in 32 Parquet files (~0.5 GB on disk)
    python benchmarks/compare_dask.py             # 640,000 rows, a quick look

The three implementations (see ``test_bench_dask.py``) run on the same files and the same
2-worker LocalCluster, interleaved (A B C A B C ..., one untimed warm-up round first:
worker imports and kernel loading are reported on their own line). Answers are asserted
to agree (rtol 1e-9) before anything is timed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _peers  # noqa: E402
import test_bench_dask as bench  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="50M rows (also FASTEVALS_BENCH_FULL=1)")
    ap.add_argument("--rows", type=int, default=None, help="rows in all (overrides --full)")
    ap.add_argument("--files", type=int, default=bench.FILES)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5, 3 with --full)")
    ap.add_argument("--dir", default=None, help="keep the dataset in this folder (reused when it matches)")
    args = ap.parse_args(argv)
    full = args.full or _peers.full_size_requested()
    rows = args.rows or bench.dataset_rows(full)
    rounds = args.rounds or (3 if full else 5)

    tmp = None
    folder = args.dir
    if folder is None:
        tmp = tempfile.TemporaryDirectory(prefix="fastevals-dask-")
        folder = tmp.name
    t0 = time.perf_counter()
    bench.write_dataset(folder, rows, args.files)
    files = bench.parquet_files(folder)
    size_mb = sum(os.path.getsize(f) for f in files) / 2**20
    print(f"# fastevals on Dask: {rows:,} rows in {len(files)} Parquet files ({size_mb:,.0f} MB), "
          f"ready in {time.perf_counter() - t0:.1f} s\n")

    t0 = time.perf_counter()
    cluster, client = bench.start_cluster(args.workers)
    print(f"LocalCluster: {args.workers} worker processes x 1 thread, started in "
          f"{time.perf_counter() - t0:.1f} s")
    try:
        firsts = {}
        answers = {}
        for name, fn in bench.IMPLS.items():
            t0 = time.perf_counter()
            answers[name] = fn(files)
            firsts[name] = time.perf_counter() - t0
        print("first calls (worker imports, JIT compile or cache load, + work): "
              + ", ".join(f"{k} {v:.2f} s" for k, v in firsts.items()))
        ref = answers["ours_one_process"]
        for name, answer in answers.items():
            _peers.assert_agree(answer, ref, bench.RTOL, name)
        print("answers agree (rtol 1e-9): " + ", ".join(f"{k} {v:.6g}" for k, v in ref.items()))
        info = _peers.thread_info()
        print("threads (this process): " + ", ".join(f"{k}={v}" for k, v in info.items()))
        names = ("fastevals", "numba", "numpy", "scipy", "pyarrow", "pandas", "dask", "distributed")
        print("versions: " + ", ".join(f"{k} {v}" for k, v in _peers.versions(names).items()) + "\n")

        timing = _peers.interleave({k: (lambda f=fn: f(files)) for k, fn in bench.IMPLS.items()},
                                   rounds=rounds, warmup=0)
        print("| implementation | median s | M rows/s | time / ours_cluster |")
        print("|---|---:|---:|---:|")
        labels = {
            "ours_cluster": f"fastevals on the {args.workers}-worker LocalCluster (engine='dask')",
            "ours_one_process": "fastevals in one process (same files)",
            "dask_groupby_scipy": "dask.dataframe groupby-agg + scipy, same cluster",
        }
        for name in bench.IMPLS:
            med = timing.median_ms(name) / 1e3
            ratio = timing.ratio(name, "ours_cluster")
            print(f"| {labels[name]} | {med:.2f} | {rows / med / 1e6:,.1f} | {ratio:.2f} |")
        print(f"\n(interleaved, {rounds} rounds after one warm-up round; ratio = median over rounds; "
              f"load average now {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs)")
        print(f"cluster overhead over one process: ours_cluster / ours_one_process = "
              f"{timing.ratio('ours_cluster', 'ours_one_process'):.2f}")
    finally:
        client.close()
        cluster.close()
        if tmp is not None:
            tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
