"""CPU == CUDA: every CUDA twin against its CPU kernel, on tiny inputs.

In CI they run under the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``), which
runs kernels as Python on the CPU: it shows the twins compute the CPU's
answers, not their speed.  Threads per block and grid size are shrunk so that
tiny inputs span several blocks and every grid-stride loop turns more than once.

numba.cuda chooses between the device and the simulator once, when it is first
imported (from numba's config, which ``fastevals._cuda._jit`` refreshes from the
environment just before), and nothing else in fastevals imports it: the ``cuda``
fixture sets ``NUMBA_ENABLE_CUDASIM=1`` unless the environment already says
(``NUMBA_ENABLE_CUDASIM=0`` on a GPU machine runs these tests on the device),
so this works too when numba was imported long before, in a one-process run of
the whole suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("numba_cuda", reason="numba-cuda is not installed (the `cuda` extra)")

pytestmark = [
    pytest.mark.cuda,
    # tiny grids on a real GPU draw numba's under-utilization warning
    pytest.mark.filterwarnings("ignore:.*under-utilization"),
]

EMPTY_U64 = np.empty(0, np.uint64)
EMPTY_I64 = np.empty(0, np.int64)


@pytest.fixture(scope="module")
def cuda():
    """The CUDA twins' package, imported in simulator mode unless the environment says otherwise.

    The flag stays set for the rest of the process: numba-cuda keeps reading it from
    numba's config (which numba refreshes from the environment) after the import."""
    if "numba.cuda" not in sys.modules:
        os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
    import fastevals._cuda as pkg
    from fastevals._cuda import _jit

    if not (_jit.SIMULATOR or _jit.cuda.is_available()):
        reason = "numba.cuda was imported without the simulator and no GPU is available"
        if os.environ.get("CI"):
            # in CI these twins must run (under the simulator): something imported numba.cuda
            # before this fixture could switch the simulator on (a doctest collection of _cuda/
            # did once), and a skip would hide it
            pytest.fail(reason + " (in CI the CUDA twins must run under the simulator)")
        pytest.skip(reason)
    return pkg


@pytest.fixture(autouse=True)
def tiny_launches(monkeypatch):
    from fastevals._cuda import config

    monkeypatch.setattr(config, "THREADS_PER_BLOCK", 4)
    monkeypatch.setattr(config, "MAX_BLOCKS", 3)
    monkeypatch.setattr(config, "REPLICATES_PER_PASS", 2)
    monkeypatch.setattr(config, "SORTED_SEGMENT_ROWS", 3)  # AUC cells in several segments


# ------------------------------------------------------------------------------------------------
# backend choice


def test_import_fastevals_does_not_import_numba_cuda():
    code = textwrap.dedent("""
        import sys
        import fastevals
        from fastevals._cuda import config
        from fastevals._cuda.backend import resolve_backend
        assert resolve_backend("auto", 10) == "cpu"
        assert resolve_backend("cpu", 10**15) == "cpu"
        assert "numba.cuda" not in sys.modules
    """)
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=os.path.dirname(os.path.dirname(__file__)))


def test_resolve_backend(cuda, monkeypatch):
    from fastevals._cuda import _jit, backend

    with pytest.raises(ValueError, match="`backend`"):
        backend.resolve_backend("gpu", 1)
    assert backend.resolve_backend("CPU", 10**15) == "cpu"
    assert backend.resolve_backend("auto", 1) == "cpu"
    if _jit.SIMULATOR:
        # the simulator is usable when asked for, but never picked by "auto"
        assert backend.resolve_backend("cuda", 1) == "cuda"
        assert backend.resolve_backend("auto", backend.GPU_MIN_WORK * 10) == "cpu"
    # no GPU: a clear error, not a crash
    monkeypatch.setattr(_jit, "SIMULATOR", False)
    monkeypatch.setattr(_jit.cuda, "is_available", lambda: False)
    monkeypatch.setattr(_jit.cuda, "cuda_error", lambda: "no driver")
    with pytest.raises(RuntimeError, match="no usable CUDA GPU.*no driver"):
        backend.resolve_backend("cuda", 1)
    assert backend.resolve_backend("auto", backend.GPU_MIN_WORK * 10) == "cpu"
    # numba-cuda missing
    monkeypatch.setattr(backend, "_numba_cuda_installed", lambda: False)
    with pytest.raises(RuntimeError, match="numba-cuda is not installed"):
        backend.resolve_backend("cuda", 1)


# ------------------------------------------------------------------------------------------------
# Poisson bootstrap weights


def _scheme_v3_bits(seed, b, counters):
    """The 32 uniform bits of the weight scheme (v3), written from its description with Python ints."""
    m64 = (1 << 64) - 1

    def mix(z):
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m64
        return z ^ (z >> 31)

    def rnd(x):
        x = x ^ (x >> 16)
        x = (x * 0x21F0AAAD) & 0xFFFFFFFF
        x = x ^ (x >> 15)
        x = (x * 0x735A2D97) & 0xFFFFFFFF
        return x ^ (x >> 15)

    def U(key, c):
        return rnd(rnd((c & 0xFFFFFFFF) ^ (key & 0xFFFFFFFF)) ^ rnd((c >> 32) ^ (key >> 32)))

    rk = mix(mix(seed))
    qk = mix(rk)
    kb = U(qk, b)
    c = np.asarray(counters, dtype=np.uint64).astype(object)
    return np.array([rnd(U(rk, int(v)) ^ kb) for v in c], dtype=np.uint64)


def _scheme_v3_weights(seed, b0, n_rep, counters):
    from scipy import stats

    t = np.round(stats.poisson.cdf(np.arange(12), 1.0) * 2.0**32).astype(np.uint64)
    return np.stack([(_scheme_v3_bits(seed, b0 + r, counters)[:, None] >= t[None, :]).sum(axis=1)
                     for r in range(n_rep)]).astype(np.uint8)


def test_weights_follow_the_scheme(cuda):
    from fastevals._cuda import bootstrap as gb

    # check values published with the scheme
    assert [hex(int(u)) for u in _scheme_v3_bits(1, 0, range(4))] == ["0xe5c34133", "0xf928570d", "0xab672d79",
                                                                       "0xb6a1d8e6"]
    w = gb.weight_matrix(np.uint64(1), 0, 3, 0, 24, EMPTY_U64)
    assert w[0].tolist() == [2, 3, 1, 1, 3, 2, 0, 1, 2, 0, 2, 1, 0, 3, 2, 2, 3, 0, 1, 2, 2, 1, 0, 1]
    assert np.array_equal(w, _scheme_v3_weights(1, 0, 3, np.arange(24)))
    # rows past 2**32 (the high half of the counter is used) and cluster keys
    big = np.arange(2**32 - 3, 2**32 + 4, dtype=np.uint64)
    assert np.array_equal(gb.weight_matrix(np.uint64(5), 2, 2, 2**32 - 3, 7, EMPTY_U64),
                          _scheme_v3_weights(5, 2, 2, big))
    keys = np.array([0, 1, 0x0123456789ABCDEF, 2**64 - 1], dtype=np.uint64)
    assert np.array_equal(gb.weight_matrix(np.uint64(9), 0, 2, 0, 0, keys), _scheme_v3_weights(9, 0, 2, keys))


def test_weights_equal_the_cpu(cuda):
    from fastevals import poisson_weights
    from fastevals._cuda import bootstrap as gb

    assert np.array_equal(gb.weight_matrix(np.uint64(3), 1, 3, 5, 29, EMPTY_U64),
                          poisson_weights(29, 3, seed=3, start=5, first_replicate=1))
    user = np.array([7, 3, 7, 11, 3, 42], dtype=np.int64)
    from fastevals._kernels import poisson as kp

    keys = kp.hash_keys_int(user)
    assert np.array_equal(gb.weight_matrix(np.uint64(3), 0, 2, 0, 0, keys), poisson_weights(n_resamples=2, seed=3,
                                                                                           keys=user))


@pytest.mark.parametrize("use_keys", [False, True], ids=["rows", "clusters"])
@pytest.mark.parametrize("use_cells", [False, True], ids=["one-cell", "cells"])
def test_accumulate_rows_equals_cpu(cuda, use_keys, use_cells, monkeypatch):
    from fastevals._cuda import bootstrap as gb
    from fastevals._kernels import bootstrap as kb
    from fastevals._kernels import poisson as kp

    if use_cells:
        # tiles of cells and features: several passes per replicate block
        monkeypatch.setattr(gb, "LOCAL_SLOTS", 2)
    rng = np.random.default_rng(7)
    n, F = 23, 2
    B, C = (2, 3) if use_cells else (3, 1)
    V = rng.normal(size=(F, n))
    cells = rng.integers(0, C, n).astype(np.int64) if use_cells else EMPTY_I64
    keys = kp.hash_keys_int(rng.integers(0, 6, n).astype(np.int64)) if use_keys else EMPTY_U64
    seed = np.uint64(11)
    w_cpu, v_cpu = np.zeros((B, C), np.int64), np.zeros((B, C, F, kb.LANES))
    w_gpu, v_gpu = w_cpu.copy(), v_cpu.copy()
    # streaming: batches starting at an odd global row (one batch with cells, to keep the simulator quick)
    for lo, hi in ((0, n),) if use_cells else ((0, 9), (9, n)):
        args = (seed, 101 + lo, hi - lo, keys[lo:hi] if use_keys else keys, cells[lo:hi] if use_cells else cells,
                np.ascontiguousarray(V[:, lo:hi]))
        kb.accumulate_rows_serial(*args, w_cpu, v_cpu)
        gb.accumulate_rows(*args, w_gpu, v_gpu)
    assert np.array_equal(w_gpu, w_cpu)
    scale = np.abs(V).sum() * 12
    np.testing.assert_allclose(v_gpu.sum(axis=3), v_cpu.sum(axis=3), rtol=1e-9, atol=1e-12 * scale)


def test_accumulate_rows_mean_path_equals_cpu(cuda, monkeypatch):
    # one cell, one feature, row keys: the register kernel, replicates in passes of MEAN_REPS
    from fastevals._cuda import bootstrap as gb
    from fastevals._kernels import bootstrap as kb

    monkeypatch.setattr(gb, "MEAN_REPS", 3)
    rng = np.random.default_rng(8)
    n, B = 21, 5
    V = rng.normal(size=(1, n))
    w_cpu, v_cpu = np.zeros((B, 1), np.int64), np.zeros((B, 1, 1, kb.LANES))
    w_gpu, v_gpu = w_cpu.copy(), v_cpu.copy()
    for lo, hi in ((0, 8), (8, n)):
        args = (np.uint64(4), 2**32 - 10 + lo, hi - lo, EMPTY_U64, EMPTY_I64, np.ascontiguousarray(V[:, lo:hi]))
        kb.accumulate_rows_serial(*args, w_cpu, v_cpu)
        gb.accumulate_rows(*args, w_gpu, v_gpu)
    assert np.array_equal(w_gpu, w_cpu)
    np.testing.assert_allclose(v_gpu.sum(axis=3), v_cpu.sum(axis=3), rtol=1e-9, atol=1e-12 * np.abs(V).sum() * 12)


def _sorted_inputs(kind, n, C, rng, ties=True):
    score = np.round(rng.random(n), 1) if ties else rng.random(n)
    y = (rng.random(n) < score).astype(np.int8)
    cc = rng.integers(0, C, n)
    order = np.lexsort((-score if kind == 1 else score, cc))
    xs, ys, cs = score[order], y[order], cc[order]
    bounds = np.searchsorted(cs, np.arange(C + 1)).astype(np.int64)
    start = np.ones(n, dtype=bool)
    start[1:] = (xs[1:] != xs[:-1]) | (cs[1:] != cs[:-1])
    starts = np.flatnonzero(start)
    tie_end = np.repeat(np.append(starts[1:], n), np.diff(np.append(starts, n))).astype(np.int64)
    if not ties:
        tie_end = EMPTY_I64
    return np.ascontiguousarray(xs), np.ascontiguousarray(ys), tie_end, order.astype(np.int64), bounds


@pytest.mark.parametrize("kind", [0, 1, 2], ids=["auc", "ap", "quantile"])
@pytest.mark.parametrize("use_keys", [False, True], ids=["rows", "clusters"])
def test_sorted_poisson_equals_cpu(cuda, kind, use_keys):
    from fastevals._cuda import bootstrap as gb
    from fastevals._kernels import bootstrap as kb
    from fastevals._kernels import poisson as kp

    rng = np.random.default_rng(kind)
    n, B, C = 26, 3, 2
    xs, ys, tie_end, order, bounds = _sorted_inputs(kind, n, C, rng)
    keys = kp.hash_keys_int(rng.integers(0, 7, n).astype(np.int64))[order] if use_keys else EMPTY_U64
    args = (kind, np.uint64(5), B, xs, ys, tie_end, np.ascontiguousarray(keys), order, bounds, 0.3)
    np.testing.assert_allclose(gb.sorted_poisson(*args), kb.sorted_poisson(*args), rtol=1e-9, atol=0)


def test_sorted_poisson_auc_without_ties_equals_cpu(cuda):
    from fastevals._cuda import bootstrap as gb
    from fastevals._kernels import bootstrap as kb

    xs, ys, tie_end, order, bounds = _sorted_inputs(0, 20, 2, np.random.default_rng(3), ties=False)
    args = (0, np.uint64(2), 3, xs, ys, tie_end, EMPTY_U64, order, bounds, 0.5)
    np.testing.assert_allclose(gb.sorted_poisson(*args), kb.sorted_poisson(*args), rtol=1e-9, atol=0)


# ------------------------------------------------------------------------------------------------
# Monte Carlo G-test


@pytest.mark.parametrize("rows, cols", [([5, 7, 3], [6, 4, 5]), ([9, 4], [3, 0, 6, 4])], ids=["3x3", "2x4-empty-col"])
def test_monte_carlo_g_hits_equals_cpu(cuda, rows, cols):
    from fastevals._cuda import patefield as gp
    from fastevals._kernels import patefield as kp

    rows, cols = np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64)
    n = int(rows.sum())
    expected = np.outer(rows, cols) / n
    with np.errstate(divide="ignore"):
        log_expected = np.log(expected)
    x = np.arange(1, n + 1, dtype=np.float64)
    xlogx = np.append(0.0, x * np.log(x))
    tables = kp.random_tables(rows, cols, 30, 17)
    g = [2 * sum(v * np.log(v / e) for v, e in zip(t.ravel(), expected.ravel()) if v > 0) for t in tables]
    for xl in (xlogx, np.zeros(0)):
        for thr in (0.0, float(np.median(g)), float(np.max(g)) + 1.0):
            cpu = kp.monte_carlo_g_hits(rows, cols, log_expected, xl, thr, 30, 17, 8)
            assert gp.monte_carlo_g_hits(rows, cols, log_expected, xl, thr, 30, 17) == cpu


# ------------------------------------------------------------------------------------------------
# calibration binning


def _shift(kc, edges, uniform):
    """Per-bin shifts as the calibration state passes them."""
    if uniform and hasattr(kc, "uniform_shift"):
        return kc.uniform_shift(edges.shape[0] - 1)
    return np.ascontiguousarray((edges[:-1] + edges[1:]) / 2)


@pytest.mark.parametrize("edges", ["uniform", "quantile"])
@pytest.mark.parametrize("case", ["plain", "weights+segments", "segments", "one-vs-rest"])
def test_fold_bins_equals_cpu(cuda, edges, case, monkeypatch):
    from fastevals._cuda import calibration as gc
    from fastevals._kernels import calibration as kc

    monkeypatch.setattr(gc, "SUB_TILE", 6)  # several passes over the sub-cells
    rng = np.random.default_rng(len(case))
    n, n_bins = 45, 4
    e = np.linspace(0, 1, n_bins + 1) if edges == "uniform" else np.array([0.0, 0.2, 0.25, 0.7, 1.0])
    p = rng.random(n)
    p[:6] = [0.0, 0.25, 0.5, 1.0, 0.2, 0.7]  # values on edges
    y = (rng.random(n) < p).astype(np.int64)
    target = -1
    w, seg, n_cells = np.zeros(0), EMPTY_I64, n_bins
    if case == "weights+segments":
        w = rng.random(n)
        w[3] = 0.0
    if case in ("weights+segments", "segments"):
        seg = rng.integers(0, 3, n).astype(np.int64)
        n_cells = 3 * n_bins
    if case == "one-vs-rest":
        y = rng.integers(0, 3, n).astype(np.int64)
        target = 2
    if case == "plain":
        p[7], y[9] = 1.5, 2  # counted as bad, like the CPU
    inner = np.ascontiguousarray(e[1:-1])
    args = (p, y, target, w, seg, n_bins, inner, kc.bin_lookup(inner), edges == "uniform",
            _shift(kc, e, edges == "uniform"), n_cells, 16)
    cnt_c, st_c, bp_c, by_c = kc.fold_bins_serial(*args)
    cnt_g, st_g, bp_g, by_g = gc.fold_bins(*args)
    assert np.array_equal(cnt_g, cnt_c)
    assert (bp_g, by_g) == (bp_c, by_c)
    np.testing.assert_allclose(st_g, st_c, rtol=1e-9, atol=1e-12)


def test_fold_bins_counts_bad_values_like_cpu(cuda):
    from fastevals._cuda import calibration as gc
    from fastevals._kernels import calibration as kc

    p = np.array([0.1, np.nan, -0.2, 1.0, 1.5, -3.0, 0.5, 0.9])  # not inf: np.intp(inf) is undefined on the CPU
    y = np.array([0, 1, 1, 3, 0, 1, -1, 1])
    e = np.linspace(0, 1, 4)
    inner = np.ascontiguousarray(e[1:-1])
    args = (p, y, -1, np.zeros(0), EMPTY_I64, 3, inner, kc.bin_lookup(inner), True, _shift(kc, e, True), 3, 4)
    cnt_c, _, bp_c, by_c = kc.fold_bins_serial(*args)
    cnt_g, _, bp_g, by_g = gc.fold_bins(*args)
    assert (bp_g, by_g) == (bp_c, by_c) == (4, 2)
    assert np.array_equal(cnt_g, cnt_c)


# ------------------------------------------------------------------------------------------------
# bandit simulation


def test_simulate_runs_ucb1_equals_cpu(cuda):
    from fastevals._cuda import bandits as gbd
    from fastevals._kernels import bandits as kb

    means = np.array([0.3, 0.5, 0.45])
    cp = np.array([1, 2, 3, 7, 20, 30], dtype=np.int64)
    for counts0, sums0 in ((np.zeros(3, np.int64), np.zeros(3)), (np.array([2, 0, 1]), np.array([1.0, 0.0, 1.0]))):
        args = (kb.KIND_UCB1, 0.0, 0.0, 11, 12345, means, 0, 0.0, 30, 9, counts0, sums0, sums0.copy(), cp)
        regret_c, pulls_c = kb.simulate_runs(*args)
        regret_g, pulls_g = gbd.simulate_runs(*args)
        assert np.array_equal(pulls_g, pulls_c)
        assert np.array_equal(regret_g, regret_c)
    with pytest.raises(ValueError, match="UCB1 with Bernoulli"):
        gbd.simulate_runs(kb.KIND_THOMPSON, 1.0, 1.0, 1, 2, means, 0, 0.0, 5, 2, np.zeros(3, np.int64),
                          np.zeros(3), np.zeros(3), cp)


# ------------------------------------------------------------------------------------------------
# the public functions with backend="cuda": the CPU's answers, and the result says where it ran


def test_public_bootstrap_backend_cuda_equals_cpu(cuda):
    import fastevals
    from fastevals import metrics as M

    rng = np.random.default_rng(3)
    n = 60
    y = rng.integers(0, 2, n)
    d = {"x": rng.exponential(size=n), "den": rng.uniform(0.5, 2, n), "y": y,
         "score": np.round(rng.normal(size=n) + y, 1), "seg": rng.integers(0, 2, n)}
    ms = [M.mean("x"), M.ratio("x", "den"), M.roc_auc("y", "score"), M.median("x")]
    kw = dict(n_resamples=6, seed=5, by="seg", progress=False)
    cpu = fastevals.bootstrap(d, ms, backend="cpu", **kw)
    gpu = fastevals.bootstrap(d, ms, backend="cuda", **kw)
    for a, b in zip(cpu, gpu):
        assert (a.backend, b.backend) == ("cpu", "cuda")
        np.testing.assert_allclose(b.bootstrap_distribution, a.bootstrap_distribution, rtol=1e-9)
    assert gpu.table.num_rows == cpu.table.num_rows
    with pytest.raises(ValueError, match="multinomial"):
        fastevals.bootstrap(d, M.mean("x"), backend="cuda", resampling="multinomial")
    with pytest.raises(ValueError, match="`backend`"):
        fastevals.bootstrap(d, M.mean("x"), backend="gpu")


def test_public_g_test_monte_carlo_backend_cuda_equals_cpu(cuda):
    import fastevals

    obs = np.array([[12, 5, 9], [7, 14, 3]])
    cpu = fastevals.g_test_counts(obs, monte_carlo=40, seed=2, backend="cpu")
    gpu = fastevals.g_test_counts(obs, monte_carlo=40, seed=2, backend="cuda")
    assert gpu.pvalue_mc == cpu.pvalue_mc and (cpu.backend, gpu.backend) == ("cpu", "cuda")
    rng = np.random.default_rng(1)
    data = {"g": rng.choice(["a", "b"], 300), "o": rng.integers(0, 3, 300), "s": rng.integers(0, 2, 300)}
    t_cpu = fastevals.g_test(data, group="g", outcome="o", by="s", monte_carlo=30, seed=4, backend="cpu")
    t_gpu = fastevals.g_test(data, group="g", outcome="o", by="s", monte_carlo=30, seed=4, backend="cuda")
    assert t_gpu.table.column("pvalue_mc").to_pylist() == t_cpu.table.column("pvalue_mc").to_pylist()
    assert set(t_gpu.table.column("backend").to_pylist()) == {"cuda"}


def test_public_simulate_backend_cuda_equals_cpu(cuda):
    import fastevals

    kw = dict(n_steps=40, n_runs=5, seed=3, curve_points=10)
    cpu = fastevals.simulate("ucb1", [0.2, 0.5, 0.4], backend="cpu", **kw)
    gpu = fastevals.simulate("ucb1", [0.2, 0.5, 0.4], backend="cuda", **kw)
    assert (cpu.backend, gpu.backend) == ("cpu", "cuda")
    np.testing.assert_array_equal(gpu.mean_pulls, cpu.mean_pulls)
    np.testing.assert_allclose(gpu.mean_regret, cpu.mean_regret, rtol=1e-12)
    with pytest.raises(ValueError, match="UCB1 with Bernoulli"):
        fastevals.simulate("thompson", [0.2, 0.5], backend="cuda", **kw)
    # auto keeps unsupported policies on the CPU
    assert fastevals.simulate("thompson", [0.2, 0.5], backend="auto", **kw).backend == "cpu"


def test_public_calibration_backend_cuda_equals_cpu(cuda):
    import fastevals

    rng = np.random.default_rng(8)
    p = rng.beta(2, 5, 90)
    d = {"p": p, "y": (rng.random(90) < p).astype(np.int8), "s": rng.integers(0, 2, 90)}
    for strategy in ("uniform", "quantile"):
        cpu = fastevals.calibration(d, prob="p", label="y", n_bins=5, strategy=strategy, by="s", backend="cpu")
        gpu = fastevals.calibration(d, prob="p", label="y", n_bins=5, strategy=strategy, by="s", backend="cuda")
        assert (cpu.backend, gpu.backend) == ("cpu", "cuda")
        np.testing.assert_array_equal(gpu.curves[0].count, cpu.curves[0].count)
        np.testing.assert_allclose(gpu.curves[0].mean_predicted, cpu.curves[0].mean_predicted, rtol=1e-9)
        for name in ("ece", "rms", "brier"):
            np.testing.assert_allclose(getattr(gpu, name), getattr(cpu, name), rtol=1e-9)
    with pytest.raises(ValueError, match="`backend`"):
        fastevals.calibration(d, prob="p", label="y", backend="tpu")
