"""Bootstrap confidence intervals for evaluation metrics, in one compiled pass.

:func:`bootstrap` is a Poisson bootstrap with counter-based weights: replicate
``b`` gives the row with key ``k`` (its global index, or its cluster id) the
weight ``Poisson1(hash(seed, b, k))``.  Only per-replicate weighted sums are
kept (memory O(B x state), never O(B x N)); the weights are the same for any
batch size, thread count or file split, so results are reproducible everywhere.
``resampling="multinomial"`` gives the classic bootstrap (scipy's) for small N.

See :mod:`fastevals.metrics` for the metrics and ``docs/bootstrap.md`` for a tour.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pyarrow as pa

from . import _dask
from . import _source as src
from . import _special as special
from . import metrics as _metrics
from ._config import MAX_RESAMPLES, PARALLEL_MIN_ROWS
from ._fold import fold
from ._protocol import ConfidenceInterval, Result, State, fmt, plain, result_dataclass
from ._validation import as_column_list, check_choice, check_int, check_nulls, check_probability, check_seed

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import ArrayLike

    from ._typing import Columns, Data, Filter, Seed
    from .metrics import Metric

__all__ = [
    "bootstrap", "BootstrapResult", "BootstrapState", "BootstrapTable", "ConfidenceInterval", "error_rate_interval",
    "ProportionInterval", "poisson_weights", "warmup",
]

_METHODS = ("percentile", "basic", "bca")
_RESAMPLING = ("poisson", "multinomial")
_COMPARISONS = ("difference", "relative", "both")
# rows of a multinomial weight block (replicates x rows): bounds its memory
_MULTINOMIAL_BLOCK = 1 << 22


@result_dataclass
class BootstrapResult(Result):
    """One bootstrap interval.

    Attributes
    ----------
    estimate : the metric on the data.
    confidence_interval : ``ConfidenceInterval(low, high, confidence, method)``.
    standard_error : standard deviation of the bootstrap distribution (ddof=1).
    bootstrap_distribution : the metric on each replicate (length ``n_resamples``).
    method, n_resamples, confidence, resampling, seed : how it was computed.
    metric : the metric's name; ``segment`` / ``group`` where ``by`` / ``group`` were given.
    n : rows used (after nulls were dropped; for a comparison, both groups' rows).
    n_invalid : replicates whose metric was undefined (e.g. no positives drawn), left out of the
        interval (a ``DegenerateBootstrapWarning`` says so).
    """

    estimate: float
    confidence_interval: ConfidenceInterval
    standard_error: float
    bootstrap_distribution: np.ndarray
    method: str
    n_resamples: int
    confidence: float
    metric: str
    resampling: str
    seed: int
    n: int
    n_invalid: int = 0
    segment: object = None
    group: object = None
    acceleration: float | None = None
    comparison: str | None = None
    backend: str = "cpu"

    def to_dict(self) -> dict:
        """Plain values (the bootstrap distribution left out: it is ``n_resamples`` numbers)."""
        d = Result.to_dict(self)
        del d["bootstrap_distribution"]
        d["segment"], d["group"] = plain(self.segment), plain(self.group)
        return d

    def _title(self) -> str:
        return f"bootstrap: {self.metric}"

    def _summary_lines(self) -> list[str]:
        ci = self.confidence_interval
        lines = [f"estimate {fmt(self.estimate)}, {self.confidence:.0%} {self.method} interval {fmt(ci)}, "
                 f"standard error {fmt(self.standard_error)}",
                 f"B = {self.n_resamples:,} {self.resampling} replicates, seed {self.seed}, {self.n:,} rows"]
        if self.n_invalid:
            lines.append(f"{self.n_invalid:,} undefined replicates left out")
        return lines

    def _plot(self, ax) -> None:
        d = self.bootstrap_distribution
        ax.hist(d[np.isfinite(d)], bins=60, color="0.75")
        ax.axvline(self.estimate, color="k", label="estimate")
        for v in self.confidence_interval:
            ax.axvline(v, color="C3", linestyle="--")
        ax.set_xlabel(self.metric)
        ax.set_title(f"{self.confidence:.0%} {self.method} interval, B = {self.n_resamples:,}")


@result_dataclass
class BootstrapTable(Result):
    """Several intervals (several metrics, segments or groups): one row each in ``table``
    (``metric``, ``segment``, ``group``, ``comparison``, ``estimate``, ``low``, ``high``,
    ``standard_error``, ``n``); ``results`` holds each :class:`BootstrapResult`.
    """

    table: pa.Table
    results: tuple

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, i) -> BootstrapResult:
        return self.results[i]

    def __iter__(self):
        return iter(self.results)

    def to_dict(self) -> dict:
        """``{"rows": [each result's to_dict()]}``."""
        return {"rows": [r.to_dict() for r in self.results]}

    def _title(self) -> str:
        r0 = self.results[0]
        return (f"bootstrap: {r0.confidence:.0%} {r0.method} intervals, B = {r0.n_resamples:,} "
                f"{r0.resampling} replicates, seed {r0.seed}")

    def _plot(self, ax) -> None:
        est = np.array([r.estimate for r in self.results])
        lo = np.array([r.confidence_interval.low for r in self.results])
        hi = np.array([r.confidence_interval.high for r in self.results])
        y = np.arange(len(self.results))[::-1]
        ax.errorbar(est, y, xerr=[est - lo, hi - est], fmt="o", color="k", capsize=3)
        labels = [r.metric + ("" if r.segment is None else f" | {r.segment}") +
                  ("" if r.group is None else f" | {r.group}") for r in self.results]
        ax.set_yticks(y, labels)
        ax.set_xlabel("estimate with interval")


# ----------------------------------------------------------------------------------------------------
# weights, exposed for checks and for users who want the replicates themselves


def poisson_weights(n_rows: int | None = None, n_resamples: int = 1, seed: int = 0, *, start: int = 0,
                    keys: ArrayLike | None = None, first_replicate: int = 0) -> np.ndarray:
    """The engine's Poisson(1) weights ``w[b, i]`` as a (n_resamples, rows) uint8 matrix.

    Rows ``start .. start + n_rows - 1`` (global row indices), or cluster ``keys``
    (any integer or string array: the values of a ``cluster=`` column).  The
    engine never builds this matrix; it is here so results can be checked.

    Example
    -------
    >>> w = poisson_weights(10, 3, seed=1)
    >>> w.shape
    (3, 10)
    """
    from ._kernels import poisson as kp

    seed = check_seed("seed", seed)
    n_resamples = check_int("n_resamples", n_resamples, low=1, high=MAX_RESAMPLES)
    first_replicate = check_int("first_replicate", first_replicate, low=0, high=MAX_RESAMPLES - n_resamples)
    if keys is not None:
        k = _cluster_keys(pa.array(np.asarray(keys)) if not isinstance(keys, pa.Array) else keys)
        return kp.weight_matrix(np.uint64(seed), first_replicate, n_resamples, 0, 0, k)
    n_rows = check_int("n_rows", n_rows, low=0)
    return kp.weight_matrix(np.uint64(seed), first_replicate, n_resamples, check_int("start", start, low=0),
                            n_rows, np.empty(0, np.uint64))


def _cluster_keys(arr) -> np.ndarray:
    """64-bit weight keys of a cluster column's values (equal values -> equal keys, in every batch)."""
    from ._kernels import poisson as kp

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if pa.types.is_dictionary(t):
        return _cluster_keys(arr.dictionary)[src.numeric_view(arr.indices)]
    if pa.types.is_integer(t):
        return kp.hash_keys_int(src.numeric_view(arr).astype(np.int64))
    if pa.types.is_boolean(t):
        return kp.hash_keys_int(src.numeric_view(arr).astype(np.int64))
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        if pa.types.is_string(t):
            arr = arr.cast(pa.large_string())
        arr = pa.concat_arrays([arr]) if arr.offset else arr
        bufs = arr.buffers()
        offsets = np.frombuffer(bufs[1], dtype=np.int64)[: len(arr) + 1]
        data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.empty(0, np.uint8)
        return kp.hash_keys_bytes(offsets, data)
    raise TypeError(f"the `cluster` column must hold integers or strings; got {t}")


# ----------------------------------------------------------------------------------------------------
# closed-form interval for an error rate


class ProportionInterval(NamedTuple):
    """An interval ``(low, high)`` for a proportion (see :func:`error_rate_interval`)."""

    low: float
    high: float


def error_rate_interval(errors: int, n: int, confidence: float = 0.95, method: str = "normal") -> ProportionInterval:
    """Confidence interval for an error rate ``errors / n`` measured on a test set of ``n`` examples.

    ``method="normal"``: ``err +- z sqrt(err (1 - err) / n)`` (z = 2.58 for 99%), clipped to [0, 1];
    ``"wilson"``: Wilson's score interval; ``"clopper-pearson"``: the exact
    (beta) interval.  Equal to ``statsmodels.stats.proportion.proportion_confint``
    with ``alpha = 1 - confidence`` and method ``normal`` / ``wilson`` / ``beta``.

    Example
    -------
    >>> round(error_rate_interval(50, 1000, 0.95).high, 4)
    0.0635
    """
    n = check_int("n", n, low=1)
    errors = check_int("errors", errors, low=0, high=n)
    confidence = check_probability("confidence", confidence)
    method = check_choice("method", method, ("normal", "wilson", "clopper-pearson"))
    alpha = 1.0 - confidence
    p = errors / n
    z = float(special.ndtri(1.0 - alpha / 2.0))
    if method == "normal":
        d = z * math.sqrt(p * (1.0 - p) / n)
        # clipped to [0, 1], as statsmodels does
        return ProportionInterval(max(p - d, 0.0), min(p + d, 1.0))
    if method == "wilson":
        from ._stats import wilson_interval

        return ProportionInterval(*(float(v) for v in wilson_interval(p, n, z)))
    from scipy import stats  # Clopper-Pearson only: scipy.stats costs a second to import

    low = 0.0 if errors == 0 else float(stats.beta.ppf(alpha / 2.0, errors, n - errors + 1))
    high = 1.0 if errors == n else float(stats.beta.isf(alpha / 2.0, errors + 1, n - errors))
    return ProportionInterval(low, high)


# ----------------------------------------------------------------------------------------------------
# intervals from a bootstrap distribution (NumPy, as scipy.stats.bootstrap)


class DegenerateBootstrapWarning(UserWarning):
    """The metric was undefined on the data or on some replicates (one class for AUC, a zero
    denominator, constant data for BCa): the interval is missing or built from fewer replicates.
    """


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
# argument checks


@dataclass
class _Args:
    metrics: list
    n_resamples: int
    confidence: float
    method: str
    seed: int
    cluster: str | None
    by: list
    group: str | None
    control: object
    resampling: str
    nulls: str
    progress: object
    comparison: str = "difference"
    backend: str = "auto"
    backend_used: str = "cpu"  # what ran, set by _results


#: the replicates' statistics a bootstrap may hold in memory (bytes); more is refused up front
MAX_REPLICATE_BYTES = 4 << 30


def _check_replicate_memory(n_resamples: int, n_metrics: int, n_cells: int = 1) -> None:
    """Refuse a replicate count whose statistics cannot be held, before any work (not a MemoryError later)."""
    # per replicate and cell: a weighted count, sums for each metric's leaves (~4 floats a metric),
    # the metric's value and its sort for the interval
    need = n_resamples * n_cells * 8 * (3 + 6 * n_metrics)
    if need > MAX_REPLICATE_BYTES:
        most = MAX_REPLICATE_BYTES // (n_cells * 8 * (3 + 6 * n_metrics))
        raise ValueError(f"`n_resamples`={n_resamples:,} would hold about {need / 2**30:,.1f} GiB of replicate "
                         f"statistics; the limit is {MAX_REPLICATE_BYTES / 2**30:g} GiB (n_resamples <= {most:,} "
                         "here). Intervals stop improving long before that: 2,000-10,000 replicates is usual")


def _bootstrap_iv(metric, n_resamples, confidence, method, seed, cluster, by, group, control, resampling,
                  nulls, progress, comparison="difference", backend="auto") -> _Args:
    ms = metric if isinstance(metric, (list, tuple)) else [metric]
    # a state rebuilt from its bytes gives the metrics' stored specs
    ms = [_metrics.from_spec(m) if isinstance(m, dict) else m for m in ms]
    if not ms:
        raise ValueError("`metric` must be a metric or a non-empty list of metrics")
    for m in ms:
        if not isinstance(m, _metrics.Metric):
            raise TypeError(f"`metric` must be built with fastevals.metrics (e.g. metrics.mean('x')); got {m!r}")
    names = [m.name for m in ms]
    if len(set(names)) != len(names):
        raise ValueError(f"`metric` lists the same metric twice: {names!r}")
    n_resamples = check_int("n_resamples", n_resamples, low=2, high=MAX_RESAMPLES)
    _check_replicate_memory(n_resamples, len(ms))
    confidence = check_probability("confidence", confidence)
    method = check_choice("method", method, _METHODS)
    seed = check_seed("seed", seed)
    resampling = check_choice("resampling", resampling, _RESAMPLING)
    nulls = check_nulls(nulls)
    cl = as_column_list("cluster", cluster)
    if len(cl) > 1:
        raise ValueError(f"`cluster` must name one column; got {cluster!r}")
    by = as_column_list("by", by)
    grp = as_column_list("group", group)
    if len(grp) > 1:
        raise ValueError(f"`group` must name one column; got {group!r}")
    if control is not None and not grp:
        raise ValueError("`control` needs `group=`: the column whose levels are compared with the control")
    if cl and resampling == "multinomial":
        raise ValueError("cluster= works with resampling='poisson' only")
    if cl and method == "bca":
        for m in ms:
            if any(isinstance(leaf, _metrics.SortedMetric) for leaf in m.leaves()):
                raise ValueError("method='bca' with cluster= needs a closed-form leave-one-cluster-out "
                                 f"jackknife, which {m.name} lacks; use 'percentile' or 'basic'")
    if method == "bca":
        for m in ms:
            for leaf in m.leaves():
                if isinstance(leaf, _metrics.SortedMetric) and leaf.kind == "ap":
                    raise ValueError("method='bca' is not available for average_precision (no closed-form "
                                     "jackknife); use 'percentile' or 'basic'")
    comparison = check_choice("comparison", comparison, _COMPARISONS)
    backend = check_choice("backend", backend, ("auto", "cpu", "cuda"))
    if backend == "cuda" and resampling == "multinomial":
        raise ValueError("backend='cuda' runs the Poisson bootstrap; resampling='multinomial' runs on the CPU")
    return _Args(list(ms), n_resamples, confidence, method, seed, cl[0] if cl else None, by,
                 grp[0] if grp else None, control, resampling, nulls, progress, comparison, backend)


# ----------------------------------------------------------------------------------------------------
# the engine


class _Cells:
    """(by..., group) combinations -> stable cell codes, batch by batch."""

    def __init__(self, columns):
        self.columns = columns
        self.index = src.LabelIndex()

    def codes(self, batch) -> np.ndarray | None:
        if not self.columns:
            return None
        parts = [src.local_codes(batch.column(c)) for c in self.columns]
        lc = src.combine_codes(parts)
        local = np.asarray(lc.codes, dtype=np.int64) - lc.offset
        present = np.bincount(local, minlength=lc.width) > 0
        gmap = self.index.map_local(lc, present)
        return np.ascontiguousarray(gmap[local])

    def __len__(self):
        return max(1, len(self.index))

    def label(self, c):
        if not self.columns:
            return ()
        lab = self.index.labels[c]
        return lab if len(self.columns) > 1 else (lab,)


def _cat(parts, dtype) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype=dtype)


def _grow(a, n_cells, axis):
    if a.shape[axis] >= n_cells:
        return a
    shape = list(a.shape)
    shape[axis] = n_cells - a.shape[axis]
    return np.concatenate([a, np.zeros(shape, dtype=a.dtype)], axis=axis)


class BootstrapState(State, kind="bootstrap"):
    """Mergeable state of a bootstrap: per-replicate weighted sums, nothing per row.

    ``update(data)`` folds rows in, ``merge(other)`` combines two states
    (associative and commutative: shards of a log merged in any tree give the
    one-pass answer), ``finalize()`` gives the intervals.  This is what
    :func:`bootstrap` runs, and what runs on each Dask partition.

    What the state holds, per (segment, group) cell:

    * sum metrics: the weight total and the weighted feature sums of each replicate
      (``B x cells x features``); categorical metrics (proportion, accuracy, precision...):
      only the count of each outcome pattern, the replicates are drawn at finalize;
    * sorted metrics (AUC, average precision, quantiles): the columns they read, since they
      sort all rows once (this part grows with the rows);
    * ``resampling="multinomial"``: the rows' features (classic bootstrap, small data).

    A row's weight is keyed by its global index (or its ``cluster`` value), so the
    state of rows ``k .. k + m - 1`` must be told ``row_offset=k``; states of
    overlapping row ranges do not merge (their weights would repeat).

    Parameters
    ----------
    metric, n_resamples, seed, cluster, by, group, resampling, nulls, backend
        As in :func:`bootstrap`.  ``seed=None`` draws a seed once, here: copies of the state
        (one per partition) share it.

    Example
    -------
    >>> import numpy as np
    >>> from fastevals import BootstrapState, metrics
    >>> x = np.random.default_rng(0).normal(size=1000)
    >>> a = BootstrapState(metrics.mean("x"), n_resamples=500, seed=3).update({"x": x[:400]})
    >>> b = BootstrapState(metrics.mean("x"), n_resamples=500, seed=3).update({"x": x[400:]}, row_offset=400)
    >>> one = BootstrapState(metrics.mean("x"), n_resamples=500, seed=3).update({"x": x})
    >>> lo1, hi1 = a.merge(b).finalize().confidence_interval
    >>> lo2, hi2 = one.finalize().confidence_interval
    >>> bool(np.isclose(lo1, lo2, rtol=1e-12) and np.isclose(hi1, hi2, rtol=1e-12))
    True
    """

    row_keys = "used"  # a row's weight is keyed by its place among the rows used (after drops)

    def __init__(self, metric: Metric | Sequence[Metric], *, n_resamples: int = 2000, confidence: float = 0.95,
                 method: str = "percentile", seed: Seed = None, cluster: str | None = None,
                 by: Columns | None = None, group: str | None = None, control: str | None = None,
                 comparison: str = "difference", resampling: str = "poisson", nulls: str = "raise",
                 filter: Filter = None, batch_size: int | None = None, progress: bool | None = None,
                 backend: str = "auto"):
        State.__init__(self, nulls=nulls, filter=filter, batch_size=batch_size, progress=progress)
        self._setup(_bootstrap_iv(metric, n_resamples, confidence, method, seed, cluster, by, group, control,
                                  resampling, nulls, progress, comparison, backend))

    @classmethod
    def _from_args(cls, args: _Args, *, filter=None, batch_size=None) -> BootstrapState:
        st = cls.__new__(cls)
        State.__init__(st, nulls=args.nulls, filter=filter, batch_size=batch_size, progress=args.progress)
        st._setup(args)
        return st

    def _setup(self, args: _Args) -> None:
        from ._kernels import bootstrap as kb

        self.a = args
        leaves: list = []
        for m in args.metrics:
            for leaf in m.leaves():
                if all(leaf is not o for o in leaves):
                    leaves.append(leaf)
        self.leaves = leaves
        self.sum_leaves = [lf for lf in leaves if isinstance(lf, _metrics.SumMetric)]
        self.sorted_leaves = [lf for lf in leaves if isinstance(lf, _metrics.SortedMetric)]
        # the sufficient-statistics shortcut: every leaf categorical, rows independent (no cluster)
        self.categorical = (not self.sorted_leaves and all(lf.categorical for lf in self.sum_leaves)
                            and args.cluster is None)
        self.offsets = []
        f = 0
        for lf in self.sum_leaves:
            self.offsets.append(f)
            f += lf.n_features
        self.F = f
        if self.categorical and self.F > 20:
            self.categorical = False
        need: dict = {}
        for lf in leaves:
            for col, spec in lf.columns().items():
                need.setdefault(col, (spec[0], src.NUMERIC))
        self.metric_cols = list(need)
        for col in args.by:
            need[col] = ("by", src.LABEL)
        if args.group:
            need[args.group] = ("group", src.LABEL)
        if args.cluster:
            need[args.cluster] = ("cluster", src.LABEL)
        self.need = need
        self.cells = _Cells(args.by + ([args.group] if args.group else []))
        self.ctx: list[dict] = [{} for _ in self.sum_leaves]
        B = args.n_resamples
        self.wsum = np.zeros((B, 1), dtype=np.int64)
        self.vsum = np.zeros((B, 1, self.F, kb.LANES), dtype=np.float64)
        self.s_full = np.zeros((1, self.F))
        self.n_full = np.zeros(1, dtype=np.int64)
        self.pat = np.zeros((1, 1 << self.F if self.categorical else 1), dtype=np.int64)
        self.multinomial = args.resampling == "multinomial"
        self.keep_cells = bool(self.sorted_leaves) or self.multinomial
        self.kept_cols: dict = {c: [] for lf in self.sorted_leaves for c in lf.columns()}
        self.kept_cells: list = []
        self.kept_keys: list = []
        self.kept_rows: list = []  # global row index of each kept row
        self.kept_V: list = []
        self.ranges: list = []  # [start, stop) global row ranges folded in
        self._data = None  # the in-process input, for BCa's second pass
        self._dask_input: tuple | None = None  # (data, engine, filter, batch_size) of a run on Dask, for the same
        self.backend_used = None if args.backend != "cpu" else "cpu"
        self.rows_hint = None  # rows of the whole input when known (the GPU's "large enough")

    def _requirements(self) -> dict:
        return self.need

    # -- the protocol's bytes ------------------------------------------------------------------------
    def _params(self) -> dict:
        a = self.a
        return {"metric": [_metrics.to_spec(m) for m in a.metrics], "n_resamples": a.n_resamples,
                "confidence": a.confidence, "method": a.method, "seed": a.seed, "cluster": a.cluster,
                "by": list(a.by), "group": a.group, "control": a.control, "comparison": a.comparison,
                "resampling": a.resampling, "backend": a.backend}

    def _arrays(self) -> dict:
        out = {"wsum": self.wsum, "vsum": self.vsum, "s_full": self.s_full, "n_full": self.n_full,
               "pat": self.pat, "ranges": np.array(self.ranges, dtype=np.int64).reshape(-1, 2)}
        if self.keep_cells:
            out["kept_cells"] = _cat(self.kept_cells, np.int64)
            out["kept_rows"] = _cat(self.kept_rows, np.int64)
        if self.kept_keys:
            out["kept_keys"] = _cat(self.kept_keys, np.uint64)
        if self.multinomial:
            out["kept_V"] = (np.concatenate(self.kept_V, axis=1) if self.kept_V
                             else np.zeros((self.F, 0), dtype=np.float64))
        for c, parts in self.kept_cols.items():
            out[f"col:{c}"] = _cat(parts, np.float64)
        return out

    def _set_arrays(self, arrays: dict) -> None:
        for name in ("wsum", "vsum", "s_full", "n_full", "pat"):
            setattr(self, name, arrays[name])
        self.ranges = [tuple(int(v) for v in r) for r in arrays["ranges"]]
        if "kept_cells" in arrays:
            self.kept_cells, self.kept_rows = [arrays["kept_cells"]], [arrays["kept_rows"]]
        if "kept_keys" in arrays:
            self.kept_keys = [arrays["kept_keys"]]
        if "kept_V" in arrays:
            self.kept_V = [arrays["kept_V"]]
        for c in self.kept_cols:
            self.kept_cols[c] = [arrays[f"col:{c}"]]

    def _extra(self) -> dict:
        return {"labels": list(self.cells.index.labels), "ctx": [dict(c) for c in self.ctx],
                "backend_used": self.backend_used}

    def _set_extra(self, extra: dict) -> None:
        self.cells.index = src.LabelIndex(extra["labels"])
        self.ctx = [dict(c) for c in extra["ctx"]]
        self.backend_used = extra["backend_used"]

    @classmethod
    def _example(cls):
        rng = np.random.default_rng(7)
        data = {"x": rng.exponential(size=120), "y": rng.integers(0, 2, 120), "seg": rng.integers(0, 3, 120)}
        return {"metric": [_metrics.mean("x"), _metrics.std("x")], "n_resamples": 64, "seed": 3, "by": "seg"}, data

    # -- what the weights are keyed by ------------------------------------------------------------
    @property
    def keyed_by_row(self) -> bool:
        """True when row weights are keyed by the global row index (no cluster, Poisson, per-row draws)."""
        if self.a.cluster is not None or self.multinomial:
            return False
        return bool(self.sorted_leaves) or (self.F > 0 and not self.categorical)

    def _on_gpu(self, n: int) -> bool:
        """Whether the per-row work runs on the GPU: decided once per state (``backend``), on the
        first batch (or the whole table's rows when known), and recorded in ``backend_used``.
        """
        if self.backend_used is None:
            from ._cuda.backend import resolve_backend

            rows = max(n, self.rows_hint or 0)
            self.backend_used = resolve_backend(self.a.backend, rows * self.a.n_resamples)
        return self.backend_used == "cuda"

    @property
    def keyed_by_row_offset(self) -> bool:
        """Whether Dask must give each partition its first row's global index (a counting pass)."""
        return self.keyed_by_row

    def _next_row(self) -> int:
        return max((stop for _, stop in self.ranges), default=0)

    # -- update --------------------------------------------------------------------------------------
    def update(self, data, *, row_offset: int | None = None) -> BootstrapState:
        """Fold the rows of ``data`` (any source fastevals reads) into the state; returns it.

        ``row_offset``: global index of the first row used (default: right after the rows
        folded so far).  The update is atomic: on an error the state is unchanged.
        """
        part = self._empty()
        part.ctx = copy.deepcopy(self.ctx)
        g0 = self._next_row() if row_offset is None else check_int("row_offset", row_offset, low=0)
        part.rows_hint = getattr(data, "num_rows", None) if isinstance(data, pa.Table) else None
        for batch, rows, read, dropped in part._scan(data, g0, progress=self.progress):
            part.n_read += read
            part.n_dropped += dropped
            if batch is not None:
                part._fold(batch, rows.start)
        if part.n:
            part.ranges.append((g0, g0 + part.n))
        self._absorb(part)
        self._data = data
        return self

    def _batch_features(self, batch):
        cols = {c: src.numeric_view(batch.column(c)) for c in self.metric_cols}
        if self.sum_leaves and not self.ctx[0].get("_prepared"):
            for lf, ctx in zip(self.sum_leaves, self.ctx):
                lf.prepare(cols, ctx)
                ctx["_prepared"] = True
        if len(self.sum_leaves) == 1:
            # one leaf: its features as they come (a zero-copy view for a float64 column)
            V = np.ascontiguousarray(self.sum_leaves[0].features(cols, self.ctx[0]), dtype=np.float64)
        elif self.F:
            V = np.empty((self.F, batch.num_rows), dtype=np.float64)
            for lf, off, ctx in zip(self.sum_leaves, self.offsets, self.ctx):
                V[off:off + lf.n_features] = lf.features(cols, ctx)
        else:
            V = np.empty((0, batch.num_rows), dtype=np.float64)
        return cols, V

    def _fold(self, batch, g0: int) -> None:
        from ._kernels import bootstrap as kb

        a = self.a
        n = batch.num_rows
        B = a.n_resamples
        cells = self.cells.codes(batch)
        C = len(self.cells)
        cols, V = self._batch_features(batch)
        keys = _cluster_keys(batch.column(a.cluster)) if a.cluster else None
        cc = cells if cells is not None else np.zeros(n, dtype=np.int64)
        # full-data sums (the estimate)
        self.s_full = _grow(self.s_full, C, 0)
        self.n_full = _grow(self.n_full, C, 0)
        if cells is None:
            self.n_full[0] += n
            self.s_full[0] += V.sum(axis=1)
        else:
            self.n_full += np.bincount(cc, minlength=C)
            for f in range(self.F):
                self.s_full[:, f] += np.bincount(cc, weights=V[f], minlength=C)
        if self.keep_cells:
            self.kept_cells.append(cc)
            self.kept_rows.append(np.arange(g0, g0 + n, dtype=np.int64))
        if self.sorted_leaves:
            for c in self.kept_cols:
                self.kept_cols[c].append(np.asarray(cols[c]).copy())
            if keys is not None:
                self.kept_keys.append(keys)
        if self.multinomial:
            self.kept_V.append(np.array(V, dtype=np.float64))
        elif self.categorical:
            code = np.zeros(n, dtype=np.int64)
            for f in range(self.F):
                code |= (V[f] != 0).astype(np.int64) << f
            self.pat = _grow(self.pat, C, 0)
            base = cc * self.pat.shape[1] if cells is not None else 0
            self.pat += np.bincount(base + code, minlength=C * self.pat.shape[1]).reshape(C, -1)
        elif self.F:
            self.wsum = _grow(self.wsum, C, 1)
            self.vsum = _grow(self.vsum, C, 1)
            if self._on_gpu(n):
                from ._cuda import bootstrap as cb

                kern = cb.accumulate_rows
            else:
                kern = kb.accumulate_rows_parallel if n * B >= PARALLEL_MIN_ROWS else kb.accumulate_rows_serial
            kern(np.uint64(a.seed), g0, n, keys if keys is not None else np.empty(0, np.uint64),
                 cells if cells is not None else np.empty(0, np.int64), np.ascontiguousarray(V),
                 self.wsum, self.vsum)

    # -- merge ---------------------------------------------------------------------------------------
    def _spec(self) -> tuple:
        a = self.a
        return ([m.name for m in a.metrics], a.n_resamples, a.seed, a.cluster, a.by, a.group, a.resampling,
                a.nulls)

    def _empty(self) -> BootstrapState:
        return BootstrapState._from_args(self.a, filter=self.filter, batch_size=self.batch_size)

    def merge(self, other: BootstrapState) -> BootstrapState:
        """A new state holding both states' rows (neither input changes).

        Both must have the same metrics, ``n_resamples``, seed, cluster, by, group and
        resampling, and (for row-keyed weights) disjoint row ranges.
        """
        if not isinstance(other, BootstrapState):
            raise TypeError(f"can only merge a BootstrapState with another; got {type(other).__name__}")
        if other._spec() != self._spec():
            raise ValueError("cannot merge bootstrap states with different settings: "
                             f"{self._spec()!r} vs {other._spec()!r}")
        out = self._empty()
        out._absorb(self)
        out._absorb(other)
        return out

    def _absorb(self, st: BootstrapState) -> None:
        """Add ``st`` (same settings) into this state, in place."""
        if self.keyed_by_row:
            for s0, s1 in st.ranges:
                for r0, r1 in self.ranges:
                    if s0 < r1 and r0 < s1:
                        raise ValueError(
                            f"the states cover overlapping rows ({r0}..{r1 - 1} and {s0}..{s1 - 1}): a row's "
                            "bootstrap weight is keyed by its global index, so each state must be given its "
                            "rows' place with update(..., row_offset=k)"
                        )
        if self.cells.columns:
            cmap = np.array([self.cells.index.add(lab) for lab in st.cells.index.labels], dtype=np.int64)
        else:
            cmap = np.zeros(1, dtype=np.int64)
        C = len(self.cells)
        c_st = cmap.shape[0]
        for i, theirs in enumerate(st.ctx):
            if not self.ctx[i].get("_prepared"):
                self.ctx[i] = copy.deepcopy(theirs)
        shifted = self._rebased(st)
        s_full, wsum, vsum, pat = shifted
        self.s_full = _grow(self.s_full, C, 0)
        self.n_full = _grow(self.n_full, C, 0)
        self.s_full[cmap] += _grow(s_full, c_st, 0)
        self.n_full[cmap] += _grow(st.n_full, c_st, 0)
        if self.categorical:
            self.pat = _grow(self.pat, C, 0)
            self.pat[cmap] += _grow(pat, c_st, 0)
        elif self.F and not self.multinomial:
            self.wsum = _grow(self.wsum, C, 1)
            self.vsum = _grow(self.vsum, C, 1)
            self.wsum[:, cmap] += _grow(wsum, c_st, 1)
            self.vsum[:, cmap] += _grow(vsum, c_st, 1)
        self.kept_cells.extend(cmap[c] for c in st.kept_cells)
        for c, parts in st.kept_cols.items():
            self.kept_cols[c].extend(parts)
        self.kept_keys.extend(st.kept_keys)
        self.kept_rows.extend(st.kept_rows)
        self.kept_V.extend(st.kept_V)
        self.ranges.extend(st.ranges)
        used = {self.backend_used, st.backend_used}
        self.backend_used = "cuda" if "cuda" in used else ("cpu" if "cpu" in used else None)
        self.n_read += st.n_read
        self.n_dropped += st.n_dropped

    def _rebased(self, st: BootstrapState):
        """``st``'s sums expressed with this state's per-leaf shifts (``std`` centres its sums)."""
        s_full, wsum, vsum, pat = st.s_full, st.wsum, st.vsum, st.pat
        for lf, off, mine, theirs in zip(self.sum_leaves, self.offsets, self.ctx, st.ctx):
            if not theirs.get("_prepared") or mine == theirs:
                continue
            sl = slice(off, off + lf.n_features)
            s_full = s_full.copy()
            s_full[:, sl] = lf.rebase(s_full[:, sl], _grow(st.n_full, s_full.shape[0], 0), theirs, mine)
            if self.F and not self.categorical and not self.multinomial:
                # lanes hold partial sums; the rebased total goes to lane 0
                vsum = vsum.copy()
                tot = lf.rebase(vsum[:, :, sl].sum(axis=3), wsum, theirs, mine)
                vsum[:, :, sl] = 0.0
                vsum[:, :, sl, 0] = tot
        if self.multinomial and any(t.get("_prepared") and m != t for m, t in zip(self.ctx, st.ctx)):
            raise ValueError("cannot merge multinomial bootstrap states of a metric with a data-dependent "
                             "centre (std); use resampling='poisson'")
        return s_full, wsum, vsum, pat

    # -- replicate values ----------------------------------------------------------------------------
    def _values(self):
        """Per leaf: replicate values ``(B, C)`` and the estimate ``(C,)``; sets what BCa reads."""
        a = self.a
        B = a.n_resamples
        seed = np.uint64(a.seed)
        C = len(self.cells)
        self.C = C
        self.s_full = s_full = _grow(self.s_full, C, 0)
        self.n_full = n_full = _grow(self.n_full, C, 0)
        if self.keep_cells:
            self._rows_in_order()
        if self.multinomial:
            self.mult_V = (np.concatenate(self.kept_V, axis=1) if self.kept_V
                           else np.zeros((self.F, 0)))
            self.mult_cells = np.concatenate(self.kept_cells) if self.kept_cells else np.zeros(0, np.int64)
        if self.F:
            if self.multinomial:
                S, nb = self._multinomial_sums(self.mult_V, self.mult_cells, C)
            elif self.categorical:
                self.pat = _grow(self.pat, C, 0)
                S, nb = _categorical_sums(seed, B, self.pat, self.F)
            else:
                self.wsum = _grow(self.wsum, C, 1)
                self.vsum = _grow(self.vsum, C, 1)
                S = self.vsum.sum(axis=3)
                nb = self.wsum
        else:
            S = np.zeros((B, C, 0))
            nb = np.zeros((B, C), dtype=np.int64)
        values = {}
        estimates = {}
        for lf, off in zip(self.sum_leaves, self.offsets):
            values[id(lf)] = lf.stat(S[:, :, off:off + lf.n_features], nb)
            estimates[id(lf)] = lf.stat(s_full[:, off:off + lf.n_features], n_full)
        if self.sorted_leaves:
            cols = {c: np.concatenate(v) for c, v in self.kept_cols.items()}
            cc = np.concatenate(self.kept_cells)
            keys = np.concatenate(self.kept_keys) if a.cluster is not None else None
            rows = np.concatenate(self.kept_rows)
            n = rows.shape[0]
            if keys is None and n and (rows[0] != 0 or rows[-1] != n - 1):
                # row-keyed weights: the kernel keys row i of the sorted input by its position
                raise ValueError(
                    f"sorted metrics (AUC, average precision, quantiles) need every row of the data; this "
                    f"state holds {n:,} rows numbered {int(rows.min())}..{int(rows.max())}, not 0..{n - 1}"
                )
            self.sorted_data = (cols, cc, keys)
            for lf in self.sorted_leaves:
                v, est = self._sorted_leaf(lf, cols, cc, keys, C, seed, B)
                values[id(lf)] = v
                estimates[id(lf)] = est
        self.values, self.estimates = values, estimates
        return values, estimates

    def _rows_in_order(self) -> None:
        """Put kept rows (merged in any order) back in global row order, in place."""
        rows = np.concatenate(self.kept_rows) if self.kept_rows else np.zeros(0, np.int64)
        if rows.shape[0] < 2 or np.all(rows[1:] > rows[:-1]):
            return
        if np.unique(rows).shape[0] != rows.shape[0]:
            return  # states of unrelated inputs (multinomial): keep the merge order
        perm = np.argsort(rows, kind="stable")
        self.kept_rows = [rows[perm]]
        self.kept_cells = [np.concatenate(self.kept_cells)[perm]]
        for c, parts in self.kept_cols.items():
            self.kept_cols[c] = [np.concatenate(parts)[perm]]
        if self.kept_keys:
            self.kept_keys = [np.concatenate(self.kept_keys)[perm]]
        if self.kept_V:
            self.kept_V = [np.concatenate(self.kept_V, axis=1)[:, perm]]

    def finalize(self, *, confidence: float | None = None, method: str | None = None, control=None):
        """The intervals: a :class:`BootstrapResult`, or a :class:`BootstrapTable` for several.

        The state's own ``confidence``, ``method`` and ``control`` unless given here.
        ``method="bca"`` needs a second pass over the data (the jackknife): it works on a
        state whose last update read a table, dataset or Parquet path (or ran on Dask).
        """
        confidence = self.a.confidence if confidence is None else check_probability("confidence", confidence)
        method = self.a.method if method is None else check_choice("method", method, _METHODS)
        control = self.a.control if control is None else control
        if control is not None and self.a.group is None:
            raise ValueError("`control` needs a state built with `group=`")
        if self.n == 0:
            if self.n_read:
                self.check_not_empty()
            raise ValueError("the bootstrap state holds no rows: update() it with data first")
        if method == "bca" and self._data is None and self._dask_input is None:
            raise ValueError("method='bca' reads the data twice (jackknife); this state has no input to read "
                             "again (it was merged or rebuilt from bytes): use method='percentile' or 'basic'")
        args = dataclasses.replace(self.a, confidence=confidence, method=method, control=control)
        return _results(self, args)

    # -- serialization -------------------------------------------------------------------------------
    def __getstate__(self):
        d = dict(self.__dict__)
        d["_data"] = None  # the input may be a table or an open stream; a copy on a worker reads its own
        d["_dask_input"] = None
        return d

    def _multinomial_sums(self, V, cc, C):
        a = self.a
        B = a.n_resamples
        S = np.zeros((B, C, self.F))
        nb = np.zeros((B, C), dtype=np.int64)
        for b0, W in self._multinomial_blocks(cc, C):
            for c in range(C):
                idx = np.flatnonzero(cc == c)
                Wc = W[:, idx]
                nb[b0:b0 + len(W), c] = Wc.sum(axis=1)
                S[b0:b0 + len(W), c] = Wc @ V[:, idx].T
        return S, nb

    def _multinomial_blocks(self, cc, C):
        """Blocks of multinomial weights W[b, i]: each cell's rows resampled with replacement."""
        B = self.a.n_resamples
        rng = np.random.default_rng(self.a.seed)
        n = cc.shape[0]
        step = max(1, _MULTINOMIAL_BLOCK // max(n, 1))
        members = [np.flatnonzero(cc == c) for c in range(C)]
        for b0 in range(0, B, step):
            m = min(step, B - b0)
            W = np.zeros((m, n), dtype=np.float64)
            for idx in members:
                k = idx.shape[0]
                if k == 0:
                    continue
                draws = rng.integers(0, k, size=(m, k))
                flat = (draws + (np.arange(m) * k)[:, None]).ravel()
                W[:, idx] = np.bincount(flat, minlength=m * k).reshape(m, k)
            yield b0, W

    def _sorted_leaf(self, lf, cols, cc, keys, C, seed, B):
        from ._kernels import bootstrap as kb

        x, y, order, tie_end, bounds = _sort_for(lf, cols, cc, C)
        kind = {"auc": 0, "ap": 1, "quantile": 2}[lf.kind]
        ones = np.ones((1, x.shape[0]))
        est = kb.sorted_weighted(kind, ones, x, y, tie_end, bounds, lf.q)[0]
        if self.a.resampling == "multinomial":
            out = np.empty((B, C))
            for b0, W in self._multinomial_blocks(cc, C):
                out[b0:b0 + len(W)] = kb.sorted_weighted(kind, np.ascontiguousarray(W[:, order]), x, y, tie_end,
                                                         bounds, lf.q)
            return out, est
        k = np.ascontiguousarray(keys[order]) if keys is not None else np.empty(0, np.uint64)
        if self._on_gpu(x.shape[0]):
            from ._cuda import bootstrap as cb

            kb = cb
        out = kb.sorted_poisson(kind, seed, B, x, y, tie_end, k, order.astype(np.int64), bounds, lf.q)
        return out, est

    # -- BCa: jackknife in closed form --------------------------------------------------------------
    def jackknife(self, expr, est_cells):
        """Per cell: (n, sum d^2, sum d^3) of the jackknife values of ``expr``."""
        return _jack_moments(self._jack_acc(expr, est_cells))

    def _needs_rescan(self, expr) -> bool:
        """True when the jackknife of ``expr`` reads the data again (sum leaves, per-row weights)."""
        if self.categorical or self.multinomial:
            return False
        return any(any(lf is e for e in expr.leaves()) for lf in self.sum_leaves)

    def _jack_acc(self, expr, est_cells, units=None, rows=None):
        """Power sums ``(C, 4)`` of jackknife deviations: sum m e^k, k = 0..3, e = theta_-i - theta_hat.

        ``units``: per-unit sums ``(cells, S, n)`` for the cluster jackknife; ``rows``: an
        iterable of ``(g0, cells, V)`` batches; both default to a second pass over the source.
        """
        C = self.C
        acc = np.zeros((C, 4))  # sum m, sum m e, sum m e^2, sum m e^3 with e = theta_-i - theta_hat
        expr_leaves = expr.leaves()
        sorted_jack = {}
        for lf in self.sorted_leaves:
            if any(lf is e for e in expr_leaves):
                cols, cc, _ = self.sorted_data
                sorted_jack[id(lf)] = _sorted_jackknife(lf, cols, cc, C)

        def add(cells, jack, mult):
            e = jack - est_cells[cells]
            for k in range(4):
                acc[:, k] += np.bincount(cells, weights=mult * e**k, minlength=C)

        sum_leaves = [(lf, off) for lf, off in zip(self.sum_leaves, self.offsets)
                      if any(lf is e for e in expr_leaves)]
        if self.categorical and self.a.resampling == "poisson":
            P = self.pat.shape[1]
            cells = np.repeat(np.arange(C), P)
            pats = np.tile(np.arange(P), C)
            mult = self.pat.ravel().astype(np.float64)
            keep = mult > 0
            cells, pats, mult = cells[keep], pats[keep], mult[keep]
            bits = ((pats[:, None] >> np.arange(self.F)) & 1).astype(np.float64)
            vals = {}
            for lf, off in sum_leaves:
                sl = slice(off, off + lf.n_features)
                vals[id(lf)] = lf.stat(self.s_full[cells, sl] - bits[:, sl], self.n_full[cells] - 1)
            add(cells, expr.combine(vals), mult)
        else:
            if self.a.cluster is not None:
                # leave one cluster out: per (cell, cluster) sums, one jackknife value per cluster
                cc_u, S_u, n_u = self._cluster_sums() if units is None else units
                vals = {}
                for lf, off in sum_leaves:
                    sl = slice(off, off + lf.n_features)
                    vals[id(lf)] = lf.stat(self.s_full[cc_u, sl] - S_u[sl].T, self.n_full[cc_u] - n_u)
                add(cc_u, expr.combine(vals), np.ones(cc_u.shape[0]))
                batches = []
            elif self.a.resampling == "multinomial":
                batches = [(0, self.mult_cells, self.mult_V)]
            elif not sum_leaves:
                cc = self.sorted_data[1]
                batches = [(0, cc, np.empty((self.F, cc.shape[0])))]
            else:
                batches = self._rescan() if rows is None else rows
            for g0, cc, V in batches:
                n = cc.shape[0]
                vals = {}
                for lf, off in sum_leaves:
                    sl = slice(off, off + lf.n_features)
                    vals[id(lf)] = lf.stat(self.s_full[cc, sl] - V[sl].T, self.n_full[cc] - 1)
                for key, jack in sorted_jack.items():
                    vals[key] = jack[g0:g0 + n]
                add(cc, expr.combine(vals), np.ones(n))
        return acc

    def _jackknife_on_dask(self, exprs, ests):
        """The BCa second pass on Dask: a fold of per-partition jackknife sums, then the moments."""
        need = [i for i, e in enumerate(exprs) if self._needs_rescan(e)]
        out = [None] * len(exprs)
        for i, e in enumerate(exprs):
            if i not in need:
                out[i] = self.jackknife(e, ests[i])
            elif any(lf is x for lf in self.sorted_leaves for x in e.leaves()):
                raise ValueError(f"method='bca' on Dask: {e.name} combines a sorted metric with a sum metric, "
                                 "whose jackknife needs both passes in one process; compare them in separate "
                                 "calls, or use method='percentile'")
        if not need:
            return out
        data, engine, filter, batch_size = self._dask_input
        probe = _JackknifeSums(self, [exprs[i] for i in need], [ests[i] for i in need])
        sums, _ = _dask.update_state(probe, data, engine=engine, filter=filter, batch_size=batch_size)
        for j, i in enumerate(need):
            if self.a.cluster is not None:
                cc, keys, S, n = sums.unit_parts()
                acc = self._jack_acc(exprs[i], ests[i], units=(cc, S, n))
            else:
                acc = sums.acc[j]
            out[i] = _jack_moments(acc)
        return out

    def _cluster_sums(self):
        """(cell, sums (F, units), rows) per (cell, cluster) unit, from a second pass."""
        parts = []
        for _, cc, V, keys in self._rescan(with_keys=True):
            parts.append(_unit_sums(cc, keys, V, np.ones(cc.shape[0], dtype=np.int64)))
        cc, keys, S, n = (np.concatenate([p[i] for p in parts], axis=-1) for i in range(4))
        cc, _, S, n = _unit_sums(cc, keys, S, n)
        return cc, S, n

    def _rescan(self, with_keys=False):
        if self._data is None or not src.open_source(self._data, filter=self.filter).rescannable:
            raise ValueError("method='bca' reads the data twice (jackknife); the input is a stream that can "
                             "be read once: pass a Table, dataset or Parquet path")
        g0 = 0
        for batch, _, _, _ in self._scan(self._data, 0):
            if batch is None:
                continue
            n = batch.num_rows
            cells = self.cells.codes(batch)
            _, V = self._batch_features(batch)
            cc = cells if cells is not None else np.zeros(n, dtype=np.int64)
            if with_keys:
                yield g0, cc, V, _cluster_keys(batch.column(self.a.cluster))
            else:
                yield g0, cc, V
            g0 += n


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


class _JackknifeSums:
    """BCa's second pass as a mergeable state (one per Dask partition).

    Holds a light copy of the filled bootstrap state (cells, full-data sums, metric
    centres) and adds, per partition, the power sums of each expression's jackknife
    deviations (or, with ``cluster``, per-unit sums, re-aggregated when merged:
    a unit may span partitions).
    """

    def __init__(self, state: BootstrapState, exprs, ests):
        light = copy.copy(state)
        for name in ("wsum", "vsum", "pat"):
            setattr(light, name, np.zeros((0,) * getattr(state, name).ndim))
        light.kept_cols, light.kept_cells, light.kept_keys, light.kept_rows, light.kept_V = {}, [], [], [], []
        light.values = light.estimates = None
        light.sorted_data = None
        light._data = None
        light._dask_input = None
        self.state = light
        self.exprs = list(exprs)
        self.ests = [np.asarray(e, dtype=np.float64) for e in ests]
        self.columns = state.columns
        self.acc = [np.zeros((state.C, 4)) for _ in self.exprs]
        self.units: list = []
        self.rows_read = 0
        self.rows_dropped = 0

    def update(self, data, **_):
        st = self.state
        st._data = data
        try:
            if st.a.cluster is not None:
                for _, cc, V, keys in st._rescan(with_keys=True):
                    self.units.append(_unit_sums(cc, keys, V, np.ones(cc.shape[0], dtype=np.int64)))
            else:
                batches = list(st._rescan())
                for j, (e, est) in enumerate(zip(self.exprs, self.ests)):
                    self.acc[j] += st._jack_acc(e, est, rows=batches)
        finally:
            st._data = None
        return self

    def unit_parts(self):
        cc, keys, S, n = (np.concatenate([u[i] for u in self.units], axis=-1) for i in range(4))
        return _unit_sums(cc, keys, S, n)

    def merge(self, other):
        for a, b in zip(self.acc, other.acc):
            a += b
        self.units.extend(other.units)
        if self.units:
            self.units = [self.unit_parts()]  # keep the merged state small
        return self


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
    from ._kernels import poisson as kp

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
# public entry point


def bootstrap(data: Data, metric: Metric | Sequence[Metric], *, n_resamples: int = 2000, confidence: float = 0.95,
              method: str = "percentile", seed: Seed = None, cluster: str | None = None,
              by: Columns | None = None, group: str | None = None, control: str | None = None,
              comparison: str = "difference", resampling: str = "poisson", nulls: str = "raise",
              filter: Filter = None, batch_size: int | None = None, progress: bool | None = None,
              engine: str | None = None, backend: str = "auto") -> BootstrapResult | BootstrapTable:
    """Bootstrap confidence interval(s) of evaluation metrics, in one pass over the data.

    Parameters
    ----------
    data : Table, RecordBatch, reader, dataset, Parquet path/glob/list, pandas/polars frame, dict of arrays.
    metric : a metric from :mod:`fastevals.metrics` (``metrics.mean("x")``), a paired comparison
        (``metrics.accuracy("y", "b") - metrics.accuracy("y", "a")``: same weights for both sides),
        or a list of them (one pass, one set of weights, a table back).
    n_resamples : number of bootstrap replicates B.
    confidence : confidence level of the two-sided interval.
    method : ``"percentile"``, ``"basic"`` or ``"bca"`` (bias-corrected and accelerated; the
        acceleration comes from the jackknife, computed in closed form, never by N refits).
    seed : int, numpy Generator or None.  The same seed gives the same weights on any batch size,
        thread count or file split.  A row's key is its position among the rows used (after
        ``filter`` and dropped nulls), so the same rows in the same order get the same weights.
    cluster : column of unit ids: every row of a unit gets the same weight (cluster bootstrap).
    by : column(s): one interval per segment, in the same pass.
    group, control : compare groups: each group's metric, and each group against ``control`` with its
        interval (groups are resampled independently).
    comparison : with ``control``: ``"difference"`` (treatment - control), ``"relative"``
        (treatment / control - 1, the relative lift) or ``"both"``.  With ``method="bca"`` the
        relative lift's acceleration linearizes the control's jackknife part (delta method).
    resampling : ``"poisson"`` (counter-based Poisson(1) weights, streaming) or ``"multinomial"``
        (the classic bootstrap, rows drawn with replacement within each cell; data held in memory).
    nulls : ``"raise"`` or ``"drop"`` rows with nulls / NaN in the columns used.
    filter : a ``pyarrow.compute.Expression`` pushed into the scan.
    batch_size : rows per batch when scanning (the answer does not depend on it).
    progress : print progress to stderr on long scans.
    backend : ``"auto"``, ``"cpu"`` or ``"cuda"``: where the per-row work of the Poisson bootstrap
        runs (the weighted sums, the sorted passes of AUC / average precision / quantiles).
        ``"cuda"`` uses an NVIDIA GPU with the same counter-based weights (the CPU's replicates to
        1e-9; needs the ``cuda`` extra and a GPU, else an error saying why); ``"auto"`` uses a GPU
        only when one is present and rows x replicates is large. ``result.backend`` says which ran.
    engine : None / ``"auto"`` (Dask for a Dask DataFrame, else this process), ``"arrow"`` (this
        process) or ``"dask"`` (a Parquet path read by Dask on the current ``distributed.Client``).
        On Dask each partition folds a :class:`BootstrapState`, keyed by the global index of its
        rows, so the answer equals the in-process one for any partitioning.  ``method="bca"``
        reads the data twice and runs in this process only.

    Returns
    -------
    BootstrapResult, or a BootstrapTable when there are several metrics, segments or groups.

    Notes
    -----
    Categorical metrics (proportion, accuracy, error rate, precision, recall, F1) use the
    sufficient-statistics shortcut: the sum of n Poisson(1) weights is Poisson(n), so a replicate
    draws one count per (cell, outcome pattern) instead of one weight per row (exact).
    AUC, average precision and quantiles sort once and make one weighted pass per replicate.

    References
    ----------
    A. B. Owen, D. Eckles, "Bootstrapping data arrays of arbitrary order", Ann. Appl. Stat. 6 (2012).
    N. Chamandy, O. Muralidharan, A. Najmi, S. Naidu, "Estimating uncertainty for massive data
    streams", Google technical report (2012).
    B. Efron, "Better bootstrap confidence intervals", JASA 82 (1987) 171-185.

    Example
    -------
    >>> import numpy as np
    >>> from fastevals import metrics
    >>> rng = np.random.default_rng(0)
    >>> res = bootstrap({"x": rng.normal(size=1000)}, metrics.mean("x"), seed=1, progress=False)
    >>> res.confidence_interval.low < res.estimate < res.confidence_interval.high
    True
    """
    args = _bootstrap_iv(metric, n_resamples, confidence, method, seed, cluster, by, group, control,
                         resampling, nulls, progress, comparison, backend)
    state = BootstrapState._from_args(args, filter=filter, batch_size=batch_size)
    on_dask = _dask.wants_dask(data, engine)
    state = fold(state, data, engine=engine)
    if on_dask:
        # metrics travel to the workers and back (pickled): use the returned state's objects
        args = dataclasses.replace(args, metrics=state.a.metrics)
        state._dask_input = (data, engine, filter, batch_size)
    state.check_not_empty()
    return _results(state, args)


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


def warmup(parallel: bool = True) -> None:
    """Compile (or load from the cache) the bootstrap kernels once, outside any timing."""
    from ._kernels import bootstrap as kb
    from ._kernels import poisson as kp

    e = np.empty(0, np.uint64)
    ec = np.empty(0, np.int64)
    V = np.ones((1, 64))
    for k in (kb.accumulate_rows_serial, kb.accumulate_rows_parallel):
        k(np.uint64(1), 0, 64, e, ec, V, np.zeros((2, 1), np.int64), np.zeros((2, 1, 1, kb.LANES)))
    for k in (kp.poisson_cell_counts, kp.poisson_cell_counts_serial):
        k(np.uint64(1), 0, 2, np.arange(2, dtype=np.uint64), np.array([3.0, 30.0]))
    x = np.arange(8.0)
    y = np.array([0, 1] * 4, dtype=np.int8)
    te = np.arange(1, 9, dtype=np.int64)
    bnd = np.array([0, 8], dtype=np.int64)
    kb.sorted_poisson(0, np.uint64(1), 2, x, y, te, e, np.arange(8, dtype=np.int64), bnd, 0.5)
