"""Finalize math of the experiments package: plain NumPy/SciPy, no kernels.

* Lan-DeMets alpha spending functions and group sequential boundaries by the recursive
  numerical integration of Armitage, McPherson and Rowe (1969), on the score scale
  ``S_k = Z_k sqrt(I_k)`` whose increments are independent ``N(0, I_k - I_{k-1})`` under H0
  (Jennison and Turnbull 2000, chapter 19).
* The normal-mixture boundary shared by the mSPRT (Johari, Pekelis, Walsh 2017) and the
  asymptotic confidence sequence (Waudby-Smith et al. 2023).
* Two-sample normal-approximation power.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import optimize, special

SPENDINGS = ("obrien_fleming", "pocock")

#: grid points per standard deviation of the narrowest kernel in the recursive integration
GRID_PER_SD = 16
#: the continuation region is cut at this many standard deviations of S_k under H0
TRUNCATE_SD = 12.0


def spent_alpha(t, alpha_side: float, spending: str) -> np.ndarray:
    """Cumulative one-sided alpha spent at information fractions ``t`` (clipped to [0, 1]).

    ``obrien_fleming``: ``2 - 2 Phi(z_{1 - a/2} / sqrt(t))``; ``pocock``: ``a log(1 + (e - 1) t)``
    (Lan and DeMets 1983), ``a`` the one-sided level.
    """
    t = np.clip(np.asarray(t, dtype=np.float64), 0.0, 1.0)
    if spending == "obrien_fleming":
        z = special.ndtri(1.0 - alpha_side / 2.0)
        with np.errstate(divide="ignore"):
            out = 2.0 * special.ndtr(-z / np.sqrt(t))
    elif spending == "pocock":
        out = alpha_side * np.log1p((math.e - 1.0) * t)
    else:  # pragma: no cover - validated by the caller
        raise ValueError(spending)
    return np.where(t >= 1.0, alpha_side, out)


def _simpson_weights(m: int, h: float) -> np.ndarray:
    w = np.full(m, 2.0)
    w[1::2] = 4.0
    w[0] = w[-1] = 1.0
    return w * (h / 3.0)


def _log_upper_cross(b: float, sqrt_ik: float, sd: float, grid: np.ndarray, log_mass: np.ndarray) -> float:
    """The log P(S_k >= b sqrt(I_k), no earlier exit) from the previous look's sub-density on ``grid``."""
    return float(special.logsumexp(log_mass + special.log_ndtr((grid - b * sqrt_ik) / sd)))


@lru_cache(maxsize=256)
def _bounds_cached(t: tuple, increments: tuple, sides: int) -> tuple:
    K = len(t)
    b = np.full(K, np.inf)
    grid = np.zeros(1)
    log_mass = np.zeros(1)  # log of (Simpson weight x sub-density): a point mass at S_0 = 0
    sds = np.sqrt(np.diff(np.concatenate([[0.0], t])))
    for k in range(K):
        sd = sds[k]
        sqrt_ik = math.sqrt(t[k])
        target = increments[k]
        if target > 0.0:
            log_target = math.log(target)

            def f(x, sqrt_ik=sqrt_ik, sd=sd, grid=grid, log_mass=log_mass, log_target=log_target):
                return _log_upper_cross(x, sqrt_ik, sd, grid, log_mass) - log_target

            lo, hi = -40.0, 40.0
            if f(hi) >= 0.0:  # not reachable for any alpha > 1e-300
                b[k] = hi
            elif f(lo) <= 0.0:  # more alpha than the paths still going: stop everything
                b[k] = lo
            else:
                b[k] = optimize.brentq(f, lo, hi, xtol=1e-12, rtol=1e-14, maxiter=500)
        # the sub-density of S_k on the continuation region, for the next look
        if k == K - 1:
            break
        half = TRUNCATE_SD * sqrt_ik
        upper = min(b[k] * sqrt_ik, half)
        lower = -upper if sides == 2 else -half
        narrow = min(sds[k + 1], sd)
        m = int(math.ceil((upper - lower) / (narrow / GRID_PER_SD)))
        m = max(m + (m % 2 == 0), 33)  # odd, for Simpson's rule
        new_grid = np.linspace(lower, upper, m)
        h = new_grid[1] - new_grid[0]
        # log density of S_k at new_grid: log sum_j mass_j phi((s - u_j) / sd) / sd
        z = (new_grid[:, None] - grid[None, :]) / sd
        log_dens = special.logsumexp(log_mass[None, :] - 0.5 * z * z, axis=1) - math.log(sd * math.sqrt(2 * math.pi))
        with np.errstate(divide="ignore"):
            log_mass = log_dens + np.log(_simpson_weights(m, h))
        grid = new_grid
    return tuple(b.tolist())


def group_sequential_z(t, alpha: float, spending: str, sides: int) -> tuple[np.ndarray, np.ndarray]:
    """Upper z boundaries at information fractions ``t`` (increasing, last <= 1) and the cumulative
    total alpha spent (both sides) at each look.
    """
    t = np.asarray(t, dtype=np.float64)
    alpha_side = alpha / 2.0 if sides == 2 else alpha
    cum = spent_alpha(t, alpha_side, spending)
    increments = np.diff(np.concatenate([[0.0], cum]))
    increments = np.maximum(increments, 0.0)
    b = np.array(_bounds_cached(tuple(t.tolist()), tuple(increments.tolist()), int(sides)))
    return b, cum * sides


# ----------------------------------------------------------------------------------------------------
# the normal mixture: mSPRT and the asymptotic confidence sequence


def mixture_z_boundary(var, tau2, alpha: float):
    """|z| at which the normal-mixture likelihood ratio reaches 1 / alpha.

    ``Lambda = sqrt(V / (V + tau2)) exp(z**2 tau2 / (2 (V + tau2)))`` with ``V`` the variance of the
    estimate; ``Lambda >= 1/alpha`` iff ``z**2 >= (V + tau2) / tau2 (2 log(1/alpha) + log((V + tau2) / V))``.
    """
    var = np.asarray(var, dtype=np.float64)
    ratio = (var + tau2) / tau2
    return np.sqrt(ratio * (2.0 * math.log(1.0 / alpha) + np.log1p(tau2 / var)))


def mixture_log_lr(z, var, tau2):
    """The log Lambda of the normal-mixture SPRT at standardized difference ``z``."""
    var = np.asarray(var, dtype=np.float64)
    return 0.5 * np.log(var / (var + tau2)) + 0.5 * np.asarray(z) ** 2 * tau2 / (var + tau2)


def cs_rho2(alpha: float, tuning: float) -> float:
    """rho**2 of the asymptotic confidence sequence, chosen so it is tightest at ``tuning`` rows
    (Waudby-Smith et al. 2023): ``(-2 log alpha + log(-2 log alpha + 1)) / tuning``.
    """
    la = -2.0 * math.log(alpha)
    return (la + math.log(la + 1.0)) / tuning


# ----------------------------------------------------------------------------------------------------
# moments


def chan_merge(n_a, mean_a, m2_a, n_b, mean_b, m2_b):
    """Merge (n, mean, M2) of two disjoint samples elementwise (Chan, Golub, LeVeque)."""
    n_a = np.asarray(n_a, dtype=np.int64)
    n_b = np.asarray(n_b, dtype=np.int64)
    n = n_a + n_b
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(n > 0, n_b / np.maximum(n, 1), 0.0)
        delta = mean_b - mean_a
        mean = np.where(n_a == 0, mean_b, np.where(n_b == 0, mean_a, mean_a + delta * share))
        m2 = np.where(n_a == 0, m2_b, np.where(n_b == 0, m2_a, m2_a + m2_b + delta * delta * n_a * share))
    return n, mean, m2


# ----------------------------------------------------------------------------------------------------
# power


def power_two_sample(delta, se0, se1, alpha: float, alternative: str, margin: float):
    """Power of the z-test of H0: difference == margin (or <= / >= for one-sided tests).

    The test rejects when ``(d - margin) / se0`` passes the normal critical value; under the
    alternative ``d ~ N(delta, se1**2)``. Two-sided power counts both tails (as statsmodels).
    """
    shift = (np.asarray(delta, dtype=np.float64) - margin)
    if alternative == "two-sided":
        c = special.ndtri(1.0 - alpha / 2.0)
        return special.ndtr((shift - c * se0) / se1) + special.ndtr((-shift - c * se0) / se1)
    c = special.ndtri(1.0 - alpha)
    if alternative == "larger":
        return special.ndtr((shift - c * se0) / se1)
    return special.ndtr((-shift - c * se0) / se1)


# ----------------------------------------------------------------------------------------------------
# per-look z boundaries of the sequential methods


def msprt_tau2(var, n_c, n_t, tau2):
    """The mSPRT's mixing variance: ``tau2`` or, when None, 0.01 times the per-row variance that ``var``
    implies (``var / (1/n_c + 1/n_t)``): effects of about a tenth of a standard deviation.
    """
    if tau2 is not None:
        return np.broadcast_to(np.float64(tau2), np.shape(var))
    return 0.01 * np.asarray(var) / (1.0 / np.asarray(n_c, dtype=np.float64) + 1.0 / np.asarray(n_t, dtype=np.float64))


def cs_tau2(var, n_rows, alpha: float, tuning: float):
    """The asymptotic confidence sequence as a normal mixture: ``tau2 = s2 rho**2`` with ``s2 = n V``."""
    return np.asarray(n_rows, dtype=np.float64) * np.asarray(var) * cs_rho2(alpha, tuning)
