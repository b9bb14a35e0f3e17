"""Bootstrap workloads BS1-BS4 (../shared/benchmarking.md): fastevals against scipy.stats.bootstrap.

    python benchmarks/compare_bootstrap.py            # small sizes (a minute)
    FASTEVALS_BENCH_FULL=1 python benchmarks/compare_bootstrap.py   # the standard sizes

Interleaved A B A B timing after a warm-up, median of the repeats; JIT compile
time on its own line.  scipy's resampling cost is linear in the number of resamples,
so at the standard sizes the peer runs ``--peer-resamples`` replicates (default:
all of them for the small sizes, 100 for the full ones) and its time is scaled to
B; the table says so.  For BCa (BS2) only the resampling part is scaled: the
jackknife's fixed cost is counted once.  Weights per second = rows x replicates / our wall time, and per
CPU-second of this process (all threads): on a shared machine the second is the
steadier measure of the work done.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time

import numpy as np
import pyarrow as pa
from scipy import stats

# measure the checkout this script belongs to, not an installed copy: run as a script, Python puts
# benchmarks/ first on the path, so a site-packages fastevals would win over ../fastevals
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if os.path.isdir(os.path.join(_ROOT, "fastevals")) and _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

FULL = os.environ.get("FASTEVALS_BENCH_FULL", "") == "1"

# (id, description, N, B) at the standard sizes; small sizes divide both
WORKLOADS = {
    "BS1": ("percentile CI of a mean", 1_000_000, 2_000),
    "BS2": ("BCa CI of a mean", 100_000, 10_000),
    "BS3": ("percentile CI of ROC AUC", 100_000, 1_000),
    "BS4": ("paired accuracy difference", 1_000_000, 1_000),
}
SMALL = {"BS1": (20_000, 200), "BS2": (5_000, 1_000), "BS3": (5_000, 200), "BS4": (50_000, 200)}


def sizes(wid):
    if FULL:
        return WORKLOADS[wid][1], WORKLOADS[wid][2]
    return SMALL[wid]


def make_data(wid, n):
    """Same seeds in every benchmark."""
    rng = np.random.default_rng(20240601)
    if wid in ("BS1", "BS2"):
        return {"x": rng.lognormal(0.0, 1.0, n)}
    if wid == "BS3":
        y = rng.integers(0, 2, n).astype(np.int8)
        return {"y": y, "score": rng.normal(size=n) + 0.7 * y}
    y = rng.integers(0, 2, n).astype(np.int8)
    a = np.where(rng.random(n) < 0.85, y, 1 - y).astype(np.int8)
    b = np.where(rng.random(n) < 0.87, y, 1 - y).astype(np.int8)
    return {"y": y, "a": a, "b": b}


def ours(wid, data, B, seed=1):
    from fastevals import metrics as M
    from fastevals.resampling import bootstrap

    table = data if isinstance(data, pa.Table) else pa.table(data)
    if wid == "BS1":
        return bootstrap(table, M.mean("x"), n_resamples=B, seed=seed, progress=False)
    if wid == "BS2":
        return bootstrap(table, M.mean("x"), n_resamples=B, seed=seed, method="bca", progress=False)
    if wid == "BS3":
        return bootstrap(table, M.roc_auc("y", "score"), n_resamples=B, seed=seed, progress=False)
    return bootstrap(table, M.accuracy("y", "b") - M.accuracy("y", "a"), n_resamples=B, seed=seed,
                     progress=False)


def rank_auc(y, s, axis=-1):
    r = stats.rankdata(s, axis=axis)
    pos = np.sum(y, axis=axis)
    neg = y.shape[axis] - pos
    return (np.sum(r * y, axis=axis) - pos * (pos + 1) / 2) / (pos * neg)


def _paired_acc(y, a, b, axis=-1):
    return np.mean(b == y, axis=axis) - np.mean(a == y, axis=axis)


def peer(wid, data, B, seed=2):
    """scipy.stats.bootstrap on the same data (vectorized statistics, batched)."""
    rng = np.random.default_rng(seed)
    if wid == "BS1":
        return stats.bootstrap((data["x"],), np.mean, n_resamples=B, batch=20, method="percentile", rng=rng)
    if wid == "BS2":
        return stats.bootstrap((data["x"],), np.mean, n_resamples=B, batch=20, method="bca", rng=rng)
    if wid == "BS3":
        return stats.bootstrap((data["y"], data["score"]), rank_auc, paired=True, n_resamples=B, batch=10,
                               method="percentile", rng=rng)
    return stats.bootstrap((data["y"], data["a"], data["b"]), _paired_acc, paired=True, n_resamples=B, batch=10,
                           method="percentile", rng=rng)


def agree(ours_res, peer_res, k=0.5):
    """Endpoints within k standard errors (Monte Carlo error of two independent bootstraps)."""
    se = ours_res.standard_error
    lo = abs(ours_res.confidence_interval.low - peer_res.confidence_interval.low)
    hi = abs(ours_res.confidence_interval.high - peer_res.confidence_interval.high)
    return lo < k * se and hi < k * se


class PeakRSS:
    """Peak resident memory above the level at entry (sampled every 5 ms)."""

    def __enter__(self):
        import psutil

        self.proc = psutil.Process()
        self.base = self.proc.memory_info().rss
        self.peak = self.base
        self._stop = False
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop:
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.005)

    def __exit__(self, *exc):
        self._stop = True
        self._t.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)

    @property
    def above(self):
        return self.peak - self.base


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--peer-resamples", type=int, default=None,
                    help="replicates for scipy (its time is scaled to B); default B small, 100 full")
    ap.add_argument("--only", nargs="*", default=list(WORKLOADS))
    args = ap.parse_args(argv)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    import numba
    import scipy

    import fastevals
    from fastevals.resampling import warmup

    t0 = time.perf_counter()
    warmup()
    print(f"JIT compile / cache load (warmup): {time.perf_counter() - t0:.2f} s")
    print(f"fastevals {fastevals.__version__} ({os.path.dirname(fastevals.__file__)}), numba {numba.__version__} "
          f"({numba.get_num_threads()} threads), "
          f"numpy {np.__version__}, scipy {scipy.__version__}; sizes: {'standard' if FULL else 'small'}; "
          f"load average at start {load:.1f} on {os.cpu_count()} CPUs")
    print()
    print("| id | workload | N | B | fastevals | scipy (per B) | speed-up | weights/s (wall) "
          "| weights per CPU-s | peak RSS above data |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    notes = []
    for wid in args.only:
        n, B = sizes(wid)
        Bp = args.peer_resamples or (100 if FULL else B)
        Bp = min(Bp, B)
        data = make_data(wid, n)
        table = pa.table(data)
        t = time.perf_counter()
        r_ours = ours(wid, table, B)  # warm-up: compiles (or loads) this input's signatures
        t_first = time.perf_counter() - t
        t_ours, t_peer = [], []
        r_peer = None
        c_ours = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            c = time.process_time()
            ours(wid, table, B)
            t_ours.append(time.perf_counter() - t)
            c_ours.append(time.process_time() - c)
            t = time.perf_counter()
            r_peer = peer(wid, data, Bp)  # no JIT: its first call is a fair measurement
            tp = time.perf_counter() - t
            if Bp < B and wid == "BS2":
                # BCa = jackknife (fixed cost, N refits) + resampling (linear in B): scale only the latter,
                # timed by the same call with method="percentile"
                t = time.perf_counter()
                stats.bootstrap((data["x"],), np.mean, n_resamples=Bp, batch=20, method="percentile",
                                rng=np.random.default_rng(3))
                tp += (time.perf_counter() - t) * (B - Bp) / Bp
            else:
                tp *= B / Bp
            t_peer.append(tp)
        ok = agree(r_ours, r_peer, k=0.5 if Bp >= 1000 else 1.0)
        with PeakRSS() as mem:
            ours(wid, table, B)
        mo, mp = statistics.median(t_ours), statistics.median(t_peer)
        scaled = "" if Bp == B else f" (ran {Bp}, scaled)"
        data_mb = table.nbytes / 1e6
        print(f"| {wid} | {WORKLOADS[wid][0]} | {n:,} | {B:,} | {mo * 1e3:,.1f} ms | {mp:,.2f} s{scaled} | "
              f"{mp / mo:,.0f}x | {n * B / mo / 1e9:,.2f} G | {n * B / statistics.median(c_ours) / 1e9:,.2f} G | "
              f"{mem.above / 1e6:,.0f} MB (data {data_mb:,.0f} MB)"
              f"{'' if ok else ' ANSWERS DIFFER'} |")
        notes.append(f"{wid}: first call (signature compile / cache load included) {t_first * 1e3:,.0f} ms; "
                     f"fastevals times {', '.join(f'{v * 1e3:,.0f}' for v in t_ours)} ms; "
                     f"scipy {', '.join(f'{v:,.2f}' for v in t_peer)} s")
        sys.stdout.flush()
    print()
    print("\n".join(notes))


if __name__ == "__main__":
    main()
