"""Closed-form finalize math: O(cells) NumPy/SciPy on the states, no kernels.

G-test of independence (with Williams' and Yates' corrections), two-sample
z-tests from group moments, sample-ratio-mismatch and multiple-testing
adjustment.
"""

from __future__ import annotations

import numpy as np

from . import _special as special

# fastevals._special, not scipy: scipy.stats' distribution objects cost ~1 ms per call and a second to
# import, scipy.special ~0.1 s of a new process's first answer (chi2.sf is chdtrc, norm.sf(z) is
# ndtr(-z)); _special computes the same functions (tests/test_special.py compares them).


def chi2_sf(x, dof):
    """Chi-square survival function (what scipy.stats.chi2.sf computes)."""
    return special.chdtrc(dof, x)

# ---------------------------------------------------------------------------------------------
# G-test


def expected_counts(observed: np.ndarray) -> np.ndarray:
    """Expected counts under independence for a stack of R x C tables (..., R, C)."""
    rows = observed.sum(axis=-1, keepdims=True)
    cols = observed.sum(axis=-2, keepdims=True)
    n = observed.sum(axis=(-2, -1), keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return rows * cols / n


def g_statistic(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """G = 2 sum O ln(O / E), with 0 ln 0 = 0, over the last two axes."""
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = 2.0 * special.xlogy(observed, observed / expected)
    return terms.sum(axis=(-2, -1))


def yates_adjust(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Move each cell half a unit towards its expected count (never past it)."""
    diff = expected - observed
    return observed + np.minimum(0.5, np.abs(diff)) * np.sign(diff)


def williams_q(observed: np.ndarray) -> np.ndarray:
    """Williams' (1976) correction divisor q for G on R x C tables:
    q = 1 + (n sum 1/r_i - 1)(n sum 1/c_j - 1) / (6 n (R - 1)(C - 1))."""
    r, c = observed.shape[-2:]
    rows = observed.sum(axis=-1)
    cols = observed.sum(axis=-2)
    n = rows.sum(axis=-1)
    with np.errstate(divide="ignore"):
        a = n * (1.0 / rows).sum(axis=-1) - 1.0
        b = n * (1.0 / cols).sum(axis=-1) - 1.0
    return 1.0 + a * b / (6.0 * n * (r - 1) * (c - 1))


# ---------------------------------------------------------------------------------------------
# z-tests from moments


def alternative_pvalue(z, alternative: str):
    if alternative == "two-sided":
        return 2.0 * special.ndtr(-np.abs(z))
    if alternative == "larger":
        return special.ndtr(-z)
    return special.ndtr(z)


def interval(center, se, confidence: float, alternative: str):
    """Normal interval; one-sided alternatives give a one-sided bound (as statsmodels)."""
    if alternative == "two-sided":
        q = special.ndtri(0.5 + confidence / 2.0)
        return center - q * se, center + q * se
    q = special.ndtri(confidence)
    if alternative == "larger":
        return center - q * se, np.full_like(np.asarray(center, dtype=float), np.inf)
    return np.full_like(np.asarray(center, dtype=float), -np.inf), center + q * se


def z_compare(n_c, mean_c, m2_c, n_t, mean_t, m2_t, *, kind, alternative, margin, confidence):
    """Vectorized two-sample comparison of treatment against control.

    Means: Welch (unequal variance) standard error with ddof=1 variances, as
    statsmodels ``CompareMeans.ztest_ind(usevar="unequal")``.
    Proportions: pooled standard error for the test (``proportions_ztest``),
    unpooled (Wald) for the interval (``confint_proportions_2indep``).
    Relative difference: delta method on the ratio of the two means.
    """
    n_c = np.asarray(n_c, dtype=float)
    n_t = np.asarray(n_t, dtype=float)
    diff = mean_t - mean_c
    with np.errstate(invalid="ignore", divide="ignore"):
        if kind == "mean":
            var_c = m2_c / (n_c - 1.0)
            var_t = m2_t / (n_t - 1.0)
            se_mean_c2 = var_c / n_c
            se_mean_t2 = var_t / n_t
            se = np.sqrt(se_mean_c2 + se_mean_t2)
            se_test = se
        else:
            se_mean_c2 = mean_c * (1.0 - mean_c) / n_c
            se_mean_t2 = mean_t * (1.0 - mean_t) / n_t
            se = np.sqrt(se_mean_c2 + se_mean_t2)
            pooled = (mean_c * n_c + mean_t * n_t) / (n_c + n_t)
            se_test = np.sqrt(pooled * (1.0 - pooled) * (1.0 / n_c + 1.0 / n_t))
        z = (diff - margin) / se_test
        pvalue = alternative_pvalue(z, alternative)
        low, high = interval(diff, se, confidence, alternative)
        rel = mean_t / mean_c - 1.0
        rel_se = np.sqrt(se_mean_t2 / mean_c**2 + mean_t**2 * se_mean_c2 / mean_c**4)
        rlow, rhigh = interval(rel, rel_se, confidence, alternative)
    return dict(statistic=z, pvalue=pvalue, difference=diff, ci_low=low, ci_high=high, std_error=se,
                relative_difference=rel, rel_low=rlow, rel_high=rhigh)


# ---------------------------------------------------------------------------------------------
# sample ratio mismatch and multiple testing


def srm_test(sizes: np.ndarray, shares: np.ndarray):
    """Chi-square goodness of fit of group sizes to the expected shares."""
    sizes = np.asarray(sizes, dtype=float)
    expected = shares / shares.sum() * sizes.sum()
    statistic = float(((sizes - expected) ** 2 / expected).sum())
    return statistic, float(chi2_sf(statistic, sizes.size - 1))


def adjust_pvalues(p: np.ndarray, method: str | None) -> np.ndarray:
    """Holm (step-down FWER) or Benjamini-Hochberg (FDR) adjusted p-values.

    NaN p-values (rows that could not be tested) stay NaN and do not count
    towards the number of hypotheses.
    """
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    q = p[ok]
    m = q.size
    if method is None or m == 0:
        out[ok] = q
        return out
    order = np.argsort(q, kind="mergesort")
    sorted_p = q[order]
    if method == "holm":
        adj = np.maximum.accumulate((m - np.arange(m)) * sorted_p)
    elif method == "bh":
        adj = np.minimum.accumulate(m / np.arange(m, 0, -1) * sorted_p[::-1])[::-1]
    else:
        raise AssertionError(method)
    res = np.empty(m)
    res[order] = np.minimum(adj, 1.0)
    out[ok] = res
    return out
