"""The bootstrap's finalize math, in NumPy: intervals from a bootstrap distribution (as
``scipy.stats.bootstrap``), the BCa acceleration from jackknife moments (closed-form jackknifes of
the sorted metrics), the categorical metrics' per-cell replicate sums, and the results built
from a filled :class:`~fastevals._bootstrap.state.BootstrapState`.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from .. import _source as src
from .. import _special as special
from .. import metrics as _metrics
from .._protocol import ConfidenceInterval
from .result import BootstrapResult, BootstrapTable, DegenerateBootstrapWarning

if TYPE_CHECKING:
    from .api import _Args
    from .state import BootstrapState

_METHODS = ("percentile", "basic", "bca")


# ----------------------------------------------------------------------------------------------------
# intervals from a bootstrap distribution (NumPy, as scipy.stats.bootstrap)


def _interval(dist, estimate, confidence, method, accel):
    ci = _interval_bounds(dist, estimate, confidence, method, accel)
    return ConfidenceInterval(ci[0], ci[1], confidence=confidence, method=method)


def _interval_bounds(dist, estimate, confidence, method, accel):
    ok = dist[np.isfinite(dist)]
    if ok.size < 2 or not np.isfinite(estimate):
        return ConfidenceInterval(math.nan, math.nan)
    alpha = (1.0 - confidence) / 2.0
    if method == "bca":
        if accel is None or not np.isfinite(accel):
            return ConfidenceInterval(math.nan, math.nan)
        z0 = special.ndtri(np.mean(ok < estimate))
        za, zb = special.ndtri(alpha), special.ndtri(1.0 - alpha)
        with np.errstate(divide="ignore", invalid="ignore"):
            a1 = special.ndtr(z0 + (z0 + za) / (1.0 - accel * (z0 + za)))
            a2 = special.ndtr(z0 + (z0 + zb) / (1.0 - accel * (z0 + zb)))
        if not (np.isfinite(a1) and np.isfinite(a2)):
            return ConfidenceInterval(math.nan, math.nan)
        lo, hi = np.percentile(ok, [a1 * 100.0, a2 * 100.0])
        return ConfidenceInterval(float(lo), float(hi))
    lo, hi = np.percentile(ok, [alpha * 100.0, (1.0 - alpha) * 100.0])
    if method == "basic":
        return ConfidenceInterval(float(2.0 * estimate - hi), float(2.0 * estimate - lo))
    return ConfidenceInterval(float(lo), float(hi))


def _acceleration(parts):
    """BCa acceleration from jackknife moments.

    ``parts``: (sign, n, sum d^2, sum d^3) per independent sample, where
    ``d = mean(theta_-i) - theta_-i``; sign -1 for a sample entering the
    statistic with a minus (the control of a difference).  One sample gives
    ``sum d^3 / (6 (sum d^2)^1.5)``; several give scipy.stats.bootstrap's formula.
    """
    num = 0.0
    den = 0.0
    for sign, n, s2, s3 in parts:
        if n < 2:
            return math.nan
        # U = (n - 1) d
        num += sign * (n - 1) ** 3 * s3 / n**3
        den += (n - 1) ** 2 * s2 / n**2
    if den <= 0.0:
        return math.nan
    return num / (6.0 * den**1.5)


def _relative_acceleration(jack_t, jack_c, est_t, est_c):
    """Acceleration of ``theta_t / theta_c - 1`` from each group's jackknife moments.

    Leaving out a treatment row moves the ratio by ``d / theta_c`` exactly; a control
    row moves it by ``-theta_t d / theta_c**2`` to first order (delta method).
    """
    if not (np.isfinite(est_t) and np.isfinite(est_c)) or est_c == 0:
        return math.nan
    a = 1.0 / est_c
    b = -est_t / est_c**2
    (n_t, s2_t, s3_t), (n_c, s2_c, s3_c) = jack_t, jack_c
    return _acceleration([(1.0, n_t, s2_t * a**2, s3_t * a**3), (1.0, n_c, s2_c * b**2, s3_c * b**3)])


# ----------------------------------------------------------------------------------------------------
# jackknife moments, per-unit and per-cell sums, sorted metrics


def _jack_moments(acc):
    """Per cell ``(n, sum d^2, sum d^3)`` from power sums of deviations (``d = mean - theta_-i``)."""
    out = []
    for c in range(acc.shape[0]):
        m, s1, s2, s3 = acc[c]
        if m < 2:
            out.append((m, math.nan, math.nan))
            continue
        eb = s1 / m
        d2 = s2 - m * eb * eb
        d3 = -(s3 - 3.0 * eb * s2 + 2.0 * m * eb**3)
        out.append((m, d2, d3))
    return out


def _unit_sums(cells, keys, V, n):
    """Sums of ``V`` (F, rows) and of ``n`` per distinct (cell, key) pair."""
    order = np.lexsort((keys, cells))
    c, k = cells[order], keys[order]
    start = np.ones(c.shape[0], dtype=bool)
    start[1:] = (c[1:] != c[:-1]) | (k[1:] != k[:-1])
    idx = np.flatnonzero(start)
    S = np.add.reduceat(V[:, order], idx, axis=1) if V.shape[0] else np.zeros((0, idx.shape[0]))
    return c[idx], k[idx], S, np.add.reduceat(n[order], idx)


def _categorical_sums(seed, B, pat, F):
    """Sufficient-statistics shortcut: per (replicate, cell, pattern) a Poisson(count) draw."""
    from .._kernels import poisson as kp

    C, P = pat.shape
    lam = pat.ravel().astype(np.float64)
    cell_keys = np.arange(C * P, dtype=np.uint64)
    kern = kp.poisson_cell_counts if B * C * P >= 50_000 else kp.poisson_cell_counts_serial
    counts = kern(np.uint64(seed), 0, B, cell_keys, lam).reshape(B, C, P)
    bits = ((np.arange(P)[:, None] >> np.arange(F)) & 1).astype(np.float64)  # (P, F)
    S = counts.astype(np.float64) @ bits
    return S, counts.sum(axis=2)


def _sort_for(lf, cols, cc, C):
    """Rows sorted within cells (by score, or value), tie-block ends and cell bounds."""
    if lf.kind == "quantile":
        x = np.asarray(cols[lf.value], dtype=np.float64)
        y = np.zeros(x.shape[0], dtype=np.int8)
        key = x
    else:
        x = np.asarray(cols[lf.score], dtype=np.float64)
        y = _metrics._binary(lf.name, cols[lf.label], lf.label).astype(np.int8)
        key = -x if lf.kind == "ap" else x
    order = np.lexsort((key, cc))
    xs = np.ascontiguousarray(x[order])
    ys = np.ascontiguousarray(y[order])
    cs = cc[order]
    bounds = np.searchsorted(cs, np.arange(C + 1)).astype(np.int64)
    # tie blocks: a new block starts where the score or the cell changes
    n = xs.shape[0]
    start = np.ones(n, dtype=bool)
    if n > 1:
        start[1:] = (xs[1:] != xs[:-1]) | (cs[1:] != cs[:-1])
    starts = np.flatnonzero(start)
    ends = np.append(starts[1:], n)
    if lf.kind == "auc" and starts.shape[0] == n:
        # no ties: the AUC kernel takes an empty tie array as the cue for its straight loop
        return xs, ys, order, np.empty(0, dtype=np.int64), bounds
    tie_end = np.repeat(ends, np.diff(np.append(starts, n))).astype(np.int64)
    return xs, ys, order, tie_end, bounds


def _sorted_jackknife(lf, cols, cc, C):
    """Leave-one-out values of a sorted metric for every row (in row order), in closed form."""
    n = cc.shape[0]
    out = np.full(n, np.nan)
    if lf.kind == "quantile":
        x = np.asarray(cols[lf.value], dtype=np.float64)
        for c in range(C):
            idx = np.flatnonzero(cc == c)
            k = idx.shape[0]
            if k < 2:
                continue
            o = np.argsort(x[idx], kind="stable")
            xs = x[idx][o]
            # numpy's virtual index on the k - 1 values left
            h = (k - 1) * lf.q + (1.0 - lf.q) - 1.0
            lo = min(max(int(math.floor(h)), 0), k - 2)
            fr = min(max(h - math.floor(h), 0.0), 1.0) if lo < k - 2 else 0.0
            hi = min(lo + 1, k - 2)
            r = np.arange(k)
            # element j of the sorted sample without rank r is xs[j] (j < r) or xs[j + 1]
            v_lo = np.where(lo < r, xs[lo], xs[lo + 1])
            v_hi = np.where(hi < r, xs[hi], xs[hi + 1])
            d = v_hi - v_lo
            out[idx[o]] = (v_hi - d * (1.0 - fr)) if fr >= 0.5 else (v_lo + d * fr)
        return out
    # AUC: placement values. U = sum over positives of (#neg below + ties / 2)
    s = np.asarray(cols[lf.score], dtype=np.float64)
    y = _metrics._binary(lf.name, cols[lf.label], lf.label)
    for c in range(C):
        idx = np.flatnonzero(cc == c)
        sp = np.sort(s[idx][y[idx]])
        sn = np.sort(s[idx][~y[idx]])
        P, N = sp.shape[0], sn.shape[0]
        if P == 0 or N == 0:
            continue
        sc = s[idx]
        lt = np.searchsorted(sn, sc, side="left")
        le = np.searchsorted(sn, sc, side="right")
        place_pos = lt + 0.5 * (le - lt)  # for positives: negatives below
        gt = P - np.searchsorted(sp, sc, side="right")
        ge = P - np.searchsorted(sp, sc, side="left")
        place_neg = gt + 0.5 * (ge - gt)  # for negatives: positives above
        U = place_pos[y[idx]].sum()
        with np.errstate(divide="ignore", invalid="ignore"):
            jack = np.where(y[idx], (U - place_pos) / ((P - 1) * N), (U - place_neg) / (P * (N - 1)))
        out[idx] = jack
    return out


# ----------------------------------------------------------------------------------------------------
# results from a filled state


def _results(state: BootstrapState, args: _Args):
    """Intervals from a filled state (``state._values()`` is computed here)."""
    state._values()
    args = dataclasses.replace(args, backend_used=state.backend_used or "cpu")
    C = state.C
    n_cells_rows = state.n_full
    has_group = args.group is not None
    n_by = len(args.by)
    group_labels = {}
    if has_group:
        for c in range(C):
            lab = state.cells.label(c)
            group_labels[c] = lab[-1]
        if args.control is not None and args.control not in set(group_labels.values()):
            shown = sorted({repr(v) for v in group_labels.values()})
            raise ValueError(f"`control`={args.control!r} is not a level of column {args.group!r}; "
                             f"levels: {', '.join(shown)}")
        if args.control is not None and len(set(group_labels.values())) < 2:
            raise ValueError(f"`group`={args.group!r} has a single level ({args.control!r}) in the data: "
                             "there is nothing to compare with the control; at least two groups are needed")
    jacks = {}
    if args.method == "bca":
        ests = [np.asarray(m.combine(state.estimates), dtype=np.float64) for m in args.metrics]
        if state._dask_input is not None:
            jacks = dict(zip(map(id, args.metrics), state._jackknife_on_dask(args.metrics, ests)))
        else:
            jacks = {id(m): state.jackknife(m, e) for m, e in zip(args.metrics, ests)}
    results = []
    for m in args.metrics:
        theta = m.combine(state.values)  # (B, C)
        est = np.asarray(m.combine(state.estimates), dtype=np.float64)  # (C,)
        jack = jacks[id(m)] if args.method == "bca" else None
        for c in range(C):
            lab = state.cells.label(c)
            accel = _acceleration([(1.0, *jack[c])]) if jack is not None else None
            results.append(_result(args, m.name, theta[:, c], float(est[c]), accel, int(n_cells_rows[c]),
                                   lab[:n_by], group_labels.get(c)))
        if has_group and args.control is not None:
            # treatment minus control (and treatment over control), per segment
            seg_of = {c: state.cells.label(c)[:n_by] for c in range(C)}
            for c in range(C):
                if group_labels[c] == args.control:
                    continue
                ctrl = [k for k in range(C) if group_labels[k] == args.control and seg_of[k] == seg_of[c]]
                if not ctrl:
                    continue
                k = ctrl[0]
                pair = (group_labels[c], args.control)
                n_pair = int(n_cells_rows[c] + n_cells_rows[k])
                if args.comparison in ("difference", "both"):
                    accel = (_acceleration([(1.0, *jack[c]), (-1.0, *jack[k])]) if jack is not None else None)
                    with np.errstate(invalid="ignore"):
                        d = theta[:, c] - theta[:, k]
                    results.append(_result(args, f"{m.name} [{group_labels[c]!r} - {args.control!r}]", d,
                                           float(est[c] - est[k]), accel, n_pair, seg_of[c], pair,
                                           "difference"))
                if args.comparison in ("relative", "both"):
                    # theta_t / theta_c - 1; the control's jackknife part is linearized (delta method)
                    accel = (_relative_acceleration(jack[c], jack[k], est[c], est[k]) if jack is not None
                             else None)
                    with np.errstate(invalid="ignore", divide="ignore"):
                        r = theta[:, c] / theta[:, k] - 1.0
                    est_r = float(est[c] / est[k] - 1.0) if est[k] != 0 else math.nan
                    results.append(_result(args, f"{m.name} [{group_labels[c]!r} / {args.control!r} - 1]", r,
                                           est_r, accel, n_pair, seg_of[c], pair, "relative"))
    if len(results) == 1 and not args.by and not has_group:
        return results[0]
    return _table(results, args)


def _result(args, name, dist, est, accel, n_rows, segment, group, comparison=None):
    dist = np.ascontiguousarray(dist, dtype=np.float64)
    ci = _interval(dist, est, args.confidence, args.method, accel)
    ok = dist[np.isfinite(dist)]
    _warn_degenerate(name, segment, group, dist.size, ok.size, est, ci, args.method)
    se = float(np.std(ok, ddof=1)) if ok.size > 1 else math.nan
    seg = None
    if args.by:
        seg = segment[0] if len(segment) == 1 else tuple(segment)
    return BootstrapResult(est, ci, se, dist, args.method, args.n_resamples, args.confidence, name,
                           args.resampling, args.seed, n_rows, int(dist.size - ok.size), seg, group,
                           None if accel is None else float(accel), comparison, args.backend_used)


def _warn_degenerate(name, segment, group, n_rep, n_ok, est, ci, method) -> None:
    """Say why an interval is missing or rests on fewer replicates; never drop replicates silently."""
    where = name + (f" (segment {segment!r})" if segment else "") + (f" (group {group!r})" if group else "")
    if not np.isfinite(est):
        warnings.warn(f"{where} is undefined on the data (estimate {est}): e.g. a single class for AUC or a "
                      "denominator that sums to 0; no interval", DegenerateBootstrapWarning, stacklevel=4)
        return
    if n_ok < n_rep:
        warnings.warn(f"{where}: {n_rep - n_ok:,} of {n_rep:,} replicates ({(n_rep - n_ok) / n_rep:.1%}) were "
                      "undefined (e.g. no positives drawn, a zero denominator) and are left out of the interval; "
                      "with so few events the interval is unreliable (result.n_invalid)",
                      DegenerateBootstrapWarning, stacklevel=4)
    if method == "bca" and not np.isfinite(ci.low) and n_ok >= 2:
        warnings.warn(f"{where}: the BCa interval is undefined (the jackknife acceleration is not finite, e.g. "
                      "constant data); use method='percentile'", DegenerateBootstrapWarning, stacklevel=4)


def _table(results, args):
    cols = {"metric": [r.metric for r in results]}
    if args.by:
        cols["segment"] = [str(r.segment) if isinstance(r.segment, tuple) else r.segment for r in results]
    if args.group:
        cols["group"] = [str(r.group) for r in results]
        cols["comparison"] = [r.comparison for r in results]
    cols["estimate"] = [r.estimate for r in results]
    cols["low"] = [r.confidence_interval.low for r in results]
    cols["high"] = [r.confidence_interval.high for r in results]
    cols["standard_error"] = [r.standard_error for r in results]
    cols["n"] = [r.n for r in results]
    try:
        table = src.arrow_table(cols)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        cols["segment"] = [str(v) for v in cols.get("segment", [])]
        table = src.arrow_table(cols)
    return BootstrapTable(table, tuple(results))
