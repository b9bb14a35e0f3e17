"""Calibration: reliability curves, ECE and the Brier score from one streaming pass.

Is a score of 0.8 right 80% of the time?  :func:`calibration` bins predicted
probabilities exactly as :func:`sklearn.calibration.calibration_curve` does and
reports, per bin, the count, weight, mean prediction and observed frequency of
positives with a Wilson interval (and a Poisson-bootstrap band), plus the
expected calibration error (ECE, L1), the RMS and maximum calibration errors,
the debiased squared L2 error of Kumar et al. (2019), and the Brier score with
its Murphy decomposition and the two within-bin terms of Stephenson et al.
(2008), so that the parts add up to the Brier score.

The work is done by a :class:`CalibrationState`: a fixed-size table per
(class curve, segment, bin) of count, weight, weighted means of p and y,
centred second moments and the Brier sum.  States update batch by batch and
merge exactly (Chan et al.), so shards, threads and streams give the one-shot
answer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from . import _dask
from . import _source as src
from ._config import CHUNK_ROWS, MAX_RESAMPLES, PARALLEL_MIN_ROWS, get_num_threads
from ._validation import as_column_list, check_choice, check_int, check_nulls, check_probability, check_seed

__all__ = [
    "BrierDecomposition",
    "CalibrationCurve",
    "CalibrationResult",
    "CalibrationState",
    "Interval",
    "calibration",
    "warmup",
]

_STRATEGIES = ("uniform", "quantile")
_MULTICLASS = ("top-label", "classwise")
#: tolerance of the row-sum check for multiclass probabilities
ROW_SUM_TOL = 1e-6


def _k():
    from ._kernels import calibration as kern

    return kern


class Interval(NamedTuple):
    low: object
    high: object


@dataclass(frozen=True, slots=True)
class BrierDecomposition:
    """Brier score = reliability - resolution + uncertainty + within_bin_variance - within_bin_covariance.

    ``reliability``, ``resolution`` and ``uncertainty`` are Murphy's (1973)
    terms on the binned forecasts; the within-bin variance of the predictions
    and the within-bin covariance (times two) of predictions and outcomes are
    Stephenson et al.'s (2008) extra terms, which make the sum exact.
    """

    brier: float
    reliability: float
    resolution: float
    uncertainty: float
    within_bin_variance: float
    within_bin_covariance: float

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__}


@dataclass(frozen=True, slots=True)
class CalibrationCurve:
    """One reliability curve: per-bin arrays (length ``n_bins``) and its scalars.

    Empty bins have ``count == 0`` and NaN means/frequencies (sklearn drops
    them: :meth:`sklearn_curve` gives its ``(prob_true, prob_pred)``).
    """

    label: object
    edges: np.ndarray
    count: np.ndarray
    weight: np.ndarray
    mean_predicted: np.ndarray
    observed_frequency: np.ndarray
    interval: Interval
    band: Interval | None
    ece: float
    rms: float
    mce: float
    debiased_l2_sq: float
    brier: BrierDecomposition
    ece_ci: Interval | None
    n: int
    weight_total: float

    def sklearn_curve(self) -> tuple[np.ndarray, np.ndarray]:
        """``(prob_true, prob_pred)`` over non-empty bins, as ``calibration_curve`` returns them."""
        keep = self.count > 0
        return self.observed_frequency[keep], self.mean_predicted[keep]

    @property
    def debiased_l2(self) -> float:
        """Square root of the debiased squared L2 error, clipped at 0 (Kumar et al.'s ``unbiased_l2_ce``)."""
        return math.sqrt(max(self.debiased_l2_sq, 0.0))

    def to_dict(self) -> dict:
        out = {
            "label": self.label,
            "edges": self.edges.tolist(),
            "count": self.count.tolist(),
            "weight": self.weight.tolist(),
            "mean_predicted": _nan_list(self.mean_predicted),
            "observed_frequency": _nan_list(self.observed_frequency),
            "interval": [_nan_list(self.interval.low), _nan_list(self.interval.high)],
            "band": None if self.band is None else [_nan_list(self.band.low), _nan_list(self.band.high)],
            "ece": self.ece,
            "rms": self.rms,
            "mce": self.mce,
            "debiased_l2_sq": self.debiased_l2_sq,
            "brier": self.brier.to_dict(),
            "ece_ci": None if self.ece_ci is None else list(self.ece_ci),
            "n": self.n,
            "weight_total": self.weight_total,
        }
        return out


def _nan_list(a) -> list:
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(a, dtype=np.float64)]


@dataclass(frozen=True, slots=True)
class CalibrationResult:
    """Result of :func:`calibration`.

    ``ece`` etc. describe the whole curve set: for binary and top-label input
    they are the single curve's.  With ``multiclass="classwise"`` they follow
    Kumar et al.'s marginal calibration error: ECE and the debiased squared
    error are averaged over classes, RMS is the root of the mean squared
    error, MCE is the largest; the Brier score and its parts are summed over
    classes (the multiclass Brier score).  ``segments`` maps each ``by``
    value to its own result (same edges).  ``edges`` is 1-D, or one row per
    class for classwise quantile bins.
    """

    ece: float
    ece_ci: Interval | None
    rms: float
    mce: float
    debiased_l2_sq: float
    brier: float
    brier_decomposition: BrierDecomposition
    curves: tuple
    segments: dict | None
    edges: np.ndarray
    n_bins: int
    strategy: str
    multiclass: str | None
    n: int
    rows_dropped: int
    collapsed_bins: tuple
    confidence: float
    n_resamples: int
    backend: str = "cpu"

    @property
    def curve(self) -> CalibrationCurve:
        """The only curve (binary or top-label input)."""
        if len(self.curves) != 1:
            raise AttributeError("this result has one curve per class; use `curves`")
        return self.curves[0]

    def to_dict(self) -> dict:
        return {
            "ece": self.ece,
            "ece_ci": None if self.ece_ci is None else list(self.ece_ci),
            "rms": self.rms,
            "mce": self.mce,
            "debiased_l2_sq": self.debiased_l2_sq,
            "brier": self.brier,
            "brier_decomposition": self.brier_decomposition.to_dict(),
            "curves": [c.to_dict() for c in self.curves],
            "segments": None if self.segments is None else [
                {"segment": k, **v.to_dict()} for k, v in self.segments.items()
            ],
            "edges": self.edges.tolist(),
            "n_bins": self.n_bins,
            "strategy": self.strategy,
            "multiclass": self.multiclass,
            "n": self.n,
            "rows_dropped": self.rows_dropped,
            "collapsed_bins": list(self.collapsed_bins),
            "confidence": self.confidence,
            "n_resamples": self.n_resamples,
        }

    def to_arrow(self) -> pa.Table:
        """One row per (segment, class, bin)."""
        parts = []
        items = [(None, self)] if self.segments is None else list(self.segments.items())
        for seg, res in items:
            for c in res.curves:
                nb = len(c.count)
                cols = {}
                if self.segments is not None:
                    cols["segment"] = src.arrow_array([seg] * nb)
                if self.multiclass == "classwise":
                    cols["class"] = src.arrow_array([c.label] * nb)
                band = c.band or Interval(np.full(nb, np.nan), np.full(nb, np.nan))
                plain = {"bin": np.arange(nb, dtype=np.int64), "lower": c.edges[:-1], "upper": c.edges[1:],
                         "count": c.count, "weight": c.weight}
                # NaN (an empty bin's mean, an interval that does not exist) becomes null
                nullable = {"mean_predicted": c.mean_predicted, "observed_frequency": c.observed_frequency,
                            "ci_low": c.interval.low, "ci_high": c.interval.high,
                            "band_low": band.low, "band_high": band.high}
                cols.update({k: src.numpy_to_arrow(np.asarray(v)) for k, v in plain.items()})
                cols.update({k: src.numpy_to_arrow(np.asarray(v, dtype=np.float64), nan_is_null=True)
                             for k, v in nullable.items()})
                parts.append(src.arrow_table(cols))
        return pa.concat_tables(parts)

    def plot(self, path=None, ax=None, *, kind: str = "points"):
        """Reliability diagram: observed frequency against mean prediction per
        bin with Wilson intervals (and the bootstrap band when computed), the
        diagonal, and a histogram of the predictions under it.

        ``ax`` draws into an existing axes (the histogram on a twin axis);
        otherwise a new figure with two panels is made. ``path`` saves it.
        ``kind`` is ``"points"`` or ``"bars"``. Returns the figure.
        Needs matplotlib (the ``plot`` extra).
        """
        kind = check_choice("kind", kind, ("points", "bars"))
        try:
            import matplotlib.pyplot as plt
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError("plot() needs matplotlib: pip install 'fastevals[plot]'") from None
        if ax is None:
            fig, (ax_rel, ax_hist) = plt.subplots(
                2, 1, figsize=(5.5, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
            )
        else:
            fig = ax.figure
            ax_rel = ax
            ax_hist = ax.twinx()
        ax_rel.plot([0, 1], [0, 1], ls="--", color="0.5", lw=1, label="perfect calibration")
        for c in self.curves:
            keep = c.count > 0
            name = "model" if c.label is None else f"class {c.label}"
            x = c.mean_predicted[keep]
            yv = c.observed_frequency[keep]
            err = np.vstack([yv - c.interval.low[keep], c.interval.high[keep] - yv])
            if kind == "bars" and len(self.curves) == 1:
                lo = c.edges[:-1][keep]
                ax_rel.bar(lo, yv, width=np.diff(c.edges)[keep], align="edge", alpha=0.6,
                           edgecolor="k", label=f"{name} (ECE {c.ece:.4f})")
                ax_rel.errorbar((c.edges[:-1] + c.edges[1:])[keep] / 2, yv, yerr=err, fmt="none", ecolor="k")
            else:
                line = ax_rel.errorbar(x, yv, yerr=err, marker="o", ms=4, capsize=2,
                                       label=f"{name} (ECE {c.ece:.4f})")
                if c.band is not None:
                    ax_rel.fill_between(x, c.band.low[keep], c.band.high[keep], alpha=0.2,
                                        color=line[0].get_color(), lw=0)
            ax_hist.hist(c.edges[:-1], bins=c.edges, weights=c.weight, alpha=0.35 if ax is None else 0.15,
                         histtype="stepfilled")
        ax_rel.set_xlim(0, 1)
        ax_rel.set_ylim(0, 1)
        ax_rel.set_ylabel("observed frequency")
        title = f"reliability ({self.strategy}, {self.n_bins} bins, n={self.n:,})"
        if self.ece_ci is not None:
            title += f"\nECE {self.ece:.4f} [{self.ece_ci.low:.4f}, {self.ece_ci.high:.4f}]"
        ax_rel.set_title(title, fontsize=10)
        ax_rel.legend(loc="upper left", fontsize=8)
        if ax is None:
            ax_hist.set_xlabel("mean predicted probability")
            ax_hist.set_ylabel("weight")
        else:
            ax_hist.set_yticks([])
            ax_rel.set_xlabel("mean predicted probability")
        if path is not None:
            fig.savefig(path, dpi=110, bbox_inches="tight")
        return fig


# ----------------------------------------------------------------------------------------------------
# edges


def uniform_edges(n_bins: int) -> np.ndarray:
    """sklearn's uniform edges: ``np.linspace(0, 1, n_bins + 1)``."""
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
    """numpy's quantile interpolation, operation for operation (bit-identical edges)."""
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
        """The edges from the marked cells' values, grouped by slot and sorted within each."""
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
                raise ValueError(f"`prob` has {int(bad):,} value(s) outside [0, 1] or NaN (in one batch)")
            hist[c] += h
    return hist


def _marked_values(x: np.ndarray, plan: _QuantilePlan) -> tuple[np.ndarray, np.ndarray]:
    """The values of x in the plan's marked cells and their slots (NumPy; a Dask partition's part of pass 2)."""
    n_fine = len(plan.slot) - 2
    t = np.asarray(x, dtype=np.float64) * n_fine
    ok = (t >= 0) & (t <= n_fine)
    j = np.where(ok, t, n_fine + 1).astype(np.intp)
    s = plan.slot[j]
    keep = s >= 0
    return np.asarray(x, dtype=np.float64)[keep], s[keep]


def _edges_from_marked(plan: _QuantilePlan, values: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """Edges from the marked values of all partitions, in any order."""
    if not np.array_equal(np.bincount(slots, minlength=len(plan.sizes)), plan.sizes):
        raise _changed_between_passes()
    order = np.lexsort((values, slots))
    return plan.edges(values[order])


def _exact_quantile_edges(batches_of_curves, n_curves: int, n_bins: int) -> list[np.ndarray]:
    """Exact ``np.percentile`` edges of each curve's values in two passes.

    ``batches_of_curves()`` yields, per batch, a list of ``n_curves`` float
    arrays.  Pass 1 counts values on a fine uniform grid (mergeable integer
    counts); pass 2 keeps only the values in the grid cells that hold one of
    the order statistics the percentiles need, sorts them, and reads the
    order statistics off.
    """
    kern = _k()
    n_fine = kern.FINE_CELLS
    hist = _fine_histograms(batches_of_curves(), n_curves)
    plans = [_QuantilePlan.from_histogram(hist[c], n_bins) for c in range(n_curves)]
    buffers = [np.empty(int(p.sizes.sum()), dtype=np.float64) for p in plans]
    positions = [p.starts.copy() for p in plans]
    ends = [p.starts + p.sizes for p in plans]
    for arrays in batches_of_curves():
        for c, x in enumerate(arrays):
            if kern.gather_cells(x, n_fine, plans[c].slot, positions[c], ends[c], buffers[c]):
                raise _changed_between_passes()
    edges = []
    for c, plan in enumerate(plans):
        if not np.array_equal(positions[c], ends[c]):
            raise _changed_between_passes()
        buf = buffers[c]
        for lo, hi in zip(plan.starts, ends[c], strict=True):
            buf[lo:hi].sort()
        edges.append(plan.edges(buf))
    return edges


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


def _scan_table(data, columns: list[str], nulls: str) -> src.Scan:
    """A scan of ``columns`` of a table or batch with nulls raised or dropped (NaN too with "drop";
    with "raise" the kernels reject NaN probabilities and labels themselves)."""
    source = src.open_source(data, columns_hint=columns)
    nan_cols = () if nulls == "raise" else tuple(
        c for c in columns if pa.types.is_floating(source.schema.field(c).type))
    return src.Scan(source, columns, nulls=nulls, nan_columns=nan_cols)


class _QuantilePass:
    """Mergeable state of one of the two passes that give exact quantile edges on Dask.

    Without plans it is pass 1: fine-grid counts of each curve's values (integers).
    With plans (one :class:`_QuantilePlan` per curve, from the merged counts) it is
    pass 2: the values that fall in the marked cells and their slots (a few per
    needed rank).  Either way only this small state travels between processes.
    """

    def __init__(self, probe: CalibrationState, plans: list | None = None):
        self.probe = probe  # reads the curves' values of a batch (binary, top-label, classwise)
        self.plans = plans
        n_curves = probe.spec.n_curves
        self.hist = None if plans else np.zeros((n_curves, _k().FINE_CELLS), dtype=np.int64)
        self.values = [[] for _ in range(n_curves)]
        self.slots = [[] for _ in range(n_curves)]
        self.rows_read = 0
        self.rows_dropped = 0

    def update(self, data, *, nulls: str = "raise") -> _QuantilePass:
        scan = _scan_table(data, self.probe.spec.columns, check_nulls(nulls))
        for batch in scan:
            curves, _ = self.probe._curves(batch)
            arrays = [np.asarray(p, dtype=np.float64) for p, _, _ in curves]
            if self.plans is None:
                self.hist += _fine_histograms([arrays], len(arrays))
            else:
                for c, x in enumerate(arrays):
                    v, sl = _marked_values(x, self.plans[c])
                    self.values[c].append(v)
                    self.slots[c].append(sl)
        self.rows_read += scan.stats.rows_read
        self.rows_dropped += scan.stats.rows_dropped
        return self

    def merge(self, other: _QuantilePass) -> _QuantilePass:
        if self.plans is None:
            self.hist += other.hist
        for c in range(len(self.values)):
            self.values[c] += other.values[c]
            self.slots[c] += other.slots[c]
        self.rows_read += other.rows_read
        self.rows_dropped += other.rows_dropped
        return self

    def marked(self, c: int) -> tuple[np.ndarray, np.ndarray]:
        v, sl = self.values[c], self.slots[c]
        if not v:
            return np.empty(0), np.empty(0, dtype=np.int32)
        return np.concatenate(v), np.concatenate(sl)


# ----------------------------------------------------------------------------------------------------
# the state


@dataclass
class _Spec:
    """What to read: column names and the shape of the problem."""

    prob: list[str]  # one column (binary or fixed-size list) or one per class
    label: str
    weights: str | None = None
    by: list[str] = field(default_factory=list)
    n_classes: int | None = None  # None: binary
    list_column: bool = False
    multiclass: str | None = None  # None, "top-label", "classwise"
    check_rows: bool = True

    @property
    def n_curves(self) -> int:
        return self.n_classes if self.multiclass == "classwise" else 1

    @property
    def columns(self) -> list[str]:
        cols = list(self.prob) + [self.label]
        if self.weights:
            cols.append(self.weights)
        return cols + list(self.by)


class CalibrationState:
    """Mergeable sufficient statistics of calibration curves.

    A fixed-size table per (curve, segment, bin): count, weight, weighted
    means of p and y, centred second moments (Chan et al. merge), sum of
    squared weights and the Brier sum; with ``n_resamples`` also Poisson
    bootstrap replicate sums per (curve, replicate, segment, bin).

    Build one with the edges and the column names (as :func:`calibration`
    takes them), feed it Arrow batches with :meth:`update`, combine with
    :meth:`merge`, and call :meth:`finalize`.  ``update(batch, row_offset=k)``
    sets the global index of the batch's first row (the bootstrap weights are
    a function of it); by default rows are numbered in the order the state
    sees them.
    """

    def __init__(self, edges, *, prob, label, weights=None, by=None, n_classes=None, multiclass=None,
                 list_column=False, check_rows=True, n_resamples=0, seed=0, strategy="custom",
                 backend="auto"):
        self.strategy = strategy
        self.backend = check_choice("backend", backend, ("auto", "cpu", "cuda"))
        self.backend_used = "cpu" if self.backend == "cpu" else None  # decided on the first batch
        self.spec = _Spec(prob=as_column_list("prob", prob, allow_none=False), label=label, weights=weights,
                          by=as_column_list("by", by), n_classes=n_classes, list_column=list_column,
                          multiclass=multiclass, check_rows=check_rows)
        self.n_resamples = int(n_resamples)
        self.seed = int(seed)
        self.segments = src.LabelIndex()
        n_seg = 0 if self.spec.by else 1
        nc = self.spec.n_curves
        e = np.asarray(edges, dtype=np.float64)
        # one row of edges per curve (classwise quantile edges differ per class)
        self.edges = np.ascontiguousarray(np.broadcast_to(e, (nc, e.shape[-1])) if e.ndim == 1 else e)
        if self.edges.shape[0] != nc:
            raise ValueError(f"edges has {self.edges.shape[0]} rows for {nc} curves")
        self.n_bins = self.edges.shape[1] - 1
        kern = _k()
        self._inner = [np.ascontiguousarray(e[1:-1]) for e in self.edges]
        self._lut = [kern.bin_lookup(i) for i in self._inner]
        lin = np.linspace(0.0, 1.0, self.n_bins + 1)
        self._uniform = [bool(np.array_equal(e, lin)) for e in self.edges]
        # per-bin shifts of the moment sums: the bin centres (uniform: exactly (b + 0.5) / n_bins)
        self._shift = [kern.uniform_shift(self.n_bins) if u else np.ascontiguousarray((e[:-1] + e[1:]) / 2)
                       for e, u in zip(self.edges, self._uniform, strict=True)]
        self.count = np.zeros((nc, n_seg * self.n_bins), dtype=np.int64)
        self.stats = np.zeros((nc, n_seg * self.n_bins, _k().N_STATS), dtype=np.float64)
        self.boot = np.zeros((nc, self.n_resamples, n_seg * self.n_bins, 3), dtype=np.float64)
        self.rows = 0
        self.rows_read = 0  # rows given to update (before nulls were dropped)
        self.rows_dropped = 0  # rows update(..., nulls="drop") left out
        self.weighted = weights is not None

    # -- growing the segment axis
    @property
    def n_segments(self) -> int:
        return len(self.segments) if self.spec.by else 1

    def _grow(self, n_seg: int) -> None:
        cells = n_seg * self.n_bins
        old = self.count.shape[1]
        if cells <= old:
            return
        nc = self.count.shape[0]
        cnt = np.zeros((nc, cells), dtype=np.int64)
        cnt[:, :old] = self.count
        st = np.zeros((nc, cells, self.stats.shape[2]), dtype=np.float64)
        st[:, :old] = self.stats
        bt = np.zeros((nc, self.n_resamples, cells, 3), dtype=np.float64)
        bt[:, :, :old] = self.boot
        self.count, self.stats, self.boot = cnt, st, bt

    # -- reading a batch
    def _label_view(self, batch):
        y = src.numeric_view(batch.column(self.spec.label))
        if y.dtype == np.int8:
            y = y.view(np.uint8)  # same kernel as booleans (-1 becomes 255: still "not 0/1")
        if self.spec.n_classes is not None and y.dtype.kind == "f":
            raise TypeError(f"column {self.spec.label!r} (given as `label`) must hold integer class indices "
                            f"0..{self.spec.n_classes - 1} for multiclass input; got floats")
        return y

    def _class_probabilities(self, batch):
        """Multiclass: ``(matrix, columns)``, one of them None: the C-contiguous (rows, classes) view
        of a fixed-size-list column, or the per-class column views."""
        spec = self.spec
        k = spec.n_classes
        if not spec.list_column:
            return None, [src.numeric_view(batch.column(c)) for c in spec.prob]
        arr = batch.column(spec.prob[0])
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        flat = arr.flatten() if arr.offset == 0 else arr.values.slice(arr.offset * k, len(arr) * k)
        if flat.null_count:
            raise ValueError(f"column {spec.prob[0]!r} (given as `prob`) has null class probabilities")
        return np.ascontiguousarray(src.numeric_view(flat).reshape(len(arr), k)), None

    def _curves(self, batch):
        """Per-curve (p, y, target) arrays of a batch, validated for the multiclass checks."""
        spec = self.spec
        y = self._label_view(batch)
        if spec.n_classes is None:
            return [(src.numeric_view(batch.column(spec.prob[0])), y, -1)], y
        k = spec.n_classes
        mat, cols = self._class_probabilities(batch)
        kern = _k()
        top = kern.top_label_parallel if len(y) >= PARALLEL_MIN_ROWS else kern.top_label_serial
        if mat is None:
            mat = np.column_stack(cols)
        if spec.multiclass == "top-label":
            conf, correct, bad = top(mat, y, k, ROW_SUM_TOL, spec.check_rows, CHUNK_ROWS)
            self._raise_flags(bad, k)
            return [(conf, correct, -1)], y
        _, _, bad = top(mat, y, k, ROW_SUM_TOL, spec.check_rows, CHUNK_ROWS)
        self._raise_flags(bad, k)
        if cols is None:
            cols = [np.ascontiguousarray(mat[:, j]) for j in range(k)]
        return [(cols[j], y, j) for j in range(k)], y

    def _raise_flags(self, bad, k):
        """``bad``: rows with a probability outside [0, 1] or NaN, labels outside the classes,
        rows not summing to 1 (as the multiclass kernel counts them)."""
        n_p, n_y, n_s = (int(v) for v in bad)
        spec = self.spec
        if n_p:
            raise ValueError(f"`prob` ({', '.join(map(repr, spec.prob))}) has {n_p:,} row(s) with a "
                             "probability outside [0, 1] or NaN")
        if n_y:
            raise ValueError(f"column {spec.label!r} (given as `label`) has {n_y:,} value(s) outside the "
                             f"class indices 0..{k - 1}")
        if n_s:
            raise ValueError(f"{n_s:,} row(s) of `prob` do not sum to 1 (tolerance {ROW_SUM_TOL:g}); "
                             "pass check_rows=False to skip this check")

    def _weights(self, batch):
        if not self.spec.weights:
            return np.empty(0, dtype=np.float64)
        w = src.numeric_view(batch.column(self.spec.weights))
        if (w.dtype.kind == "f" and not np.isfinite(w.min() + w.max())) or w.min() < 0:
            raise ValueError(f"column {self.spec.weights!r} (given as `weights`) must hold finite, "
                             "non-negative weights")
        return w

    def _segment_codes(self, batch):
        if not self.spec.by:
            return np.empty(0, dtype=np.int64)
        lc = src.combine_codes([src.local_codes(batch.column(c)) for c in self.spec.by])
        local = np.asarray(lc.codes, dtype=np.int64) - lc.offset
        present = np.bincount(local, minlength=lc.width) > 0
        mapping = self.segments.map_local(lc, present)
        return mapping[local]

    def update(self, batch, *, row_offset: int | None = None, nulls: str | None = None) -> CalibrationState:
        """Fold one Arrow RecordBatch (or Table) into the state.

        ``row_offset``: global index of the first row (the bootstrap weights are keyed by it);
        by default the rows follow those folded so far.  ``nulls``: None trusts the batch (the
        kernels still reject NaN probabilities and labels); ``"raise"`` or ``"drop"`` handle
        nulls (and NaN) in the columns read as :func:`calibration` does (Dask partitions)."""
        if nulls is not None:
            scan = _scan_table(batch, self.spec.columns, check_nulls(nulls))
            for b in scan:
                self._update_batch(b, row_offset)
                if row_offset is not None:
                    row_offset += b.num_rows
            self.rows_read += scan.stats.rows_read
            self.rows_dropped += scan.stats.rows_dropped
            return self
        for b in batch.to_batches() if isinstance(batch, pa.Table) else [batch]:
            self._update_batch(b, row_offset)
            self.rows_read += b.num_rows
            if row_offset is not None:
                row_offset += b.num_rows
        return self

    def rows_used_in(self, table, *, nulls: str | None = None, **_) -> int:
        """Rows of ``table`` an update with ``nulls`` would fold in (Dask counts them to give each
        partition the global index of its first row, which keys the bootstrap weights)."""
        if nulls is None:
            return table.num_rows
        scan = _scan_table(table, self.spec.columns, check_nulls(nulls))
        for _ in scan:
            pass
        return scan.stats.rows_used

    def _update_batch(self, batch, row_offset) -> None:
        n = batch.num_rows
        if n == 0:
            return
        row0 = self.rows if row_offset is None else int(row_offset)
        kern = _k()
        if self.backend_used is None:
            from ._cuda.backend import resolve_backend

            self.backend_used = resolve_backend(self.backend, n * self.spec.n_curves)
        if self.spec.multiclass == "top-label" and self.backend_used == "cpu" and not self.n_resamples:
            self._update_top_label(batch)
            self.rows = max(self.rows, row0 + n)
            return
        curves, _ = self._curves(batch)
        w = self._weights(batch)
        seg = self._segment_codes(batch)
        self._grow(self.n_segments)
        n_cells = self.count.shape[1]
        fold = kern.fold_bins_parallel if n >= PARALLEL_MIN_ROWS else kern.fold_bins_serial
        if self.backend_used == "cuda":
            from ._cuda import calibration as cuda_kern

            fold = cuda_kern.fold_bins
        for c, (p, y, target) in enumerate(curves):
            inner, lut = self._inner[c], self._lut[c]
            uni = self._uniform[c]
            cnt, st, bad_p, bad_y = fold(p, y, target, w, seg, self.n_bins, inner, lut, uni, self._shift[c],
                                         n_cells, CHUNK_ROWS)
            if bad_p:
                raise ValueError(f"`prob` ({self.spec.prob[0]!r}) has {int(bad_p):,} value(s) outside "
                                 "[0, 1] or NaN")
            if bad_y:
                raise ValueError(f"column {self.spec.label!r} (given as `label`) has {int(bad_y):,} "
                                 "value(s) other than 0 and 1")
            kern.merge_into(self.count[c], self.stats[c], cnt, st)
            if self.n_resamples:
                cells, obs = kern.assign_cells(p, y, target, seg, self.n_bins, inner, lut, uni, CHUNK_ROWS)
                kern.bootstrap_sums(p, cells, obs, w, row0, np.uint64(self.seed), self.n_resamples, self.boot[c])
        self.rows = max(self.rows, row0 + n)

    def _update_top_label(self, batch) -> None:
        """Top-label on the CPU without bootstrap: max/argmax, the multiclass checks and the binning
        in one kernel pass (the confidences are never materialized)."""
        k = self.spec.n_classes
        y = self._label_view(batch)
        mat, cols = self._class_probabilities(batch)
        if mat is None:
            mat = np.column_stack(cols)
        w = self._weights(batch)
        seg = self._segment_codes(batch)
        self._grow(self.n_segments)
        kern = _k()
        fold = kern.fold_top_label_parallel if len(y) >= PARALLEL_MIN_ROWS else kern.fold_top_label_serial
        cnt, st, bad = fold(mat, y, k, ROW_SUM_TOL, self.spec.check_rows, w, seg, self.n_bins, self._inner[0],
                            self._lut[0], self._uniform[0], self._shift[0], self.count.shape[1], CHUNK_ROWS)
        self._raise_flags(bad, k)
        kern.merge_into(self.count[0], self.stats[0], cnt, st)

    def _compatible(self, other: CalibrationState) -> None:
        if not isinstance(other, CalibrationState):
            raise TypeError(f"can only merge another CalibrationState; got {type(other).__name__}")
        same = (np.array_equal(self.edges, other.edges) and self.spec.n_curves == other.spec.n_curves
                and self.n_resamples == other.n_resamples and self.seed == other.seed
                and bool(self.spec.by) == bool(other.spec.by) and self.weighted == other.weighted)
        if not same:
            raise ValueError("states differ in edges, classes, segments, weights, n_resamples or seed; "
                             "cannot merge")

    def merge(self, other: CalibrationState) -> CalibrationState:
        """Fold ``other`` into this state (in place) and return it."""
        self._compatible(other)
        kern = _k()
        nb = self.n_bins
        if self.spec.by:
            order = [self.segments.add(lab) for lab in other.segments.labels]
            self._grow(len(self.segments))
            cells = (np.asarray(order, dtype=np.int64)[:, None] * nb + np.arange(nb)).reshape(-1)
        else:
            cells = np.arange(nb)
        for c in range(self.count.shape[0]):
            cnt = np.zeros(self.count.shape[1], dtype=np.int64)
            st = np.zeros(self.stats.shape[1:], dtype=np.float64)
            m = other.count.shape[1]
            cnt[cells[:m]] = other.count[c]
            st[cells[:m]] = other.stats[c]
            kern.merge_into(self.count[c], self.stats[c], cnt, st)
            if self.n_resamples:
                self.boot[c][:, cells[:m]] += other.boot[c]
        self.rows = max(self.rows, other.rows)
        self.rows_read += other.rows_read
        self.rows_dropped += other.rows_dropped
        used = {self.backend_used, other.backend_used}
        self.backend_used = "cuda" if "cuda" in used else ("cpu" if "cpu" in used else None)
        return self

    # -- serialization
    def to_dict(self) -> dict:
        s = self.spec
        return {
            "edges": self.edges.tolist(), "strategy": self.strategy, "prob": s.prob, "label": s.label,
            "weights": s.weights, "by": s.by, "n_classes": s.n_classes, "multiclass": s.multiclass,
            "list_column": s.list_column, "check_rows": s.check_rows, "n_resamples": self.n_resamples,
            "seed": self.seed, "segments": list(self.segments.labels), "rows": self.rows,
            "rows_read": self.rows_read, "rows_dropped": self.rows_dropped,
            "count": self.count.tolist(), "stats": self.stats.tolist(), "boot": self.boot.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> CalibrationState:
        st = cls(d["edges"], prob=d["prob"], label=d["label"], weights=d["weights"], by=d["by"] or None,
                 n_classes=d["n_classes"], multiclass=d["multiclass"], list_column=d["list_column"],
                 check_rows=d["check_rows"], n_resamples=d["n_resamples"], seed=d["seed"],
                 strategy=d["strategy"])
        for lab in d["segments"]:
            st.segments.add(tuple(lab) if isinstance(lab, list) else lab)
        st.count = np.asarray(d["count"], dtype=np.int64).reshape(st.count.shape[0], -1)
        st.stats = np.asarray(d["stats"], dtype=np.float64).reshape(st.count.shape + (st.stats.shape[2],))
        st.boot = np.asarray(d["boot"], dtype=np.float64).reshape(
            (st.count.shape[0], st.n_resamples, st.count.shape[1], 3))
        st.rows = int(d["rows"])
        st.rows_read = int(d.get("rows_read", 0))
        st.rows_dropped = int(d.get("rows_dropped", 0))
        return st

    # -- finalize
    def finalize(self, *, confidence: float = 0.95, rows_dropped: int = 0) -> CalibrationResult:
        """Turn the state into a :class:`CalibrationResult` (closed-form NumPy math)."""
        confidence = check_probability("confidence", confidence)
        nb = self.n_bins
        nc = self.count.shape[0]
        n_seg = self.count.shape[1] // nb
        cnt = self.count.reshape(nc, n_seg, nb)
        st = self.stats.reshape(nc, n_seg, nb, -1)
        boot = self.boot.reshape(nc, self.n_resamples, n_seg, nb, 3)
        if self.spec.multiclass != "classwise":
            labels = [None]
        elif self.spec.list_column:
            labels = list(range(nc))
        else:
            labels = list(self.spec.prob)  # one column per class: the curve is named by its column
        if self.spec.by:
            total_cnt = np.zeros((nc, nb), dtype=np.int64)
            total_st = np.zeros((nc, nb, st.shape[3]))
            kern = _k()
            for c in range(nc):
                for s in range(n_seg):
                    kern.merge_into(total_cnt[c], total_st[c], np.ascontiguousarray(cnt[c, s]),
                                    np.ascontiguousarray(st[c, s]))
            total_boot = boot.sum(axis=2)
        else:
            total_cnt, total_st, total_boot = cnt[:, 0], st[:, 0], boot[:, :, 0]
        overall = self._result(total_cnt, total_st, total_boot, labels, confidence, rows_dropped, None)
        if not self.spec.by:
            return overall
        segs = {}
        for s, lab in enumerate(self.segments.labels):
            segs[lab] = self._result(cnt[:, s], st[:, s], boot[:, :, s], labels, confidence, 0, None)
        return _replace_segments(overall, segs)

    def _result(self, cnt, st, boot, labels, confidence, rows_dropped, segments):
        curves = []
        rep_ece = []
        for c, lab in enumerate(labels):
            curve, reps = _curve(self.edges[c], cnt[c], st[c], boot[c] if self.n_resamples else None,
                                 lab, confidence, self.weighted)
            curves.append(curve)
            rep_ece.append(reps)
        alpha = 1 - confidence
        if len(curves) == 1:
            c0 = curves[0]
            ece, rms, mce, dsq = c0.ece, c0.rms, c0.mce, c0.debiased_l2_sq
            dec = c0.brier
            ece_ci = c0.ece_ci
        else:
            ece = float(np.mean([c.ece for c in curves]))
            rms = float(np.sqrt(np.mean([c.rms ** 2 for c in curves])))
            mce = float(np.max([c.mce for c in curves]))
            dsq = float(np.mean([c.debiased_l2_sq for c in curves]))
            fields = BrierDecomposition.__slots__
            dec = BrierDecomposition(**{f: float(sum(getattr(c.brier, f) for c in curves)) for f in fields})
            ece_ci = None
            if self.n_resamples:
                reps = np.mean(np.vstack(rep_ece), axis=0)
                lo, hi = np.percentile(reps, [100 * alpha / 2, 100 * (1 - alpha / 2)])
                ece_ci = Interval(float(lo), float(hi))
        collapsed = tuple(int(i) for i in np.flatnonzero((np.diff(self.edges, axis=1) == 0).any(axis=0)))
        edges = self.edges[0].copy() if len(self.edges) == 1 or (self.edges == self.edges[0]).all() \
            else self.edges.copy()
        return CalibrationResult(
            ece=ece, ece_ci=ece_ci, rms=rms, mce=mce, debiased_l2_sq=dsq, brier=dec.brier,
            brier_decomposition=dec, curves=tuple(curves), segments=segments, edges=edges,
            n_bins=self.n_bins, strategy=self.strategy, multiclass=self.spec.multiclass,
            n=int(cnt[0].sum()), rows_dropped=int(rows_dropped), collapsed_bins=collapsed,
            confidence=confidence, n_resamples=self.n_resamples, backend=self.backend_used or "cpu",
        )


def _replace_segments(res: CalibrationResult, segs: dict) -> CalibrationResult:
    d = {f: getattr(res, f) for f in CalibrationResult.__slots__}
    d["segments"] = segs
    return CalibrationResult(**d)


def _wilson(phat, n, z):
    from ._stats import wilson_interval

    return Interval(*wilson_interval(phat, n, z))


def _curve(edges, cnt, st, boot, label, confidence, weighted):
    from ._special import ndtri

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
    interval = _wilson(ybar, np.where(nonempty, neff, np.nan), z)
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
        band = Interval(band_lo, band_hi)
        good = reps[np.isfinite(reps)]
        if len(good):
            lo, hi = np.percentile(good, [lo_q, hi_q])
            ece_ci = Interval(float(lo), float(hi))
    curve = CalibrationCurve(
        label=label, edges=edges.copy(), count=cnt.copy(), weight=w.copy(), mean_predicted=pbar,
        observed_frequency=ybar, interval=interval, band=band, ece=ece, rms=rms, mce=mce,
        debiased_l2_sq=dsq, brier=dec, ece_ci=ece_ci, n=int(cnt.sum()), weight_total=wt,
    )
    return curve, reps


# ----------------------------------------------------------------------------------------------------
# public entry point


def _resolve_prob(source, prob, label, weights, by, multiclass):
    """Work out binary / multiclass from the prob argument and the schema."""
    if isinstance(prob, str):
        cols = [prob]
    elif isinstance(prob, Sequence) and not isinstance(prob, (bytes, str)):
        cols = as_column_list("prob", list(prob), allow_none=False)
    else:
        raise TypeError(f"`prob` must be a column name or a list of column names; got {prob!r}")
    names = source.schema.names
    for c in cols:
        if c not in names:
            shown = ", ".join(repr(n) for n in names[:20])
            raise ValueError(f"unknown column {c!r} (given as `prob`); the input has columns: {shown}")
    need = {label: ("label", src.NUMERIC)}
    if weights is not None:
        need[weights] = ("weights", src.NUMERIC)
    for b in by:
        need[b] = ("by", src.LABEL)
    source.require(need)
    list_column = False
    if len(cols) == 1:
        t = source.schema.field(cols[0]).type
        if pa.types.is_fixed_size_list(t):
            if not (pa.types.is_floating(t.value_type) or pa.types.is_integer(t.value_type)):
                raise TypeError(f"column {cols[0]!r} (given as `prob`) is a list of {t.value_type}; "
                                "expected floats")
            n_classes = t.list_size
            list_column = True
        elif pa.types.is_list(t) or pa.types.is_large_list(t):
            raise TypeError(f"column {cols[0]!r} (given as `prob`) is a variable-size list; cast it to a "
                            "fixed-size list (pa.list_(pa.float64(), K)) or pass one column per class")
        else:
            source.require({cols[0]: ("prob", src.NUMERIC)})
            n_classes = None
    else:
        source.require({c: ("prob", src.NUMERIC) for c in cols})
        n_classes = len(cols)
    if n_classes is not None:
        if n_classes < 2:
            raise ValueError(f"multiclass `prob` needs at least 2 classes; got {n_classes}")
        mc = check_choice("multiclass", multiclass, _MULTICLASS)
    else:
        mc = None
    return cols, n_classes, list_column, mc


def calibration(data, *, prob, label, n_bins: int = 15, strategy="uniform", weights=None,
                multiclass="top-label", by=None, n_resamples: int = 0, confidence: float = 0.95, seed=None,
                nulls="raise", filter=None, batch_size=None, check_rows: bool = True,
                engine=None, backend: str = "auto") -> CalibrationResult:
    """Reliability curve, calibration errors and Brier decomposition.

    Parameters
    ----------
    data
        Any input of the input layer: pyarrow Table/RecordBatch/reader/dataset,
        Parquet path or glob, pandas/polars DataFrame, dict of arrays; or a
        ``dask.dataframe.DataFrame`` (see ``engine``).
    prob
        Binary: the column of positive-class probabilities. Multiclass: a list
        of one column per class, or one fixed-size-list column.
    label
        Binary: 0/1 or boolean column. Multiclass: integer class index column.
    n_bins, strategy
        ``"uniform"`` (``np.linspace(0, 1, n_bins + 1)``), ``"quantile"``
        (``np.percentile`` of the predictions, computed exactly in two passes
        over the data) or an increasing array of edges in [0, 1]. A value ``p``
        goes to bin ``np.searchsorted(edges[1:-1], p)`` exactly as in
        ``sklearn.calibration.calibration_curve``.
    weights
        Optional column of non-negative row weights.
    multiclass
        ``"top-label"`` (confidence of the argmax class vs. correctness) or
        ``"classwise"`` (one one-vs-rest curve per class).
    by
        Column(s) to slice by: a result per segment in ``result.segments``
        (same edges as the overall curve).
    n_resamples, confidence, seed
        Poisson-bootstrap band per bin and CI of ECE with ``n_resamples``
        replicates; row weights are Poisson(1) draws keyed by (seed, replicate,
        row index), the same on any thread count or batch size.
    nulls
        ``"raise"`` or ``"drop"`` rows with nulls/NaN.
    filter, batch_size
        Pushed into the scan (see the input layer).
    check_rows
        Multiclass: check each row of probabilities sums to 1 (within 1e-6).
    engine : {None, "auto", "arrow", "dask"}
        None/"auto" runs a ``dask.dataframe.DataFrame`` on Dask and everything else in
        this process; "dask" also has the Dask workers read a Parquet path, glob or list
        of paths themselves; "arrow" reads in this process.  On Dask each partition folds
        a state on its worker and the states are tree-merged on the current
        ``distributed.Client`` (quantile edges: two more passes of mergeable states, a
        fine histogram and the values of the few cells that hold an edge); the answer is
        the in-process one (counts exactly, sums to rounding), bootstrap bands included:
        their weights are keyed by each row's global index.
    backend : {"auto", "cpu", "cuda"}
        Where the binning runs: ``"cuda"`` on an NVIDIA GPU (the same counts, sums to
        1e-9; needs the ``cuda`` extra and a GPU, else an error saying why); ``"auto"``
        uses a GPU only when one is present and the batches are large. Bootstrap bands
        are drawn on the CPU. ``result.backend`` says where the binning ran.

    Returns
    -------
    CalibrationResult

    References
    ----------
    Naeini, Cooper & Hauskrecht (2015), ECE. Kumar, Liang & Ma (2019),
    "Verified uncertainty calibration" (debiased L2). Murphy (1973) and
    Stephenson, Coelho & Jolliffe (2008) for the Brier decomposition.

    Examples
    --------
    >>> import numpy as np, fastevals
    >>> rng = np.random.default_rng(0)
    >>> p = rng.beta(2, 5, 10_000)
    >>> y = (rng.random(10_000) < p).astype(np.int8)
    >>> res = fastevals.calibration({"p": p, "y": y}, prob="p", label="y", n_bins=10)
    >>> bool(res.ece < 0.03)
    True
    """
    nulls = check_nulls(nulls)
    confidence = check_probability("confidence", confidence)
    n_resamples = check_int("n_resamples", n_resamples, low=0, high=MAX_RESAMPLES)
    multiclass = check_choice("multiclass", multiclass, _MULTICLASS)
    by_cols = as_column_list("by", by)
    if weights is not None and not isinstance(weights, str):
        raise TypeError(f"`weights` must be a column name or None; got {weights!r}")
    if not isinstance(label, str):
        raise TypeError(f"`label` must be a column name; got {label!r}")
    if isinstance(strategy, str):
        strategy = check_choice("strategy", strategy, _STRATEGIES)
        n_bins = check_int("n_bins", n_bins, low=1)
        custom = None
    else:
        custom = _check_edges(strategy)
        n_bins = len(custom) - 1
    seed_key = check_seed("seed", seed) if n_resamples else 0
    hint = ([prob] if isinstance(prob, str) else list(prob)) + [label]
    hint += ([weights] if weights else []) + by_cols
    if _dask.wants_dask(data, engine):
        ddf = data if _dask.is_dask_collection(data) else _dask.read_parquet(data)
        # the schema of the partitions, from the Dask DataFrame's (empty) meta
        source = src.open_source(_dask._partition_table(ddf._meta), columns_hint=hint)
    else:
        ddf = None
        # a filter may name columns the analysis does not read: then DataFrames and dicts keep them all
        source = src.open_source(data, filter=filter, batch_size=batch_size,
                                 columns_hint=hint if filter is None else None)
    cols, n_classes, list_column, mc = _resolve_prob(source, prob, label, weights, by_cols, multiclass)
    spec_cols = cols + [label] + ([weights] if weights else []) + by_cols
    spec_cols = list(dict.fromkeys(spec_cols))
    # with nulls="raise" the kernels themselves reject NaN (as a probability outside [0, 1], a label
    # other than 0/1, a weight that is not finite), which saves the input layer a pass
    nan_cols = () if nulls == "raise" else tuple(
        c for c in spec_cols if pa.types.is_floating(source.schema.field(c).type))

    def make_state(edges, strat):
        return CalibrationState(edges, prob=cols, label=label, weights=weights, by=by_cols or None,
                                n_classes=n_classes, multiclass=mc, list_column=list_column,
                                check_rows=check_rows, n_resamples=n_resamples, seed=seed_key, strategy=strat,
                                backend=backend)

    if ddf is not None:
        return _calibration_on_dask(ddf, make_state, custom, strategy, n_bins, spec_cols, nulls, filter,
                                    confidence, label, mc)
    if custom is not None:
        edges_list = [custom]
        strat = "custom"
    elif strategy == "uniform":
        edges_list = [uniform_edges(n_bins)]
        strat = "uniform"
    else:
        strat = "quantile"
        if not source.rescannable:
            raise ValueError(
                "strategy='quantile' reads the data twice (exact edges, then the bins) and "
                f"{source.description} can be read only once; pass a Table, a dataset or a Parquet path "
                "(e.g. pa.Table.from_batches(reader)), or give the edges as `strategy=`"
            )
        probe = make_state(uniform_edges(n_bins), "uniform")

        def batches_of_curves():
            scan = src.Scan(source, columns=spec_cols, nulls=nulls, nan_columns=nan_cols)
            for batch in scan:
                curves, _ = probe._curves(batch)
                yield [np.asarray(p, dtype=np.float64) if p.dtype != np.float64 else p for p, _, _ in curves]
            scan.check_not_empty()

        edges_list = _exact_quantile_edges(batches_of_curves, probe.spec.n_curves, n_bins)
    scan = src.Scan(source, columns=spec_cols, nulls=nulls, nan_columns=nan_cols)
    state = make_state(edges_list[0] if len(edges_list) == 1 else np.vstack(edges_list), strat)
    for batch in scan:
        state.update(batch)
    scan.check_not_empty()
    res = state.finalize(confidence=confidence, rows_dropped=scan.stats.rows_dropped)
    _check_two_classes(res, label, mc)
    return res


def _calibration_on_dask(ddf, make_state, custom, strategy, n_bins, columns, nulls, filter, confidence,
                         label, multiclass) -> CalibrationResult:
    """:func:`calibration` on a Dask DataFrame: every pass folds one state per partition on the
    workers and tree-merges the states (see :mod:`fastevals._dask`)."""

    def fold(state, **kwargs):
        return _dask.update_state(state, ddf, engine="dask", columns=columns, nulls=nulls, filter=filter,
                                  **kwargs)

    if custom is not None:
        edges, strat = custom, "custom"
    elif strategy == "uniform":
        edges, strat = uniform_edges(n_bins), "uniform"
    else:
        strat = "quantile"
        probe = make_state(uniform_edges(n_bins), "uniform")
        hist, scan = fold(_QuantilePass(probe))
        scan.check_not_empty()
        plans = [_QuantilePlan.from_histogram(h, n_bins) for h in hist.hist]
        marked, _ = fold(_QuantilePass(probe, plans))
        edge_rows = [_edges_from_marked(plan, *marked.marked(c)) for c, plan in enumerate(plans)]
        edges = edge_rows[0] if len(edge_rows) == 1 else np.vstack(edge_rows)
    state = make_state(edges, strat)
    # row-keyed bootstrap weights need each partition's first global row index
    state, scan = fold(state, offset_arg="row_offset" if state.n_resamples else None)
    scan.check_not_empty()
    res = state.finalize(confidence=confidence, rows_dropped=scan.stats.rows_dropped)
    _check_two_classes(res, label, multiclass)
    return res


def _check_two_classes(res: CalibrationResult, label: str, multiclass) -> None:
    """Classwise calibration needs at least two classes present. Binary labels of a single class
    are fine: the ECE, the Brier score and the reliability curve are all defined there (an
    evaluation slice of only negatives is a legitimate input); top-label is exempt too."""
    if multiclass != "classwise":
        return
    present = [float(np.nansum(c.weight * c.observed_frequency)) > 0 for c in res.curves]
    if sum(present) < 2:
        raise ValueError(f"column {label!r} (given as `label`) has fewer than two classes present")


def warmup() -> None:
    """Compile (or load from numba's cache) the serial kernels on a tiny input."""
    rng = np.random.default_rng(0)
    p = rng.random(64)
    y = (rng.random(64) < p).astype(np.int64)
    for strategy in ("uniform", "quantile"):
        calibration({"p": p, "y": y}, prob="p", label="y", strategy=strategy)
