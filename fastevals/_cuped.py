"""Co-moment algebra and finalize math of regression adjustment (CUPED) and ratio metrics.

The A/B state keeps, per (segment, group) cell, the count, the means of its numeric columns
``w = (value[, denominator], covariate_1, ..., covariate_p)`` and their *central* co-moment
sums ``M[a] = sum_i prod_j (w_ij - mean_j) ** a_j`` for a set of exponent vectors ``a``
(the monomials): every ``|a| <= 2`` by default (the covariance matrix), and with
``variance="hc1"`` every ``|a| <= 4`` with ``a_value <= 2`` (what the heteroskedasticity-robust
standard error needs). Two cells merge by moving both to the merged mean with the binomial
shift formula and adding (Chan, Golub & LeVeque 1979 for second moments; Pebay 2008 for
higher ones), never through raw sums of powers.

Finalize (per segment, treatment against control, on the rows of the two groups):

* **Regression adjustment** (Deng, Xu, Kohavi & Walker 2013): the pooled within-group
  coefficient ``theta = (Sxx_c + Sxx_t)^-1 (Sxy_c + Sxy_t)`` and the adjusted difference
  ``(ybar_t - ybar_c) - theta' (xbar_t - xbar_c)``: exactly the coefficient on the treatment
  indicator of the OLS fit ``y ~ 1 + treatment + x`` (Frisch-Waugh-Lovell). Default standard
  error: Welch's, on the adjusted values ``y - theta' x`` of each group
  (``var_g = (Syy - 2 theta' Sxy + theta' Sxx theta)_g / (n_g - 1)``). ``variance="hc1"``: the
  HC1 sandwich standard error of that OLS coefficient, from the third and fourth co-moments.
* **Ratio metrics** (Deng, Knoblich & Lu 2018): per group ``R = sum(value) / sum(denominator)``,
  rows as units; variance by the delta method, i.e. of the linearized values
  ``L = (y - R d) / dbar`` (sample covariances, ddof=1). Covariates adjust ``L`` as above.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np

from . import _stats

#: variance methods of the z-test
VARIANCES = ("welch", "hc1")


# ------------------------------------------------------------------------------------------------
# monomials and the shift formula


@functools.cache
def monomials(n_vars: int, degree: int) -> tuple[tuple[int, ...], ...]:
    """Exponent vectors kept for ``n_vars`` columns: degree order, the value (column 0) at most
    squared beyond degree 2. Downward closed, so the shift formula stays inside the set.
    """
    out = []
    for total in range(degree + 1):
        level = []
        for a in itertools.product(range(total + 1), repeat=n_vars):
            if sum(a) == total and (total <= 2 or a[0] <= 2):
                level.append(a)
        out.extend(sorted(level, reverse=True))
    return tuple(out)


@functools.cache
def kernel_tables(n_vars: int, degree: int) -> tuple[np.ndarray, np.ndarray]:
    """``parent`` / ``var`` of the moment kernel: monomial m = monomial parent[m] * d[var[m]]."""
    mono = monomials(n_vars, degree)
    index = {a: k for k, a in enumerate(mono)}
    parent, var = [0], [0]
    for a in mono[1:]:
        j = next(i for i, e in enumerate(a) if e > 0)
        b = list(a)
        b[j] -= 1
        parent.append(index[tuple(b)])
        var.append(j)
    parent_arr, var_arr = np.array(parent, dtype=np.int64), np.array(var, dtype=np.int64)
    parent_arr.flags.writeable = False
    var_arr.flags.writeable = False
    return parent_arr, var_arr


@functools.cache
def _shift_plan(n_vars: int, degree: int):
    """For each monomial a: the terms (b, C(a, b), a - b) of sum_b C(a,b) M[b] delta^(a-b)."""
    mono = monomials(n_vars, degree)
    index = {a: k for k, a in enumerate(mono)}
    plan = []
    for a in mono:
        terms = []
        for b in itertools.product(*(range(e + 1) for e in a)):
            coef = math.prod(math.comb(ai, bi) for ai, bi in zip(a, b))
            terms.append((index[b], float(coef), tuple(ai - bi for ai, bi in zip(a, b))))
        plan.append(terms)
    return plan


def shift(M: np.ndarray, delta: np.ndarray, n_vars: int, degree: int) -> np.ndarray:
    """Sums of monomials of ``w - c`` from the sums of monomials of ``w - a`` (``delta = a - c``).

    ``M``: (..., n_monomials), ``delta``: (..., n_vars).
    """
    plan = _shift_plan(n_vars, degree)
    powers = {}

    def power(e):
        if e not in powers:
            v = np.ones(delta.shape[:-1])
            for j, k in enumerate(e):
                if k:
                    v = v * delta[..., j] ** k
            powers[e] = v
        return powers[e]

    out = np.empty_like(M)
    for k, terms in enumerate(plan):
        acc = np.zeros(M.shape[:-1])
        for b, coef, e in terms:
            acc = acc + (M[..., b] if not any(e) else coef * M[..., b] * power(e))
        out[..., k] = acc
    return out


def central(raw: np.ndarray, K: np.ndarray, n_vars: int, degree: int) -> tuple[np.ndarray, np.ndarray]:
    """(means, central co-moment sums) from sums of monomials of ``w - K`` (monomial 0 = count)."""
    n = raw[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        off = np.where(n[..., None] > 0, raw[..., 1:n_vars + 1] / np.maximum(n, 1)[..., None], 0.0)
    mean = K + off
    M = shift(raw, -off, n_vars, degree)
    M[..., 1:n_vars + 1] = 0.0
    return mean, M


def merge(mean_a, M_a, mean_b, M_b, n_vars: int, degree: int):
    """Merge two cells' (means, central co-moment sums); elementwise over leading axes."""
    na, nb = M_a[..., 0], M_b[..., 0]
    n = na + nb
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(n > 0, nb / np.where(n > 0, n, 1.0), 0.0)
    mean = mean_a + (mean_b - mean_a) * frac[..., None]
    M = shift(M_a, mean_a - mean, n_vars, degree) + shift(M_b, mean_b - mean, n_vars, degree)
    M[..., 1:n_vars + 1] = 0.0
    a_empty = (na == 0)[..., None]
    b_empty = (nb == 0)[..., None]
    mean = np.where(a_empty, mean_b, np.where(b_empty, mean_a, mean))
    M = np.where(a_empty, M_b, np.where(b_empty, M_a, M))
    return mean, M


def moment_index(n_vars: int, degree: int) -> dict:
    return {a: k for k, a in enumerate(monomials(n_vars, degree))}


def _gather(M: np.ndarray, index: dict, n_vars: int, lead: tuple, order: int, first: int) -> np.ndarray:
    """Tensor ``T[..., j1..jo] = M[a]`` with ``a = lead + e_j1 + ... + e_jo`` over the columns
    ``first .. n_vars - 1``; ``lead`` gives the exponents of the columns before ``first``.
    """
    cols = range(first, n_vars)
    k = len(cols)
    idx = np.empty((k,) * order, dtype=np.int64)
    for js in itertools.product(range(k), repeat=order):
        a = list(lead) + [0] * (n_vars - len(lead))
        for j in js:
            a[first + j] += 1
        idx[js] = index[tuple(a)]
    return M[..., idx]


# ------------------------------------------------------------------------------------------------
# finalize


def _solve(A: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The solution x = A^-1 b per row (minimum-norm least squares where A is singular), and a flag per row
    saying A was singular (a covariate without variation within the groups, or collinear ones).
    """
    rows, p = b.shape
    x = np.zeros(b.shape)
    singular = np.zeros(rows, dtype=bool)
    if p == 0:
        return x, singular
    finite = np.all(np.isfinite(A), axis=(1, 2)) & np.all(np.isfinite(b), axis=1)
    d = np.sqrt(np.abs(np.diagonal(A, axis1=1, axis2=2)))
    good = finite & np.all(d > 0, axis=1)
    if good.any():
        # condition number of the correlation-scaled matrix: a scale-free test of collinearity
        S = A[good] / (d[good][:, :, None] * d[good][:, None, :])
        ev = np.linalg.eigvalsh(S)
        ok = np.zeros(rows, dtype=bool)
        ok[good] = ev[:, 0] > 1e-10 * ev[:, -1]
        good = ok
    if good.any():
        x[good] = np.linalg.solve(A[good], b[good][:, :, None])[:, :, 0]
    x[~finite] = np.nan
    for r in np.flatnonzero(finite & ~good):
        singular[r] = True
        x[r] = np.linalg.lstsq(A[r], b[r], rcond=None)[0]
    return x, singular


def compare(stats_c: dict, stats_t: dict, *, ratio: bool, n_cov: int, variance: str, degree: int,
            alternative: str, margin: float, confidence: float) -> dict:
    """Treatment against control on rows of per-cell statistics (vectorized over rows).

    ``stats_g``: ``n`` (rows,), ``mean`` (rows, n_vars), ``M`` (rows, n_monomials) for columns
    ``(value[, denominator], covariates...)``. Returns the z-test's columns plus
    ``variance_reduction``, ``extra_sample_size``, ``theta``, adjusted means and notes.
    """
    n_vars = 1 + int(ratio) + n_cov
    index = moment_index(n_vars, degree)
    first = 1 + int(ratio)  # first covariate column
    per = {}
    for name, s in (("c", stats_c), ("t", stats_t)):
        n = s["n"].astype(float)
        mean, M = s["mean"], s["M"]
        S = _gather(M, index, n_vars, (), 2, 0)  # (rows, n_vars, n_vars)
        ybar = mean[:, 0]
        with np.errstate(invalid="ignore", divide="ignore"):
            if ratio:
                dbar = mean[:, 1]
                est = ybar / dbar
                # linearized ratio L = (y - R d) / dbar: its co-moments from those of (y, d, x)
                a = np.stack([np.ones_like(est), -est], axis=1) / dbar[:, None]
                s_ll = np.einsum("ri,rij,rj->r", a, S[:, :2, :2], a)
                s_xl = np.einsum("rji,ri->rj", S[:, first:, :2], a)
            else:
                est = ybar
                s_ll = S[:, 0, 0]
                s_xl = S[:, first:, 0]
        per[name] = dict(n=n, est=est, s_ll=s_ll, s_xl=s_xl, S_xx=S[:, first:, first:],
                         xbar=mean[:, first:], M=M)
    c, t = per["c"], per["t"]
    notes = [""] * c["n"].shape[0]
    theta, singular = _solve(c["S_xx"] + t["S_xx"], c["s_xl"] + t["s_xl"])
    for r in np.flatnonzero(singular):
        notes[r] = ("covariates have no variation within the groups or are collinear in this comparison: "
                    "minimum-norm coefficients")
    dx = t["xbar"] - c["xbar"]
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = (t["est"] - c["est"]) - np.einsum("rj,rj->r", theta, dx)
        n_tot = c["n"] + t["n"]
        xpool = (c["n"][:, None] * c["xbar"] + t["n"][:, None] * t["xbar"]) / n_tot[:, None]
        var_est, var_plain, adj_mean = {}, {}, {}
        for name, g in per.items():
            s_adj = (g["s_ll"] - 2.0 * np.einsum("rj,rj->r", theta, g["s_xl"])
                     + np.einsum("rj,rjk,rk->r", theta, g["S_xx"], theta))
            s_adj = np.maximum(s_adj, 0.0)
            var_est[name] = s_adj / (g["n"] - 1.0) / g["n"]
            var_plain[name] = g["s_ll"] / (g["n"] - 1.0) / g["n"]
            adj_mean[name] = g["est"] - np.einsum("rj,rj->r", theta, g["xbar"] - xpool)
        se_plain = np.sqrt(var_plain["c"] + var_plain["t"])
        if variance == "hc1":
            se = np.sqrt(_hc1_variance(c, t, theta, dx, index, n_vars, first))
        else:
            se = np.sqrt(var_est["c"] + var_est["t"])
        se_welch = np.sqrt(var_est["c"] + var_est["t"])
        vr = 1.0 - se_welch**2 / se_plain**2 if n_cov else np.zeros_like(diff)
        extra = n_tot * vr / (1.0 - vr)
        z = (diff - margin) / se
        pvalue = _stats.alternative_pvalue(z, alternative)
        low, high = _stats.interval(diff, se, confidence, alternative)
        m_c, m_t = adj_mean["c"], adj_mean["t"]
        rel = m_t / m_c - 1.0
        rel_se = np.sqrt(var_est["t"] / m_c**2 + m_t**2 * var_est["c"] / m_c**4)
        rlow, rhigh = _stats.interval(rel, rel_se, confidence, alternative)
    out = dict(statistic=z, pvalue=pvalue, difference=diff, ci_low=low, ci_high=high, std_error=se,
               relative_difference=rel, rel_low=rlow, rel_high=rhigh, variance_reduction=vr,
               extra_sample_size=extra, theta=theta, mean_control=c["est"], mean_treatment=t["est"],
               adjusted_mean_control=m_c, adjusted_mean_treatment=m_t, standard_error_unadjusted=se_plain,
               notes=notes)
    if ratio:
        undefined = ~np.isfinite(c["est"]) | ~np.isfinite(t["est"])
        for r in np.flatnonzero(undefined):
            notes[r] = "the denominator sums to zero in control or treatment: the ratio is undefined"
        for key, v in out.items():
            if key not in ("notes", "theta", "mean_control", "mean_treatment"):
                out[key] = np.where(undefined, np.nan, v)
    return out


def _hc1_variance(c: dict, t: dict, theta, dx, index, n_vars: int, first: int) -> np.ndarray:
    """HC1 variance of the treatment coefficient of OLS ``y ~ 1 + treatment + x``.

    In the equivalent design ``[D_c, D_t, x - xbar_group]`` the bread is
    ``diag(n_c, n_t, Sxx)^-1``, residuals are ``e = u - theta' v`` (u, v centered per group),
    and the treatment coefficient is ``q' beta`` with ``q = (-1, 1, -dx)``; the meat needs
    ``sum e^2``, ``sum e^2 v`` and ``sum e^2 v v'`` per group: moments of (u, v) up to order 4.
    """
    p = theta.shape[1]
    n = c["n"] + t["n"]
    k = 2 + p
    Sxx = c["S_xx"] + t["S_xx"]
    r = -_solve(Sxx, dx)[0]
    total = np.zeros(n.shape)
    for g, q in ((c, -1.0 / c["n"]), (t, 1.0 / t["n"])):
        M = g["M"]
        e2 = (M[..., index[(2,) + (0,) * (n_vars - 1)]]
              - 2.0 * np.einsum("rj,rj->r", theta, g["s_xl"])
              + np.einsum("rj,rjk,rk->r", theta, g["S_xx"], theta))
        total = total + q * q * e2
        if p:
            lead2, lead1, lead0 = (2,), (1,), (0,)
            A2 = _gather(M, index, n_vars, lead2, 1, first)
            B3 = _gather(M, index, n_vars, lead1, 2, first)
            C3 = _gather(M, index, n_vars, lead0, 3, first)
            F = A2 - 2.0 * np.einsum("rjk,rk->rj", B3, theta) + np.einsum("rjkl,rk,rl->rj", C3, theta, theta)
            A3 = _gather(M, index, n_vars, lead2, 2, first)
            B4 = _gather(M, index, n_vars, lead1, 3, first)
            C4 = _gather(M, index, n_vars, lead0, 4, first)
            H = (A3 - 2.0 * np.einsum("rjkl,rl->rjk", B4, theta)
                 + np.einsum("rjklm,rl,rm->rjk", C4, theta, theta))
            total = total + 2.0 * q * np.einsum("rj,rj->r", F, r) + np.einsum("rj,rjk,rk->r", r, H, r)
    return total * n / (n - k)
