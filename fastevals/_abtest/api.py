"""A/B tests over Arrow tables and Parquet logs: G-test and z-test, on the protocol.

Every function here is the same steps: build an :class:`ABTestState` with the
function's options, fold the data into it with the one fold engine
(:func:`fastevals._fold.fold`: counts per (segment, group, outcome) cell and
n / mean / M2 per (segment, group) cell, by one compiled pass; in process or
on Dask), and finalize in closed form.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from .. import _stats
from .._config import PARALLEL_MIN_ROWS
from .._fold import fold
from ._math import (
    MAX_MONTE_CARLO_TOTAL,
    _check_monte_carlo,
    _g_iv,
    _g_single,
    _monte_carlo_pvalue,
)
from .result import ABTable, ABTestReport, GTestResult, ZTestResult
from .state import ABTestState

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

    from numpy.typing import ArrayLike

    from .._typing import Columns, Data, Filter, Seed

__all__ = ["abtest", "g_test", "g_test_counts", "warmup", "z_test"]


def _run(state: ABTestState, data, engine) -> ABTestState:
    state = fold(state, data, engine=engine)
    state.check_not_empty()
    return state


def g_test(data: Data, *, group: str, outcome: str, by: Columns | None = None, correction: str | None = None,
           monte_carlo: int | None = None, seed: Seed = None, adjust: str | None = "holm", nulls: str = "raise",
           filter: Filter = None, batch_size: int | None = None,
           expected_split: Mapping[Any, float] | Sequence[float] | None = None, progress: bool | None = None,
           engine: str | None = None, backend: str = "auto") -> GTestResult | ABTable:
    """G-test of independence between ``group`` and ``outcome`` (any R x C table).

    Parameters
    ----------
    data : table-like
        A pyarrow Table/RecordBatch/RecordBatchReader/Dataset, a Parquet path, folder, glob or list
        of paths, a pandas or polars DataFrame, an object with ``__arrow_c_stream__``, a dict of
        arrays, or a Dask DataFrame.
    group, outcome : str
        Columns: strings, dictionary-encoded strings, integers or booleans.
    by : str or list of str, optional
        Segment columns: one test per segment, all in the same pass; returns an :class:`ABTable`.
    correction : {None, "williams", "yates"}
        Williams' correction (any table) or Yates' continuity correction (2 x 2 only).
    monte_carlo : int, optional
        Also compute a Monte Carlo p-value from this many random tables with the observed
        margins (Patefield's algorithm; seeded, reproducible on any thread count). At most
        ``MAX_MONTE_CARLO_CELLS`` (1e9) table cells in all (a clear error beyond); tables of more
        than 1e9 counts get no Monte Carlo p-value (a warning and a note: the chi-square p-value
        is exact enough there).
    seed : int or numpy Generator, optional
        Seed of the Monte Carlo tables; None draws a fresh one (the p-value then varies a little
        from run to run).
    adjust : {"holm", "bh", None}
        Adjustment of the per-segment p-values (``by`` only).
    nulls : {"raise", "drop"}
        ``"drop"`` leaves out rows with a null (or NaN / inf in a numeric column) and counts them.
    filter : pyarrow.compute.Expression, optional
        Row filter, pushed into the Parquet scan.
    batch_size : int, optional
        Rows per scanned batch.
    expected_split : dict or sequence, optional
        Expected share of each group for the sample-ratio-mismatch check (equal by default).
    progress : bool, optional
        None (default): shown on long scans when stderr is a terminal.
    engine : {None, "auto", "arrow", "dask"}
        None runs a ``dask.dataframe.DataFrame`` on Dask (one state per partition, tree-merged on
        the current ``distributed.Client``) and everything else in this process; "dask" has the
        Dask workers read Parquet paths themselves.
    backend : {"auto", "cpu", "cuda"}
        Where the Monte Carlo tables are drawn: ``"cuda"`` on an NVIDIA GPU (the same
        counter-based tables, so the same p-value; needs the ``cuda`` extra and a GPU, else
        an error saying why); ``"auto"`` uses a GPU only when one is present and the
        tables x cells are many. The result's ``backend`` says which ran.

    Returns
    -------
    GTestResult or ABTable
        ``statistic, pvalue, dof, expected_freq``; equal to
        ``scipy.stats.chi2_contingency(observed, correction=False, lambda_="log-likelihood")``.

    Raises
    ------
    ValueError
        Unknown columns, a single group or outcome level, empty input, nulls (with
        ``nulls="raise"``), options out of range.

    Examples
    --------
    >>> import numpy as np, fastevals
    >>> rng = np.random.default_rng(0)
    >>> data = {"variant": rng.choice(["a", "b"], 10_000), "converted": rng.random(10_000) < 0.1}
    >>> res = fastevals.g_test(data, group="variant", outcome="converted")
    >>> bool(0 <= res.pvalue <= 1), res.dof
    (True, 1)

    References
    ----------
    R. R. Sokal and F. J. Rohlf, *Biometry*, 3rd ed., section 17.2 (G-test, Williams' correction).
    D. A. Williams, "Improved likelihood ratio tests for complete contingency tables", Biometrika 63 (1976).
    """
    st = ABTestState(group=group, outcome=outcome, by=by, correction=correction, monte_carlo=monte_carlo,
                     seed=seed, adjust=adjust, nulls=nulls, filter=filter, batch_size=batch_size,
                     expected_split=expected_split, progress=progress, backend=backend)
    return _run(st, data, engine).g_test()


def z_test(data: Data, *, group: str, value: str, control: str | None = None, kind: str = "mean",
           alternative: str = "two-sided", margin: float = 0.0, confidence: float = 0.95, by: Columns | None = None,
           adjust: str | None = "holm", nulls: str = "raise", filter: Filter = None,
           batch_size: int | None = None, expected_split: Mapping[Any, float] | Sequence[float] | None = None,
           progress: bool | None = None, engine: str | None = None, covariate: str | Sequence[str] | None = None,
           denominator: str | None = None, variance="welch") -> ZTestResult | ABTable:
    """Two-sample z-test of every group against ``control`` on the mean (or proportion) of ``value``;
    with regression adjustment (CUPED) on ``covariate`` and ratio metrics with ``denominator``.

    ``kind="mean"``: unequal-variance (Welch) standard error, as statsmodels
    ``CompareMeans.ztest_ind(usevar="unequal")`` and ``zconfint_diff``.
    ``kind="proportion"`` (0/1 values): pooled standard error for the test
    (``proportions_ztest``), unpooled for the interval
    (``confint_proportions_2indep(method="wald")``).

    Parameters
    ----------
    data : table-like
        Any source fastevals reads (Arrow, Parquet path, pandas, polars, dict of arrays, Dask).
    group, value : str
        The group (variant) column and the numeric metric column.
    control : optional
        The control group. Without it the control is the group named "control" if there is one,
        else the first group in sorted order; the result says which, in words
        (``control_source`` and a note).
    kind : {"mean", "proportion"}
    alternative : {"two-sided", "larger", "smaller"}
    margin : float
        Tests treatment - control against ``margin`` instead of 0 (with ``alternative="larger"``:
        superiority by at least ``margin``; with a negative margin: non-inferiority).
    confidence : float
        Level of the intervals (``confidence_interval``, ``relative_difference_ci``).
    by : str or list of str, optional
        Segment columns: one comparison per (segment, treatment), Holm-adjusted (``adjust``).
    adjust : {"holm", "bh", None}
    nulls : {"raise", "drop"}
        ``"drop"`` leaves out rows with a null, NaN or inf in any column used, and counts them.
    filter, batch_size, expected_split, progress, engine
        As in :func:`g_test`.
    covariate : str or list of str, optional
        Pre-experiment covariates (e.g. the metric's pre-period value, or a model's prediction as in
        CUPAC): regression adjustment. The difference is the coefficient on the treatment indicator of
        OLS ``value ~ 1 + treatment + covariates`` on the two groups' rows (per segment), i.e. the
        plain difference minus ``theta' (xbar_t - xbar_c)`` with the pooled within-group coefficient
        ``theta``. Kept as per-cell co-moments: mergeable, one pass, every segment at once.
    denominator : str, optional
        Ratio metric: per group ``sum(value) / sum(denominator)`` (e.g. revenue per session) with rows
        as the units (e.g. users); standard error by the delta method (ddof=1 covariances).
        Covariates adjust its linearization (pass the numerator's and the denominator's
        pre-period columns as two covariates).
    variance : {"welch", "hc1"}
        ``"welch"``: the Welch standard error of the adjusted values ``value - theta' covariates``
        of each group (as CUPED is usually reported; the delta method for ratios).
        ``"hc1"``: statsmodels' HC1 (heteroskedasticity-robust) standard error of the OLS coefficient;
        with covariates the scan then also keeps third and fourth co-moments (slower scan).

    Returns
    -------
    ZTestResult or ABTable
        A :class:`ZTestResult` for one treatment without ``by``, else an :class:`ABTable` with a row
        per (segment, treatment) and adjusted p-values. With covariates both report
        ``variance_reduction`` (1 - adjusted variance / plain variance of the difference) and
        ``extra_sample_size`` (rows a plain test would need on top of these for the same standard
        error).

    Raises
    ------
    ValueError
        Unknown columns, non-numeric or non-finite values, a single group, ``kind="proportion"``
        with covariates or a denominator, ``variance="hc1"`` with a denominator.

    Examples
    --------
    >>> import numpy as np, fastevals
    >>> rng = np.random.default_rng(1)
    >>> data = {"variant": np.repeat(["a", "b"], 5000), "revenue": rng.exponential(10, 10_000)}
    >>> res = fastevals.z_test(data, group="variant", value="revenue", control="a")
    >>> res.control, res.treatment, res.n_treatment
    ('a', 'b', 5000)

    Regression adjustment on a pre-period covariate:

    >>> pre = rng.exponential(10, 10_000)
    >>> data = {"variant": np.repeat(["a", "b"], 5000), "pre": pre,
    ...         "revenue": 0.8 * pre + rng.normal(0, 3, 10_000) + np.repeat([0.0, 0.5], 5000)}
    >>> res = fastevals.z_test(data, group="variant", value="revenue", control="a", covariate="pre")
    >>> round(res.difference, 3), round(res.variance_reduction, 2)
    (0.502, 0.88)

    References
    ----------
    A. Deng, Y. Xu, R. Kohavi, T. Walker, "Improving the sensitivity of online controlled experiments
    by utilizing pre-experiment data", WSDM 2013.
    A. Deng, U. Knoblich, J. Lu, "Applying the delta method in metric analytics", KDD 2018.
    """
    st = ABTestState(group=group, value=value, by=by, control=control, kind=kind, alternative=alternative,
                     margin=margin, confidence=confidence, adjust=adjust, nulls=nulls, filter=filter,
                     batch_size=batch_size, expected_split=expected_split, progress=progress,
                     covariate=covariate, denominator=denominator, variance=variance)
    return _run(st, data, engine).z_test()


def abtest(data: Data, *, group: str, outcome: str | None = None, value: str | None = None, by: Columns | None = None,
           control: str | None = None, kind: str = "mean", alternative: str = "two-sided", margin: float = 0.0,
           confidence: float = 0.95, correction: str | None = None, monte_carlo: int | None = None,
           seed: Seed = None, adjust: str | None = "holm", nulls: str = "raise", filter: Filter = None,
           batch_size: int | None = None, expected_split: Mapping[Any, float] | Sequence[float] | None = None,
           progress: bool | None = None, engine: str | None = None, backend: str = "auto",
           covariate: str | Sequence[str] | None = None, denominator: str | None = None, variance="welch"
           ) -> ABTestReport:
    """G-test on ``outcome`` and z-test on ``value`` in one pass over ``data``.

    Parameters
    ----------
    data : table-like
        As in :func:`g_test`.
    group : str
        The group (variant) column.
    outcome, value : str, optional
        The G-test's categorical outcome and the z-test's numeric metric; give one or both. They may
        name the same 0/1 column (a conversion flag: G-test and z-test of it).
    by, control, kind, alternative, margin, confidence, adjust, covariate, denominator, variance
        As in :func:`z_test` (``by`` and ``adjust`` apply to both tests).
    correction, monte_carlo, seed, backend
        As in :func:`g_test`.
    nulls, filter, batch_size, expected_split, progress, engine
        As in :func:`g_test`.

    Returns
    -------
    ABTestReport
        ``g_test``, ``z_test`` (None where not asked for), ``srm``, ``n``, ``n_dropped``;
        ``str(report)`` is what ``fastevals abtest`` prints.

    Raises
    ------
    ValueError
        Neither ``outcome`` nor ``value``; as :func:`g_test` and :func:`z_test`.

    Examples
    --------
    >>> import numpy as np, fastevals
    >>> rng = np.random.default_rng(2)
    >>> data = {"variant": rng.choice(["control", "new"], 20_000),
    ...         "converted": rng.random(20_000) < 0.1, "revenue": rng.exponential(5, 20_000)}
    >>> rep = fastevals.abtest(data, group="variant", outcome="converted", value="revenue")
    >>> rep.z_test.control, rep.g_test.dof
    ('control', 1)
    """
    if outcome is None and value is None:
        raise ValueError("give `outcome` (for the G-test), `value` (for the z-test), or both")
    st = ABTestState(group=group, outcome=outcome, value=value, by=by, control=control, kind=kind,
                     alternative=alternative, margin=margin, confidence=confidence, correction=correction,
                     monte_carlo=monte_carlo, seed=seed, adjust=adjust, nulls=nulls, filter=filter,
                     batch_size=batch_size, expected_split=expected_split, progress=progress, backend=backend,
                     covariate=covariate, denominator=denominator, variance=variance)
    return _run(st, data, engine).finalize()


def g_test_counts(observed: ArrayLike, *, correction: str | None = None, monte_carlo: int | None = None,
                  seed: Seed = None, backend: str = "auto") -> GTestResult:
    """G-test of independence on a table of counts, or on a stack of tables ``(..., R, C)``.

    A single table with an all-zero row or column raises (its expected counts
    are zero); in a stack, such tables get NaN and a RuntimeWarning says how many.

    Parameters
    ----------
    observed : array-like
        Counts, ``(R, C)`` or a stack ``(..., R, C)``; R, C >= 2.
    correction, monte_carlo, seed, backend
        As in :func:`g_test`. Tables of more than 1e9 counts get no Monte Carlo p-value (a
        RuntimeWarning and a note say why: the chi-square p-value is exact enough there).

    Returns
    -------
    GTestResult
        Unpacks as ``statistic, pvalue, dof, expected_freq`` (arrays for a stack).

    Raises
    ------
    ValueError, TypeError
        Not an array of finite non-negative counts, fewer than 2 rows or columns, an all-zero row
        or column in a single table, ``monte_carlo`` beyond the limit.

    Examples
    --------
    >>> import fastevals
    >>> res = fastevals.g_test_counts([[120, 880], [150, 850]])
    >>> round(res.statistic, 4), res.dof
    (3.8605, 1)
    """
    correction, monte_carlo, seed_key, _, backend = _g_iv(correction, monte_carlo, seed, None, backend)
    try:
        obs = np.asarray(observed, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"`observed` must be an array of counts; got {type(observed).__name__}") from None
    if obs.ndim < 2:
        raise ValueError(f"`observed` must have at least 2 dimensions (R x C); got shape {obs.shape}")
    r, c = obs.shape[-2:]
    if r < 2 or c < 2:
        raise ValueError(f"`observed` tables must be at least 2 x 2; got {r} x {c}")
    if obs.size == 0 or not np.all(np.isfinite(obs)) or np.any(obs < 0):
        raise ValueError("`observed` must hold finite, non-negative counts")
    if correction == "yates" and (r, c) != (2, 2):
        raise ValueError(f"correction='yates' applies to 2 x 2 tables only; these are {r} x {c}")
    degenerate = (obs.sum(axis=-1) == 0).any(axis=-1) | (obs.sum(axis=-2) == 0).any(axis=-1)
    if obs.ndim == 2:
        if degenerate:
            rz = np.flatnonzero(obs.sum(axis=1) == 0).tolist()
            cz = np.flatnonzero(obs.sum(axis=0) == 0).tolist()
            raise ValueError(f"`observed` has all-zero rows {rz} / columns {cz}: expected counts would be "
                             "zero; drop them first")
        if monte_carlo:
            _check_monte_carlo(monte_carlo, r * c)
        res = _g_single(obs, correction, monte_carlo, seed_key, backend)
        res["observed"] = np.asarray(observed)
        return GTestResult(**res, n=int(obs.sum()) if obs.sum() < 2**63 else 0)
    expected = _stats.expected_counts(obs)
    if correction == "yates":
        g = _stats.g_statistic(_stats.yates_adjust(obs, expected), expected)
    else:
        g = _stats.g_statistic(obs, expected)
        if correction == "williams":
            g = g / _stats.williams_q(obs)
    g = np.where(degenerate, np.nan, g)
    dof = (r - 1) * (c - 1)
    pvalue = _stats.chi2_sf(g, dof)
    if degenerate.any():
        warnings.warn(f"{int(degenerate.sum())} table(s) of the stack have an all-zero row or column; "
                      "their statistic and p-value are NaN", RuntimeWarning, stacklevel=2)
    with np.errstate(invalid="ignore"):
        small = (obs.min(axis=(-2, -1)) < 100) | (np.nan_to_num(expected, nan=0.0).min(axis=(-2, -1)) < 5)
    pvalue_mc = None
    used = set()
    if monte_carlo:
        _check_monte_carlo(monte_carlo, obs.size)
        flat_obs = obs.reshape(-1, r, c)
        flat_exp = expected.reshape(-1, r, c)
        flat_deg = degenerate.reshape(-1)
        pmc = np.full(flat_obs.shape[0], np.nan)
        for k in range(flat_obs.shape[0]):
            if not flat_deg[k] and flat_obs[k].sum() <= MAX_MONTE_CARLO_TOTAL:
                key = (seed_key + 0x9E3779B97F4A7C15 * (k + 1)) & 0xFFFFFFFFFFFFFFFF
                pmc[k], b = _monte_carlo_pvalue(flat_obs[k], flat_exp[k], monte_carlo, key, backend)
                used.add(b)
        pvalue_mc = pmc.reshape(degenerate.shape)
        huge = int(np.count_nonzero(flat_obs.sum(axis=(1, 2)) > MAX_MONTE_CARLO_TOTAL))
        if huge:
            warnings.warn(f"{huge} table(s) of the stack hold more than {MAX_MONTE_CARLO_TOTAL:.0e} counts: their "
                          "Monte Carlo p-value is NaN (the chi-square p-value is exact enough there)",
                          RuntimeWarning, stacklevel=2)
    return GTestResult(statistic=g, pvalue=pvalue, dof=dof, expected_freq=expected, observed=np.asarray(observed),
                       correction=correction, pvalue_mc=pvalue_mc, n_monte_carlo=monte_carlo or 0,
                       small_counts=small, backend="cuda" if "cuda" in used else "cpu",
                       n=int(obs.sum()) if obs.sum() < 2**63 else 0)


def warmup(parallel: bool = True) -> None:
    """Compile (or load from the on-disk cache) the A/B kernels for the common column types."""
    rows = PARALLEL_MIN_ROWS if parallel else 1000
    rng = np.random.default_rng(0)
    data = {
        "g": pa.array(rng.choice(["a", "b"], rows)).dictionary_encode(),
        "o": rng.integers(0, 2, rows).astype(np.int8),
        "v": rng.random(rows),
    }
    ABTestState(group="g", outcome="o", value="v").update(data)
    ABTestState(group="g", value="v", covariate="o").update(data)  # the co-moment kernel (CUPED)
    g_test_counts([[5, 6], [7, 8]], monte_carlo=10, seed=0)

