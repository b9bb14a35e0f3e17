"""Finalize math of a model comparison (NumPy/SciPy; O(K^2 + B K^2), never O(N) except AUC's sort).

Every metric is a smooth function ``g`` of the features' means ``m`` (see
:mod:`fastevals._compare.state`).  Analytic covariance of the models' metrics:
``J Sigma J'`` with ``J`` the Jacobian of ``g`` at ``m`` (the delta method; for
means, accuracy, MSE and MAE ``J = I``) and ``Sigma`` the covariance of the
feature means: ``M2 / ((n - 1) n)`` (the paired-difference standard error of
Miller 2024, eq. 6), or with clusters the CR1 cluster-robust covariance
``G / (G - 1) * sum_g u_g u_g' / n^2`` with ``u_g = S_g - n_g m`` (Cameron &
Miller 2015; statsmodels' ``cov_type="cluster"`` of OLS on a constant).  The
bootstrap replicates' metrics are ``g(S_b / W_b)``.

Power (Miller 2024, section 5): with the paired difference's standard error
``se`` on ``n`` items, the minimum detectable difference at level ``alpha``
(two-sided) and power ``1 - beta`` is ``(z_{1-alpha/2} + z_{1-beta}) se``, and
the items needed for a difference ``delta`` are ``n ((z_{1-alpha/2} + z_{1-beta})
se / delta)^2`` (``se^2 n`` estimates the per-item variance of the difference,
``var_a + var_b - 2 cov_ab``, clustering included).
"""

from __future__ import annotations

import warnings

import numpy as np
import pyarrow as pa
from scipy import special, stats

from .._stats import adjust_pvalues

#: power used for the minimum detectable difference column
MDD_POWER = 0.8


def metric_values(metric: str, M: np.ndarray, K: int) -> np.ndarray:
    """The models' metrics (``..., K``) from feature means ``M`` (``..., F``)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        if metric == "rmse":
            return np.sqrt(M[..., :K])
        if metric == "f1":
            tp, pp, lab = M[..., :K], M[..., K:2 * K], M[..., 2 * K:2 * K + 1]
            return 2.0 * tp / (pp + lab)
        return M[..., :K].copy()


def jacobian(metric: str, m: np.ndarray, K: int) -> np.ndarray:
    """``d g_k / d m_f`` at the feature means ``m`` (K x F)."""
    F = m.shape[0]
    J = np.zeros((K, F))
    idx = np.arange(K)
    with np.errstate(invalid="ignore", divide="ignore"):
        if metric == "rmse":
            J[idx, idx] = 0.5 / np.sqrt(m[:K])
        elif metric == "f1":
            tp, pp, lab = m[:K], m[K:2 * K], m[2 * K]
            d = pp + lab
            J[idx, idx] = 2.0 / d
            J[idx, K + idx] = -2.0 * tp / d**2
            J[:, 2 * K] = -2.0 * tp / d**2
        else:
            J[idx, idx] = 1.0
    return J


def feature_covariance(st) -> tuple[np.ndarray, int | None]:
    """Covariance of the feature means (iid, or CR1 over clusters) and the number of clusters."""
    n = st.n
    if st.cluster is None:
        with np.errstate(invalid="ignore", divide="ignore"):
            return st.m2 / ((n - 1.0) * n), None
    G = st.cluster_counts.shape[0]
    keep = st.cluster_counts > 0
    U = st.cluster_sums[keep] - np.outer(st.cluster_counts[keep], st.mean)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (U.T @ U) * (G / (G - 1.0)) / float(n) ** 2, int(G)


def auc_estimates(st):
    """Point AUC of each model and, with ``n_resamples``, its paired bootstrap replicates (B x K)."""
    from .._kernels import bootstrap as kb

    X, y, keys, K = st.rows_x, st.rows_y, st.rows_key, st.k
    n = y.shape[0]
    x = np.ascontiguousarray(X.T.reshape(-1))
    cc = np.repeat(np.arange(K), n)
    order = np.lexsort((x, cc))
    xs = np.ascontiguousarray(x[order])
    rows = order % n
    ys = np.ascontiguousarray(y[rows])
    cs = cc[order]
    bounds = np.searchsorted(cs, np.arange(K + 1)).astype(np.int64)
    start = np.ones(xs.shape[0], dtype=bool)
    start[1:] = (xs[1:] != xs[:-1]) | (cs[1:] != cs[:-1])
    starts = np.flatnonzero(start)
    if starts.shape[0] == xs.shape[0]:
        tie_end = np.empty(0, dtype=np.int64)
    else:
        ends = np.append(starts[1:], xs.shape[0])
        tie_end = np.repeat(ends, np.diff(np.append(starts, xs.shape[0]))).astype(np.int64)
    est = kb.sorted_weighted(0, np.ones((1, xs.shape[0])), xs, ys, tie_end, bounds, 0.0)[0]
    if not st.n_resamples:
        return est, np.zeros((0, K))
    k = np.ascontiguousarray(keys[rows], dtype=np.uint64)
    boot = kb.sorted_poisson(0, np.uint64(st.seed), st.n_resamples, xs, ys, tie_end, k,
                             rows.astype(np.int64), bounds, 0.0)
    return est, boot


def percentile_interval(dist: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval along axis 0, replicates with NaN left out."""
    a = (1.0 - confidence) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanquantile(dist, [a, 1.0 - a], axis=0)
    return low, high


def _nanstd(a: np.ndarray) -> np.ndarray:
    """Standard deviation along axis 0 (ddof=1), NaN replicates left out (all-NaN columns give NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanstd(a, axis=0, ddof=1)


def pair_indices(K: int) -> tuple[np.ndarray, np.ndarray]:
    ia, ib = np.triu_indices(K, k=1)
    return ia, ib


def mcnemar_pvalues(n01: np.ndarray, n10: np.ndarray) -> dict[str, np.ndarray]:
    """Exact (binomial), mid-p and chi-square (with and without continuity correction) McNemar p-values.

    ``n01``: rows model a got right and b wrong; ``n10``: the reverse.  As statsmodels'
    ``mcnemar(table, exact=True)`` / ``exact=False`` (``correction=True`` / ``False``).
    """
    n01 = np.asarray(n01, dtype=np.float64)
    n10 = np.asarray(n10, dtype=np.float64)
    m = n01 + n10
    lo = np.minimum(n01, n10)
    with np.errstate(invalid="ignore", divide="ignore"):
        exact = np.minimum(1.0, 2.0 * stats.binom.cdf(lo, m, 0.5))
        midp = np.minimum(1.0, 2.0 * stats.binom.cdf(lo, m, 0.5) - stats.binom.pmf(lo, m, 0.5))
        chi2_cc = (np.abs(n01 - n10) - 1.0) ** 2 / m
        chi2 = (n01 - n10) ** 2 / m
    exact = np.where(m == 0, 1.0, exact)
    midp = np.where(m == 0, 1.0, midp)
    return dict(statistic=lo, exact=exact, midp=midp, chi2_statistic=chi2_cc, chi2=stats.chi2.sf(chi2_cc, 1),
                chi2_statistic_nocorrection=chi2, chi2_nocorrection=stats.chi2.sf(chi2, 1))


def finalize_comparison(st):
    from .result import CompareModelsResult

    K, metric, conf = st.k, st.metric, st.confidence
    notes: list[str] = []
    n = st.n
    zq = special.ndtri(0.5 + conf / 2.0)
    if metric == "auc":
        est, boot = auc_estimates(st)
        C = np.full((K, K), np.nan)
        n_clusters = None if st.cluster is None else len(st.clusters)
        if st.rows_y.size and (st.rows_y.min() == st.rows_y.max()):
            notes.append("AUC undefined: the label has one class only (it needs positives and negatives)")
        notes.append("AUC: no analytic standard error here (DeLong's is not implemented); "
                     "intervals and tests come from the paired bootstrap")
    else:
        est = metric_values(metric, st.mean, K)
        Sigma, n_clusters = feature_covariance(st)
        J = jacobian(metric, st.mean, K)
        C = J @ Sigma @ J.T
        boot = np.zeros((0, K))
        if st.n_resamples:
            with np.errstate(invalid="ignore", divide="ignore"):
                boot = metric_values(metric, st.boot_sums / st.boot_weights[:, None].astype(np.float64), K)
    if n < 2:
        notes.append("one row: no standard error can be estimated")
    if n_clusters is not None and n_clusters < 2:
        notes.append("one cluster: the cluster-robust standard error is undefined")
    if metric == "f1":
        bad = ~np.isfinite(est)
        if bad.any():
            notes.append("F1 undefined (no predicted and no actual positives) for: "
                         + ", ".join(st.models[k] for k in np.flatnonzero(bad)))
    se = np.sqrt(np.maximum(np.diag(C), 0.0))
    B = boot.shape[0]
    if B:
        blow, bhigh = percentile_interval(boot, conf)
        bse = _nanstd(boot) if B > 1 else np.full(K, np.nan)
    else:
        blow = bhigh = bse = np.full(K, np.nan)
    alow, ahigh = est - zq * se, est + zq * se
    low, high = (blow, bhigh) if B else (alow, ahigh)
    method = "percentile" if B else ("cluster-robust normal" if n_clusters is not None else "normal")
    # ranking: 1 = best
    sign = -1.0 if st.higher_is_better else 1.0
    rank = stats.rankdata(np.where(np.isnan(est), np.inf, sign * est), method="min") if K > 1 else np.ones(1)
    if B and K > 1:
        vals = np.where(np.isnan(boot), np.inf, sign * boot)
        ranks = stats.rankdata(vals, method="min", axis=1)
        rank_low, rank_high = np.quantile(ranks, [(1 - conf) / 2, (1 + conf) / 2], axis=0, method="lower")
        p_best = (ranks == 1).mean(axis=0)
        mean_rank = ranks.mean(axis=0)
    else:
        rank_low = rank_high = p_best = mean_rank = np.full(K, np.nan)
    models_table = pa.table({
        "model": pa.array(st.models, pa.string()),
        "estimate": est, "standard_error": se, "low": low, "high": high,
        "analytic_low": alow, "analytic_high": ahigh, "bootstrap_se": bse,
        "rank": np.asarray(rank, dtype=np.int64), "mean_rank": mean_rank,
        "rank_low": rank_low, "rank_high": rank_high, "p_best": p_best,
    })
    # pairs
    ia, ib = pair_indices(K)
    diff = est[ia] - est[ib]
    var = C[ia, ia] + C[ib, ib] - 2.0 * C[ia, ib]
    dse = np.sqrt(np.maximum(var, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = diff / dse
    p = 2.0 * special.ndtr(-np.abs(z))
    test_method = "paired z"
    n01 = n10 = None
    if st.metric == "accuracy":
        both = st.both
        n01 = np.diag(both)[ia] - both[ia, ib]
        n10 = np.diag(both)[ib] - both[ia, ib]
        if st.test == "mcnemar":
            p = mcnemar_pvalues(n01, n10)["exact"]
            test_method = "McNemar exact"
    if B:
        bd = boot[:, ia] - boot[:, ib]
        plow, phigh = percentile_interval(bd, conf)
        pbse = _nanstd(bd) if B > 1 else np.full(ia.shape[0], np.nan)
        if metric == "auc":
            dse = pbse
            with np.errstate(invalid="ignore", divide="ignore"):
                p = 2.0 * special.ndtr(-np.abs(diff / dse))
            test_method = "paired bootstrap z"
    else:
        plow, phigh = diff - zq * dse, diff + zq * dse
        pbse = np.full(ia.shape[0], np.nan)
    p = np.where(np.isfinite(p), p, np.nan)
    same = dse == 0
    if same.any():
        notes.append(f"{int(same.sum())} pair(s) with a zero standard error (identical per-item values): "
                     "no test, p-value NaN")
    padj = adjust_pvalues(p, None if st.adjust == "none" else st.adjust)
    mdd = (zq + special.ndtri(MDD_POWER)) * dse
    cols = {
        "model_a": pa.array([st.models[i] for i in ia], pa.string()),
        "model_b": pa.array([st.models[i] for i in ib], pa.string()),
        "estimate": diff, "standard_error": dse, "low": plow, "high": phigh,
        "analytic_low": diff - zq * dse, "analytic_high": diff + zq * dse, "bootstrap_se": pbse,
        "pvalue": p, "pvalue_adjusted": padj, "mdd": mdd,
    }
    if n01 is not None:
        cols["n_a_only"] = pa.array(n01, pa.int64())
        cols["n_b_only"] = pa.array(n10, pa.int64())
    pairs = pa.table(cols)
    if K == 1:
        e, s, ci, pv, md = est[0], se[0], (low[0], high[0]), None, None
    elif K == 2:
        e, s, ci, pv, md = diff[0], dse[0], (plow[0], phigh[0]), p[0], mdd[0]
    else:
        e = s = ci = pv = md = None
    return CompareModelsResult.build(
        metric=metric, models=tuple(st.models), estimate=e, standard_error=s, ci=ci, pvalue=pv,
        confidence=conf, method=method, test=test_method, adjust=st.adjust, n=n, n_dropped=st.n_dropped,
        n_clusters=n_clusters, n_resamples=B, seed=st.seed, keyed_by=st.keyed_by, mdd=md,
        higher_is_better=st.higher_is_better, table=pairs if K > 1 else models_table,
        models_table=models_table, notes=tuple(notes),
    )
