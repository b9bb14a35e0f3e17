"""CM1: K models x N items, every pairwise paired difference with analytic and bootstrap intervals.

Peer: lm-evaluation-harness' ``bootstrap_stderr`` (``lm_eval/api/metrics.py``), reproduced
here from its description: a ``multiprocessing.Pool(cpu_count())`` maps chunks of
``min(1000, iters)`` resamples; each chunk seeds ``random.Random(i)`` and, per resample,
computes the metric (``mean``: ``sum(xs) / len(xs)``) of ``rnd.choices(xs, k=len(xs))``;
the standard error is the sample standard deviation (n - 1) of the resampled means.
lighteval's ``bootstrap_stderr`` is the same loop.  The harness bootstraps one list of
per-item values at a time, so a pairwise comparison done its way bootstraps each pair's
per-item differences: we time it on ONE pair at the same N and B (all of the K(K-1)/2
pairs would take that many times longer; we never scale it up).

Small sizes by default (K=5, N=20,000, B=200); ``FASTEVALS_BENCH_FULL=1``: K=100, N=1,000,000,
B=1,000 for ours (the peer's one pair at N=1,000,000, B=1,000 takes minutes: run
``python benchmarks/compare_compare.py`` for the interleaved ratio).
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import random

import _peers
import numpy as np
import pyarrow as pa
import pytest

from fastevals._compare import compare_models


def cm1_sizes(full: bool) -> dict:
    return dict(k=100, n=1_000_000, b=1000) if full else dict(k=5, n=20_000, b=200)


def cm1_table(k: int, n: int) -> pa.Table:
    """K models' 0/1 correctness on N items (accuracies 0.55..0.75, correlated through item difficulty)."""
    rng = np.random.default_rng(_peers.SEED + 19)
    difficulty = rng.normal(0.0, 1.0, n).astype(np.float32)
    cols = {}
    for j in range(k):
        skill = 0.2 + 0.8 * j / max(k - 1, 1)
        p = 1.0 / (1.0 + np.exp(difficulty - skill))
        cols[f"model_{j:03d}"] = (rng.random(n, dtype=np.float32) < p).astype(np.int8)
    return pa.table(cols)


# ------------------------------------------------------------------------------------------------
# the peer


class _BootstrapChunk:
    """One task of the harness' pool: ``n`` resampled means from ``random.Random(i)``."""

    def __init__(self, f, n):
        self.f, self.n = f, n

    def __call__(self, task):
        i, xs = task
        rnd = random.Random()
        rnd.seed(i)
        return [self.f(rnd.choices(xs, k=len(xs))) for _ in range(self.n)]


def harness_mean(arr):
    return sum(arr) / len(arr)


def harness_bootstrap_stderr(f, xs, iters):
    chunk = min(1000, iters)
    out = []
    with mp.get_context("fork").Pool(os.cpu_count()) as pool:
        for part in pool.imap(_BootstrapChunk(f, chunk), [(i, xs) for i in range(iters // chunk)]):
            out.extend(part)
    mu = sum(out) / len(out)
    return math.sqrt(sum((x - mu) ** 2 for x in out) / (len(out) - 1))


def peer_one_pair(table: pa.Table, b: int) -> float:
    """The harness' way for one pair: per-item differences as a Python list, bootstrapped."""
    a = table.column(0).to_numpy().astype(np.float64)
    c = table.column(1).to_numpy().astype(np.float64)
    return harness_bootstrap_stderr(harness_mean, (a - c).tolist(), b)


def ours(table: pa.Table, b: int):
    return compare_models(table, models=table.column_names, metric="accuracy", n_resamples=b, seed=1)


# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cm1(bench_full):
    s = cm1_sizes(bench_full)
    return cm1_table(s["k"], s["n"]), s


def test_cm1_answers_agree(cm1):
    table, s = cm1
    res = ours(table, s["b"])
    k = s["k"]
    assert res.table.num_rows == k * (k - 1) // 2
    first = res.table.slice(0, 1).to_pylist()[0]
    a = table.column(0).to_numpy().astype(float)
    c = table.column(1).to_numpy().astype(float)
    d = a - c
    assert first["estimate"] == pytest.approx(d.mean(), abs=1e-12)
    assert first["standard_error"] == pytest.approx(d.std(ddof=1) / math.sqrt(d.size), rel=1e-9)
    peer = peer_one_pair(table, s["b"])
    # two bootstraps of the same SE: each within ~1/sqrt(2B) (5% at B=200) of the truth
    assert first["bootstrap_se"] == pytest.approx(peer, rel=0.25)
    assert first["standard_error"] == pytest.approx(peer, rel=0.25)


@pytest.mark.benchmark(group="CM1")
def test_cm1_ours(benchmark, cm1):
    table, s = cm1
    ours(table, 8)  # warm-up: JIT outside the timing
    res = benchmark.pedantic(ours, args=(table, s["b"]), rounds=1 if s["k"] > 10 else 3, iterations=1)
    assert res.table.num_rows == s["k"] * (s["k"] - 1) // 2


@pytest.mark.benchmark(group="CM1")
def test_cm1_peer_lm_eval_one_pair(benchmark, cm1):
    table, s = cm1
    if s["n"] > 100_000:
        pytest.skip("the peer's full-size pair takes minutes: benchmarks/compare_compare.py times it once")
    se = benchmark.pedantic(peer_one_pair, args=(table, s["b"]), rounds=1, iterations=1)
    assert se > 0
