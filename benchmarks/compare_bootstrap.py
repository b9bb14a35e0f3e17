"""Bootstrap workloads BS1-BS4 (../shared/benchmarking.md): fastevals against scipy.stats.bootstrap.

    python benchmarks/compare_bootstrap.py                                   # small sizes (a minute)
    FASTEVALS_BENCH_FULL=1 python benchmarks/compare_bootstrap.py --json bs.json   # the standard sizes
    python benchmarks/report.py bs.json                                      # the README's table

The peer runs the **full workload** (``n_resamples = B``, never a smaller run scaled up: that
overstated scipy's time 1.5-2.5x here), with the settings a competent user would choose: its
vectorized path with the ``batch`` that is fastest on this machine, found by timing each of
``BATCH_CANDIDATES`` on a few batches first (``--batch`` to give one) and stated in the table.
One untimed round of both at the full size checks that the intervals agree (within Monte Carlo
error), then ours and scipy are timed interleaved (A B A B ...), and the speed-up is the median
over rounds of scipy's time / ours.  JIT compile time is on its own line.  Weights per second =
rows x replicates / our wall time.
"""

from __future__ import annotations

import argparse
import json
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _peers  # noqa: E402

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


#: scipy's ``batch`` candidates; the fastest that fits ``BATCH_MEMORY`` is found per workload
BATCH_CANDIDATES = (5, 10, 20, 50, 100, 200, 500)
#: the most memory one scipy batch may take (batch x N resampled values, float64)
BATCH_MEMORY = 1 << 30


def peer(wid, data, B, seed=2, batch=None, method=None):
    """scipy.stats.bootstrap on the same data (vectorized statistics, ``batch`` resamples at a time)."""
    rng = np.random.default_rng(seed)
    if wid in ("BS1", "BS2"):
        return stats.bootstrap((data["x"],), np.mean, n_resamples=B, batch=batch or 20,
                               method=method or ("percentile" if wid == "BS1" else "bca"), rng=rng)
    if wid == "BS3":
        return stats.bootstrap((data["y"], data["score"]), rank_auc, paired=True, n_resamples=B, batch=batch or 10,
                               method="percentile", rng=rng)
    return stats.bootstrap((data["y"], data["a"], data["b"]), _paired_acc, paired=True, n_resamples=B,
                           batch=batch or 10, method="percentile", rng=rng)


def fastest_batch(wid, data, n, B, probe_seconds=1.0, jackknife_finalists=3):
    """The ``batch`` with which scipy's full run is fastest here, found by timing the candidates.

    Resampling: each candidate runs ``max(2 batches, ~probe_seconds)`` of percentile resamples
    (never more than B), which gives its seconds per resample.  BCa (BS2) also runs a jackknife
    of N leave-one-out statistics, ``batch`` at a time, whose cost does not scale with B: the
    ``jackknife_finalists`` candidates that resample fastest are each timed on a BCa run of two
    batches (the whole jackknife plus a little resampling), and the batch chosen is the one whose
    predicted full time (that run + the remaining resamples at its rate) is the least.
    Returns (batch, {batch: seconds per resample}); for BCa the dict also holds
    ``"bca_predicted_s"``: {batch: predicted seconds of the full run}.
    """
    per = {}
    for batch in BATCH_CANDIDATES:
        if batch * n * 8 * (2 if wid in ("BS3", "BS4") else 1) > BATCH_MEMORY or batch > B:
            continue
        reps = batch * 2
        t = time.perf_counter()
        peer(wid, data, reps, batch=batch, method="percentile")
        dt = time.perf_counter() - t
        if dt < probe_seconds and reps < B:  # too short to tell: one longer run
            reps = min(B, max(reps, int(reps * probe_seconds / max(dt, 1e-3))) // batch * batch)
            t = time.perf_counter()
            peer(wid, data, reps, batch=batch, method="percentile")
            dt = time.perf_counter() - t
        per[batch] = dt / reps
    best = min(per, key=per.get)
    if wid != "BS2":
        return best, per
    predicted = {}
    for batch in sorted(per, key=per.get)[:jackknife_finalists]:
        reps = min(B, 2 * batch)
        t = time.perf_counter()
        peer(wid, data, reps, batch=batch, method="bca")
        predicted[batch] = time.perf_counter() - t + (B - reps) * per[batch]
    best = min(predicted, key=predicted.get)
    return best, {**per, "bca_predicted_s": predicted}


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


def measure(wid, repeats=3, batch=None, probe_seconds=1.0, log=print) -> dict:
    """One workload: ours and scipy at the same full B, interleaved; the answers checked first."""
    n, B = sizes(wid)
    data = make_data(wid, n)
    table = pa.table(data)
    t = time.perf_counter()
    r_ours = ours(wid, table, B)  # compiles (or loads) this input's signatures: reported on its own
    t_first = time.perf_counter() - t
    if batch is None:
        batch, probe = fastest_batch(wid, data, n, B, probe_seconds)
    else:
        probe = {}
    rates = {k: v for k, v in probe.items() if k != "bca_predicted_s"}
    log(f"{wid}: scipy batch={batch}" + (" (seconds per 1,000 resamples by batch: "
        + ", ".join(f"{k}: {v * 1e3:.2f}" for k, v in rates.items()) + ")" if probe else " (given)")
        + ("; BCa predicted full run by batch: " + ", ".join(f"{k}: {v:.1f} s" for k, v in
                                                             probe["bca_predicted_s"].items())
           if "bca_predicted_s" in probe else ""))
    # the warm-up round, untimed: both at the full workload, and the answers must agree
    r_peer = peer(wid, data, B, batch=batch)
    ok = agree(r_ours, r_peer, k=0.5 if B >= 1000 else 1.0)
    if not ok:
        log(f"{wid}: ANSWERS DIFFER: ours {r_ours.confidence_interval}, scipy {r_peer.confidence_interval}, "
            f"our standard error {r_ours.standard_error}")
    timing = _peers.interleave({"ours": lambda: ours(wid, table, B),
                                "scipy": lambda: peer(wid, data, B, batch=batch)}, rounds=repeats, warmup=0)
    c = time.process_time()
    with PeakRSS() as mem:
        t = time.perf_counter()
        ours(wid, table, B)
        wall = time.perf_counter() - t
    cpu = time.process_time() - c
    mo = statistics.median(timing.times["ours"])
    return {"id": wid, "workload": WORKLOADS[wid][0], "n": n, "B": B, "agree": bool(ok),
            "ours_s": timing.times["ours"], "peer": "scipy.stats.bootstrap", "peer_s": timing.times["scipy"],
            "peer_settings": f"vectorized, batch={batch} (fastest found here), n_resamples={B:,} (full)",
            "peer_B": B, "batch": batch, "batch_probe_s_per_resample": probe,
            "ratio": timing.ratio("scipy", "ours"), "first_call_s": t_first,
            "weights_per_s": n * B / mo, "weights_per_cpu_s": n * B / cpu if cpu > 0 else None,
            "cpu_over_wall": cpu / wall if wall > 0 else None,
            "peak_rss_above_mb": mem.above / 1e6, "data_mb": table.nbytes / 1e6}


def markdown(rows) -> str:
    lines = ["| id | workload | N | B | fastevals (median) | scipy at the full B (median) | speed-up "
             "(median of paired ratios) | weights/s | peak RSS above data |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        mo, mp = statistics.median(r["ours_s"]), statistics.median(r["peer_s"])
        lines.append(f"| {r['id']} | {r['workload']} | {r['n']:,} | {r['B']:,} | {mo * 1e3:,.1f} ms | "
                     f"{mp:,.2f} s (batch={r['batch']}) | "
                     f"{r['ratio']:,.0f}x{'' if r['agree'] else ' ANSWERS DIFFER'} | "
                     f"{r['weights_per_s'] / 1e9:,.2f} G | {r['peak_rss_above_mb']:,.0f} MB |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="timed interleaved rounds (after the checked warm-up)")
    ap.add_argument("--batch", type=int, default=None, help="scipy's batch (default: the fastest found here)")
    ap.add_argument("--probe-seconds", type=float, default=1.0, help="time spent probing each batch candidate")
    ap.add_argument("--only", nargs="*", default=list(WORKLOADS))
    ap.add_argument("--json", metavar="PATH", help="also write every timing to PATH (for benchmarks/report.py)")
    args = ap.parse_args(argv)
    env = _peers.environment()

    import fastevals
    from fastevals.resampling import warmup

    t0 = time.perf_counter()
    warmup()
    warm_s = time.perf_counter() - t0
    print(f"JIT compile / cache load (warmup): {warm_s:.2f} s")
    print(f"fastevals ({os.path.dirname(fastevals.__file__)}, {env['commit']}); "
          + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if k != "fastevals-source")
          + f"; sizes: {'standard' if FULL else 'small'}; load average at start {env['load_average'][0]:.1f} "
          f"on {env['cpus']} CPUs\n")
    rows = [measure(wid, args.repeats, args.batch, args.probe_seconds) for wid in args.only]
    print()
    print(markdown(rows))
    print(f"\nevery peer ran the full workload (n_resamples = B), interleaved with ours ({args.repeats} timed rounds "
          "after one untimed round whose answers were checked); speed-up = median over rounds of scipy time / "
          "our time")
    for r in rows:
        print(f"{r['id']}: first call (signature compile / cache load included) {r['first_call_s'] * 1e3:,.0f} ms; "
              f"fastevals {', '.join(f'{v * 1e3:,.0f}' for v in r['ours_s'])} ms; "
              f"scipy {', '.join(f'{v:,.2f}' for v in r['peer_s'])} s; CPU/wall {r['cpu_over_wall'] or 0:.2f}")
    env_end = _peers.environment(versions=False)
    print(f"load average at the end {env_end['load_average'][0]:.1f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"kind": "compare_bootstrap", "sizes": "standard" if FULL else "small",
                       "environment": env, "load_average_end": env_end["load_average"],
                       "warmup_s": warm_s, "rows": rows}, fh, indent=1)
    return 0 if all(r["agree"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
