"""CA1 / CA2 benchmarks: fastevals.calibration against sklearn's calibration_curve and a NumPy
twin of netcal's ECE (netcal itself needs torch, which we do not install).

Default sizes are small so that the file also runs as a test (``--benchmark-disable``);
``FASTEVALS_BENCH_FULL=1`` uses the standard workloads (10M binary rows, 1M x 10 classes).
"""

import os

import numpy as np
import pyarrow as pa
import pytest
from sklearn.calibration import calibration_curve

import fastevals.reliability as fc

FULL = os.environ.get("FASTEVALS_BENCH_FULL") == "1"
N_BINARY = 10_000_000 if FULL else 200_000
N_MULTI = 1_000_000 if FULL else 50_000
N_CLASSES = 10
N_BINS = 15


def ca1_data(n=N_BINARY, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 5, n)
    y = (rng.random(n) < p).astype(np.int8)
    return p, y


def ca2_data(n=N_MULTI, k=N_CLASSES, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * 2.0
    P = np.exp(logits - logits.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    y = (rng.random(n)[:, None] > np.cumsum(P, axis=1)).sum(axis=1).clip(0, k - 1).astype(np.int64)
    return P, y


def netcal_ece_twin(p, y, edges):
    """netcal's ECE formula, sum_b n_b / N |acc_b - conf_b|, in plain NumPy."""
    b = np.searchsorted(edges[1:-1], p)
    n = np.bincount(b, minlength=len(edges) - 1)
    sp = np.bincount(b, weights=p, minlength=len(edges) - 1)
    sy = np.bincount(b, weights=y, minlength=len(edges) - 1)
    return np.abs(sy - sp).sum() / n.sum()


def sklearn_twin(p, y, strategy):
    return calibration_curve(y, p, n_bins=N_BINS, strategy=strategy)


def ours(table, strategy):
    return fc.calibration(table, prob="p", label="y", n_bins=N_BINS, strategy=strategy)


@pytest.fixture(scope="module")
def ca1():
    p, y = ca1_data()
    return p, y, pa.table({"p": p, "y": y})


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_ca1_fastevals(benchmark, ca1, strategy):
    p, y, table = ca1
    benchmark.group = f"CA1-{strategy}"
    ours(table, strategy)  # warm-up: JIT compile outside the timing
    res = benchmark(ours, table, strategy)
    prob_true, prob_pred = sklearn_twin(p, y, strategy)
    np.testing.assert_allclose(res.curve.sklearn_curve()[0], prob_true, rtol=1e-12)
    np.testing.assert_allclose(res.curve.sklearn_curve()[1], prob_pred, rtol=1e-12)
    np.testing.assert_allclose(res.ece, netcal_ece_twin(p, y, res.edges), rtol=1e-10)


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_ca1_sklearn(benchmark, ca1, strategy):
    p, y, _ = ca1
    benchmark.group = f"CA1-{strategy}"
    prob_true, _ = benchmark(sklearn_twin, p, y, strategy)
    assert 10 <= len(prob_true) <= N_BINS


def test_ca1_netcal_twin(benchmark, ca1):
    p, y, table = ca1
    benchmark.group = "CA1-uniform"
    edges = np.linspace(0, 1, N_BINS + 1)
    ece = benchmark(netcal_ece_twin, p, y, edges)
    np.testing.assert_allclose(ece, ours(table, "uniform").ece, rtol=1e-10)


@pytest.fixture(scope="module")
def ca2():
    P, y = ca2_data()
    table = pa.table({"P": pa.FixedSizeListArray.from_arrays(pa.array(P.ravel()), N_CLASSES), "y": y})
    return P, y, table


def top_label_twin(P, y):
    conf = P.max(axis=1)
    correct = (P.argmax(axis=1) == y).astype(np.float64)
    return netcal_ece_twin(conf, correct, np.linspace(0, 1, N_BINS + 1))


def test_ca2_top_label_fastevals(benchmark, ca2):
    P, y, table = ca2
    benchmark.group = "CA2-top-label"
    fc.calibration(table, prob="P", label="y")
    res = benchmark(fc.calibration, table, prob="P", label="y")
    np.testing.assert_allclose(res.ece, top_label_twin(P, y), rtol=1e-10)


def test_ca2_top_label_numpy_twin(benchmark, ca2):
    P, y, _ = ca2
    benchmark.group = "CA2-top-label"
    ece = benchmark(top_label_twin, P, y)
    assert 0 <= ece <= 1
