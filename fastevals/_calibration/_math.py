"""Calibration's finalize math (NumPy) and its exact quantile edges (``np.percentile``, bit for bit)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._config import PARALLEL_MIN_ROWS, get_num_threads
from .._protocol import ConfidenceInterval
from .result import BrierDecomposition, CalibrationCurve, CalibrationResult

#: said after "outside [0, 1] or NaN": with nulls="raise" the kernels, not the scan, find NaN probabilities
_NAN_HINT = "; to leave rows with a NaN probability out, pass nulls='drop' (CLI: --nulls drop)"


def _k():
    from .._kernels import calibration as kern

    return kern


# ----------------------------------------------------------------------------------------------------
# edges


def uniform_edges(n_bins: int) -> np.ndarray:
    """Return sklearn's uniform edges: ``np.linspace(0, 1, n_bins + 1)``."""
    return np.linspace(0.0, 1.0, n_bins + 1)


def _percentile_plan(n: int, n_bins: int):
    """Order statistics and weights of np.percentile(x, linspace(0, 1, n_bins + 1) * 100)."""
    q = np.true_divide(np.linspace(0, 1, n_bins + 1) * 100, 100)
    virtual = (n - 1) * q
    prev = np.floor(virtual)
    nxt = prev + 1
    above = virtual >= n - 1
    prev[above] = n - 1
    nxt[above] = n - 1
    below = virtual < 0
    prev[below] = 0
    nxt[below] = 0
    prev_i = prev.astype(np.int64)
    nxt_i = nxt.astype(np.int64)
    # numpy takes gamma from the (wrapped) previous index; above the bound it is > 0.5 and the
    # lerp returns the (equal) upper value, so the plain fraction gives the same result
    gamma = virtual - prev_i.astype(np.float64)
    return prev_i, nxt_i, gamma


def _lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Interpolate as numpy's quantile does, operation for operation (bit-identical edges)."""
    diff = b - a
    out = a + diff * t
    hi = t >= 0.5
    out[hi] = (b - diff * (1 - t))[hi]
    return out


@dataclass
class _QuantilePlan:
    """Which fine-grid cells hold the order statistics ``np.percentile`` needs (one curve)."""

    n: int
    prev: np.ndarray
    nxt: np.ndarray
    gamma: np.ndarray
    ranks: np.ndarray
    cells: np.ndarray  # fine cell of each needed rank
    slot: np.ndarray  # int32, n_fine + 2 entries: slot of a marked cell, else -1
    sizes: np.ndarray  # values in each marked cell
    first_rank: np.ndarray  # rank of the first value of each marked cell

    @classmethod
    def from_histogram(cls, hist: np.ndarray, n_bins: int) -> _QuantilePlan:
        n_fine = len(hist)
        n = int(hist.sum())
        if n == 0:
            raise ValueError("no rows to compute quantile edges from")
        prev, nxt, gamma = _percentile_plan(n, n_bins)
        ranks = np.unique(np.concatenate([prev, nxt]))
        cum = np.cumsum(hist)
        cells = np.searchsorted(cum, ranks, side="right")
        ucells = np.unique(cells)
        slot = np.full(n_fine + 2, -1, dtype=np.int32)
        slot[ucells] = np.arange(len(ucells))
        slot[n_fine] = slot[n_fine - 1]  # p == 1 is counted in the last cell
        sizes = hist[ucells].astype(np.int64)
        return cls(n, prev, nxt, gamma, ranks, cells, slot, sizes, cum[ucells] - sizes)

    @property
    def starts(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)

    def edges(self, grouped: np.ndarray) -> np.ndarray:
        """Read the edges off the marked cells' values, grouped by slot and sorted within each."""
        starts = self.starts
        value = {}
        for r, cell in zip(self.ranks, self.cells, strict=True):
            s = self.slot[cell]
            value[int(r)] = grouped[starts[s] + (r - self.first_rank[s])]
        a = np.array([value[int(r)] for r in self.prev])
        b = np.array([value[int(r)] for r in self.nxt])
        return _lerp(a, b, self.gamma)


def _changed_between_passes():
    return ValueError("the input changed between the two passes needed for quantile edges")


def _fine_histograms(arrays_of_batches, n_curves: int) -> np.ndarray:
    """Pass 1: counts of each curve's values on the fine grid (integer, mergeable)."""
    kern = _k()
    n_fine = kern.FINE_CELLS
    parts = max(1, get_num_threads())
    hist = np.zeros((n_curves, n_fine), dtype=np.int64)
    for arrays in arrays_of_batches:
        for c, x in enumerate(arrays):
            h, bad = kern.fine_histogram(x, n_fine, parts if len(x) >= PARALLEL_MIN_ROWS else 1)
            if bad:
                raise ValueError(f"`prob` has {int(bad):,} value(s) outside [0, 1] or NaN (in one batch){_NAN_HINT}")
            hist[c] += h
    return hist


def _check_edges(edges) -> np.ndarray:
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or len(e) < 2:
        raise ValueError("`strategy` as an array of edges needs at least 2 edges in a 1-D array; "
                         f"got shape {e.shape}")
    if not np.all(np.isfinite(e)) or e[0] < 0 or e[-1] > 1:
        raise ValueError("`strategy` edges must be finite and within [0, 1]")
    if np.any(np.diff(e) <= 0):
        raise ValueError("`strategy` edges must be strictly increasing")
    return e


# ----------------------------------------------------------------------------------------------------
# finalize math


def _curve(edges, cnt, st, boot, label, confidence, weighted):
    from .._special import ndtri
    from .._stats import wilson_interval

    kern = _k()
    w = st[:, kern.W]
    nonempty = (cnt > 0) & (w > 0)
    wt = float(w.sum())
    pbar = np.where(nonempty, st[:, kern.MP], np.nan)
    ybar = np.where(nonempty, st[:, kern.MY], np.nan)
    gap = np.where(nonempty, ybar - pbar, 0.0)
    frac = w / wt if wt > 0 else np.zeros_like(w)
    ece = float(np.sum(frac * np.abs(gap)))
    rms = float(math.sqrt(np.sum(frac * gap * gap)))
    mce = float(np.max(np.abs(gap))) if nonempty.any() else float("nan")
    # effective sample size per bin: the count without weights, Kish's W^2 / sum w^2 with them
    with np.errstate(invalid="ignore", divide="ignore"):
        neff = np.where(nonempty, (w * w / st[:, kern.SW2]) if weighted else cnt.astype(np.float64), 0.0)
        yb0 = np.where(nonempty, ybar, 0.0)
        corr = np.where(cnt >= 2, yb0 * (1 - yb0) / (neff - 1), 0.0)
    dsq = float(np.sum(np.where(cnt >= 2, frac * (gap * gap - corr), 0.0)))
    ybar_all = float(np.sum(w * np.where(nonempty, ybar, 0.0)) / wt) if wt > 0 else float("nan")
    yb = np.where(nonempty, ybar, 0.0)
    dec = BrierDecomposition(
        brier=float(st[:, kern.SBR].sum() / wt),
        reliability=float(np.sum(frac * gap * gap)),
        resolution=float(np.sum(frac * np.where(nonempty, (yb - ybar_all) ** 2, 0.0))),
        uncertainty=ybar_all * (1 - ybar_all),
        within_bin_variance=float(st[:, kern.M2P].sum() / wt),
        within_bin_covariance=float(2 * st[:, kern.CPY].sum() / wt),
    )
    z = float(ndtri(1 - (1 - confidence) / 2))
    interval = ConfidenceInterval(*wilson_interval(ybar, np.where(nonempty, neff, np.nan), z),
                                  confidence=confidence, method="wilson")
    band = None
    ece_ci = None
    reps = None
    if boot is not None and boot.shape[0]:
        alpha = 1 - confidence
        bw = boot[:, :, 0]
        tot = bw.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            reps = np.abs(boot[:, :, 2] - boot[:, :, 1]).sum(axis=1) / tot
            freq = boot[:, :, 2] / bw
        freq = np.where(bw > 0, freq, np.nan)
        lo_q, hi_q = 100 * alpha / 2, 100 * (1 - alpha / 2)
        band_lo = np.full(len(cnt), np.nan)
        band_hi = np.full(len(cnt), np.nan)
        for b in range(len(cnt)):
            col = freq[:, b]
            col = col[np.isfinite(col)]
            if nonempty[b] and len(col):
                band_lo[b], band_hi[b] = np.percentile(col, [lo_q, hi_q])
        band = ConfidenceInterval(band_lo, band_hi, confidence=confidence, method="percentile")
        good = reps[np.isfinite(reps)]
        if len(good):
            lo, hi = np.percentile(good, [lo_q, hi_q])
            ece_ci = ConfidenceInterval(float(lo), float(hi), confidence=confidence, method="percentile")
    curve = CalibrationCurve(
        label=label, edges=edges.copy(), count=cnt.copy(), weight=w.copy(), mean_predicted=pbar,
        observed_frequency=ybar, observed_frequency_ci=interval, band=band, ece=ece, rms=rms, mce=mce,
        debiased_l2_sq=dsq, brier=dec, ece_ci=ece_ci, n=int(cnt.sum()), weight_total=wt,
    )
    return curve, reps


def _check_two_classes(res: CalibrationResult, label: str, multiclass) -> None:
    """Refuse classwise calibration with fewer than two classes present.

    Binary labels of a single class are fine: the ECE, the Brier score and the
    reliability curve are all defined there (an evaluation slice of only
    negatives is a legitimate input); top-label is exempt too.
    """
    if multiclass != "classwise":
        return
    present = [float(np.nansum(c.weight * c.observed_frequency)) > 0 for c in res.curves]
    if sum(present) < 2:
        raise ValueError(f"column {label!r} (given as `label`) has fewer than two classes present")
