"""``fastevals.fairness``: group rates and disparities with intervals, in one pass."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._fold import fold
from .result import FairnessResult
from .state import FairnessState

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .._typing import Columns, Data, Filter, Seed


def fairness(data: Data, *, label: str, sensitive: Columns, prediction: str | None = None, score: str | None = None,
             threshold: float = 0.5, thresholds: Sequence[float] | None = None, n_resamples: int = 1000,
             confidence: float = 0.95, seed: Seed = None, by: Columns | None = None, nulls: str = "raise",
             filter: Filter = None, batch_size: int | None = None, progress: bool | None = None,
             engine: str | None = None, backend: str = "auto") -> FairnessResult:
    """Fairness of binary predictions across groups, with intervals and tests.

    Per group of ``sensitive`` (per combination of several sensitive columns): the number of
    rows, selection rate, true and false positive rates, precision and accuracy, each with a
    Wilson interval; and the disparities between groups (fairlearn's definitions), each with a
    Poisson-bootstrap interval and a G-test p-value:

    * demographic parity difference (max - min selection rate) and ratio (min / max, the
      "four-fifths rule"): G-test of prediction x group;
    * equal opportunity difference (max - min true positive rate): the G-test among label-1 rows;
    * equalized odds difference (the larger of the TPR and FPR differences): the G-test of
      conditional independence of prediction and group given the label (the label-0 and
      label-1 statistics and degrees of freedom summed).

    The interval of a disparity is the percentile interval of the disparity recomputed in each
    bootstrap replicate (the max - min over groups of the replicate's rates), so it accounts for
    which group is highest and lowest changing from replicate to replicate.  The pass over the
    data only counts cells; a replicate's count of a cell (the sum of its rows' Poisson(1)
    weights) is one counter-based Poisson(count) draw, so B replicates cost ``B x cells`` draws,
    whatever the number of rows.

    Parameters
    ----------
    data
        Any input fastevals reads: a pyarrow Table, a Parquet path/folder/glob, a pandas or
        polars DataFrame, a dict of NumPy arrays, a Dask DataFrame...
    label : str
        The true outcome column: 0/1 or booleans (1 is the positive class).
    sensitive : str or list of str
        The sensitive column(s); several columns give one group per combination.
    prediction : str, optional
        The predicted outcome column: 0/1 or booleans.  Give this or ``score``.
    score : str, optional
        A numeric score column; the prediction is ``score >= threshold``.
    threshold : float, default 0.5
        The threshold applied to ``score``.
    thresholds : sequence of float, optional
        With ``score``: a threshold sweep; ``result.curve`` gives the disparities (with
        intervals) at each of these thresholds and at ``threshold``, all from the same pass.
    n_resamples : int, default 1000
        Poisson-bootstrap replicates (0: no intervals for the disparities).
    confidence : float, default 0.95
        Confidence level of every interval.
    seed : int, numpy Generator or None
        Key of the bootstrap weights; None draws a fresh seed (recorded in ``result.seed``).
    by : str or list of str, optional
        Segment column(s): the per-group table and the disparities table get one block per
        segment (the scalar disparities stay over all rows).
    nulls : {"raise", "drop"}
        Rows with nulls (or NaN/inf scores): raise, or leave them out.
    filter : pyarrow.compute.Expression, optional
        Rows to keep, pushed into the scan.
    batch_size : int, optional
        Rows per scanned batch (the answer does not depend on it).
    progress : bool, optional
        Show a progress bar (None: on a terminal only).
    engine : {None, "auto", "dask"}
        "dask" folds a Parquet input on the current Dask cluster (a Dask DataFrame always is).
    backend : {"auto", "cpu"}
        Where the kernels run (this analysis has no CUDA twin).

    Returns
    -------
    FairnessResult
        The disparities (``..._ci``, ``..._pvalue``), the per-group ``table`` (also ``groups``),
        the ``disparities`` table and, with ``thresholds``, the ``curve``.

    Raises
    ------
    ValueError
        Unknown columns, non-0/1 labels or predictions, nulls (with ``nulls="raise"``), empty
        input, fewer than two groups, both or neither of ``prediction`` and ``score``.
    TypeError
        Wrongly typed arguments or columns.

    Examples
    --------
    >>> import numpy as np
    >>> import fastevals
    >>> rng = np.random.default_rng(0)
    >>> n = 20_000
    >>> gender = rng.choice(["f", "m"], n)
    >>> y = rng.integers(0, 2, n)
    >>> yhat = (rng.uniform(size=n) < np.where(gender == "f", 0.3, 0.4) + 0.3 * y).astype(int)
    >>> res = fastevals.fairness({"y": y, "yhat": yhat, "gender": gender}, label="y",
    ...                          prediction="yhat", sensitive="gender", n_resamples=200, seed=1)
    >>> round(res.demographic_parity_difference, 3)
    0.112
    >>> res.demographic_parity_difference_ci.low > 0.08
    True
    >>> res.groups.column("gender").to_pylist()
    ['f', 'm']
    """
    state = FairnessState(label=label, sensitive=sensitive, prediction=prediction, score=score,
                          threshold=threshold, thresholds=thresholds, n_resamples=n_resamples,
                          confidence=confidence, seed=seed, by=by, nulls=nulls, filter=filter,
                          batch_size=batch_size, progress=progress, backend=backend)
    state = fold(state, data, engine=engine)
    return state.finalize()
