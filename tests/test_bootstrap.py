"""fastevals.bootstrap against a slow twin (explicit weights, NumPy statistic per replicate),
against scipy.stats.bootstrap, and by coverage over seeded repetitions."""

import math

import numba
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import special, stats
from sklearn.metrics import average_precision_score, roc_auc_score
from statsmodels.stats.proportion import proportion_confint

from fastevals import metrics as M
from fastevals._kernels import poisson as kp
from fastevals.resampling import (
    BootstrapResult,
    BootstrapTable,
    bootstrap,
    error_rate_interval,
    poisson_weights,
)

RTOL = 1e-12


def make_data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    score = rng.normal(size=n) + 0.8 * y
    return {
        "x": rng.exponential(size=n),
        "den": rng.uniform(0.5, 2.0, n),
        "y": y,
        "score": np.round(score, 1),  # ties on purpose
        "prob": special.expit(score),
        "pa": np.where(rng.random(n) < 0.8, y, 1 - y),
        "pb": np.where(rng.random(n) < 0.7, y, 1 - y),
        "seg": rng.integers(0, 3, n),
        "user": rng.integers(0, 60, n),
    }


# ---------------------------------------------------------------------------------------------
# the slow twin: weighted statistics in NumPy, one replicate at a time


def rep(x, w):
    return np.repeat(x, w.astype(np.int64))


TWINS = {
    "mean": (lambda: M.mean("x"), lambda d, w: np.sum(w * d["x"]) / np.sum(w)),
    "sum": (lambda: M.sum("x"), lambda d, w: np.sum(w * d["x"])),
    "ratio": (lambda: M.ratio("x", "den"), lambda d, w: np.sum(w * d["x"]) / np.sum(w * d["den"])),
    "std": (lambda: M.std("x"), lambda d, w: np.std(rep(d["x"], w))),
    "mse": (lambda: M.mse("y", "prob"), lambda d, w: np.sum(w * (d["prob"] - d["y"]) ** 2) / np.sum(w)),
    "mae": (lambda: M.mae("x", "den"), lambda d, w: np.sum(w * np.abs(d["den"] - d["x"])) / np.sum(w)),
    "log_loss": (lambda: M.log_loss("y", "prob"),
                 lambda d, w: -np.sum(w * (d["y"] * np.log(d["prob"]) + (1 - d["y"]) * np.log1p(-d["prob"])))
                 / np.sum(w)),
    "weighted_mean": (lambda: M.mean("x", weight="den"),
                      lambda d, w: np.sum(w * d["den"] * d["x"]) / np.sum(w * d["den"])),
    "median": (lambda: M.median("x"), lambda d, w: np.quantile(rep(d["x"], w), 0.5)),
    "q90": (lambda: M.quantile("x", 0.9), lambda d, w: np.quantile(rep(d["x"], w), 0.9)),
    "auc": (lambda: M.roc_auc("y", "score"), lambda d, w: roc_auc_score(rep(d["y"], w), rep(d["score"], w))),
    "auc_no_ties": (lambda: M.roc_auc("y", "prob"), lambda d, w: roc_auc_score(rep(d["y"], w), rep(d["prob"], w))),
    "ap": (lambda: M.average_precision("y", "score"),
           lambda d, w: average_precision_score(rep(d["y"], w), rep(d["score"], w))),
    "paired_mse": (lambda: M.mse("y", "prob") - M.brier("y", "pa"),
                   lambda d, w: (np.sum(w * (d["prob"] - d["y"]) ** 2) - np.sum(w * (d["pa"] - d["y"]) ** 2))
                   / np.sum(w)),
    "auc_minus_mean": (lambda: M.roc_auc("y", "score") - M.mean("prob"),
                       lambda d, w: roc_auc_score(rep(d["y"], w), rep(d["score"], w))
                       - np.sum(w * d["prob"]) / np.sum(w)),
}


def twin_interval(dist, est, confidence, method, accel=None):
    alpha = (1 - confidence) / 2
    if method == "bca":
        z0 = special.ndtri(np.mean(dist < est))
        za, zb = special.ndtri(alpha), special.ndtri(1 - alpha)
        a1 = special.ndtr(z0 + (z0 + za) / (1 - accel * (z0 + za)))
        a2 = special.ndtr(z0 + (z0 + zb) / (1 - accel * (z0 + zb)))
        return np.percentile(dist, [a1 * 100, a2 * 100])
    lo, hi = np.percentile(dist, [alpha * 100, (1 - alpha) * 100])
    if method == "basic":
        return np.array([2 * est - hi, 2 * est - lo])
    return np.array([lo, hi])


def twin_accel(d, stat):
    n = len(next(iter(d.values())))
    jack = np.empty(n)
    for i in range(n):
        w = np.ones(n)
        w[i] = 0
        jack[i] = stat(d, w)
    dd = jack.mean() - jack
    return np.sum(dd**3) / (6 * np.sum(dd**2) ** 1.5)


@pytest.mark.parametrize("name", list(TWINS))
@pytest.mark.parametrize("method", ["percentile", "basic"])
def test_poisson_engine_equals_slow_twin(name, method):
    d = make_data(150)
    make, stat = TWINS[name]
    B = 200
    res = bootstrap(d, make(), n_resamples=B, seed=42, method=method, progress=False)
    W = poisson_weights(150, B, seed=42).astype(np.float64)
    dist = np.array([stat(d, W[b]) for b in range(B)])
    est = stat(d, np.ones(150))
    np.testing.assert_allclose(res.bootstrap_distribution, dist, rtol=RTOL, atol=1e-15)
    np.testing.assert_allclose(res.estimate, est, rtol=RTOL)
    np.testing.assert_allclose(res.confidence_interval, twin_interval(dist, est, 0.95, method), rtol=RTOL)
    np.testing.assert_allclose(res.standard_error, np.std(dist, ddof=1), rtol=1e-10)


@pytest.mark.parametrize("name", ["mean", "ratio", "std", "log_loss", "weighted_mean", "paired_mse", "q90",
                                  "median", "auc", "auc_no_ties", "auc_minus_mean"])
def test_bca_equals_slow_twin(name):
    d = make_data(120, seed=1)
    make, stat = TWINS[name]
    B = 300
    res = bootstrap(d, make(), n_resamples=B, seed=7, method="bca", confidence=0.9, progress=False)
    W = poisson_weights(120, B, seed=7).astype(np.float64)
    dist = np.array([stat(d, W[b]) for b in range(B)])
    est = stat(d, np.ones(120))
    accel = twin_accel(d, stat)
    np.testing.assert_allclose(res.acceleration, accel, rtol=1e-9, atol=1e-15)
    if name in ("median", "auc", "auc_no_ties", "auc_minus_mean", "q90"):
        # discrete statistics: replicates tie with the estimate, so the last bit of the estimate
        # decides z0; compare with the engine's own estimate
        est = res.estimate
    np.testing.assert_allclose(res.confidence_interval, twin_interval(dist, est, 0.9, "bca", res.acceleration),
                               rtol=RTOL)


# categorical metrics: the sufficient-statistics shortcut


def test_categorical_shortcut_equals_twin_with_poisson_counts():
    d = make_data(400, seed=2)
    B = 300
    m = M.accuracy("y", "pb") - M.accuracy("y", "pa")
    res = bootstrap(d, m, n_resamples=B, seed=9, progress=False)
    # patterns: bit 0 = (y == pa) [first leaf in order of appearance is accuracy(y, pb)]
    f0 = (d["y"] == d["pb"]).astype(int)
    f1 = (d["y"] == d["pa"]).astype(int)
    code = f0 | (f1 << 1)
    lam = np.bincount(code, minlength=4).astype(np.float64)
    counts = kp.poisson_cell_counts(np.uint64(9), 0, B, np.arange(4, dtype=np.uint64), lam)
    bits = (np.arange(4)[:, None] >> np.arange(2)) & 1
    S = counts @ bits
    n = counts.sum(axis=1)
    dist = S[:, 0] / n - S[:, 1] / n
    np.testing.assert_allclose(res.bootstrap_distribution, dist, rtol=RTOL, atol=1e-15)
    est = np.mean(f0) - np.mean(f1)
    np.testing.assert_allclose(res.estimate, est, rtol=RTOL)


@pytest.mark.parametrize("metric", ["precision", "recall", "f1", "proportion", "error_rate"])
def test_categorical_shortcut_has_the_row_bootstrap_distribution(metric):
    # the shortcut (Poisson(n) per cell) and the row-by-row Poisson bootstrap sample the same law
    d = make_data(400, seed=3)
    d["one"] = np.ones(400)
    make = {
        "precision": lambda: M.precision("y", "pa"),
        "recall": lambda: M.recall("y", "pa"),
        "f1": lambda: M.f1("y", "pa"),
        "proportion": lambda: M.proportion("y"),
        "error_rate": lambda: M.error_rate("y", "pa"),
    }[metric]
    B = 2000
    fast = bootstrap(d, make(), n_resamples=B, seed=1, progress=False)
    # the row path, by the slow twin with explicit weights
    W = poisson_weights(400, B, seed=2).astype(np.float64)
    y, p = d["y"], d["pa"]
    tp, pp, pos = W @ ((y == 1) & (p == 1)), W @ (p == 1), W @ (y == 1)
    slow = {"precision": tp / pp, "recall": tp / pos, "f1": 2 * tp / (pp + pos),
            "proportion": W @ y / W.sum(1), "error_rate": W @ (y != p) / W.sum(1)}[metric]
    assert stats.ks_2samp(fast.bootstrap_distribution, slow).pvalue > 1e-3
    np.testing.assert_allclose(fast.standard_error, np.std(slow, ddof=1), rtol=0.1)
    # and the point estimate is sklearn's
    from sklearn import metrics as skm

    ref = {"precision": skm.precision_score(y, p), "recall": skm.recall_score(y, p), "f1": skm.f1_score(y, p),
           "proportion": y.mean(), "error_rate": 1 - skm.accuracy_score(y, p)}[metric]
    np.testing.assert_allclose(fast.estimate, ref, rtol=1e-12)


def test_categorical_bca_acceleration_equals_jackknife_refits():
    d = make_data(200, seed=4)
    res = bootstrap(d, M.f1("y", "pa"), n_resamples=200, seed=1, method="bca", progress=False)

    def stat(dd, w):
        tp = np.sum(w * ((dd["y"] == 1) & (dd["pa"] == 1)))
        return 2 * tp / (np.sum(w * (dd["pa"] == 1)) + np.sum(w * (dd["y"] == 1)))

    np.testing.assert_allclose(res.acceleration, twin_accel(d, stat), rtol=1e-9)


# multinomial resampling


def test_multinomial_equals_twin():
    d = make_data(80, seed=5)
    B = 150
    for make, stat in (TWINS["mean"], TWINS["median"], TWINS["auc"]):
        res = bootstrap(d, make(), n_resamples=B, seed=3, resampling="multinomial", method="percentile",
                        progress=False)
        rng = np.random.default_rng(3)
        idx = rng.integers(0, 80, size=(B, 80))
        W = np.array([np.bincount(r, minlength=80) for r in idx], dtype=np.float64)
        dist = np.array([stat(d, W[b]) for b in range(B)])
        np.testing.assert_allclose(res.bootstrap_distribution, dist, rtol=RTOL)


# cluster, segments, groups


def test_cluster_bootstrap_equals_twin():
    d = make_data(200, seed=6)
    B = 200
    res = bootstrap(d, M.mean("x"), n_resamples=B, seed=5, cluster="user", progress=False)
    W = poisson_weights(keys=d["user"], n_resamples=B, seed=5).astype(np.float64)
    dist = (W @ d["x"]) / W.sum(1)
    np.testing.assert_allclose(res.bootstrap_distribution, dist, rtol=RTOL)
    res2 = bootstrap(d, M.roc_auc("y", "score"), n_resamples=50, seed=5, cluster="user", progress=False)
    W = W[:50]
    dist2 = [roc_auc_score(rep(d["y"], W[b]), rep(d["score"], W[b])) for b in range(50)]
    np.testing.assert_allclose(res2.bootstrap_distribution, dist2, rtol=RTOL)
    # rows of one unit move together: a cluster bootstrap of unit-constant data is wider
    d["xu"] = np.random.default_rng(0).normal(size=60)[d["user"]]
    wide = bootstrap(d, M.mean("xu"), n_resamples=1000, seed=1, cluster="user", progress=False)
    narrow = bootstrap(d, M.mean("xu"), n_resamples=1000, seed=1, progress=False)
    assert wide.standard_error > 1.3 * narrow.standard_error


def test_by_segments_and_groups_equal_twin():
    d = make_data(240, seed=7)
    B = 100
    W = poisson_weights(240, B, seed=11).astype(np.float64)
    tab = bootstrap(d, [M.mean("x"), M.roc_auc("y", "score")], by="seg", n_resamples=B, seed=11, progress=False)
    assert isinstance(tab, BootstrapTable)
    assert tab.table.num_rows == 6
    for r in tab:
        s = d["seg"] == r.segment
        sub = {k: v[s] for k, v in d.items()}
        stat = TWINS["mean" if r.metric == "mean(x)" else "auc"][1]
        dist = [stat(sub, W[b, s]) for b in range(B)]
        np.testing.assert_allclose(r.bootstrap_distribution, dist, rtol=RTOL)
    grp = bootstrap(d, M.mean("x"), group="seg", control=0, n_resamples=B, seed=11, progress=False)
    by_group = {r.group: r for r in grp}
    for g in (1, 2):
        diff = by_group[(g, 0)]
        np.testing.assert_allclose(diff.bootstrap_distribution,
                                   by_group[g].bootstrap_distribution - by_group[0].bootstrap_distribution,
                                   rtol=RTOL)
        np.testing.assert_allclose(diff.estimate, d["x"][d["seg"] == g].mean() - d["x"][d["seg"] == 0].mean(),
                                   rtol=1e-12)


def test_cell_fold_with_several_features_over_chunks_equals_twin():
    # by= with a ratio and a mean (two features a row: the cell fold's general branch) on more
    # rows than one kernel chunk, and group= with one feature, against the explicit weights
    from fastevals._kernels import bootstrap as kb

    n = 2 * kb.ROW_CHUNK + 77
    d = make_data(n, seed=12)
    B = 40
    W = poisson_weights(n, B, seed=5).astype(np.float64)
    tab = bootstrap(d, [M.ratio("x", "den"), M.mean("x")], by="seg", n_resamples=B, seed=5, progress=False)
    assert tab.table.num_rows == 6
    for r in tab:
        s = d["seg"] == r.segment
        sub = {k: v[s] for k, v in d.items()}
        stat = TWINS["ratio" if r.metric.startswith("ratio") else "mean"][1]
        np.testing.assert_allclose(r.bootstrap_distribution, [stat(sub, W[b, s]) for b in range(B)], rtol=RTOL)
    grp = bootstrap(d, M.mean("den"), group="seg", control=0, n_resamples=B, seed=5, progress=False)
    for r in grp:
        if r.comparison is None and not isinstance(r.group, tuple):
            s = d["seg"] == r.group
            np.testing.assert_allclose(r.bootstrap_distribution, W[:, s] @ d["den"][s] / W[:, s].sum(1), rtol=RTOL)


def test_group_difference_bca_acceleration_is_scipys_two_sample_formula():
    d = make_data(150, seed=8)
    res = bootstrap(d, M.mean("x"), group="seg", control=0, n_resamples=100, seed=1, method="bca",
                    progress=False)
    diff = [r for r in res if r.group == (1, 0)][0]
    xs = [d["x"][d["seg"] == 1], d["x"][d["seg"] == 0]]
    nums, dens = [], []
    for j, x in enumerate(xs):
        n = len(x)
        jack = np.array([np.delete(x, i).mean() for i in range(n)])
        theta = jack if j == 0 else -jack  # statistic = mean(x1) - mean(x0)
        U = (n - 1) * (theta.mean() - theta)
        nums.append(np.sum(U**3) / n**3)
        dens.append(np.sum(U**2) / n**2)
    np.testing.assert_allclose(diff.acceleration, sum(nums) / sum(dens) ** 1.5 / 6, rtol=1e-9)


# invariance: batches, threads, files


def test_same_answer_any_batch_size_and_threads(tmp_path):
    d = make_data(3000, seed=9)
    table = pa.table(d)
    m = [M.mean("x"), M.ratio("x", "den"), M.roc_auc("y", "score"), M.mean("x") - M.mean("den")]
    ref = bootstrap(table, m, n_resamples=100, seed=3, progress=False)
    for bs in (1000, 777):
        other = bootstrap(table, m, n_resamples=100, seed=3, batch_size=bs, progress=False)
        for a, b in zip(ref, other):
            np.testing.assert_array_equal(a.bootstrap_distribution, b.bootstrap_distribution)
    pq.write_table(table, tmp_path / "d.parquet", row_group_size=500)
    other = bootstrap(str(tmp_path / "d.parquet"), m, n_resamples=100, seed=3, progress=False)
    for a, b in zip(ref, other):
        np.testing.assert_array_equal(a.bootstrap_distribution, b.bootstrap_distribution)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = bootstrap(table, m, n_resamples=100, seed=3, progress=False)
    finally:
        numba.set_num_threads(before)
    for a, b in zip(ref, one):
        np.testing.assert_array_equal(a.bootstrap_distribution, b.bootstrap_distribution)


def test_nulls_drop_equals_clean_data():
    d = make_data(200, seed=10)
    x = d["x"].copy()
    x[[3, 50, 199]] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        bootstrap({"x": x}, M.mean("x"), n_resamples=10, seed=1, progress=False)
    a = bootstrap({"x": x}, M.mean("x"), n_resamples=50, seed=1, nulls="drop", progress=False)
    b = bootstrap({"x": x[np.isfinite(x)]}, M.mean("x"), n_resamples=50, seed=1, progress=False)
    np.testing.assert_array_equal(a.bootstrap_distribution, b.bootstrap_distribution)
    assert a.n == 197


# against scipy.stats.bootstrap, B = 20,000 (Monte Carlo error only)


def _close_mc(ours, ref, se, k=0.15):
    # endpoints of two independent B=20000 bootstraps differ by ~0.03 se; allow 0.15 se
    assert abs(ours.confidence_interval.low - ref.confidence_interval.low) < k * se
    assert abs(ours.confidence_interval.high - ref.confidence_interval.high) < k * se


@pytest.mark.parametrize("method", ["percentile", "bca"])
@pytest.mark.parametrize("resampling", ["poisson", "multinomial"])
def test_against_scipy_mean_median_paired(method, resampling):
    d = make_data(100, seed=12)
    B = 20000
    kw = dict(n_resamples=B, method=method, resampling=resampling, progress=False)
    ours = bootstrap(d, M.mean("x"), seed=1, **kw)
    ref = stats.bootstrap((d["x"],), np.mean, n_resamples=B, method=method, rng=np.random.default_rng(2))
    _close_mc(ours, ref, ours.standard_error)
    ours = bootstrap(d, M.median("x"), seed=1, **kw)
    ref = stats.bootstrap((d["x"],), np.median, n_resamples=B, method=method, rng=np.random.default_rng(2))
    _close_mc(ours, ref, ours.standard_error, k=0.3)  # the median's distribution is lumpy
    ours = bootstrap(d, M.mae("y", "prob") - M.mae("y", "pa"), seed=1, **kw)

    def paired(y, p, q, axis=-1):
        return np.mean(np.abs(p - y), axis=axis) - np.mean(np.abs(q - y), axis=axis)

    ref = stats.bootstrap((d["y"], d["prob"], d["pa"].astype(float)), paired, paired=True, n_resamples=B,
                          method=method, rng=np.random.default_rng(2))
    _close_mc(ours, ref, ours.standard_error)


def _rank_auc(y, s, axis=-1):
    # Mann-Whitney AUC, vectorized over resamples (average ranks handle ties)
    r = stats.rankdata(s, axis=axis)
    pos = np.sum(y, axis=axis)
    neg = y.shape[axis] - pos
    return (np.sum(r * y, axis=axis) - pos * (pos + 1) / 2) / (pos * neg)


def test_against_scipy_auc():
    d = make_data(100, seed=13)
    B = 20000
    # the vectorized statistic is sklearn's roc_auc_score (checked on the data and on resamples)
    rng = np.random.default_rng(0)
    for _ in range(5):
        i = rng.integers(0, 100, 100)
        np.testing.assert_allclose(_rank_auc(d["y"][i], d["score"][i]), roc_auc_score(d["y"][i], d["score"][i]),
                                   rtol=1e-12)
    for method in ("percentile", "bca"):
        ours = bootstrap(d, M.roc_auc("y", "score"), n_resamples=B, seed=1, method=method, progress=False)
        ref = stats.bootstrap((d["y"], d["score"]), _rank_auc, paired=True, vectorized=True, n_resamples=B,
                              method=method, rng=np.random.default_rng(2))
        _close_mc(ours, ref, ours.standard_error)
    np.testing.assert_allclose(ours.estimate, roc_auc_score(d["y"], d["score"]), rtol=1e-12)


@pytest.mark.large
def test_against_scipy_auc_with_sklearn_statistic():
    d = make_data(100, seed=13)
    B = 20000
    ours = bootstrap(d, M.roc_auc("y", "score"), n_resamples=B, seed=1, progress=False)
    ref = stats.bootstrap((d["y"], d["score"]), roc_auc_score, paired=True, vectorized=False, n_resamples=B,
                          method="percentile", rng=np.random.default_rng(2))
    _close_mc(ours, ref, ours.standard_error)


# coverage over seeded repetitions


def _coverage(case, method, reps, n=150, B=400):
    hits = 0
    for r in range(reps):
        rng = np.random.default_rng(1000 + r)
        if case == "mean":
            d, m, truth = {"x": rng.exponential(2.0, n)}, M.mean("x"), 2.0
        elif case == "proportion":
            d, m, truth = {"c": (rng.random(n) < 0.3).astype(np.int8)}, M.proportion("c"), 0.3
        elif case == "ratio":
            s = rng.poisson(3.0, n) + 1.0
            d = {"rev": rng.gamma(2.0, 1.5, n) * s, "s": s}
            m, truth = M.ratio("rev", "s"), 3.0
        else:
            y = rng.integers(0, 2, n)
            d = {"y": y, "s": rng.normal(size=n) + y}
            m, truth = M.roc_auc("y", "s"), stats.norm.cdf(1 / np.sqrt(2))
        res = bootstrap(d, m, n_resamples=B, seed=r, method=method, progress=False)
        lo, hi = res.confidence_interval
        hits += lo <= truth <= hi
    return hits


@pytest.mark.parametrize("case", ["mean", "proportion", "ratio", "auc"])
@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_coverage_binomtest(case, method):
    reps = 200
    hits = _coverage(case, method, reps)
    assert stats.binomtest(hits, reps, 0.95).pvalue > 0.01, (hits, reps)


@pytest.mark.large
@pytest.mark.parametrize("case", ["mean", "proportion", "ratio", "auc"])
@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_coverage_binomtest_large(case, method):
    reps = 1000
    hits = _coverage(case, method, reps, n=400, B=1000)
    assert stats.binomtest(hits, reps, 0.95).pvalue > 0.01, (hits, reps)


# closed-form error-rate interval


@pytest.mark.parametrize("method,sm", [("normal", "normal"), ("wilson", "wilson"), ("clopper-pearson", "beta")])
@pytest.mark.parametrize("errors,n", [(0, 50), (7, 50), (50, 50), (123, 10000), (1, 3)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_error_rate_interval_equals_statsmodels(method, sm, errors, n, confidence):
    ours = error_rate_interval(errors, n, confidence, method=method)
    ref = proportion_confint(errors, n, alpha=1 - confidence, method=sm)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-15)


def test_error_rate_interval_normal_formula_z_258():
    low, high = error_rate_interval(30, 1000, 0.99)
    z = stats.norm.isf(0.005)
    assert abs(z - 2.58) < 0.005
    np.testing.assert_allclose(high - 0.03, z * math.sqrt(0.03 * 0.97 / 1000), rtol=1e-12)


# results and errors


def test_result_object():
    d = make_data(100)
    r = bootstrap(d, M.mean("x"), n_resamples=50, seed=1, progress=False)
    assert isinstance(r, BootstrapResult)
    low, high = r.confidence_interval
    assert low < r.estimate < high
    with pytest.raises(AttributeError):
        r.estimate = 0
    dd = r.to_dict()
    assert dd["n_resamples"] == 50 and dd["confidence_interval"]["low"] == low and dd["n"] == 100
    assert "bootstrap_distribution" not in dd and len(repr(r)) < 400
    assert str(r).startswith("bootstrap: mean(x)") and "B = 50 poisson replicates, seed 1, 100 rows" in str(r)
    tab = bootstrap(d, [M.mean("x"), M.median("x")], n_resamples=50, seed=1, progress=False)
    assert tab.to_pandas().shape[0] == 2


def test_plot():
    import matplotlib

    matplotlib.use("Agg")
    r = bootstrap(make_data(100), M.mean("x"), n_resamples=50, seed=1, progress=False)
    ax = r.plot()
    assert len(ax.lines) == 3


def test_argument_errors():
    d = make_data(50)
    with pytest.raises(TypeError, match="metric"):
        bootstrap(d, np.mean)
    with pytest.raises(ValueError, match="method"):
        bootstrap(d, M.mean("x"), method="student")
    with pytest.raises(ValueError, match="control"):
        bootstrap(d, M.mean("x"), control=1)
    with pytest.raises(ValueError, match="cluster"):
        bootstrap(d, M.roc_auc("y", "score"), cluster="user", method="bca")
    with pytest.raises(ValueError, match="unknown column 'nope'"):
        bootstrap(pa.table(d), M.mean("nope"))
    with pytest.raises(ValueError, match="average_precision"):
        bootstrap(d, M.average_precision("y", "score"), method="bca")
    with pytest.raises(ValueError, match="not a level"):
        bootstrap(d, M.mean("x"), group="seg", control=7, n_resamples=10, progress=False)
    with pytest.raises(ValueError, match="0/1"):
        bootstrap(d, M.roc_auc("x", "score"), n_resamples=10, progress=False)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap(d, M.mean("x"), n_resamples=1)
    reader = pa.table(d).to_reader()
    with pytest.raises(ValueError, match="read once"):
        bootstrap(reader, M.mean("x"), method="bca", n_resamples=10, progress=False)


# command line


def test_cli_bootstrap(tmp_path, capsys):
    import argparse
    import json

    from fastevals._cli.bootstrap import add_parser, parse_metric

    d = make_data(300, seed=14)
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table(d), path)
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["bootstrap", str(path), "-m", "mean(x)", "-m", "accuracy(y, pb) - accuracy(y, pa)",
                              "-m", "quantile(x, 0.9)", "-B", "100", "--seed", "3", "--json"])
    assert args.func(args) == 0
    rows = json.loads(capsys.readouterr().out)
    ref = bootstrap(str(path), [M.mean("x"), M.accuracy("y", "pb") - M.accuracy("y", "pa"), M.quantile("x", 0.9)],
                    n_resamples=100, seed=3, progress=False)
    for row, r in zip(rows, ref):
        assert row["metric"] == r.metric
        ci = row["confidence_interval"]
        assert ci["low"] == r.confidence_interval.low and ci["high"] == r.confidence_interval.high
    args = parser.parse_args(["bootstrap", str(path), "-m", "mean(x)", "--group", "seg", "--control", "0",
                              "-B", "50", "--seed", "5"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "mean(x) [1 - 0]" in out
    # the rows counted per line: each group's own rows, a comparison both groups' (no wrong footer total)
    ref = bootstrap(str(path), M.mean("x"), group="seg", control=0, n_resamples=50, seed=5, progress=False)
    assert out == str(ref) + "\n"
    assert sorted(ref.to_arrow().column("n").to_pylist())[-1] == ref.results[0].n + ref.results[1].n
    args = parser.parse_args(["bootstrap", str(path), "-m", "nonsense(x)"])
    assert args.func(args) == 2
    assert "unknown metric" in capsys.readouterr().err
    assert parse_metric("ratio(x, den) / mean(x)").name == "ratio(x, den) / mean(x)"


def test_categorical_by_segments_equals_twin():
    d = make_data(300, seed=15)
    B = 100
    tab = bootstrap(d, M.proportion("y"), by="seg", n_resamples=B, seed=4, method="bca", progress=False)
    # results come in cell order; cell c, outcome pattern p has the counter key c * 2 + p
    first = [r.segment for r in tab]
    lam = np.array([[np.sum((d["seg"] == s) & (d["y"] == p)) for p in (0, 1)] for s in first], float).ravel()
    counts = kp.poisson_cell_counts(np.uint64(4), 0, B, np.arange(lam.size, dtype=np.uint64), lam)
    counts = counts.reshape(B, len(first), 2)
    for r in tab:
        c = first.index(r.segment)
        np.testing.assert_allclose(r.bootstrap_distribution, counts[:, c, 1] / counts[:, c].sum(1), rtol=RTOL)
        ys = d["y"][d["seg"] == r.segment]
        twin = twin_accel({"y": ys}, lambda dd, w: np.sum(w * dd["y"]) / np.sum(w))
        np.testing.assert_allclose(r.acceleration, twin, rtol=1e-9, atol=1e-15)


def test_multinomial_groups_resample_within_group():
    d = make_data(90, seed=16)
    B = 60
    res = bootstrap(d, M.mean("x"), group="seg", control=0, n_resamples=B, seed=2, resampling="multinomial",
                    progress=False)
    rows = {r.group: r for r in res}
    # replay the draws: cells in result order, each resampled within itself
    first = [r.group for r in res][:3]
    rng = np.random.default_rng(2)
    W = np.zeros((B, 90))
    for s in first:
        idx = np.flatnonzero(d["seg"] == s)
        draws = rng.integers(0, idx.size, size=(B, idx.size))
        W[:, idx] = np.array([np.bincount(r, minlength=idx.size) for r in draws])
    for s in first:
        m = d["seg"] == s
        dist = (W[:, m] @ d["x"][m]) / W[:, m].sum(1)
        np.testing.assert_allclose(rows[s].bootstrap_distribution, dist, rtol=RTOL)
        assert np.all(W[:, m].sum(1) == m.sum())
    np.testing.assert_allclose(rows[(1, 0)].bootstrap_distribution,
                               rows[1].bootstrap_distribution - rows[0].bootstrap_distribution, rtol=RTOL)
