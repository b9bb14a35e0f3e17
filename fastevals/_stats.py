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


def _two_product(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a * b`` as ``p + e`` exactly (Dekker's product with Veltkamp's split; no FMA needed)."""
    p = a * b
    split = 134217729.0  # 2**27 + 1
    ca, cb = split * a, split * b
    ah = ca - (ca - a)
    bh = cb - (cb - b)
    al, bl = a - ah, b - bh
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, e


def _xlog1px_minus_x(d: np.ndarray) -> np.ndarray:
    """``(1 + d) log(1 + d) - d`` for d >= -1, accurate also where d is tiny (a series there)."""
    d = np.asarray(d, dtype=np.float64)
    out = np.empty_like(d)
    small = np.abs(d) < 0.05
    with np.errstate(invalid="ignore", divide="ignore"):
        big = ~small
        out[big] = (1.0 + d[big]) * np.log1p(d[big]) - d[big]
    out[d == -1.0] = 1.0  # O = 0: 0 ln 0 - (0 - E) = E
    ds = d[small]
    # sum_{k>=2} (-1)^k d^k / (k (k - 1)); |d| < 0.05: 14 terms reach 1e-19 relative
    acc = np.zeros_like(ds)
    power = ds * ds
    for k in range(2, 16):
        acc += (power if k % 2 == 0 else -power) / (k * (k - 1))
        power = power * ds
    out[small] = acc
    return out


def g_statistic(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """G = 2 sum O ln(O / E), with 0 ln 0 = 0, over the last two axes.

    Written as ``2 sum [E f((O - E) / E) + (O - E)]`` with ``f(d) = (1 + d) ln(1 + d) - d``
    (``sum (O - E)`` is 0 for the independence expectation), so that huge, nearly equal
    counts keep their digits: ``O ln(O / E)`` of 1e12-counts cancels to a few digits in
    float64 (scipy's G for [[1e12, 2e12], [1e12 + 1e6, 2e12]] is 0.333555, the exact value
    0.333333...). When ``expected`` is the independence expectation of ``observed`` (the
    usual case), ``O - E = (O n - r c) / n`` is computed from exact products of the margins.
    """
    observed = np.asarray(observed, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    rows = observed.sum(axis=-1, keepdims=True)
    cols = observed.sum(axis=-2, keepdims=True)
    n = observed.sum(axis=(-2, -1), keepdims=True)
    rc = rows * cols
    with np.errstate(invalid="ignore", divide="ignore"):
        margins_fit = np.allclose(rc / n, expected, rtol=1e-12, atol=0.0, equal_nan=True)
        if margins_fit:
            p1, e1 = _two_product(observed, np.broadcast_to(n, observed.shape))
            p2, e2 = _two_product(np.broadcast_to(rows, observed.shape), np.broadcast_to(cols, observed.shape))
            num = (p1 - p2) + (e1 - e2)  # O n - r c, nearly exact
            # sum (O - E) is exactly 0 here: leaving it out also leaves out its rounding
            # (1e-16 of each |O - E|, which is most of G's error for huge counts)
            diff = np.zeros_like(observed)
            d = num / rc
        else:
            diff = observed - expected
            d = diff / expected
        terms = expected * _xlog1px_minus_x(d) + diff
    terms = np.where(expected > 0, terms, np.where(observed == 0, 0.0, np.inf))
    return 2.0 * terms.sum(axis=(-2, -1))


def yates_adjust(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Move each cell half a unit towards its expected count (never past it)."""
    diff = expected - observed
    return observed + np.minimum(0.5, np.abs(diff)) * np.sign(diff)


def williams_q(observed: np.ndarray) -> np.ndarray:
    """Williams' (1976) correction divisor q for G on R x C tables:
    q = 1 + (n sum 1/r_i - 1)(n sum 1/c_j - 1) / (6 n (R - 1)(C - 1)).
    """
    r, c = observed.shape[-2:]
    rows = observed.sum(axis=-1)
    cols = observed.sum(axis=-2)
    n = rows.sum(axis=-1)
    with np.errstate(divide="ignore"):
        a = n * (1.0 / rows).sum(axis=-1) - 1.0
        b = n * (1.0 / cols).sum(axis=-1) - 1.0
    return 1.0 + a * b / (6.0 * n * (r - 1) * (c - 1))


# ---------------------------------------------------------------------------------------------
# proportions


def wilson_interval(phat, n, z):
    """Wilson's score interval ``(low, high)`` of a proportion ``phat`` from ``n`` trials (arrays broadcast).

    Never degenerate at 0 or 1: for ``phat = 0`` the upper bound is ``z^2 / (n + z^2)``.
    Equal to ``statsmodels.stats.proportion.proportion_confint(method="wilson")``.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        z2 = z * z
        denom = 1.0 + z2 / n
        center = (phat + z2 / (2.0 * n)) / denom
        half = z / denom * np.sqrt(phat * (1.0 - phat) / n + z2 / (4.0 * n * n))
    # at phat = 0 (or 1) the bound is 0 (1) exactly; rounding must not put it a hair outside
    low = np.where(phat <= 0.0, 0.0, np.clip(center - half, 0.0, 1.0))
    high = np.where(phat >= 1.0, 1.0, np.clip(center + half, 0.0, 1.0))
    return low, high


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
