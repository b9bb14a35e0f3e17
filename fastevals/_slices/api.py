"""The public functions: :func:`slices` (find the failing slices) and :func:`sliced_metrics`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import _dask
from .. import _source as src
from .._fold import check_backend, fold
from .._protocol import resolve_progress
from .._stats import adjust_pvalues
from .._validation import as_column_list, check_choice, check_int, check_probability, check_seed
from .result import SlicedMetricsResult
from .state import EDGE_SAMPLE_ROWS, SlicesState, quantile_edges

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from .._typing import Columns, Data, Filter, Seed
    from ..metrics import Metric
    from .result import SlicesResult


def slices(data: Data, *, error: str | None = None, label: str | None = None, prediction: str | None = None,
           loss: str | None = None, columns: Columns | None = None, max_order: int = 2, min_size: int = 30,
           alpha: float = 0.05, adjust: str = "bh", n_bins: int = 10,
           edges: Mapping[str, Sequence[float]] | None = None, max_levels: int = 100, score_alpha: float = 0.95,
           sort_by: str = "score", confidence: float = 0.95, nulls: str = "raise", filter: Filter = None,
           batch_size: int | None = None, progress: bool | None = None, engine: str | None = None, backend: str = "auto"
           ) -> SlicesResult:
    """Find the slices (a column value, or a conjunction of 2 or 3) where a model is significantly worse.

    One compiled pass counts every slice of up to ``max_order`` columns: size, sum and sum of
    squares of the metric per slice. Each slice with at least ``min_size`` rows inside and outside
    is tested against the rest of the rows; the p-values are adjusted over all slices tested; the
    slices significantly worse than the rest are reported, most harmful first, leaving out those
    that add nothing over a reported parent.

    Parameters
    ----------
    data : Table, RecordBatch, reader, dataset, Parquet path/glob/list, pandas/polars frame, dict of
        arrays, or a Dask DataFrame.
    error : column of 0/1 or booleans, 1 where the model was wrong (metric: error rate).
    label, prediction : columns compared row by row: error = ``label != prediction`` (error rate).
    loss : numeric column of per-row losses (metric: mean loss).
    columns : column(s) to slice by; None: every column but the metric's. Strings, dictionaries,
        booleans and integers with at most ``n_bins`` distinct values (in the edge sample) are
        categorical; floats and other integers are cut into ``n_bins`` quantile bins.
    max_order : 1, 2 or 3: the most conditions in a slice.
    min_size : rows a slice (and the rest) must hold to be tested (at least 2).
    alpha : significance level of the adjusted p-values (and of the parent rule).
    adjust : ``"bh"`` (Benjamini-Hochberg, false discovery rate), ``"holm"`` (family-wise) or ``"none"``,
        over all slices tested.
    n_bins : quantile bins of a numeric column (tied quantiles collapse, giving fewer bins).
    edges : ``{column: edges}``: fixed bin edges of numeric columns (the end bins are open:
        below the second edge, at or above the last but one).
    max_levels : most levels of a categorical column (more raises a ValueError naming it).
    score_alpha : SliceLine's weight ``a`` of the error term in its score (``sliceline``'s ``alpha``).
    sort_by : ``"score"`` (SliceLine's score, default), ``"excess"`` (size x difference),
        ``"difference"`` or ``"pvalue"``.
    confidence : level of the difference's interval.
    nulls : ``"raise"`` or ``"drop"`` rows with nulls (or NaN / inf in numeric columns).
    filter : a ``pyarrow.compute.Expression`` pushed into the scan.
    batch_size : rows per scanned batch (the answer does not depend on it, to rounding of loss sums).
    progress : print progress on long scans (None: on a terminal only).
    engine : None / ``"auto"`` (Dask for a Dask DataFrame), ``"arrow"`` or ``"dask"`` (a Parquet path
        read by Dask on the current ``distributed.Client``).
    backend : ``"auto"`` or ``"cpu"`` (no CUDA twin).

    Returns
    -------
    SlicesResult
        ``table`` (one row per reported slice), ``tested`` (every slice tested), counts and notes.

    Raises
    ------
    ValueError
        Unknown column, no or several metric arguments, non-0/1 ``error``, nulls/NaN with
        ``nulls="raise"``, a categorical column over ``max_levels``, empty input.
    TypeError
        A column of a type that cannot serve (named in the message).

    Notes
    -----
    Tests: the G-test of independence (no continuity correction) of the 2 x 2 table
    inside/outside x error/correct for error rates; Welch's z for mean losses. The difference's
    interval is the Wald (normal, unpooled) interval. A slice is *significant* when it is worse than
    the rest (difference > 0) with ``pvalue_adjusted <= alpha``.

    Parent rule: a significant slice of order k >= 2 is reported only if, for every reported slice
    made of a subset of its conditions, it is worse than the rows of that parent outside it with an
    (unadjusted) p-value below ``alpha`` (same test). ``country=BR and device=android`` is left out
    when ``country=BR`` is reported and the android rows of BR are not significantly worse than
    BR's other rows.

    Bins: quantile edges (``np.quantile``, linear) of the first 2**20 rows read (all rows of a
    smaller input: then they are exact), fixed before counting, so every Dask partition and every
    merged state uses the same bins. A stream readable once is not sampled first: its first batch
    gives the edges of its float columns, and its integer columns are categorical.

    SliceLine's score (Sagadeeva and Boehm 2021):
    ``score_alpha * (metric_inside / metric_all - 1) - (1 - score_alpha) * (n / size - 1)``.

    References
    ----------
    S. Sagadeeva, M. Boehm, "SliceLine: Fast, Linear-Algebra-based Slice Finding for ML Model
    Debugging", SIGMOD 2021.
    Y. Chung, T. Kraska, N. Polyzotis, K. H. Tae, S. E. Whang, "Slice Finder: Automated Data Slicing
    for Model Validation", ICDE 2019.
    Y. Benjamini, Y. Hochberg, "Controlling the false discovery rate", JRSS B 57 (1995).

    Examples
    --------
    >>> import numpy as np
    >>> import fastevals
    >>> rng = np.random.default_rng(0)
    >>> n = 20_000
    >>> country = rng.choice(["BR", "DE", "US", "FR"], n)
    >>> device = rng.choice(["android", "ios", "web"], n)
    >>> p = np.where((country == "BR") & (device == "android"), 0.3, 0.1)
    >>> err = rng.random(n) < p
    >>> res = fastevals.slices({"err": err, "country": country, "device": device}, error="err")
    >>> res.table.column("slice")[0].as_py()
    'country=BR and device=android'
    """
    state = SlicesState(error=error, label=label, prediction=prediction, loss=loss, columns=columns,
                        max_order=max_order, min_size=min_size, alpha=alpha, adjust=adjust, n_bins=n_bins,
                        edges=edges, max_levels=max_levels, score_alpha=score_alpha, sort_by=sort_by,
                        confidence=confidence, nulls=nulls, filter=filter, batch_size=batch_size,
                        progress=progress, engine=engine, backend=backend)
    on_dask = _dask.wants_dask(data, engine)
    schema, sample = _schema_and_sampler(data, on_dask, filter, batch_size)
    state._resolve(schema)
    plan = dict(state.spec["edges"] or {})
    todo = [c for c in state._resolved()[0] if c not in plan and _numeric(schema.field(c).type)]
    if todo and sample is not None:
        values = sample(todo)
        for c in todo:
            x = values[c]
            if pa.types.is_integer(schema.field(c).type) and np.unique(x).size <= state.spec["n_bins"]:
                continue  # few distinct integers: categorical
            e = quantile_edges(x, state.spec["n_bins"])
            plan[c] = e if len(e) >= 2 else ([e[0], e[0] + 1.0] if e else [0.0, 1.0])
    if plan != (state.spec["edges"] or {}):
        state = SlicesState(**{**state._params(), "edges": plan}, nulls=nulls, filter=filter,
                            batch_size=batch_size, progress=progress, engine=engine, backend=backend)
        state._resolve(schema)
    state = fold(state, data, engine=engine)
    return state.finalize()


def _numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t)


def _schema_and_sampler(data, on_dask: bool, filter, batch_size):
    """The input's schema, and ``sample(columns) -> {column: finite float64 values of the first rows}``
    (None for a stream that can be read only once).
    """
    if on_dask and _dask.is_dask_collection(data):
        schema = pa.Schema.from_pandas(data._meta, preserve_index=False)

        def sample_dask(cols):
            part = data.partitions[0][cols].compute()
            return _finite({c: np.asarray(part[c].to_numpy(dtype=np.float64, na_value=np.nan)) for c in cols})

        return schema, sample_dask
    source = src.open_source(data, filter=filter, batch_size=batch_size)
    if not source.rescannable:
        return source.schema, None

    def sample(cols):
        got = {c: [] for c in cols}
        rows = 0
        for batch in source.batches(cols):
            for c in cols:
                arr = batch.column(c)
                got[c].append(np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)
                              if arr.null_count else np.asarray(src.numeric_view(arr), dtype=np.float64))
            rows += batch.num_rows
            if rows >= EDGE_SAMPLE_ROWS:
                break
        return _finite({c: (np.concatenate(v)[:EDGE_SAMPLE_ROWS] if v else np.zeros(0)) for c, v in got.items()})

    return source.schema, sample


def _finite(values: dict) -> dict:
    return {c: x[np.isfinite(x)] for c, x in values.items()}


# ----------------------------------------------------------------------------------------------------
# sliced metrics


def sliced_metrics(data: Data, *, metrics: Metric | Sequence[Metric], by: Columns, n_resamples: int = 2000,
                   confidence: float = 0.95, seed: Seed = None, alpha: float = 0.05, adjust: str = "holm",
                   nulls: str = "raise", filter: Filter = None, batch_size: int | None = None,
                   progress: bool | None = None, engine: str | None = None, backend: str = "auto"
                   ) -> SlicedMetricsResult:
    """Every metric on every segment with a bootstrap interval, flagged where the segment differs from the rest.

    Built on :func:`fastevals.bootstrap`: one pass with ``by=`` gives each segment's replicates;
    for each segment one more pass (``filter``: the rows outside it) gives the rest's replicates
    with an independent seed. Segment and rest are disjoint rows, so their Poisson-bootstrap
    replicates are independent and ``segment_b - rest_b`` is a bootstrap replicate of the difference.

    Parameters
    ----------
    data : any input :func:`fastevals.bootstrap` takes (a readable-twice one: the data are read
        once plus once per segment).
    metrics : a metric of :mod:`fastevals.metrics` or a list of them.
    by : segment column(s).
    n_resamples : bootstrap replicates B.
    confidence : level of the percentile intervals.
    seed : int, numpy Generator or None (None: a fresh seed, reported in ``result.seed``).
    alpha : significance level of ``differs``.
    adjust : ``"holm"`` (default), ``"bh"`` or ``"none"``: adjustment over all (metric, segment) pairs.
    nulls, filter, batch_size, progress, engine, backend : as in :func:`fastevals.bootstrap`.

    Returns
    -------
    SlicedMetricsResult

    Raises
    ------
    ValueError
        No ``by``, fewer than two segments, bad options (named).

    Notes
    -----
    The p-value of a (metric, segment) pair is the two-sided bootstrap p-value of the difference
    segment - rest: ``min(1, 2 min((1 + #{d_b <= 0}) / (B + 1), (1 + #{d_b >= 0}) / (B + 1)))``
    over the finite replicates; ``differs`` is ``pvalue_adjusted <= alpha``.

    Examples
    --------
    >>> import numpy as np
    >>> import fastevals
    >>> from fastevals import metrics
    >>> rng = np.random.default_rng(1)
    >>> seg = rng.choice(["a", "b", "c"], 3000)
    >>> y = rng.integers(0, 2, 3000)
    >>> pred = np.where((seg == "c") & (rng.random(3000) < 0.5), 1 - y, y)
    >>> res = fastevals.sliced_metrics({"y": y, "pred": pred, "seg": seg},
    ...                                metrics=[metrics.accuracy("y", "pred")], by="seg",
    ...                                n_resamples=300, seed=2)
    >>> sorted((r["segment"], r["differs"]) for r in res.table.select(["segment", "differs"]).to_pylist())
    [('a', True), ('b', True), ('c', True)]
    """
    from .._bootstrap import bootstrap

    by = as_column_list("by", by, allow_none=False)
    ms: list[Any] = list(metrics) if isinstance(metrics, (list, tuple)) else [metrics]
    if not ms:
        raise ValueError("`metrics` is empty: give at least one metric of fastevals.metrics")
    n_resamples = check_int("n_resamples", n_resamples, low=2)
    confidence = check_probability("confidence", confidence)
    alpha = check_probability("alpha", alpha)
    adjust = check_choice("adjust", adjust, ("holm", "bh", "none"))
    check_backend(backend, supported=("auto", "cpu", "cuda"))
    seed = check_seed("seed", seed)
    show = resolve_progress(progress)
    if not _dask.wants_dask(data, engine):
        # dicts and data frames are converted once, whole: the rest's filter reads the `by` columns too
        source = src.open_source(data)
        if source.in_memory:
            data = source._table
    common: dict[str, Any] = dict(n_resamples=n_resamples, confidence=confidence, nulls=nulls, batch_size=batch_size,
                  progress=show, engine=engine, backend=backend)
    seg: Any = bootstrap(data, ms, by=by, seed=seed, filter=filter, **common)
    results = list(seg.results)
    segments = []
    for r in results:
        if r.segment not in segments:
            segments.append(r.segment)
    if len(segments) < 2:
        raise ValueError(f"`by`={by!r} gives {len(segments)} segment(s): sliced_metrics compares each segment "
                         "with the rest and needs at least two")
    rest_of = {}
    for k, s in enumerate(segments):
        values = s if isinstance(s, tuple) else (s,)
        inside = None
        for c, v in zip(by, values):
            cond = pc.field(c) == pc.scalar(v)
            inside = cond if inside is None else (inside & cond)
        assert inside is not None  # `by` names at least one column (as_column_list, allow_none=False)
        rest_filter = ~inside if filter is None else (filter & ~inside)
        sub_seed = int(np.random.SeedSequence([seed, k + 1]).generate_state(1, dtype=np.uint64)[0] >> 1)
        rest: Any = bootstrap(data, ms, seed=sub_seed, filter=rest_filter, **common)
        rows = [rest] if len(ms) == 1 else list(rest.results)
        rest_of[k] = {r.metric: r for r in rows}
    lo_q, hi_q = (1 - confidence) / 2, (1 + confidence) / 2
    rows = []
    notes = []
    for r in results:
        k = segments.index(r.segment)
        o = rest_of[k][r.metric]
        d = r.bootstrap_distribution - o.bootstrap_distribution
        d = d[np.isfinite(d)]
        if d.size < n_resamples:
            notes.append(f"{r.metric} on {r.segment!r}: {n_resamples - d.size} replicate(s) undefined, left out")
        if d.size:
            b = d.size
            p = min(1.0, 2.0 * min((1 + np.count_nonzero(d <= 0)) / (b + 1), (1 + np.count_nonzero(d >= 0)) / (b + 1)))
            dlo, dhi = (float(x) for x in np.quantile(d, [lo_q, hi_q]))
        else:
            p, dlo, dhi = float("nan"), float("nan"), float("nan")
        rows.append({
            "metric": r.metric, "segment": str(r.segment) if isinstance(r.segment, tuple) else r.segment,
            "n": r.n, "estimate": r.estimate, "low": r.confidence_interval.low,
            "high": r.confidence_interval.high, "standard_error": r.standard_error, "estimate_rest": o.estimate,
            "difference": r.estimate - o.estimate, "difference_low": dlo, "difference_high": dhi, "pvalue": p,
        })
    p_adj = adjust_pvalues(np.array([row["pvalue"] for row in rows]), None if adjust == "none" else adjust)
    for row, q in zip(rows, p_adj):
        row["pvalue_adjusted"] = float(q)
        row["differs"] = bool(q <= alpha)
    cols = {k: [row[k] for row in rows] for k in rows[0]}
    try:
        table = src.arrow_table(cols)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        cols["segment"] = [str(v) for v in cols["segment"]]
        table = src.arrow_table(cols)
    n = int(sum(r.n for r in results if r.metric == results[0].metric))
    return SlicedMetricsResult(table=table, n=n, n_resamples=n_resamples, confidence=confidence, seed=seed,
                               alpha=alpha, adjust=adjust, by=by, notes=notes)

