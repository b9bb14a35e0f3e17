"""Helpers shared by the benchmark files: the standard workloads (seeded data),
interleaved timing, peak RSS measured in a subprocess, library versions, and the
peer implementations the A/B benchmarks are compared with.

Importable both from pytest (``benchmarks/`` is put on ``sys.path`` by pytest's
default import mode) and from the ``compare_*.py`` scripts run as
``python benchmarks/compare_<topic>.py``.

Sizes: ``sizes(full=True)`` are the standard workload sizes of
``shared/benchmarking.md``; ``sizes(full=False)`` are small ones, so that every
benchmark also runs in a few seconds as a plain test.  ``FASTEVALS_BENCH_FULL=1``
selects the standard sizes.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: one seed for every workload (each workload derives its own stream from it)
SEED = 20_240_601

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)


def full_size_requested() -> bool:
    """True when ``FASTEVALS_BENCH_FULL`` is set to a true value (1, true, yes)."""
    return os.environ.get("FASTEVALS_BENCH_FULL", "").strip().lower() in ("1", "true", "yes", "on")


#: rows (or other sizes) of the standard workloads. The small A/B size is raised at run
#: time to just above fastevals' PARALLEL_MIN_ROWS, so that the quick runs exercise the
#: parallel kernel too (fastevals uses its serial twin below that many rows).
_SIZES = {
    "full": {
        "ab_rows": 10_000_000, "ab_segments": 50, "ab_row_group": 1_000_000,
        "bs1_n": 1_000_000, "bs1_b": 2_000,
        "bs2_n": 100_000, "bs2_b": 10_000,
        "bs3_n": 100_000, "bs3_b": 1_000,
        "bs4_n": 1_000_000, "bs4_b": 1_000,
        "ca1_n": 10_000_000, "ca_bins": 15,
        "ca2_n": 1_000_000, "ca2_k": 10,
        "ba1_n": 1_000_000, "ba_arms": 10,
        "ba3_runs": 1_000, "ba3_steps": 10_000,
    },
    "small": {
        "ab_rows": 300_000, "ab_segments": 50, "ab_row_group": 30_000,
        "bs1_n": 20_000, "bs1_b": 200,
        "bs2_n": 5_000, "bs2_b": 500,
        "bs3_n": 5_000, "bs3_b": 100,
        "bs4_n": 20_000, "bs4_b": 100,
        "ca1_n": 200_000, "ca_bins": 15,
        "ca2_n": 20_000, "ca2_k": 10,
        "ba1_n": 20_000, "ba_arms": 10,
        "ba3_runs": 20, "ba3_steps": 1_000,
    },
}


def sizes(full: bool | None = None) -> dict:
    """Workload sizes: standard ones when ``full`` (default: from FASTEVALS_BENCH_FULL), else small."""
    if full is None:
        full = full_size_requested()
    out = dict(_SIZES["full" if full else "small"])
    if not full:
        rows = max(out["ab_rows"], parallel_min_rows() + 50_000)
        out["ab_rows"], out["ab_row_group"] = rows, rows // 10
    return out


def parallel_min_rows() -> int:
    """fastevals' threshold between the serial and the parallel kernels (no numba import)."""
    from fastevals._config import PARALLEL_MIN_ROWS

    return int(PARALLEL_MIN_ROWS)


def _rng(workload: str, seed: int = SEED) -> np.random.Generator:
    # one independent stream per workload, stable whatever else is generated first
    return np.random.default_rng([seed, sum(ord(ch) << (8 * (i % 4)) for i, ch in enumerate(workload))])


# ------------------------------------------------------------------------------------------------
# standard workloads

#: A/B workloads: true effects small enough that the p-values are neither 0 nor 1 at 10M rows
AB_CONVERSION = (0.100, 0.1005)  # control, treatment
AB_REVENUE_SCALE = (5.0, 5.01)  # exponential scale of revenue, control, treatment
AB_COLUMNS = ["variant", "converted", "revenue"]


def ab_table(rows: int, segments: int = 0, seed: int = SEED):
    """AB1 (and AB2 with ``segments``): a pyarrow Table.

    ``variant``: dictionary<int8 -> string> of "control" / "treatment" (50/50);
    ``converted``: int8 0/1; ``revenue``: float64 (exponential);
    ``segment`` (when ``segments``): dictionary<int8 -> string> "s00".."s49" with
    uneven sizes (share of segment k proportional to 1/sqrt(k+1)).
    The first three columns do not depend on ``segments``: AB2 is AB1 plus a column.
    """
    import pyarrow as pa

    rng = _rng("AB", seed)
    variant = rng.integers(0, 2, rows, dtype=np.int8)
    p_conv = np.array(AB_CONVERSION)[variant]
    converted = (rng.random(rows) < p_conv).astype(np.int8)
    revenue = rng.exponential(1.0, rows) * np.array(AB_REVENUE_SCALE)[variant]
    cols = {
        "variant": pa.DictionaryArray.from_arrays(pa.array(variant), pa.array(["control", "treatment"])),
        "converted": pa.array(converted),
        "revenue": pa.array(revenue),
    }
    if segments:
        srng = _rng("AB-segment", seed)
        share = 1.0 / np.sqrt(np.arange(1, segments + 1))
        seg = np.searchsorted(np.cumsum(share / share.sum()), srng.random(rows), side="right")
        seg = np.minimum(seg, segments - 1).astype(np.int8 if segments <= 127 else np.int32)
        names = pa.array([f"s{k:02d}" for k in range(segments)])
        cols["segment"] = pa.DictionaryArray.from_arrays(pa.array(seg), names)
    return pa.table(cols)


def write_parquet(table, path: str, row_group_size: int) -> str:
    """AB3: ``table`` written to ``path`` with row groups of ``row_group_size`` rows (snappy)."""
    import pyarrow.parquet as pq

    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def bs_values(n: int, seed: int = SEED) -> np.ndarray:
    """BS1 / BS2: float64 values (lognormal: skewed, like latencies or revenue)."""
    return _rng("BS-values", seed).lognormal(0.0, 1.0, n)


def bs_scored(n: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """BS3: (label int8, score float64) with an AUC of about 0.8."""
    rng = _rng("BS-scored", seed)
    label = (rng.random(n) < 0.3).astype(np.int8)
    score = rng.normal(0.0, 1.0, n) + 1.2 * label
    return label, score


def bs_paired(n: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BS4: (y, pred_a, pred_b) int8 class labels; model a ~85% and model b ~86% accurate."""
    rng = _rng("BS-paired", seed)
    y = rng.integers(0, 2, n, dtype=np.int8)
    u = rng.random(n)
    # model b reuses model a's luck on 90% of the rows: the two are strongly paired
    v = np.where(rng.random(n) < 0.9, u, rng.random(n))
    a = np.where(u < 0.85, y, 1 - y).astype(np.int8)
    b = np.where(v < 0.86, y, 1 - y).astype(np.int8)
    return y, a, b


def ca_binary(n: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """CA1: (p, y): p ~ Beta(2, 5) float64, y ~ Bernoulli(p ** 1.1) int8 (slightly miscalibrated)."""
    rng = _rng("CA-binary", seed)
    p = rng.beta(2.0, 5.0, n)
    y = (rng.random(n) < p**1.1).astype(np.int8)
    return p, y


def ca_multiclass(n: int, k: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """CA2: (probs float64 (n, k) rows summing to 1, labels int32 in [0, k))."""
    rng = _rng("CA-multiclass", seed)
    logits = rng.normal(0.0, 1.5, (n, k))
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    u = rng.random(n)[:, None]
    labels = np.minimum((u > np.cumsum(probs, axis=1)).sum(axis=1), k - 1).astype(np.int32)
    return probs, labels


def ba_arm_means(arms: int) -> np.ndarray:
    """BA1-BA3: Bernoulli means of the arms, evenly spread in [0.05, 0.15]."""
    return np.linspace(0.05, 0.15, arms)


def ba_log(n: int, arms: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """BA1 / BA2: a logged (arm int32, reward int8) stream, arms drawn uniformly."""
    rng = _rng("BA-log", seed)
    arm = rng.integers(0, arms, n).astype(np.int32)
    reward = (rng.random(n) < ba_arm_means(arms)[arm]).astype(np.int8)
    return arm, reward


# ------------------------------------------------------------------------------------------------
# timing


@dataclass
class Timing:
    """Interleaved timings (seconds) of two or more callables, warm-up excluded."""

    times: dict[str, list[float]]

    def median_ms(self, name: str) -> float:
        return 1e3 * statistics.median(self.times[name])

    def ratio(self, num: str, den: str) -> float:
        """Median over rounds of time(num) / time(den) (each round ran both back to back)."""
        pairs = zip(self.times[num], self.times[den], strict=True)
        return statistics.median(a / b for a, b in pairs)


def interleave(fns: dict[str, Callable[[], object]], rounds: int = 7, warmup: int = 1,
               min_seconds: float = 0.0) -> Timing:
    """Time ``fns`` as A B A B ... (``warmup`` untimed rounds first).

    At least ``rounds`` rounds; more (up to 5x) while the total is under ``min_seconds``.
    Garbage collection runs between calls, never inside one.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    start = time.perf_counter()
    r = 0
    while r < rounds or (time.perf_counter() - start < min_seconds and r < 5 * rounds):
        for name, fn in fns.items():
            gc.collect()
            gc.disable()
            try:
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
            finally:
                gc.enable()
        r += 1
    return Timing(times)


# ------------------------------------------------------------------------------------------------
# subprocesses: peak RSS, new-process timings

_RSS_DRIVER = r"""
import gc, json, os, sys, threading, time
sys.path[:0] = {paths!r}

def _status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)

{setup}
gc.collect()
try:
    with open("/proc/self/clear_refs", "w") as f:  # reset the peak-RSS mark (VmHWM), Linux >= 4.0
        f.write("5")
    sampled = None
except OSError:
    sampled = [0]
    def _sample():
        while sampled is not None:
            sampled[0] = max(sampled[0], _status("VmRSS"))
            time.sleep(0.002)
    threading.Thread(target=_sample, daemon=True).start()
baseline = _status("VmRSS")
t0 = time.perf_counter()
{run}
seconds = time.perf_counter() - t0
peak = _status("VmHWM") if sampled is None else max(sampled[0], _status("VmRSS"))
print("@@RESULT@@" + json.dumps(dict(baseline=baseline, peak=peak, seconds=seconds,
                                     method="VmHWM" if sampled is None else "sampled",
                                     extra=globals().get("extra"))))
"""


def run_python(code: str, env: dict | None = None, timeout: float = 600) -> dict:
    """Run ``code`` in a fresh Python; it prints one line ``@@RESULT@@<json>``, which is returned."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env,
                          timeout=timeout, cwd=REPO_ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"subprocess failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    for line in proc.stdout.splitlines():
        if line.startswith("@@RESULT@@"):
            return json.loads(line[len("@@RESULT@@"):])
    raise RuntimeError(f"subprocess printed no result:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def peak_rss(setup: str, run: str, env: dict | None = None, timeout: float = 600) -> dict:
    """Peak RSS of ``run`` above the process baseline after ``setup``, in a fresh process.

    ``setup`` and ``run`` are Python source; ``run`` may set a global ``extra`` (JSON-able)
    that comes back.  Returns ``baseline_mb, peak_mb, above_mb, seconds, method, extra``.
    """
    code = _RSS_DRIVER.format(paths=[REPO_ROOT, BENCH_DIR], setup=textwrap.dedent(setup),
                              run=textwrap.dedent(run))
    r = run_python(code, env=env, timeout=timeout)
    mb = 1024.0 * 1024.0
    return dict(baseline_mb=r["baseline"] / mb, peak_mb=r["peak"] / mb,
                above_mb=max(0.0, (r["peak"] - r["baseline"]) / mb), seconds=r["seconds"],
                method=r["method"], extra=r["extra"])


# ------------------------------------------------------------------------------------------------
# environment


def versions(names=("fastevals", "numba", "numpy", "scipy", "pyarrow", "pandas", "statsmodels",
                    "tea_tasting", "sklearn", "polars", "duckdb")) -> dict[str, str]:
    """Versions of the libraries that are installed (absent ones are left out)."""
    out = {"python": platform.python_version()}
    for name in names:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        out[name.replace("_", "-")] = str(getattr(mod, "__version__", "?"))
    out["fastevals-source"] = git_state()
    return out


def environment(versions: bool = True) -> dict:
    """What a figure depends on, for the JSON that ``benchmarks/report.py`` turns into tables:
    date, commit (``git_state``), load average, CPUs, numba threads and library versions."""
    load = list(os.getloadavg()) if hasattr(os, "getloadavg") else [float("nan")] * 3
    out = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "commit": git_state(), "load_average": load,
           "cpus": os.cpu_count(), "machine": f"{platform.machine()} {platform.system()} {platform.release()}"}
    if versions:
        out["versions"] = globals()["versions"]()
    return out


def git_state() -> str:
    """The checkout measured: HEAD's short hash, plus "+ local changes" when fastevals/ differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=REPO_ROOT, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "fastevals"], capture_output=True,
                               text=True, cwd=REPO_ROOT, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not head:
        return "unknown"
    return head + (" + local changes" if dirty else "")


def thread_info() -> dict:
    """numba threads and threading layer (call after a parallel kernel ran), CPUs, load."""
    import numba

    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        layer = "(not initialised)"
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "numba_threads": numba.get_num_threads(),
        "threading_layer": layer,
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
        "NUMBA_THREADING_LAYER": os.environ.get("NUMBA_THREADING_LAYER", "(unset)"),
        "cpus": os.cpu_count(),
        "loadavg_1m": round(load[0], 2),
        "machine": f"{platform.machine()} {platform.system()} {platform.release()}",
    }


# ------------------------------------------------------------------------------------------------
# A/B peers: each returns plain floats so that answers can be compared with ours


def ab_arrays(table):
    """(variant codes int8, converted int8, revenue float64) NumPy views of an AB table."""
    import pyarrow as pa

    def one(name):
        col = table.column(name)
        if isinstance(col, pa.ChunkedArray):
            return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
        return col

    variant = one("variant")
    labels = variant.dictionary.to_pylist()
    codes = variant.indices.to_numpy(zero_copy_only=True)
    if labels != ["control", "treatment"]:
        # e.g. a Parquet round trip may reorder a dictionary: recode so that 1 = treatment
        codes = (np.asarray(labels, dtype=object)[codes] == "treatment").astype(np.int8)
    return codes, one("converted").to_numpy(zero_copy_only=True), one("revenue").to_numpy(zero_copy_only=True)


def numpy_floor(variant, converted, revenue):
    """The floor: one NumPy sum over each column the analysis reads."""
    return int(variant.sum(dtype=np.int64)), int(converted.sum(dtype=np.int64)), float(revenue.sum())


def welch_z(n, mean, var, control=0, treatment=1):
    """Closed-form unequal-variance z-test of treatment - control: (statistic, pvalue)."""
    from scipy import special

    se = np.sqrt(var[..., treatment] / n[..., treatment] + var[..., control] / n[..., control])
    z = (mean[..., treatment] - mean[..., control]) / se
    return z, 2.0 * special.ndtr(-np.abs(z))


def numpy_scipy_ab(variant, converted, revenue) -> dict:
    """AB1 peer: NumPy bincount for the cells, scipy's G-test, closed-form Welch z.

    What a careful NumPy user writes: one bincount of variant * 2 + converted for the
    2 x 2 table, weighted bincounts for the sums and sums of squares of revenue.
    """
    from scipy.stats import chi2_contingency

    counts = np.bincount(variant * np.int8(2) + converted, minlength=4).reshape(2, 2)
    g = chi2_contingency(counts, correction=False, lambda_="log-likelihood")
    n = counts.sum(axis=1)
    s = np.bincount(variant, weights=revenue, minlength=2)
    ss = np.bincount(variant, weights=revenue * revenue, minlength=2)
    mean = s / n
    var = (ss - n * mean * mean) / (n - 1)
    z, pz = welch_z(n, mean, var)
    return {"g_statistic": float(g.statistic), "g_pvalue": float(g.pvalue),
            "z_statistic": float(z), "z_pvalue": float(pz)}


def _ab_from_sufficient(control: dict, treatment: dict) -> dict:
    """G-test (scipy) and Welch z (closed form) from per-variant n, conversions, mean, variance."""
    from scipy.stats import chi2_contingency

    counts = np.array([[control["n"] - control["conv"], control["conv"]],
                       [treatment["n"] - treatment["conv"], treatment["conv"]]], dtype=np.int64)
    g = chi2_contingency(counts, correction=False, lambda_="log-likelihood")
    n = np.array([control["n"], treatment["n"]], dtype=np.float64)
    mean = np.array([control["mean"], treatment["mean"]])
    var = np.array([control["var"], treatment["var"]])
    z, pz = welch_z(n, mean, var)
    return {"g_statistic": float(g.statistic), "g_pvalue": float(g.pvalue),
            "z_statistic": float(z), "z_pvalue": float(pz)}


#: the PQ1 query: sufficient statistics per variant, straight from the Parquet file
DUCKDB_AB_SQL = """
SELECT variant, count(*) AS n, sum(converted) AS conv, avg(revenue) AS mean, var_samp(revenue) AS var
FROM read_parquet(?) GROUP BY variant
"""


def duckdb_ab(path: str, con=None) -> dict:
    """PQ1 peer: DuckDB SQL for the sufficient statistics per variant, scipy for the tests.

    What a user with a Parquet log and DuckDB at hand writes: one GROUP BY query (DuckDB's
    ``var_samp`` is a numerically stable one-pass variance), then scipy's G-test and the
    closed-form Welch z.  ``con``: a DuckDB connection (default: the module's in-memory one,
    all cores).
    """
    import duckdb

    rows = (con or duckdb).execute(DUCKDB_AB_SQL, [path]).fetchall()
    by = {r[0]: {"n": int(r[1]), "conv": int(r[2]), "mean": float(r[3]), "var": float(r[4])} for r in rows}
    return _ab_from_sufficient(by["control"], by["treatment"])


def polars_ab(path: str) -> dict:
    """PQ1 peer: polars ``scan_parquet(...).group_by("variant").agg(...)`` (lazy, all cores), then scipy."""
    import polars as pl

    agg = (pl.scan_parquet(path).group_by("variant")
           .agg(n=pl.len(), conv=pl.col("converted").cast(pl.Int64).sum(), mean=pl.col("revenue").mean(),
                var=pl.col("revenue").var())
           .collect())
    by = {r["variant"]: r for r in agg.to_dicts()}
    return _ab_from_sufficient(by["control"], by["treatment"])


def tea_experiment():
    """The tea-tasting experiment equal to ours: G-test on converted, Welch z on revenue."""
    import tea_tasting as tt

    return tt.Experiment(
        conv=tt.Proportion("converted", method="log-likelihood", correction=False),
        rev=tt.Mean("revenue", use_t=False, equal_var=False),
    )


def tea_ab(experiment, df) -> dict:
    """AB1 peer: tea-tasting on a pandas DataFrame (the G-test p-value; tea-tasting gives no G)."""
    r = experiment.analyze(df, control="control")
    return {"g_pvalue": float(r["conv"].pvalue), "z_statistic": float(r["rev"].statistic),
            "z_pvalue": float(r["rev"].pvalue)}


def ours_ab(report) -> dict:
    """Our AB1 answer (a fastevals ABTestReport) as plain floats."""
    return {"g_statistic": float(report.g_test.statistic), "g_pvalue": float(report.g_test.pvalue),
            "z_statistic": float(report.z_test.statistic), "z_pvalue": float(report.z_test.pvalue)}


def ours_ab_segments(report) -> dict:
    """Our AB2 answer (per-segment tables) as arrays in segment order."""
    g = report.g_test.table
    z = report.z_test.table
    assert g.column("segment").to_pylist() == z.column("segment").to_pylist()
    out = {"segment": g.column("segment").to_pylist()}
    for name, tab in (("g", g), ("z", z)):
        for col in ("statistic", "pvalue", "pvalue_adjusted"):
            out[f"{name}_{col}"] = tab.column(col).to_numpy()
    return out


def _holm(p):
    """Holm-adjusted p-values in NumPy.

    Equal to ``statsmodels.stats.multitest.multipletests(p, method="holm")[1]`` (checked in
    the benchmark tests), which is not used in the timed peers: it calls ``gc.collect()``
    on every Holm adjustment, costing 0.1-0.5 s in a process with a large heap, which
    would flatter our ratios.
    """
    p = np.asarray(p, dtype=float)
    m = p.size
    order = np.argsort(p, kind="mergesort")
    adj = np.empty(m)
    adj[order] = np.minimum(np.maximum.accumulate((m - np.arange(m)) * p[order]), 1.0)
    return adj


def tea_ab_segments(experiment, df) -> dict:
    """AB2 peer: tea-tasting looped over the segments of a pandas DataFrame, then Holm (NumPy)."""
    seg, gp, zs, zp = [], [], [], []
    for name, sub in df.groupby("segment", observed=True, sort=True):
        r = experiment.analyze(sub, control="control")
        seg.append(name)
        gp.append(r["conv"].pvalue)
        zs.append(r["rev"].statistic)
        zp.append(r["rev"].pvalue)
    return {"segment": seg, "g_pvalue": np.array(gp), "g_pvalue_adjusted": _holm(gp),
            "z_statistic": np.array(zs), "z_pvalue": np.array(zp), "z_pvalue_adjusted": _holm(zp)}


def statsmodels_ab_segments(df) -> dict:
    """AB2 peer: statsmodels looped over segments (CompareMeans.ztest_ind, unequal variances),
    scipy's G-test on each segment's 2 x 2 table (statsmodels has no G-test), then Holm (NumPy)."""
    from scipy.stats import chi2_contingency
    from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

    seg, gs, gp, zs, zp = [], [], [], [], []
    for name, sub in df.groupby("segment", observed=True, sort=True):
        treat = (sub["variant"] == "treatment").to_numpy()
        conv = sub["converted"].to_numpy()
        rev = sub["revenue"].to_numpy()
        counts = np.bincount(treat.astype(np.int8) * 2 + conv, minlength=4).reshape(2, 2)
        g = chi2_contingency(counts, correction=False, lambda_="log-likelihood")
        cm = CompareMeans(DescrStatsW(rev[treat]), DescrStatsW(rev[~treat]))
        z, p = cm.ztest_ind(usevar="unequal")
        seg.append(name)
        gs.append(g.statistic)
        gp.append(g.pvalue)
        zs.append(z)
        zp.append(p)
    return {"segment": seg, "g_statistic": np.array(gs), "g_pvalue": np.array(gp),
            "g_pvalue_adjusted": _holm(gp), "z_statistic": np.array(zs), "z_pvalue": np.array(zp),
            "z_pvalue_adjusted": _holm(zp)}


def numpy_ab_segments(variant, converted, revenue, segment, n_segments: int) -> dict:
    """AB2 peer: NumPy bincount on segment * 2 + variant, scipy's G-test per segment, Welch z."""
    from scipy.stats import chi2_contingency

    cell = segment.astype(np.int16) * np.int16(2) + variant
    counts = np.bincount(cell * np.int16(2) + converted, minlength=4 * n_segments).reshape(n_segments, 2, 2)
    n = counts.sum(axis=2)
    s = np.bincount(cell, weights=revenue, minlength=2 * n_segments).reshape(n_segments, 2)
    ss = np.bincount(cell, weights=revenue * revenue, minlength=2 * n_segments).reshape(n_segments, 2)
    mean = s / n
    var = (ss - n * mean * mean) / (n - 1)
    zs, zp = welch_z(n, mean, var)
    gs = np.empty(n_segments)
    gp = np.empty(n_segments)
    for k in range(n_segments):
        r = chi2_contingency(counts[k], correction=False, lambda_="log-likelihood")
        gs[k], gp[k] = r.statistic, r.pvalue
    return {"g_statistic": gs, "g_pvalue": gp, "g_pvalue_adjusted": _holm(gp),
            "z_statistic": zs, "z_pvalue": zp, "z_pvalue_adjusted": _holm(zp)}


#: absolute tolerance of G statistics held to scipy's: scipy sums obs * log(obs / exp) cell by
#: cell, which loses ~1e-11 to cancellation when G is near 0 (a segment without effect, G ~ 0.005
#: at 10M rows: 1.8e-9 relative), while ours uses the accurate form; larger G agree to rtol
G_ATOL = 1e-10


def assert_agree(ours: dict, peer: dict, rtol: float = 1e-9, label: str = "peer") -> None:
    """Every numeric key the peer has must equal ours to ``rtol`` (labels must match exactly;
    G statistics also within :data:`G_ATOL`)."""
    for key, want in peer.items():
        got = ours[key]
        if key == "segment":
            assert list(got) == list(want), f"{label}: segment order differs"
            continue
        atol = G_ATOL if key == "g_statistic" else 0.0
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=f"{label}: {key} differs")


# ------------------------------------------------------------------------------------------------
# A/B subprocess measurements (memory, JIT)


def _warm_file_snippet(path: str) -> str:
    # a small file of the same schema (one row group just over fastevals' parallel threshold, so
    # that the parallel kernel is loaded too), to load every kernel and library before the
    # baseline without leaving the big file's batches in the memory pool
    return f"""
    import pyarrow as pa, pyarrow.parquet as pq, _peers
    _warm = {path!r} + ".warm.parquet"
    _warm_rows = _peers.parallel_min_rows() + 1000
    _peers.write_parquet(_peers.ab_table(_warm_rows), _warm, _warm_rows)
    """


def ab3_memory_snippets(path: str, batch_size: int) -> tuple[str, str]:
    """(setup, run) of the AB3 bounded-memory measurement of ours (see ``_peers.peak_rss``)."""
    setup = _warm_file_snippet(path) + f"""
    import fastevals
    fastevals.abtest(_warm, group="variant", outcome="converted", value="revenue", batch_size={batch_size})
    pa.default_memory_pool().release_unused()
    """
    run = f"""
    _rep = fastevals.abtest({path!r}, group="variant", outcome="converted", value="revenue",
                            batch_size={batch_size})
    extra = dict(_peers.ours_ab(_rep), arrow_pool_max_mb=pa.default_memory_pool().max_memory() / 2**20)
    """
    return setup, run


def write_parquet_repeated(table, path: str, row_group_size: int, times: int) -> str:
    """``table`` written ``times`` over into one Parquet file (a bigger file without more RAM)."""
    import pyarrow.parquet as pq

    with pq.ParquetWriter(path, table.schema) as writer:
        for _ in range(times):
            writer.write_table(table, row_group_size=row_group_size)
    return path


def pyarrow_memory_snippets(path: str) -> tuple[str, str]:
    """(setup, run) of the same measurement for ``pq.read_table`` of the same columns."""
    setup = _warm_file_snippet(path) + """
    pq.read_table(_warm, columns=_peers.AB_COLUMNS)
    pa.default_memory_pool().release_unused()
    """
    run = f"""
    _t = pq.read_table({path!r}, columns=_peers.AB_COLUMNS)
    extra = {{"rows": _t.num_rows, "arrow_pool_max_mb": pa.default_memory_pool().max_memory() / 2**20}}
    """
    return setup, run


#: a one-function module with numba's on-disk cache: what any numba library pays in a new process
_FLOOR_MODULE = """
import numba


@numba.njit(cache=True)
def total(x):
    s = 0.0
    for v in x:
        s += v
    return s
"""


def numba_floor_snippet(folder: str) -> str:
    """Python source that times, in a new process, importing numba and the first call of a trivial
    cached ``@njit`` function (its module written to ``folder``; run it twice, the first fills the
    cache).  The floor under any numba library's first call: numba's import, its CPU target's
    set-up (which imports scipy.linalg through numba.np.arraymath) and a cache load.
    Prints ``@@RESULT@@{json}`` for :func:`run_python`."""
    path = os.path.join(folder, "numba_floor_mod.py")
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write(_FLOOR_MODULE)
    return f"""
import json, sys, time
sys.path.insert(0, {folder!r})
import numpy as np
x = np.ones(1000)
t0 = time.perf_counter()
import numba_floor_mod
t1 = time.perf_counter()
numba_floor_mod.total(x)
t2 = time.perf_counter()
print("@@RESULT@@" + json.dumps(dict(import_s=t1 - t0, first_s=t2 - t1, total_s=t2 - t0)))
"""


def jit_snippet(rows: int, preimport: bool = False) -> str:
    """Python source that times, in a new process, ``import fastevals`` and the first two AB1 calls.

    ``preimport``: import fastevals' dependencies (numba, scipy.stats, pyarrow.dataset) and its
    A/B module first, timed on their own, so that the first call measures only loading (or
    compiling) the kernels plus the work.  Prints ``@@RESULT@@{json}`` for :func:`run_python`.
    """
    return f"""
import json, sys, time
sys.path[:0] = {[REPO_ROOT, BENCH_DIR]!r}
import _peers
table = _peers.ab_table({rows})
t0 = time.perf_counter()
import fastevals
t1 = time.perf_counter()
if {preimport!r}:
    import importlib, numba, scipy.stats, pyarrow.dataset
    importlib.import_module(fastevals._LAZY["abtest"])  # the module that defines abtest
t2 = time.perf_counter()
ab = fastevals.abtest  # lazy attribute: without preimport, this imports the A/B module
rep = ab(table, group="variant", outcome="converted", value="revenue")
t3 = time.perf_counter()
ab(table, group="variant", outcome="converted", value="revenue")
t4 = time.perf_counter()
import numba
print("@@RESULT@@" + json.dumps(dict(import_s=t1 - t0, deps_s=t2 - t1, first_s=t3 - t2, second_s=t4 - t3,
                                     answer=_peers.ours_ab(rep), threads=numba.get_num_threads(),
                                     layer=numba.threading_layer())))
"""
