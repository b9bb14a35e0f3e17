"""FA1: fairness disparities with bootstrap intervals, fastevals against fairlearn's bootstrapped
``MetricFrame`` (``n_boot=``, fairlearn >= 0.11), and the robustness perturbations against the
model's own cost.

Default sizes are small so that the file also runs as a test (``--benchmark-disable``).
``FASTEVALS_BENCH_FULL=1``: fastevals alone at the standard FA1 size (10M rows, 8 groups,
B = 1,000), and both libraries side by side at the largest size fairlearn finishes here
(``PEER_ROWS`` x ``PEER_B``: fairlearn's bootstrap re-runs a pandas groupby per replicate and
metric, about a second per replicate at 200k rows on this machine, so 10M x 1,000 would take
days).  Both sides always run on the same data at the same size.
"""

import os

import numpy as np
import pyarrow as pa
import pytest

import fastevals

FULL = os.environ.get("FASTEVALS_BENCH_FULL") == "1"
FA1_ROWS, FA1_B = (10_000_000, 1_000) if FULL else (300_000, 100)
PEER_ROWS, PEER_B = (100_000, 50) if FULL else (2_000, 10)
GROUPS = 8


def fa1_data(n: int, seed: int = 20_240_601):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, GROUPS, n).astype(np.int8)
    y = (rng.random(n) < 0.4).astype(np.int8)
    p = 0.25 + 0.3 * y + 0.02 * g
    yhat = (rng.random(n) < p).astype(np.int8)
    return {"y": y, "yhat": yhat, "g": g}


def ours(table, B):
    return fastevals.fairness(table, label="y", prediction="yhat", sensitive="g", n_resamples=B, seed=1)


def fairlearn_bootstrap(d, B):
    fl = pytest.importorskip("fairlearn.metrics")
    mf = fl.MetricFrame(metrics={"selection_rate": fl.selection_rate, "true_positive_rate": fl.true_positive_rate,
                                 "false_positive_rate": fl.false_positive_rate},
                        y_true=d["y"], y_pred=d["yhat"], sensitive_features=d["g"], n_boot=B,
                        ci_quantiles=[0.025, 0.975], random_state=1)
    return mf, mf.difference(), mf.difference_ci()


@pytest.fixture(scope="module")
def fa1():
    d = fa1_data(FA1_ROWS)
    return d, pa.table(d)


@pytest.fixture(scope="module")
def peer_data():
    d = fa1_data(PEER_ROWS)
    return d, pa.table(d)


def test_fa1_fastevals(benchmark, fa1):
    d, table = fa1
    benchmark.group = "FA1"
    ours(table, 8)  # warm-up: JIT outside the timing
    res = benchmark.pedantic(ours, args=(table, FA1_B), rounds=3 if FULL else 1, iterations=1)
    sel = [np.mean(d["yhat"][d["g"] == k]) for k in range(GROUPS)]
    assert res.demographic_parity_difference == pytest.approx(max(sel) - min(sel), abs=1e-12)
    assert res.demographic_parity_difference in res.demographic_parity_difference_ci
    assert res.n_resamples == FA1_B


def test_fa1_peer_size_fastevals(benchmark, peer_data):
    d, table = peer_data
    benchmark.group = "FA1-peer-size"
    ours(table, 4)
    res = benchmark(ours, table, PEER_B)
    mf, diff, _ = fairlearn_bootstrap(d, 2)
    assert res.demographic_parity_difference == pytest.approx(diff["selection_rate"], abs=1e-12)
    assert res.equal_opportunity_difference == pytest.approx(diff["true_positive_rate"], abs=1e-12)


def test_fa1_peer_size_fairlearn(benchmark, peer_data):
    d, table = peer_data
    benchmark.group = "FA1-peer-size"
    mf, diff, ci = benchmark.pedantic(fairlearn_bootstrap, args=(d, PEER_B), rounds=1, iterations=1)
    res = ours(table, PEER_B)
    assert diff["selection_rate"] == pytest.approx(res.demographic_parity_difference, abs=1e-12)
    # both intervals bracket the same point estimate (different resampling schemes, same data)
    assert ci[0]["selection_rate"] <= diff["selection_rate"] <= ci[1]["selection_rate"]


def test_robustness_own_cost_vs_model(benchmark):
    """The perturbations (fastevals' part) against the model's predict on the same rows."""
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    from fastevals._fairness.robustness import perturb

    X, y = load_breast_cancer(return_X_y=True)
    model = RandomForestClassifier(n_estimators=50, random_state=0, n_jobs=1).fit(X, y)
    P = 100 if FULL else 10
    perturb(X[:2], delta=1.0, n_perturbations=2, seed=0)  # JIT
    benchmark.group = "robustness"
    xp = benchmark(perturb, X, delta=5.0, n_perturbations=P, seed=0)
    assert xp.shape == (len(X) * P, X.shape[1])
    # row r * P + p perturbs row r: within delta of it (zeroing: every changed value is a 0)
    moved = xp - np.repeat(X, P, axis=0)
    assert np.linalg.norm(moved, axis=1).max() <= 5.0 + 1e-9
    changed = moved != 0
    assert np.all(xp[changed] == 0) and changed.any()
    res = fastevals.robustness(lambda a: model.predict_proba(a)[:, 1], X, deltas=[5.0], epsilon=0.2,
                               n_perturbations=P, seed=0)
    assert res.table.column("mean_distance").to_pylist()[0] <= 5.0
