"""Finalize math of the fairness analysis: NumPy/SciPy on confusion counts, no kernels.

Every function takes confusion counts shaped ``(..., G, 2, 2)``: groups, then the
label (0, 1), then the prediction (0, 1); leading axes (bootstrap replicates,
segments, thresholds) are carried through.
"""

from __future__ import annotations

import numpy as np

from .. import _special as special
from .._stats import chi2_sf, expected_counts, g_statistic

#: the rates of the per-group table, in order
RATES = ("selection_rate", "true_positive_rate", "false_positive_rate", "precision", "accuracy")
#: the disparities, in order
DISPARITIES = ("demographic_parity_difference", "demographic_parity_ratio", "equal_opportunity_difference",
               "equalized_odds_difference")


def rate_parts(conf: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(successes, trials) of each rate, per group: what the rate and its Wilson interval are made of."""
    conf = np.asarray(conf)
    tn, fp = conf[..., 0, 0], conf[..., 0, 1]
    fn, tp = conf[..., 1, 0], conf[..., 1, 1]
    n = tn + fp + fn + tp
    return {
        "selection_rate": (tp + fp, n),
        "true_positive_rate": (tp, tp + fn),
        "false_positive_rate": (fp, fp + tn),
        "precision": (tp, tp + fp),
        "accuracy": (tp + tn, n),
    }


def ratio(k, n) -> np.ndarray:
    """``k / n`` as float, NaN where ``n == 0`` (no warning)."""
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, k / np.where(n > 0, n, 1.0), np.nan)


def wilson(k, n, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a proportion ``k / n`` (NaN where ``n == 0``).

    Wilson, E. B. (1927), "Probable inference, the law of succession, and
    statistical inference", JASA 22, 209-212.
    """
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    z = float(special.ndtri(0.5 + confidence / 2.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1.0 + z * z / n
        center = (p + z * z / (2.0 * n)) / denom
        half = z * np.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n)) / denom
        low = np.where(n > 0, np.clip(center - half, 0.0, 1.0), np.nan)
        high = np.where(n > 0, np.clip(center + half, 0.0, 1.0), np.nan)
    return low, high


def _spread(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(max, min) over the last axis, ignoring NaN (groups where the rate is undefined); NaN
    when no group has it.
    """
    ok = ~np.isnan(values)
    any_ok = ok.any(axis=-1)
    hi = np.where(ok, values, -np.inf).max(axis=-1)
    lo = np.where(ok, values, np.inf).min(axis=-1)
    return np.where(any_ok, hi, np.nan), np.where(any_ok, lo, np.nan)


def disparities(conf: np.ndarray) -> dict[str, np.ndarray]:
    """The four disparities of confusion counts ``(..., G, 2, 2)`` (as fairlearn defines them).

    * demographic parity difference: max - min of the groups' selection rates;
    * demographic parity ratio: min / max of the same (the "four-fifths rule" ratio);
    * equal opportunity difference: max - min of the true positive rates;
    * equalized odds difference: the larger of the TPR and FPR differences.

    Groups where a rate is undefined (no positives for the TPR, no negatives for the FPR)
    are left out of that rate's max and min.
    """
    parts = rate_parts(conf)
    sel = ratio(*parts["selection_rate"])
    tpr = ratio(*parts["true_positive_rate"])
    fpr = ratio(*parts["false_positive_rate"])
    s_hi, s_lo = _spread(sel)
    t_hi, t_lo = _spread(tpr)
    f_hi, f_lo = _spread(fpr)
    tpr_diff = t_hi - t_lo
    fpr_diff = f_hi - f_lo
    with np.errstate(invalid="ignore", divide="ignore"):
        dp_ratio = np.where(s_hi > 0, s_lo / np.where(s_hi > 0, s_hi, 1.0), np.nan)
    return {
        "demographic_parity_difference": s_hi - s_lo,
        "demographic_parity_ratio": dp_ratio,
        "equal_opportunity_difference": tpr_diff,
        # NaN only when both are undefined; one undefined side leaves the other
        "equalized_odds_difference": np.fmax(tpr_diff, fpr_diff),
    }


def g_independence(table: np.ndarray) -> tuple[float, float, int]:
    """G-test of independence of an R x C table: ``(G, pvalue, dof)``.

    Empty rows and columns are left out; with one non-empty column (every
    prediction the same) there is nothing to test: ``G = 0``, ``p = 1``.
    As ``scipy.stats.chi2_contingency(table, correction=False, lambda_="log-likelihood")``
    on the non-empty rows and columns.
    """
    t = np.asarray(table, dtype=np.float64)
    t = t[t.sum(axis=1) > 0][:, t.sum(axis=0) > 0]
    r, c = t.shape
    dof = (r - 1) * (c - 1)
    if r < 2:
        return float("nan"), float("nan"), 0
    if dof == 0:
        return 0.0, 1.0, 0
    g = float(g_statistic(t, expected_counts(t)))
    return g, float(chi2_sf(g, dof)), dof


def disparity_tests(conf: np.ndarray) -> dict[str, float]:
    """p-values of the disparities from one set of confusion counts ``(G, 2, 2)``.

    * demographic parity (difference and ratio): G-test of independence of prediction x group;
    * equal opportunity: the same G-test among the rows with label 1;
    * equalized odds: the G-test of conditional independence of prediction and group given
      the label: the sum of the G statistics among label-0 and among label-1 rows, with the
      sum of their degrees of freedom.
    """
    conf = np.asarray(conf)
    _, p_dp, _ = g_independence(conf.sum(axis=1))
    g1, p_eo, d1 = g_independence(conf[:, 1, :])
    g0, _, d0 = g_independence(conf[:, 0, :])
    gs = [g for g, d in ((g0, d0), (g1, d1)) if not np.isnan(g)]
    dof = d0 + d1
    if not gs:
        p_odds = float("nan")
    elif dof == 0:
        p_odds = 1.0
    else:
        p_odds = float(chi2_sf(sum(gs), dof))
    return {
        "demographic_parity_difference": p_dp,
        "demographic_parity_ratio": p_dp,
        "equal_opportunity_difference": p_eo,
        "equalized_odds_difference": p_odds,
    }


def percentile_interval(reps: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Percentile interval over axis 0 of bootstrap replicates, NaN replicates left out.

    Returns ``(low, high, n_undefined)`` (replicates where the statistic was undefined).
    """
    alpha = 1.0 - confidence
    bad = np.isnan(reps)
    n_bad = bad.sum(axis=0)
    if not bad.any():
        q = np.quantile(reps, [alpha / 2.0, 1.0 - alpha / 2.0], axis=0)
        return q[0], q[1], n_bad
    low = np.full(reps.shape[1:], np.nan)
    high = np.full(reps.shape[1:], np.nan)
    flat = reps.reshape(reps.shape[0], -1)
    lo_f, hi_f = low.reshape(-1), high.reshape(-1)
    for j in range(flat.shape[1]):
        v = flat[:, j][~np.isnan(flat[:, j])]
        if v.size:
            lo_f[j], hi_f[j] = np.quantile(v, [alpha / 2.0, 1.0 - alpha / 2.0])
    return low, high, n_bad


def confusion_at(cells: np.ndarray, j: int | None) -> np.ndarray:
    """Confusion counts ``(..., 2, 2)`` from cells ``(..., 2, K)`` (label x prediction-or-bin).

    ``j`` None: the last axis is the prediction (K = 2).  Else the last axis holds
    score bins over sorted cut points and the prediction at cut ``j`` is
    ``bin > j`` (score >= cut j).
    """
    if j is None:
        return cells
    neg = cells[..., : j + 1].sum(axis=-1)
    pos = cells[..., j + 1:].sum(axis=-1)
    return np.stack([neg, pos], axis=-1)


def confusion_sweep(cells: np.ndarray) -> np.ndarray:
    """Confusion counts at every cut ``(..., J, G, 2, 2)`` from score-bin cells ``(..., G, 2, J + 1)``."""
    tail = np.cumsum(cells[..., ::-1], axis=-1)[..., ::-1]  # tail[k] = sum of bins >= k
    total = tail[..., :1]
    pos = tail[..., 1:]  # cut j: bins > j
    neg = total - pos
    out = np.stack([neg, pos], axis=-1)  # (..., G, 2, J, 2)
    return np.moveaxis(out, -2, -4)  # (..., J, G, 2, 2)
