"""``compare_models`` and ``mcnemar``: the public functions of offline model comparison."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import _source as src
from .._fold import check_backend, fold
from .._validation import as_column_list, check_choice
from ._math import mcnemar_pvalues
from .result import CompareModelsResult, McNemarResult
from .state import CompareModelsState

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .._typing import Data, Filter, Seed


def _pivot_long(data, *, model, score, item, label, cluster, filter, batch_size):
    """A long table (one row per (item, model)) as a wide one (one row per item, a column per model)."""
    for name, v in (("model", model), ("score", score), ("item", item)):
        if v is None:
            raise ValueError(f"the long layout needs `model=`, `score=` and `item=`; `{name}` is missing")
    model, score, item = (as_column_list(n, v)[0] for n, v in (("model", model), ("score", score), ("item", item)))
    extra = [c for c in (label, cluster) if c is not None]
    cols = [item, model, score, *extra]
    source = src.open_source(data, filter=filter, batch_size=batch_size, columns_hint=cols)
    for c, a in zip(cols, ["item", "model", "score", *[n for n, v in (("label", label), ("cluster", cluster))
                                                       if v is not None]]):
        if c not in source.schema.names:
            raise ValueError(f"unknown column {c!r} (given as `{a}`); the input has columns: "
                             + ", ".join(repr(n) for n in source.schema.names[:20]))
    batches = [b.select(cols) for b in source.batches(cols)]
    if not batches or sum(b.num_rows for b in batches) == 0:
        raise ValueError("empty input: no rows (after the filter, if one was given)")
    table = pa.Table.from_batches(batches)
    if table.num_rows == 0:
        raise ValueError("empty input: no rows (after the filter, if one was given)")
    names = pc.unique(table.column(model).combine_chunks()).to_pylist()
    if any(v is None for v in names):
        raise ValueError(f"column {model!r} (given as `model`) has null values")
    if len(names) < 1:
        raise ValueError("no models in the `model` column")
    items = table.column(item).combine_chunks()
    if items.null_count:
        raise ValueError(f"column {item!r} (given as `item`) has null values")
    uniq = pc.unique(items)
    uniq = uniq.take(pc.sort_indices(uniq))
    pos = pc.index_in(items, value_set=uniq).to_numpy()
    models = [str(m) for m in names]
    out = {item: uniq}
    mcol = table.column(model).combine_chunks()
    sc = table.column(score).combine_chunks()
    if not (pa.types.is_integer(sc.type) or pa.types.is_floating(sc.type) or pa.types.is_boolean(sc.type)):
        raise TypeError(f"column {score!r} (given as `score`) must be numeric; got {sc.type}")
    for m, name in zip(names, models):
        mask = pc.equal(mcol, pa.scalar(m, mcol.type)).to_numpy(zero_copy_only=False)
        p = pos[mask]
        if np.unique(p).size != p.size:
            raise ValueError(f"model {name!r} has more than one row for some item (column {item!r})")
        if p.size != len(uniq):
            raise ValueError(f"model {name!r} has scores for {p.size:,} of the {len(uniq):,} items; every model "
                             "must score every item (filter the items first)")
        col = np.full(len(uniq), np.nan)
        v = sc.filter(pa.array(mask))
        col[p] = np.asarray(v.to_numpy(zero_copy_only=False), dtype=np.float64)
        out[name] = col
    for c in extra:
        first = np.full(len(uniq), -1, dtype=np.int64)
        idx = np.arange(len(pos))[::-1]
        first[pos[idx]] = idx
        out[c] = table.column(c).combine_chunks().take(pa.array(first))
    return pa.table(out), models


def compare_models(data: Data, *, models: Sequence[str] | None = None, model: str | None = None,
                   score: str | None = None, label: str | None = None, item: str | None = None,
                   cluster: str | None = None, metric: str = "mean", test: str = "paired", confidence: float = 0.95,
                   n_resamples: int = 1000, seed: Seed = None, adjust: str = "holm",
                   higher_is_better: bool | None = None, nulls: str = "raise", filter: Filter = None,
                   batch_size: int | None = None, progress: bool | None = None, engine: str | None = None,
                   backend: str = "auto") -> CompareModelsResult:
    """Compare K models evaluated on the same items: metrics with intervals, paired differences, tests, ranks.

    Every model is scored on the same items, so differences are **paired**: the
    analytic standard error of ``metric(a) - metric(b)`` uses the models'
    covariance (Miller 2024), and the bootstrap gives every model the same
    counter-based Poisson weights in a replicate (one pass over the rows computes
    each weight once and uses it for all K models).  With ``cluster=`` (several
    items from one passage, conversation...) the standard errors are cluster-robust
    (CR1, as statsmodels' ``cov_type="cluster"``) and the bootstrap resamples
    clusters.

    Parameters
    ----------
    data : table, Parquet path, DataFrame, dict of arrays, Dask DataFrame...
        Wide: one column per model (``models=``); long: one row per (item, model)
        with ``model=``, ``score=`` and ``item=`` (pivoted in memory first).
    models : list of str
        The models' score / prediction columns (wide layout).
    model, score : str, optional
        Long layout: the model-name and score columns.
    label : str, optional
        The truth column, for metrics that compare a prediction with it.
    item : str, optional
        Item id: the bootstrap weights are keyed by it (so results do not depend on
        the rows' order); required by the long layout.
    cluster : str, optional
        Cluster id (CR1 standard errors, cluster bootstrap).
    metric : {"mean", "accuracy", "mse", "rmse", "mae", "f1", "auc"}
        ``"mean"``: the mean of each model's per-item score (ROUGE, a judge's grade,
        0/1 correctness...); ``"accuracy"``: ``prediction == label`` (or the columns
        are 0/1 correctness without ``label``); ``"rmse"``/``"mse"``/``"mae"``: errors
        against ``label`` (RMSE's analytic SE by the delta method); ``"f1"`` (0/1
        predictions and labels, delta method) and ``"auc"`` (scores, 0/1 labels,
        bootstrap only).
    test : {"paired", "mcnemar"}
        The pairwise test: a paired z-test on the analytic SE, or McNemar's exact
        test (``metric="accuracy"``).
    confidence : float, default 0.95
    n_resamples : int, default 1000
        Bootstrap replicates (0: analytic intervals only).
    seed : int, optional
        Seed of the bootstrap weights; None means ``0`` (the same answer every run).
    adjust : {"holm", "bh", "none"}
        Adjustment of the pairwise p-values across pairs (``pvalue_adjusted``).
    higher_is_better : bool, optional
        Direction of the ranking; by default from the metric (lower for errors).
    nulls : {"raise", "drop"}
    filter : pyarrow.compute.Expression, optional
    batch_size : int, optional
    progress : bool, optional
    engine : {None, "auto", "dask"}
        ``"dask"`` (or a Dask DataFrame) folds the partitions on a Dask cluster.
    backend : {"auto", "cpu"}

    Returns
    -------
    CompareModelsResult

    Raises
    ------
    ValueError
        Unknown column, nulls, non-0/1 values where a metric needs them, a model
        missing items (long layout), empty input, bad options.
    TypeError
        A non-numeric score column, options of the wrong type.

    References
    ----------
    E. Miller, "Adding Error Bars to Evals: A Statistical Approach to Language Model
    Evaluations", arXiv:2411.00640 (2024).
    A. C. Cameron, D. L. Miller, "A Practitioner's Guide to Cluster-Robust Inference",
    J. Human Resources 50 (2015).

    Examples
    --------
    >>> import fastevals
    >>> from fastevals._compare import demo_reviews
    >>> data = demo_reviews(n=1000, seed=0)
    >>> res = fastevals.compare_models(data, models=["llama3.1_8b", "llama3.2_3b"], label="rating",
    ...                                metric="rmse", item="review_id", n_resamples=300, seed=0)
    >>> res.verdict()
    'llama3.1_8b is better than llama3.2_3b on rmse: the 95% interval of the difference excludes 0'
    """
    check_backend(backend)
    if (model is not None or score is not None) and models is not None:
        raise ValueError("give either `models=` (wide layout) or `model=` and `score=` (long layout), not both")
    if models is None and model is None:
        raise ValueError("`models` is required: the list of the models' score columns (or the long layout's "
                         "`model=`, `score=`, `item=`)")
    if model is not None or score is not None:
        if engine is not None and str(engine).lower() == "dask":
            raise ValueError("the long layout is pivoted in memory; on Dask pass a wide table (`models=`)")
        data, models = _pivot_long(data, model=model, score=score, item=item, label=label, cluster=cluster,
                                   filter=filter, batch_size=batch_size)
        filter = None
    state = CompareModelsState(models=models, label=label, item=item, cluster=cluster, metric=metric, test=test,
                               confidence=confidence, n_resamples=n_resamples, seed=seed, adjust=adjust,
                               higher_is_better=higher_is_better, nulls=nulls, filter=filter,
                               batch_size=batch_size, progress=progress)
    state = fold(state, data, engine=engine)
    return state.finalize()


def mcnemar(data: Data, *, models: Sequence[str], label: str | None = None, method: str = "exact", nulls: str = "raise",
            filter: Filter = None, batch_size: int | None = None, progress: bool | None = None,
            engine: str | None = None) -> McNemarResult:
    """McNemar's test: whether two models' correct/incorrect outcomes on the same items differ.

    Only the discordant items count: ``n_a_only`` (a right, b wrong) and
    ``n_b_only``.  Under the null each is Binomial(``n_a_only + n_b_only``, 1/2).
    Equal to statsmodels' ``mcnemar(table, exact=True)`` (``"exact"``) and
    ``exact=False`` (``"chi2"``: corrected; ``"chi2-uncorrected"``).

    Parameters
    ----------
    data : table, Parquet path, DataFrame, dict of arrays...
    models : list of two str
        The two models' prediction columns (or 0/1 correctness columns without ``label``).
    label : str, optional
        The truth column; a model is right where its prediction equals it.
    method : {"exact", "midp", "chi2", "chi2-uncorrected"}
        Which p-value is ``pvalue`` (all are reported).
    nulls, filter, batch_size, progress, engine
        As :func:`compare_models`.

    Returns
    -------
    McNemarResult

    Raises
    ------
    ValueError
        Not two models, unknown columns, correctness columns that are not 0/1.

    References
    ----------
    Q. McNemar, "Note on the sampling error of the difference between correlated
    proportions or percentages", Psychometrika 12 (1947).
    M. W. Fagerland, S. Lydersen, P. Laake, "The McNemar test for binary
    matched-pairs data: mid-p and asymptotic are better than exact conditional",
    BMC Med. Res. Methodol. 13 (2013).

    Examples
    --------
    >>> import numpy as np, fastevals
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 500)
    >>> a = np.where(rng.random(500) < 0.85, y, 1 - y)
    >>> b = np.where(rng.random(500) < 0.75, y, 1 - y)
    >>> r = fastevals.mcnemar({"y": y, "a": a, "b": b}, models=["a", "b"], label="y")
    >>> r.pvalue < 0.001
    True
    """
    models = as_column_list("models", models, allow_none=False)
    if len(models) != 2:
        raise ValueError(f"`models` must name exactly two columns for McNemar's test; got {models!r}")
    method = check_choice("method", method, ("exact", "midp", "chi2", "chi2-uncorrected"))
    state = CompareModelsState(models=models, label=label, metric="accuracy", n_resamples=0, nulls=nulls,
                               filter=filter, batch_size=batch_size, progress=progress)
    state = fold(state, data, engine=engine)
    state.check_not_empty()
    both = state.both
    n01 = int(both[0, 0] - both[0, 1])
    n10 = int(both[1, 1] - both[0, 1])
    n11 = int(both[0, 1])
    p = mcnemar_pvalues(np.array([n01]), np.array([n10]))
    pv = {"exact": p["exact"][0], "midp": p["midp"][0], "chi2": p["chi2"][0],
          "chi2-uncorrected": p["chi2_nocorrection"][0]}[method]
    stat = {"exact": p["statistic"][0], "midp": p["statistic"][0], "chi2": p["chi2_statistic"][0],
            "chi2-uncorrected": p["chi2_statistic_nocorrection"][0]}[method]
    n = state.n
    return McNemarResult(statistic=float(stat), pvalue=float(pv), method=method, pvalue_exact=float(p["exact"][0]),
                         pvalue_midp=float(p["midp"][0]), pvalue_chi2=float(p["chi2"][0]),
                         estimate=(n01 - n10) / n, n_a_only=n01, n_b_only=n10, n_both=n11,
                         n_neither=n - n01 - n10 - n11, models=tuple(models), n=n, n_dropped=state.n_dropped)
