"""The public entry point :func:`calibration`: the state folded by the one fold engine."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from .. import _source as src
from .._fold import fold
from .._validation import check_choice
from ._math import _QuantilePlan
from .result import CalibrationResult
from .state import _STRATEGIES, CalibrationState, _in_memory_table, _QuantileCounts, _QuantileValues

if TYPE_CHECKING:
    from .._typing import Columns, Data, Filter, Seed

# ----------------------------------------------------------------------------------------------------
# public entry point


def _schema_of(data, engine, filter, batch_size, hint) -> tuple[pa.Schema, bool]:
    """Return the input's schema, and whether it can be read twice (Dask inputs: yes)."""
    from .. import _dask

    if _dask.wants_dask(data, engine):
        if _dask.is_dask_collection(data):
            return _dask._partition_table(data._meta).schema, True
        return src.open_source(data).schema, True
    source = src.open_source(data, filter=filter, batch_size=batch_size,
                             columns_hint=hint if filter is None else None)
    return source.schema, source.rescannable


def calibration(data: Data, *, prob: str, label: str, n_bins: int = 15, strategy: str = "uniform",
                weights: str | None = None, multiclass: str = "top-label", by: Columns | None = None,
                n_resamples: int = 0, confidence: float = 0.95, seed: Seed = None, nulls: str = "raise",
                filter: Filter = None, batch_size: int | None = None, progress: bool | None = None,
                check_rows: bool = True, engine: str | None = None, backend: str = "auto") -> CalibrationResult:
    """Reliability curve, calibration errors and Brier decomposition.

    Parameters
    ----------
    data
        Any input of the input layer: pyarrow Table/RecordBatch/reader/dataset,
        Parquet path or glob, pandas/polars DataFrame, dict of arrays; or a
        ``dask.dataframe.DataFrame`` (see ``engine``).
    prob : str or list of str
        Binary: the column of positive-class probabilities. Multiclass: a list
        of one column per class, or one fixed-size-list column.
    label : str
        Binary: 0/1 or boolean column (a single class is fine). Multiclass:
        integer class index column.
    n_bins : int
        Number of bins (default 15).
    strategy : {"uniform", "quantile"} or array
        ``"uniform"`` (``np.linspace(0, 1, n_bins + 1)``), ``"quantile"``
        (``np.percentile`` of the predictions, computed exactly in two passes
        over the data) or an increasing array of edges in [0, 1]. A value ``p``
        goes to bin ``np.searchsorted(edges[1:-1], p)`` exactly as in
        ``sklearn.calibration.calibration_curve``.
    weights : str, optional
        Column of non-negative row weights.
    multiclass : {"top-label", "classwise"}
        ``"top-label"`` (confidence of the argmax class vs. correctness) or
        ``"classwise"`` (one one-vs-rest curve per class).
    by : str or list of str, optional
        Column(s) to slice by: a result per segment in ``result.segments``
        (same edges as the overall curve).
    n_resamples : int
        Poisson-bootstrap replicates of the band per bin and of the ECE
        interval (0: none). Row weights are Poisson(1) draws keyed by (seed,
        replicate, global row index), the same on any thread count, batch size
        or Dask partitioning.
    confidence : float
        Level of the Wilson intervals, the band and the ECE interval.
    seed : int, optional
        Seed of the bootstrap weights; None draws a fresh one (with ``n_resamples``).
    nulls : {"raise", "drop"}
        Rows with a null, NaN or inf in a column read raise, or are dropped and
        counted in ``n_dropped``.
    filter : pyarrow.compute.Expression, optional
        Row filter pushed into the scan.
    batch_size : int, optional
        Rows per scanned batch.
    progress : bool, optional
        None: a progress bar on long scans when stderr is a terminal.
    check_rows : bool
        Multiclass: check each row of probabilities sums to 1 (within 1e-6).
    engine : {None, "auto", "arrow", "dask"}
        None/"auto" runs a ``dask.dataframe.DataFrame`` on Dask and everything else in
        this process; "dask" also has the Dask workers read a Parquet path themselves.
        On Dask each partition folds a state on its worker and the states are
        tree-merged (quantile edges: two more passes of mergeable states, a fine
        histogram and the values of the few cells that hold an edge); the answer is
        the in-process one (counts exactly, sums to rounding), bootstrap bands included.
    backend : {"auto", "cpu", "cuda"}
        Where the binning runs: ``"cuda"`` on an NVIDIA GPU (the same counts, sums to
        1e-9; needs the ``cuda`` extra and a GPU, else an error saying why); ``"auto"``
        uses a GPU only when one is present and the batches are large. Bootstrap bands
        are drawn on the CPU. ``result.backend`` says where the binning ran.

    Returns
    -------
    CalibrationResult

    Raises
    ------
    ValueError
        Unknown column, probabilities outside [0, 1], labels other than 0/1, nulls
        or NaN with ``nulls="raise"``, empty input, a one-shot stream with
        ``strategy="quantile"``.
    TypeError
        A column of the wrong type.

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
    options: dict[str, Any] = dict(prob=prob, label=label, n_bins=n_bins, strategy=strategy, weights=weights,
                   multiclass=multiclass, by=by, n_resamples=n_resamples, confidence=confidence, seed=seed,
                   check_rows=check_rows, backend=backend, nulls=nulls, filter=filter, batch_size=batch_size,
                   progress=progress)
    quantile = isinstance(strategy, str) and check_choice("strategy", strategy, _STRATEGIES) == "quantile"
    probe = CalibrationState(**{**options, "strategy": "uniform" if quantile else strategy})
    data = _in_memory_table(data, filter, probe._column_hint())  # converted once for every pass
    schema, rescannable = _schema_of(data, engine, filter, batch_size, probe._column_hint())
    probe._resolve(schema)
    if quantile:
        if not rescannable:
            raise ValueError(
                "strategy='quantile' reads the data twice (exact edges, then the bins) and this input "
                "(a record batch stream) can be read only once; pass a Table, a dataset or a Parquet path "
                "(e.g. pa.Table.from_batches(reader)), or give the edges as `strategy=`")
        counts = fold(_QuantileCounts(probe), data, engine=engine)
        counts.check_not_empty()
        plans = [_QuantilePlan.from_histogram(h, probe.n_bins) for h in counts.hist]
        rows = fold(_QuantileValues(probe, plans), data, engine=engine).edges()
        state = CalibrationState(**options, quantile_edges=rows[0] if len(rows) == 1 else np.vstack(rows))
        # the seed was resolved once: the bootstrap of both states would agree
        state.seed = probe.seed
        state._resolve(schema)
    else:
        state = probe
    state = fold(state, data, engine=engine)
    return state.finalize()


def warmup(parallel: bool = True) -> None:
    """Compile (or load from numba's cache) the serial kernels on a tiny input.

    Examples
    --------
    >>> warmup()
    """
    rng = np.random.default_rng(0)
    p = rng.random(64)
    y = (rng.random(64) < p).astype(np.int64)
    for strategy in ("uniform", "quantile"):
        calibration({"p": p, "y": y}, prob="p", label="y", strategy=strategy)
