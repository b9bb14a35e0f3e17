"""Benchmarks SQ1 and power (see ../shared/benchmarking.md).

* SQ1: 10,000 A/A experiments x 100 looks (100 rows per arm per look): the false positive rate of the
  naive z-test, the mSPRT, the confidence sequence and group sequential boundaries. Peer: a plain NumPy
  simulation at the same size, vectorized over experiments with a loop over looks (what a competent
  user writes: ``rng.standard_normal`` per look, cumulative sums, the same boundaries). Its draws are
  its own, so the answers are compared statistically (each rate within 4.5 standard errors of the
  difference); tests/test_experiments.py checks the kernel exactly against a twin with our draws.
* power: ``fastevals.sample_size`` against statsmodels ``NormalIndPower().solve_power`` (same answer to 1e-8).

Default sizes are small (run once as tests under --benchmark-disable); ``FASTEVALS_BENCH_FULL=1``
selects the standard workload.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

import fastevals
from fastevals._experiments.peeking import METHODS, peeking_boundaries

FULL = os.environ.get("FASTEVALS_BENCH_FULL") == "1"
SEED = 20240601
N_EXP, N_LOOKS, N_PER = (10_000, 100, 100) if FULL else (1_000, 20, 100)


def numpy_peeking(n_exp=N_EXP, n_looks=N_LOOKS, n_per=N_PER, alpha=0.05, seed=SEED) -> np.ndarray:
    """The peer: rejection rate per method, NumPy vectorized over experiments."""
    rng = np.random.default_rng(seed)
    bounds = peeking_boundaries(METHODS, n_looks, n_per, alpha, None, 5000.0, "obrien_fleming")
    sc = np.zeros(n_exp)
    st = np.zeros(n_exp)
    rejected = np.zeros((len(METHODS), n_exp), dtype=bool)
    root = math.sqrt(n_per)
    for k in range(n_looks):
        sc += root * rng.standard_normal(n_exp)
        st += root * rng.standard_normal(n_exp)
        z = np.abs(st - sc) / math.sqrt(2.0 * n_per * (k + 1))
        rejected |= z[None, :] >= bounds[:, k:k + 1]
    return rejected.mean(axis=1)


def ours_peeking(seed=SEED) -> np.ndarray:
    r = fastevals.simulate_peeking(N_EXP, N_LOOKS, N_PER, seed=seed)
    return np.array([r.rate(m) for m in METHODS])


def _agree(a: np.ndarray, b: np.ndarray) -> None:
    p = (a + b) / 2
    se = np.sqrt(np.maximum(p * (1 - p), 1e-12) * 2 / N_EXP)
    assert np.all(np.abs(a - b) <= 4.5 * se + 1e-12), (a, b)


@pytest.fixture(scope="module")
def sq1_warm():
    """Compile and compute the boundaries once (their cache is reused by both sides)."""
    ours = ours_peeking()
    peer = numpy_peeking()
    _agree(ours, peer)
    return ours


@pytest.mark.benchmark(group="SQ1 peeking simulation")
def test_sq1_ours(benchmark, sq1_warm):
    rates = benchmark(ours_peeking)
    np.testing.assert_array_equal(rates, sq1_warm)
    assert rates[0] > 0.05 and np.all(rates[1:] < 0.05 + 4.5 * math.sqrt(0.05 * 0.95 / N_EXP))


@pytest.mark.benchmark(group="SQ1 peeking simulation")
def test_sq1_numpy_loop(benchmark, sq1_warm):
    rates = benchmark(numpy_peeking)
    _agree(rates, sq1_warm)


DESIGNS = [(0.05, 1.0), (0.1, 2.0), (0.02, 0.5)]


@pytest.mark.benchmark(group="power: sample size")
def test_power_ours(benchmark):
    got = benchmark(lambda: [fastevals.sample_size(effect=d, sd=1.0, ratio=r).n_exact for d, r in DESIGNS])
    from statsmodels.stats.power import NormalIndPower

    ref = [NormalIndPower().solve_power(d, nobs1=None, alpha=0.05, power=0.8, ratio=r) for d, r in DESIGNS]
    np.testing.assert_allclose(got, ref, rtol=1e-8)


@pytest.mark.benchmark(group="power: sample size")
def test_power_statsmodels(benchmark):
    from statsmodels.stats.power import NormalIndPower

    got = benchmark(lambda: [NormalIndPower().solve_power(d, nobs1=None, alpha=0.05, power=0.8, ratio=r)
                             for d, r in DESIGNS])
    ours = [fastevals.sample_size(effect=d, sd=1.0, ratio=r).n_exact for d, r in DESIGNS]
    np.testing.assert_allclose(got, ours, rtol=1e-8)
