"""Bandit math: seed derivation, the replay's IPS/SNIPS intervals, the uniform-logging check."""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import numpy as np

from .. import _stats
from .._protocol import ConfidenceInterval
from .._rng import derive_seed as _derive_seed  # noqa: F401  (the one host-side seed derivation; state.py and api.py use it)

if TYPE_CHECKING:
    from .state import _Policy


class NonUniformLoggingWarning(UserWarning):
    """The log was not collected by a uniformly random policy.

    The replay estimate of Li et al. (2011) may then be biased; prefer the
    IPS/SNIPS estimates (pass ``propensity``).

    Examples
    --------
    >>> issubclass(NonUniformLoggingWarning, UserWarning)
    True
    """




def _z(level: float) -> float:
    from .._special import ndtri

    return float(ndtri(0.5 + level / 2.0))


def _ips_estimates(rk, pk, n_events, z, binary=False):
    """IPS and self-normalized IPS over all events (terms are zero where the event was not kept).

    With 0/1 rewards the intervals are Wilson intervals on the effective sample size of the
    importance weights, ``(sum v)^2 / sum v^2`` (SNIPS is a weighted proportion; IPS is SNIPS
    times ``sum v / n_events``): never degenerate at 0 when no kept event was rewarded.
    """
    w = rk / pk
    v = 1.0 / pk
    ips = float(w.sum() / n_events)
    if binary and v.size:
        sv = float(v.sum())
        snips = float(w.sum() / sv)
        n_eff = sv * sv / float(np.sum(v * v))
        lo, hi = _stats.wilson_interval(snips, n_eff, z)
        scale = sv / n_events
        return (ips, ConfidenceInterval(lo * scale, hi * scale, method="wilson"), snips,
                ConfidenceInterval(lo, hi, method="wilson"))
    if n_events > 1:
        # two-pass variance over all events: kept ones deviate by w - ips, the others by -ips
        var = (float(np.sum((w - ips) ** 2)) + (n_events - w.size) * ips * ips) / (n_events - 1)
        half = z * math.sqrt(var / n_events)
        ips_ci = ConfidenceInterval(ips - half, ips + half)
    else:
        ips_ci = ConfidenceInterval(math.nan, math.nan)
    vs = float(v.sum())
    if vs > 0:
        snips = float(w.sum() / vs)
        # delta method: influence terms (w_i - snips * v_i) / mean(v); zero for events not kept
        d = (w - snips * v) / (vs / n_events)
        var = float(np.sum(d * d)) / (n_events - 1) if n_events > 1 else math.nan
        half = z * math.sqrt(var / n_events) if n_events > 1 else math.nan
        snips_ci = ConfidenceInterval(snips - half, snips + half)
    else:
        snips, snips_ci = math.nan, ConfidenceInterval(math.nan, math.nan)
    return ips, ips_ci, snips, snips_ci


def _uniform_pvalue(counts: np.ndarray) -> float:
    """Pearson's chi-square goodness of fit of ``counts`` to equal frequencies.

    Closed form: scipy.stats.chisquare's wrapper costs milliseconds per call.
    """
    from .._special import chdtrc

    expected = counts.sum() / counts.size
    stat = float(np.sum((counts - expected) ** 2) / expected)
    return float(chdtrc(counts.size - 1, stat))


def _check_uniform_arms(logged: np.ndarray, pol: _Policy, arm: str) -> None:
    total = int(logged.sum())
    if total < 5 * pol.n_arms or pol.n_arms < 2:
        return
    p = _uniform_pvalue(logged)
    if p < 1e-3:
        shares = ", ".join(f"{x / total:.3f}" for x in logged[:10]) + (" ..." if pol.n_arms > 10 else "")
        warnings.warn(
            f"arm frequencies in column {arm!r} are far from uniform (shares {shares}; "
            f"chi-square p={p:.2g}); replay (Li et al. 2011) is unbiased only for uniformly random "
            "logging: pass `propensity` for IPS/SNIPS estimates", NonUniformLoggingWarning, stacklevel=3)


def _checkpoints(n_steps: int, points: int) -> np.ndarray:
    if points >= n_steps:
        return np.arange(1, n_steps + 1, dtype=np.int64)
    cp = np.unique(np.round(np.linspace(1, n_steps, points)).astype(np.int64))
    return cp
