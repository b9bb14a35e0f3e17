"""The few special functions the finalize steps need, without importing scipy.special.

Why: a new process's first answer pays for every import on its path. On the
2-core CI machine ``import scipy.special`` costs ~0.1 s beyond the scipy.linalg
that numba imports anyway, and ``scipy.stats`` (which the bootstrap module used
to import for one function) 1.1-1.2 s more. The functions here are small and
exact enough:

- ``ndtr`` / ``ndtri``: the normal CDF through ``math.erfc`` (as scipy's
  cephes ``ndtr`` does) and its inverse through ``statistics.NormalDist``
  (Wichura's AS 241, relative error about 1e-16).
- ``chdtrc(dof, x)``: the chi-square survival function Q(dof/2, x/2) for
  integer degrees of freedom, from the closed forms of the regularized upper
  incomplete gamma function at integer and half-integer a::

      Q(k, y)       = sum_{j<k} e^{-y} y^j / j!
      Q(k + 1/2, y) = erfc(sqrt y) + sum_{j=1..k} e^{-y} y^(j-1/2) / Gamma(j + 1/2)

  Every term is positive (no cancellation); the sum is taken in log space so
  that nothing underflows before the result does. Other inputs (non-integer
  or huge degrees of freedom, or very large arrays) go to scipy.special.
- ``xlogy(x, y)``: x log y with 0 log y = 0 (NaN y stays NaN), as scipy's.

tests/test_special.py compares each with scipy.special over wide ranges.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

_STD_NORMAL = NormalDist()
_SQRT1_2 = math.sqrt(0.5)
#: beyond this many terms in one call (a Python loop), scipy.special is cheaper than the closed form
_MAX_TERMS = 1 << 17
_MAX_DOF = 2000

_erfc = np.frompyfunc(math.erfc, 1, 1)


def _as_float(a):
    return np.asarray(a, dtype=np.float64)


def _out(r, like):
    """A Python float for scalar input (as a NumPy float64), an array otherwise."""
    r = np.asarray(r, dtype=np.float64)
    return np.float64(r) if np.ndim(like) == 0 else r


def erfc(x):
    x = _as_float(x)
    return _out(_erfc(x).astype(np.float64) if x.ndim else math.erfc(float(x)), x)


def ndtr(x):
    """Standard normal CDF, 0.5 erfc(-x / sqrt 2)."""
    x = _as_float(x)
    return _out(0.5 * np.asarray(erfc(-x * _SQRT1_2)), x)


def _ndtri1(p: float) -> float:
    if p != p:
        return math.nan
    if p <= 0.0:
        return -math.inf if p == 0.0 else math.nan
    if p >= 1.0:
        return math.inf if p == 1.0 else math.nan
    return _STD_NORMAL.inv_cdf(p)


def ndtri(p):
    """Inverse of the standard normal CDF (NaN outside [0, 1], -inf at 0, inf at 1)."""
    p = _as_float(p)
    if p.ndim == 0:
        return np.float64(_ndtri1(float(p)))
    return np.array([_ndtri1(v) for v in p.ravel().tolist()], dtype=np.float64).reshape(p.shape)


def xlogy(x, y):
    """X * log(y), 0 where x == 0 and y is not NaN (scipy.special.xlogy)."""
    x = _as_float(x)
    y = _as_float(y)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = x * np.log(y)
    r = np.where((x == 0) & ~np.isnan(y), 0.0, r)
    return _out(r, x if np.ndim(x) >= np.ndim(y) else y)


def chdtrc(dof, x):
    """Chi-square survival function P(X > x) for X ~ chi2(dof) (scipy.special.chdtrc)."""
    dof_a, x_a = np.broadcast_arrays(_as_float(dof), _as_float(x))
    d = dof_a.ravel()
    closed_form = (d.size > 0 and bool(np.all((d >= 1) & (d <= _MAX_DOF) & (d == np.floor(d))))
                   and d.size * (float(d.max()) // 2 + 1) <= _MAX_TERMS)
    if closed_form:
        r = np.array([_chdtrc1(int(k), v) for k, v in zip(d.tolist(), x_a.ravel().tolist())],
                     dtype=np.float64).reshape(dof_a.shape)
    else:
        from scipy import special  # the general case: any dof, or a lot of work at once
        r = np.asarray(special.chdtrc(dof_a, x_a), dtype=np.float64)
    return np.float64(r) if np.ndim(dof) == 0 and np.ndim(x) == 0 else r


def _chdtrc1(dof: int, x: float) -> float:
    """The closed form for one (dof, x), in plain Python floats: microseconds, and the A/B
    finalize asks for a handful (one per segment with ``by=``).
    """
    if x != x or x < 0.0:
        return math.nan
    if x == 0.0:
        return 1.0
    if x == math.inf:
        return 0.0
    y = 0.5 * x
    half = dof % 2 == 1
    k = dof // 2
    logy = math.log(y)
    if half:
        logs = [(j - 0.5) * logy - y - math.lgamma(j + 0.5) for j in range(1, k + 1)]
    else:
        logs = [j * logy - y - math.lgamma(j + 1.0) for j in range(k)]
    series = 0.0
    if logs:
        top = max(logs)
        if top > -math.inf:
            series = math.fsum(math.exp(t - top) for t in logs) * math.exp(top)
    base = math.erfc(math.sqrt(y)) if half else 0.0
    return min(base + series, 1.0)
