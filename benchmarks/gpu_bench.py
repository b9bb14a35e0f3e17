"""CPU == GPU on real sizes, and the throughput of the CUDA twins, on one machine.

Run on a machine with an NVIDIA GPU and numba-cuda installed::

    python benchmarks/gpu_bench.py            # real sizes, ~8 minutes at most on an H200 (compile included)
    python benchmarks/gpu_bench.py --quick    # small sizes, a minute
    python benchmarks/gpu_bench.py --quick --sim   # the CUDA simulator on any machine: shows the script works
    python benchmarks/gpu_bench.py --ptx      # compile every kernel to PTX for sm_90, no GPU needed
                                              # (needs NVVM: pip install "numba-cuda[cu12]" or "[cu13]")

For each twin it times the GPU call end to end (host arrays in, host arrays
out: transfers included, compile excluded by a warm-up call), checks it
against the CPU engine (exactly for counts and weights, 1e-9 relative for
sums and replicate statistics) and prints the CPU engine's throughput on the
same machine and the speed-up.  Where the CPU would take minutes (the
bootstrap and AUC replicates) the CPU runs the first ``--cpu-replicates``
replicates (the same weights: they are counter based) and its throughput is
taken from those.  Under ``--sim`` the figures are the simulator's and say
nothing about speed.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

SIZES = {
    #        bootstrap rows, reps | G tables | calibration rows, chunk | AUC rows, reps | bandit runs, steps
    "full": dict(boot=(100_000_000, 1000), tables=2_000_000, calib=(1_000_000_000, 100_000_000),
                 auc=(10_000_000, 1000), bandit=(10_000, 10_000)),
    "quick": dict(boot=(2_000_000, 100), tables=20_000, calib=(20_000_000, 5_000_000),
                  auc=(200_000, 100), bandit=(512, 2_000)),
    "sim": dict(boot=(150, 5), tables=40, calib=(300, 100), auc=(80, 3), bandit=(6, 40)),
}


def _say(*args):
    print(*args, flush=True)


def _timed(f, *args):
    t0 = time.perf_counter()
    out = f(*args)
    return out, time.perf_counter() - t0


def _rate(x):
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def _report(name, unit, work_gpu, t_gpu, work_cpu, t_cpu):
    g = work_gpu / t_gpu
    c = work_cpu / t_cpu
    _say(f"  {name}: GPU {_rate(g)} {unit}/s ({t_gpu:.3f} s), CPU {_rate(c)} {unit}/s ({t_cpu:.3f} s), "
         f"speed-up x{g / c:.1f}")


def bench_bootstrap(np, size, cpu_reps):
    from fastevals._config import get_num_threads
    from fastevals._cuda import bootstrap as gb
    from fastevals._kernels import bootstrap as kb

    n, B = size
    Bc = min(B, cpu_reps)
    _say(f"bootstrap of a mean: {n:,} rows x {B:,} replicates (CPU: {Bc} replicates, {get_num_threads()} threads)")
    rng = np.random.default_rng(1)
    V = rng.random((1, n))
    e_k, e_c = np.empty(0, np.uint64), np.empty(0, np.int64)
    seed = np.uint64(2024)
    w_g, v_g = np.zeros((B, 1), np.int64), np.zeros((B, 1, 1, kb.LANES))
    _, t_gpu = _timed(gb.accumulate_rows, seed, 0, n, e_k, e_c, V, w_g, v_g)
    w_c, v_c = np.zeros((Bc, 1), np.int64), np.zeros((Bc, 1, 1, kb.LANES))
    _, t_cpu = _timed(kb.accumulate_rows_parallel, seed, 0, n, e_k, e_c, V, w_c, v_c)
    assert np.array_equal(w_g[:Bc], w_c), "bootstrap weight sums differ between CPU and GPU"
    np.testing.assert_allclose(v_g[:Bc].sum(axis=3), v_c.sum(axis=3), rtol=1e-9)
    _say(f"  CPU == GPU on the first {Bc} replicates: weight sums exactly, weighted sums to 1e-9")
    _report("weights", "weights", n * B, t_gpu, n * Bc, t_cpu)
    mean_g = v_g.sum(axis=3)[:, 0, 0] / w_g[:, 0]
    _say(f"  replicate means: sd {mean_g.std(ddof=1):.3g} (expected ~{V.std() / math.sqrt(n):.3g})")


def bench_gtest(np, n_tables):
    from fastevals._cuda import patefield as gp
    from fastevals._kernels import patefield as kp

    rows = np.array([2000] * 5, dtype=np.int64)
    cols = np.array([2500] * 4, dtype=np.int64)
    n = int(rows.sum())
    _say(f"Monte Carlo G-test: {n_tables:,} tables 5x4, n = {n:,}")
    expected = np.outer(rows, cols) / n
    obs = kp.random_tables(rows, cols, 1, 99)[0]
    g_obs = 2.0 * float((obs * np.log(obs / expected)).sum())
    threshold = g_obs - 1e-7 * max(1.0, abs(g_obs))
    x = np.arange(1, n + 1, dtype=np.float64)
    xlogx = np.append(0.0, x * np.log(x))
    le = np.log(expected)
    hits_g, t_gpu = _timed(gp.monte_carlo_g_hits, rows, cols, le, xlogx, threshold, n_tables, 7)
    hits_c, t_cpu = _timed(kp.monte_carlo_g_hits, rows, cols, le, xlogx, threshold, n_tables, 7, 1024)
    assert hits_g == hits_c, f"Monte Carlo hits differ: GPU {hits_g}, CPU {hits_c}"
    _say(f"  CPU == GPU: {hits_c:,} tables at least as extreme (p = {(hits_c + 1) / (n_tables + 1):.4g})")
    _report("tables", "tables", n_tables, t_gpu, n_tables, t_cpu)


def bench_calibration(np, size):
    from fastevals._config import CHUNK_ROWS
    from fastevals._cuda import calibration as gc
    from fastevals._kernels import calibration as kc

    total, chunk = size
    n_bins = 10
    _say(f"calibration binning: {total:,} predictions in chunks of {chunk:,}, {n_bins} uniform bins")
    rng = np.random.default_rng(3)
    p = rng.random(chunk)
    y = (rng.random(chunk) < p).astype(np.int8)
    edges = np.linspace(0, 1, n_bins + 1)
    inner = np.ascontiguousarray(edges[1:-1])
    shift = kc.uniform_shift(n_bins) if hasattr(kc, "uniform_shift") else (edges[:-1] + edges[1:]) / 2
    args = (p, y, -1, np.zeros(0), np.empty(0, np.int64), n_bins, inner, kc.bin_lookup(inner), True,
            np.ascontiguousarray(shift), n_bins, CHUNK_ROWS)
    n_chunks = max(1, total // chunk)
    t_gpu = 0.0
    for _ in range(n_chunks):  # the same chunk each time: binning does not depend on row positions
        out_g, t = _timed(gc.fold_bins, *args)
        t_gpu += t
    out_c, t_cpu = _timed(kc.fold_bins_parallel, *args)
    assert np.array_equal(out_g[0], out_c[0]), "calibration counts differ between CPU and GPU"
    np.testing.assert_allclose(out_g[1], out_c[1], rtol=1e-9, atol=1e-12)
    _say(f"  CPU == GPU on a chunk: counts exactly, moments to 1e-9 (GPU: {n_chunks} chunks)")
    _report("rows", "rows", n_chunks * chunk, t_gpu, chunk, t_cpu)


def bench_auc(np, size, cpu_reps):
    from fastevals._cuda import bootstrap as gb
    from fastevals._kernels import bootstrap as kb

    n, B = size
    Bc = min(B, cpu_reps)
    _say(f"AUC bootstrap: {n:,} scored rows x {B:,} replicates (CPU: {Bc} replicates)")
    rng = np.random.default_rng(4)
    score = np.round(rng.random(n), 4)  # scores with ties, as real models give
    y = (rng.random(n) < score).astype(np.int8)
    order = np.argsort(score, kind="stable")
    xs, ys = np.ascontiguousarray(score[order]), np.ascontiguousarray(y[order])
    start = np.ones(n, dtype=bool)
    start[1:] = xs[1:] != xs[:-1]
    starts = np.flatnonzero(start)
    tie_end = np.repeat(np.append(starts[1:], n), np.diff(np.append(starts, n))).astype(np.int64)
    bounds = np.array([0, n], dtype=np.int64)
    rows = order.astype(np.int64)
    e_k = np.empty(0, np.uint64)
    out_g, t_gpu = _timed(gb.sorted_poisson, 0, np.uint64(5), B, xs, ys, tie_end, e_k, rows, bounds, 0.5)
    out_c, t_cpu = _timed(kb.sorted_poisson, 0, np.uint64(5), Bc, xs, ys, tie_end, e_k, rows, bounds, 0.5)
    np.testing.assert_allclose(out_g[:Bc], out_c, rtol=1e-9)
    _say(f"  CPU == GPU on the first {Bc} replicates to 1e-9; GPU {B:,} replicates in {t_gpu:.3f} s "
         f"(AUC sd {np.nanstd(out_g):.3g})")
    _report("replicates", "row-replicates", n * B, t_gpu, n * Bc, t_cpu)


def bench_bandit(np, size):
    from fastevals._cuda import bandits as gbd
    from fastevals._kernels import bandits as kb

    runs, steps = size
    means = np.linspace(0.1, 0.6, 10)
    _say(f"UCB1 simulation: {runs:,} runs x {steps:,} steps, {means.size} Bernoulli arms")
    cp = np.unique(np.linspace(1, steps, 20).astype(np.int64))
    z = np.zeros(means.size)
    args = (kb.KIND_UCB1, 0.0, 0.0, 1, 2, means, 0, 0.0, steps, runs, np.zeros(means.size, np.int64), z, z, cp)
    out_g, t_gpu = _timed(gbd.simulate_runs, *args)
    out_c, t_cpu = _timed(kb.simulate_runs, *args)
    assert np.array_equal(out_g[1], out_c[1]), "pulls differ between CPU and GPU"
    np.testing.assert_array_equal(out_g[0], out_c[0])
    _say(f"  CPU == GPU: pulls and regret exactly (final mean regret {out_c[0][:, -1].mean():.4g})")
    _report("steps", "run-steps", runs * steps, t_gpu, runs * steps, t_cpu)


def compile_ptx(np, cc):
    """Compile every CUDA kernel to PTX for compute capability ``cc`` without a GPU: the type
    and code-generation check the simulator cannot give.  numba-cuda asks the current device
    for its compute capability when it compiles device functions; with no driver that is
    answered here (a numba-cuda internal, so this is a developer check only)."""
    import numba
    import numba.cuda.dispatcher as disp

    from fastevals._cuda import _reduce, bandits, bootstrap, calibration, patefield
    from fastevals._cuda._jit import cuda

    class _Device:
        compute_capability = cc

    disp.get_current_device = lambda: _Device()
    T = numba.typeof
    i64, u64, f64 = np.int64(1), np.uint64(1), np.float64(1.0)

    def a(dt, nd=1):
        return np.zeros((2,) * nd, dt)

    kernels = {
        "bootstrap._mean_kernel": (bootstrap._mean_kernel, (u64, i64, i64, i64, i64, a(np.float64), a(np.int64, 2),
                                                           a(np.float64, 2))),
        "bootstrap._accumulate_kernel": (bootstrap._accumulate_kernel, (
            u64, i64, i64, i64, i64, a(np.uint64), a(np.int64), i64, i64, a(np.float64, 2), i64, i64,
            a(np.int64, 2), a(np.float64, 2))),
        "bootstrap._add_tile": (bootstrap._add_tile, (a(np.int64, 2), a(np.float64, 2), i64, i64, i64, i64, i64,
                                                      True, a(np.int64, 2), a(np.float64, 3))),
        "bootstrap._weights_kernel": (bootstrap._weights_kernel, (u64, i64, i64, a(np.uint64), a(np.uint8, 2))),
        "bootstrap._auc_segments_kernel": (bootstrap._auc_segments_kernel, (
            u64, i64, a(np.int8), a(np.int64), a(np.int64), a(np.uint64), a(np.int64), a(np.float64, 4))),
        "bootstrap._auc_combine_kernel": (bootstrap._auc_combine_kernel, (a(np.float64, 4), a(np.float64, 2))),
        "bootstrap._sorted_kernel": (bootstrap._sorted_kernel, (
            i64, u64, a(np.float64), a(np.int8), a(np.int64), a(np.uint64), a(np.int64), a(np.int64), f64,
            a(np.float64, 2))),
        "patefield._hits_kernel": (patefield._hits_kernel, (
            a(np.int64), a(np.int64), a(np.float64, 2), a(np.float64), f64, i64, u64, a(np.int64, 2))),
        "calibration._fold_kernel": (calibration._fold_kernel, (
            a(np.float64), a(np.int8), i64, True, a(np.float64), a(np.int64), i64, a(np.float64), True,
            a(np.float64), i64, i64, True, a(np.float64, 2), a(np.int64, 2))),
        "bandits._ucb1_kernel": (bandits._ucb1_kernel, (
            u64, a(np.float64), i64, i64, a(np.int64), a(np.float64), a(np.int64), a(np.float64, 2),
            a(np.int64, 2))),
        "_reduce.sum_partials": (_reduce.sum_partials, (a(np.float64, 2), a(np.float64))),
    }
    failed = 0
    for name, (kern, args) in kernels.items():
        t0 = time.perf_counter()
        try:
            ptx, _ = cuda.compile_ptx(kern.py_func, tuple(T(x) for x in args), cc=cc)
        except Exception as exc:  # report every kernel, then fail
            failed += 1
            _say(f"  {name}: FAILED {type(exc).__name__}: {exc}")
            continue
        spills = "uses local memory" if ".local" in ptx else "registers only"
        _say(f"  {name}: ok ({time.perf_counter() - t0:.1f} s, {ptx.count(chr(10))} PTX lines, {spills})")
    return failed


def warm_up(np):
    """Compile every GPU twin and CPU kernel once on tiny inputs (excluded from the timings)."""
    sizes = SIZES["sim"]
    t0 = time.perf_counter()
    bench_bootstrap(np, sizes["boot"], 4)
    bench_gtest(np, 8)
    bench_calibration(np, (64, 64))
    bench_auc(np, sizes["auc"], 3)
    bench_bandit(np, (4, 20))
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes")
    ap.add_argument("--sim", action="store_true", help="run under the CUDA simulator (needs --quick; tiny sizes)")
    ap.add_argument("--ptx", action="store_true", help="only compile every kernel to PTX (no GPU needed)")
    ap.add_argument("--cc", default="9.0", help="compute capability for --ptx (default 9.0, H100/H200)")
    ap.add_argument("--cpu-replicates", type=int, default=32,
                    help="replicates the CPU runs for the bootstrap and AUC checks (default 32)")
    args = ap.parse_args(argv)
    if args.sim:
        if not args.quick:
            ap.error("--sim runs tiny sizes only: use --quick --sim")
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"  # before numba.cuda is imported
    import numpy as np

    if args.ptx:
        cc = tuple(int(v) for v in args.cc.split("."))
        _say(f"compiling every CUDA kernel to PTX for compute capability {cc}")
        return 1 if compile_ptx(np, cc) else 0

    from fastevals._cuda.backend import cuda_status

    usable, real, why = cuda_status()
    if not usable or not (real or args.sim):
        _say(f"gpu_bench: no CUDA GPU to benchmark here: {why or 'the simulator is on'}.\n"
             "Run it on a machine with an NVIDIA GPU and numba-cuda, or with --quick --sim to check "
             "the script under the CUDA simulator.")
        return 2
    from fastevals._cuda import _jit, config

    if args.sim:
        config.THREADS_PER_BLOCK = 8
        config.MAX_BLOCKS = 4
        sizes = SIZES["sim"]
        _say("CUDA SIMULATOR: correctness only, the timings below say nothing about GPU speed")
    else:
        sizes = SIZES["quick" if args.quick else "full"]
        dev = _jit.cuda.get_current_device()
        name = dev.name.decode() if isinstance(dev.name, bytes) else dev.name
        _say(f"GPU: {name} (compute capability {dev.compute_capability}); CPU: {os.cpu_count()} cores")
    _say(f"numba-cuda threads per block {config.THREADS_PER_BLOCK}, at most {config.MAX_BLOCKS} blocks")
    _say("-- warm-up (compiles the kernels; checks every twin on tiny inputs) --")
    _say(f"-- warm-up done in {warm_up(np):.1f} s --")
    t0 = time.perf_counter()
    bench_bootstrap(np, sizes["boot"], args.cpu_replicates)
    bench_gtest(np, sizes["tables"])
    bench_calibration(np, sizes["calib"])
    bench_auc(np, sizes["auc"], args.cpu_replicates)
    bench_bandit(np, sizes["bandit"])
    _say(f"done in {time.perf_counter() - t0:.1f} s (after the warm-up)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
