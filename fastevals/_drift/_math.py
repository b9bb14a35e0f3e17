"""Finalize math for drift: NumPy/SciPy on two profiles' counts (or kept values), no kernels
except the exact KS/Wasserstein merge walk.

Kolmogorov-Smirnov
------------------
* exact mode (values kept): the statistic is the largest gap between the two right-continuous
  empirical CDFs over the distinct values (as ``scipy.stats.ks_2samp``); the p-value is
  ``scipy.stats.ks_2samp``'s own ``method="auto"``: for ``max(n1, n2) <= 10000`` it calls
  ``ks_2samp`` on the (small) samples, whose exact path is used; otherwise Smirnov's
  asymptotic ``scipy.stats.kstwo.sf(D, round(n1 n2 / (n1 + n2)))``, which is the formula
  ``ks_2samp`` uses there.
* profile mode (binned): both CDFs are known exactly at every edge, so ``D_edges``, the largest
  gap there, is a lower bound of the exact statistic; on a bin the exact gap is at most
  ``max(B_r - A_c, B_c - A_r)`` (A, B: CDF at the bin's ends), which gives an upper bound
  ``D_upper <= D_edges + max bin mass`` (of either sample). ``statistic`` is ``D_edges``,
  ``ks_error_bound = D_upper - D_edges``; the p-value is the asymptotic one at ``D_edges``.

Wasserstein-1: exact mode integrates ``|F_r - F_c|`` over the merged sorted values (as
``scipy.stats.wasserstein_distance``); profile mode integrates the piecewise-linear CDFs
(uniform within a bin, tail bins spanning to the sample's min / max); its error is at most
``sum_bins width * (p_r + p_c)`` (``wasserstein_error_bound``).

Distances (PSI, Jensen-Shannon, Hellinger) are computed on ``distance_bins`` coarse bins: the
reference's fine bins grouped into (approximate) reference quantile bins, so they are the
same in exact and profile mode; categorical columns use the categories. Jensen-Shannon is
the distance (square root of the divergence) in base 2, in [0, 1], as
``scipy.spatial.distance.jensenshannon(p, q, base=2)``; PSI replaces empty bins' proportions
by ``PSI_EPSILON``; Hellinger is ``sqrt(1 - sum sqrt(p q))``.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _stats

#: proportions of empty bins in PSI (as Evidently and most monitoring tools)
PSI_EPSILON = 1e-4
#: scipy.stats.ks_2samp's MAX_AUTO_N: its "auto" method is exact up to this many rows per sample
KS_EXACT_MAX_N = 10_000


def ks_asymptotic_pvalue(d: float, n1: int, n2: int) -> float:
    """Two-sided asymptotic p-value as ``scipy.stats.ks_2samp(method="asymp")``."""
    from scipy.stats import kstwo

    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = m * n / (m + n)
    return float(np.clip(kstwo.sf(d, np.round(en)), 0.0, 1.0))


def ks_exact(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float, str | None]:
    """(statistic, p-value, Wasserstein-1, note) of two sorted samples, equal to scipy's
    ``ks_2samp`` (method "auto") and ``wasserstein_distance``. The note says when scipy's exact
    p-value failed and its asymptotic one was used instead (scipy warns; the note replaces it).
    """
    import warnings

    from .._kernels.drift import ks_wasserstein_sorted

    d, _, w = ks_wasserstein_sorted(np.ascontiguousarray(a, dtype=np.float64),
                                    np.ascontiguousarray(b, dtype=np.float64))
    note = None
    if max(a.size, b.size) <= KS_EXACT_MAX_N:
        from scipy.stats import ks_2samp

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            p = float(ks_2samp(a, b).pvalue)
        if caught:
            note = f"scipy's exact KS p-value failed ({caught[0].message}); its asymptotic p-value is used"
    else:
        p = ks_asymptotic_pvalue(d, a.size, b.size)
    return float(d), p, float(w), note


def ks_binned(cr: np.ndarray, cc: np.ndarray) -> tuple[float, float]:
    """(D at the edges, D upper bound) of two fine-bin count vectors on the same edges."""
    fr = np.concatenate([[0.0], np.cumsum(cr) / cr.sum()])
    fc = np.concatenate([[0.0], np.cumsum(cc) / cc.sum()])
    d_low = float(np.max(np.abs(fr - fc)))
    # on bin j the CDFs range over [f[j], f[j + 1]]
    up = np.maximum(fr[1:] - fc[:-1], fc[1:] - fr[:-1])
    return d_low, max(d_low, float(up.max()))


def _cdf_knots(edges, counts, lo, hi):
    n = counts.sum()
    cum = np.cumsum(counts) / n  # cum[j]: mass of bins 0..j
    x, f = ([], []) if counts[0] == 0 else ([min(lo, edges[0])], [0.0])
    # F at edges[0] (after the low tail), at edges[j] (after inner bin j), j = 1..K
    x.extend(edges)
    f.extend(cum[:-1])
    if counts[-1]:
        x.append(max(hi, edges[-1]))
        f.append(1.0)
    return np.asarray(x, dtype=float), np.asarray(f, dtype=float)


def wasserstein_binned(edges, cr, cc, range_r, range_c) -> tuple[float, float]:
    """(W1 of the piecewise-linear CDFs, error bound) on the same fine edges."""
    edges = np.asarray(edges, dtype=float)
    xr, fr = _cdf_knots(edges, cr, *range_r)
    xc, fc = _cdf_knots(edges, cc, *range_c)
    x = np.union1d(xr, xc)
    gr = np.interp(x, xr, fr, left=0.0, right=1.0)
    gc = np.interp(x, xc, fc, left=0.0, right=1.0)
    d = gr - gc
    w = np.diff(x)
    d0, d1 = d[:-1], d[1:]
    a0, a1 = np.abs(d0), np.abs(d1)
    same = d0 * d1 >= 0
    with np.errstate(invalid="ignore", divide="ignore"):
        area = np.where(same, (a0 + a1) / 2.0, (a0 * a0 + a1 * a1) / (2.0 * (a0 + a1)))
    total = float(np.sum(np.nan_to_num(area) * w))
    bound = float(_spread(edges, cr, range_r) + _spread(edges, cc, range_c))
    return total, bound


def _spread(edges, counts, rng) -> float:
    """Sum over bins of width * mass: how far a binned CDF's integral can be off."""
    p = counts / counts.sum()
    widths = np.concatenate([[max(edges[0] - rng[0], 0.0)], np.diff(edges), [max(rng[1] - edges[-1], 0.0)]])
    return float(np.sum(widths * p))


def coarse_groups(ref_counts: np.ndarray, n_groups: int) -> np.ndarray:
    """Group ids (0..G-1) of the fine bins: approximate quantile bins of the reference."""
    n = ref_counts.sum()
    cum_before = np.concatenate([[0], np.cumsum(ref_counts)[:-1]]) / n
    mid = cum_before + ref_counts / (2.0 * n)
    g = np.minimum((mid * n_groups).astype(np.int64), n_groups - 1)
    _, ids = np.unique(g, return_inverse=True)
    return ids.reshape(-1)


def distances(cr: np.ndarray, cc: np.ndarray) -> tuple[float, float, float]:
    """(PSI, Jensen-Shannon distance base 2, Hellinger) of two count vectors."""
    p = cr / cr.sum()
    q = cc / cc.sum()
    pe = np.where(p > 0, p, PSI_EPSILON)
    qe = np.where(q > 0, q, PSI_EPSILON)
    psi = float(np.sum((qe - pe) * np.log(qe / pe)))
    m = (p + q) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        kl_p = np.where(p > 0, p * np.log(p / m), 0.0).sum()
        kl_q = np.where(q > 0, q * np.log(q / m), 0.0).sum()
    js = math.sqrt(max((kl_p + kl_q) / 2.0, 0.0) / math.log(2.0))
    hell = math.sqrt(max(1.0 - float(np.sum(np.sqrt(p * q))), 0.0))
    return psi, js, hell


def g_test(cr: np.ndarray, cc: np.ndarray, test: str = "g") -> tuple[float, float, int]:
    """G-test (or Pearson chi-square) of the 2 x L table of two count vectors."""
    keep = (cr + cc) > 0
    obs = np.stack([cr[keep], cc[keep]]).astype(float)
    dof = obs.shape[1] - 1
    if dof < 1:
        return 0.0, float("nan"), 0
    exp = _stats.expected_counts(obs)
    if test == "g":
        stat = float(_stats.g_statistic(obs, exp))
    else:
        stat = float(((obs - exp) ** 2 / exp).sum())
    return stat, float(_stats.chi2_sf(stat, dof)), dof


def auc_binned(neg: np.ndarray, pos: np.ndarray) -> tuple[float, float]:
    """AUC = P(score+ > score-) + P(tie) / 2 with scores in the same fine bin counted as ties,
    and its Hanley-McNeil (1982) standard error.
    """
    n0, n1 = float(neg.sum()), float(pos.sum())
    if n0 == 0 or n1 == 0:
        return float("nan"), float("nan")
    below = np.concatenate([[0.0], np.cumsum(neg)[:-1]])
    auc = float(np.sum(pos * (below + neg / 2.0)) / (n0 * n1))
    q1 = auc / (2.0 - auc)
    q2 = 2.0 * auc * auc / (1.0 + auc)
    var = (auc * (1 - auc) + (n1 - 1) * (q1 - auc * auc) + (n0 - 1) * (q2 - auc * auc)) / (n0 * n1)
    return auc, math.sqrt(max(var, 0.0))


def delong(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """AUC of ``scores`` for 0/1 ``y`` and its DeLong (1988) standard error (midranks, O(n log n))."""
    from scipy.stats import rankdata

    pos = scores[y == 1]
    neg = scores[y == 0]
    m, n = pos.size, neg.size
    if m == 0 or n == 0:
        return float("nan"), float("nan")
    r_all = rankdata(np.concatenate([pos, neg]))
    r_pos = rankdata(pos)
    r_neg = rankdata(neg)
    v10 = (r_all[:m] - r_pos) / n  # per positive: share of negatives below (ties half)
    v01 = 1.0 - (r_all[m:] - r_neg) / m  # per negative: share of positives above
    auc = float(v10.mean())
    s10 = v10.var(ddof=1) if m > 1 else 0.0
    s01 = v01.var(ddof=1) if n > 1 else 0.0
    return auc, math.sqrt(s10 / m + s01 / n)
