"""The bootstrap's functions: :func:`bootstrap`, :func:`poisson_weights`,
:func:`error_rate_interval`, :func:`warmup`, and the argument checks (``_bootstrap_iv``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from .. import _dask
from .. import _special as special
from .. import metrics as _metrics
from .._config import MAX_RESAMPLES
from .._fold import fold
from .._validation import as_column_list, check_choice, check_int, check_nulls, check_probability, check_seed
from ._math import _METHODS, _results
from .result import BootstrapResult, BootstrapTable, ProportionInterval
from .state import BootstrapState, _cluster_keys

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import ArrayLike

    from .._typing import Columns, Data, Filter, Seed
    from ..metrics import Metric

__all__ = ["bootstrap", "error_rate_interval", "poisson_weights", "warmup"]

_RESAMPLING = ("poisson", "multinomial")
_COMPARISONS = ("difference", "relative", "both")


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
    from .._kernels import poisson as kp

    seed = check_seed("seed", seed)
    n_resamples = check_int("n_resamples", n_resamples, low=1, high=MAX_RESAMPLES)
    first_replicate = check_int("first_replicate", first_replicate, low=0, high=MAX_RESAMPLES - n_resamples)
    if keys is not None:
        k = _cluster_keys(pa.array(np.asarray(keys)) if not isinstance(keys, pa.Array) else keys)
        return kp.weight_matrix(np.uint64(seed), first_replicate, n_resamples, 0, 0, k)
    n_rows = check_int("n_rows", n_rows, low=0)
    return kp.weight_matrix(np.uint64(seed), first_replicate, n_resamples, check_int("start", start, low=0),
                            n_rows, np.empty(0, np.uint64))


# ----------------------------------------------------------------------------------------------------
# closed-form interval for an error rate


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
        from .._stats import wilson_interval

        return ProportionInterval(*(float(v) for v in wilson_interval(p, n, z)))
    from scipy import stats  # Clopper-Pearson only: scipy.stats costs a second to import

    low = 0.0 if errors == 0 else float(stats.beta.ppf(alpha / 2.0, errors, n - errors + 1))
    high = 1.0 if errors == n else float(stats.beta.isf(alpha / 2.0, errors + 1, n - errors))
    return ProportionInterval(low, high)


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


def warmup(parallel: bool = True) -> None:
    """Compile (or load from the cache) the bootstrap kernels once, outside any timing."""
    from .._kernels import bootstrap as kb
    from .._kernels import poisson as kp

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
