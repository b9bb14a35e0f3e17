"""``fastevals.robustness``: epsilon-robustness of models to delta-perturbations of their inputs.

Why this is not a streaming state: the work is calling the user's model (any Python
callable) on perturbed copies of a feature matrix held in memory; a state would have to
carry that callable, which cannot be written to bytes or shipped to a Dask worker as a
mergeable statistic.  What is mergeable (per-example counts) is small, so the function
keeps it in memory and returns a :class:`RobustnessResult` directly.
"""

from __future__ import annotations

import itertools
import math
import numbers
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from .. import _source as src
from .. import _special as special
from .._config import PARALLEL_MIN_ROWS
from .._protocol import Result, fmt, render_table, result_dataclass
from .._validation import check_choice, check_int, check_probability, check_seed
from . import _math as fm

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any

    from .._typing import Data, Seed

_METHODS = {"zero": 0, "gaussian": 1}


@result_dataclass
class RobustnessResult(Result):
    """Robustness of one or more models to perturbations of their inputs, per delta.

    Attributes
    ----------
    table : pyarrow.Table
        One row per (model, delta): ``model``, ``delta``, ``n`` (examples), ``nonrobust_share``
        (examples whose prediction moved by more than ``epsilon`` under at least one of their
        perturbations) with a Wilson interval (``low`` / ``high``), ``perturbation_share``
        (share of all perturbed inputs that moved more than ``epsilon``), ``mean_movement``,
        ``max_movement``, ``mean_distance`` (mean Euclidean distance of the perturbed inputs to
        the originals) and ``robust`` (``nonrobust_share <= tolerance``).
    largest_robust_delta : dict
        Per model, the largest delta of the grid up to which (every smaller delta included) the
        model stays epsilon-robust; None when it is not robust even at the smallest delta.
    most_robust : str or None
        The model with the largest ``largest_robust_delta`` (the seed's choice for production).
    comparisons : pyarrow.Table or None
        With several models: per pair and delta, the paired difference of the non-robust
        shares (same examples, same perturbations) with the Agresti-Min interval and the exact
        McNemar p-value.
    """

    table: pa.Table
    largest_robust_delta: dict
    most_robust: str | None
    comparisons: pa.Table | None
    epsilon: float
    tolerance: float
    method: str
    n: int
    n_perturbations: int
    confidence: float
    seed: int
    notes: tuple

    def _title(self) -> str:
        return (f"Robustness to {self.method} perturbations (epsilon={fmt(self.epsilon)}, "
                f"{self.n_perturbations} perturbations of each of {self.n:,} examples)")

    def _summary_lines(self) -> list[str]:
        out = [f"largest epsilon-robust delta (non-robust share <= {fmt(self.tolerance)}): "
               + ", ".join(f"{k}: {fmt(v)}" for k, v in self.largest_robust_delta.items())]
        if len(self.largest_robust_delta) > 1:
            out.append(f"most robust: {self.most_robust}")
        if self.comparisons is not None:
            out.append("paired differences of the non-robust share:")
            out.append(render_table(self.comparisons, max_rows=40))
        return out

    def _plot(self, ax) -> None:
        models = list(dict.fromkeys(self.table.column("model").to_pylist()))
        for m in models:
            t = self.table.filter(pa.compute.equal(self.table.column("model"), m))
            d = t.column("delta").to_numpy()
            line, = ax.plot(d, t.column("nonrobust_share").to_numpy(), marker="o", label=m)
            ax.fill_between(d, t.column("low").to_numpy(), t.column("high").to_numpy(), color=line.get_color(),
                            alpha=0.2)
        ax.axhline(self.tolerance, color="grey", ls=":", lw=1)
        ax.set_xlabel("delta (Euclidean size of the perturbation)")
        ax.set_ylabel(f"share of examples moving more than {fmt(self.epsilon)}")
        ax.set_title("Robustness curve")
        ax.legend()


# ------------------------------------------------------------------------------------------------
# inputs


def _as_matrix(X):
    """(float64 C-contiguous matrix, a function turning a matrix back into X's kind)."""
    mod = type(X).__module__.split(".")[0]
    if mod == "pandas" and hasattr(X, "columns"):
        import pandas as pd

        cols = list(X.columns)
        for c in cols:
            if not (pd.api.types.is_numeric_dtype(X[c]) or pd.api.types.is_bool_dtype(X[c])):
                raise TypeError(f"feature column {c!r} of `X` must be numeric; got {X[c].dtype}")
        mat = X.to_numpy(dtype=np.float64)
        return mat, lambda a: pd.DataFrame(a, columns=cols)
    if mod == "polars" and hasattr(X, "to_numpy"):
        import polars as pl

        cols = list(X.columns)
        for c, t in zip(cols, X.dtypes):
            if not (t.is_numeric() or t == pl.Boolean):
                raise TypeError(f"feature column {c!r} of `X` must be numeric; got {t}")
        mat = X.to_numpy().astype(np.float64)
        return mat, lambda a: pl.DataFrame(a, schema=cols, orient="row")
    if isinstance(X, pa.RecordBatch):
        X = pa.Table.from_batches([X])
    if isinstance(X, pa.Table):
        cols = X.column_names
        parts = []
        for c in cols:
            arr = X.column(c)
            if not (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) or pa.types.is_boolean(arr.type)):
                raise TypeError(f"feature column {c!r} of `X` must be numeric; got {arr.type}")
            if arr.null_count:
                raise ValueError(f"feature column {c!r} of `X` has {arr.null_count:,} null value(s)")
            parts.append(src.numeric_view(arr.combine_chunks()).astype(np.float64))
        mat = np.stack(parts, axis=1) if parts else np.empty((X.num_rows, 0))
        return mat, lambda a: pa.table({c: a[:, k] for k, c in enumerate(cols)})
    a = np.asarray(X)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"`X` must be a numeric 2-D array or a table of numeric features; got dtype {a.dtype}")
    if a.ndim != 2:
        raise ValueError(f"`X` must be 2-D (examples x features); got shape {a.shape}")
    return a.astype(np.float64), lambda m: m


def _outputs(y, n: int, name: str) -> np.ndarray:
    if hasattr(y, "to_numpy"):
        y = y.to_numpy()
    y = np.asarray(y)
    if y.ndim == 0 or y.shape[0] != n:
        raise ValueError(f"model {name!r} returned {y.shape[0] if y.ndim else 'a scalar'} prediction(s) for "
                         f"{n:,} input rows; `predict` must return one prediction (or row of them) per input row")
    if y.ndim == 1:
        y = y[:, None]
    elif y.ndim > 2:
        y = y.reshape(n, -1)
    if y.dtype.kind in "biuf":
        y = y.astype(np.float64)
        if not np.all(np.isfinite(y)):
            raise ValueError(f"model {name!r} returned NaN or infinite predictions")
    return y


def _movement(yp: np.ndarray, y0: np.ndarray) -> np.ndarray:
    """Largest absolute change over the outputs (0/1 for non-numeric predictions, e.g. labels)."""
    if yp.dtype.kind == "f" and y0.dtype.kind == "f":
        return np.abs(yp - y0).max(axis=1)
    return (yp != y0).any(axis=1).astype(np.float64)


def _robustness_iv(predict, X, deltas, epsilon, n_perturbations, method, tolerance, confidence, seed, batch_size):
    if callable(predict):
        models = {"model": predict}
    elif isinstance(predict, dict) and predict:
        models = {}
        for k, f in predict.items():
            if not callable(f):
                raise TypeError(f"`predict[{k!r}]` must be a callable (a model's predict); got {type(f).__name__}")
            models[str(k)] = f
    else:
        raise TypeError(f"`predict` must be a callable or a non-empty dict of callables; got {type(predict).__name__}")
    mat, like = _as_matrix(X)
    if mat.shape[0] == 0 or mat.shape[1] == 0:
        raise ValueError(f"`X` is empty: shape {mat.shape}")
    if not np.all(np.isfinite(mat)):
        raise ValueError("`X` has NaN or infinite feature values")
    if isinstance(deltas, numbers.Real):
        deltas = [deltas]
    try:
        d = np.asarray(list(deltas), dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"`deltas` must be a sequence of non-negative numbers; got {deltas!r}") from None
    if d.size == 0 or not np.all(np.isfinite(d)) or np.any(d < 0):
        raise ValueError(f"`deltas` must be a non-empty sequence of finite, non-negative numbers; got {deltas!r}")
    d = np.unique(d)
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real) or not (epsilon >= 0) \
            or not math.isfinite(epsilon):
        raise ValueError(f"`epsilon` must be a finite number >= 0; got {epsilon!r}")
    n_perturbations = check_int("n_perturbations", n_perturbations, low=1, high=2**32 - 1)
    method = check_choice("method", method, tuple(_METHODS))
    tolerance = check_probability("tolerance", tolerance, open_interval=False)
    confidence = check_probability("confidence", confidence)
    seed = check_seed("seed", seed)
    batch_size = check_int("batch_size", batch_size, low=1, allow_none=True) or 65_536
    return models, mat, like, d, float(epsilon), n_perturbations, method, tolerance, confidence, seed, batch_size


def perturb(X, *, delta: float, n_perturbations: int, method: str = "zero", seed: int = 0,
            first_example: int = 0) -> np.ndarray:
    """The perturbed inputs :func:`robustness` feeds the model, ``(len(X) * n_perturbations, F)``.

    Row ``r * n_perturbations + p`` is perturbation ``p`` of row ``r`` of ``X`` (example
    ``first_example + r``), from the counter-based scheme of
    :mod:`fastevals._kernels.fairness`.

    Examples
    --------
    >>> import numpy as np
    >>> from fastevals._fairness.robustness import perturb
    >>> xp = perturb(np.array([[3.0, 4.0, 1.0]]), delta=4.5, n_perturbations=2, seed=1)
    >>> xp.shape
    (2, 3)
    >>> bool(np.all(np.linalg.norm(xp - [3.0, 4.0, 1.0], axis=1) <= 4.5))
    True
    """
    from .._kernels import fairness as kf

    X = np.ascontiguousarray(X, dtype=np.float64)
    out = np.empty((X.shape[0] * n_perturbations, X.shape[1]), dtype=np.float64)
    big = out.size >= PARALLEL_MIN_ROWS
    kernel = kf.perturb_parallel if big else kf.perturb_serial
    kernel(X, int(first_example), int(n_perturbations), np.uint64(check_seed("seed", seed)),
           _METHODS[check_choice("method", method, tuple(_METHODS))], float(delta), out)
    return out


def robustness(predict: Callable[..., Any] | Mapping[str, Callable[..., Any]], X: Data, *, deltas: Sequence[float],
               epsilon: float, n_perturbations: int = 100, method: str = "zero", tolerance: float = 0.0,
               confidence: float = 0.95, seed: Seed = None, batch_size: int | None = None) -> RobustnessResult:
    """Epsilon-robustness of one or several models to delta-perturbations of their inputs.

    For each example (row of ``X``) and each delta, ``n_perturbations`` perturbed copies are
    made by compiled, counter-based code, the model is called on them in large batches, and
    the prediction's movement ``|f(x') - f(x)|`` (the largest over outputs for 2-D outputs such
    as ``predict_proba``; 0/1 for non-numeric labels) is compared with ``epsilon``.

    Perturbations (the seed's scheme):

    * ``method="zero"``: visit the features in a random order (a counter-based hash of
      ``(seed, example, perturbation, feature)``) and set each to zero when the Euclidean
      distance to the original row stays ``<= delta`` after it; otherwise keep it and go on;
    * ``method="gaussian"``: move the row by ``delta`` in a random direction (Gaussian noise
      scaled to norm ``delta``).

    The same seed gives the same order/direction at every delta and for every model, so the
    curve over delta is smooth and the comparison of models is paired.

    Parameters
    ----------
    predict : callable or dict of callables
        The model(s): a function from a 2-D input (the kind of ``X``: array, pandas, polars
        or Arrow table) to one prediction or row of predictions per input row.
    X : array-like or table
        The examples (numeric features): a NumPy array, pandas/polars DataFrame or Arrow table.
    deltas : sequence of float
        Perturbation sizes (Euclidean), sorted and deduplicated.
    epsilon : float
        The largest acceptable movement of a prediction.
    n_perturbations : int, default 100
        Perturbations per example and delta.
    method : {"zero", "gaussian"}
        The perturbation scheme.
    tolerance : float, default 0.0
        The model counts as epsilon-robust at a delta when the share of non-robust examples
        is at most this (0: no example may move more than epsilon).
    confidence : float, default 0.95
        Level of the Wilson and paired-difference intervals.
    seed : int, numpy Generator or None
        Key of the perturbations; None draws a fresh seed (recorded in ``result.seed``).
    batch_size : int, optional
        Perturbed rows per call of ``predict`` (default 65,536).

    Returns
    -------
    RobustnessResult

    Raises
    ------
    ValueError
        Empty or non-finite ``X``, bad ``deltas`` / ``epsilon``, a model returning the wrong
        number of predictions.
    TypeError
        Non-callable models, non-numeric features.

    Examples
    --------
    >>> import numpy as np
    >>> import fastevals
    >>> X = np.random.default_rng(0).normal(size=(200, 5))
    >>> res = fastevals.robustness(lambda a: a.sum(axis=1), X, deltas=[0.01, 0.1, 1.0], epsilon=0.2,
    ...                            n_perturbations=20, method="gaussian", seed=0)
    >>> res.largest_robust_delta
    {'model': 0.01}
    >>> res.table.column("nonrobust_share").to_pylist()[0]
    0.0
    """
    (models, mat, like, deltas, epsilon, P, method, tolerance, confidence, key,
     batch_size) = _robustness_iv(predict, X, deltas, epsilon, n_perturbations, method, tolerance, confidence,
                                  seed, batch_size)
    n, F = mat.shape
    per_block = max(1, batch_size // P)
    base = {name: _outputs(f(like(mat)), n, name) for name, f in models.items()}
    D, M = len(deltas), len(models)
    nonrobust = np.zeros((M, D, n), dtype=bool)
    exceed = np.zeros((M, D), dtype=np.int64)
    move_sum = np.zeros((M, D))
    move_max = np.zeros((M, D))
    dist_sum = np.zeros(D)
    for di, delta in enumerate(deltas):
        for lo in range(0, n, per_block):
            hi = min(n, lo + per_block)
            xp = perturb(mat[lo:hi], delta=delta, n_perturbations=P, method=method, seed=key, first_example=lo)
            dist_sum[di] += np.sqrt(((xp - np.repeat(mat[lo:hi], P, axis=0)) ** 2).sum(axis=1)).sum()
            inp = like(xp)
            for mi, (name, f) in enumerate(models.items()):
                y0 = np.repeat(base[name][lo:hi], P, axis=0)
                mv = _movement(_outputs(f(inp), xp.shape[0], name), y0)
                over = mv > epsilon
                exceed[mi, di] += int(over.sum())
                nonrobust[mi, di, lo:hi] = over.reshape(hi - lo, P).any(axis=1)
                move_sum[mi, di] += mv.sum()
                move_max[mi, di] = max(move_max[mi, di], float(mv.max()))
    return _robustness_result(models, deltas, nonrobust, exceed, move_sum, move_max, dist_sum, n, P, epsilon,
                              tolerance, method, confidence, key)


def _paired_difference(a: np.ndarray, b: np.ndarray, confidence: float):
    """Difference of two paired proportions (share of a minus share of b) with the Agresti-Min
    (2005) interval (Wald on the 2x2 table with 0.5 added to each cell) and McNemar's exact p.
    """
    from scipy.stats import binomtest

    n = a.size
    n10 = int(np.count_nonzero(a & ~b))
    n01 = int(np.count_nonzero(~a & b))
    diff = (n10 - n01) / n
    z = float(special.ndtri(0.5 + confidence / 2.0))
    na = n + 2.0
    p10, p01 = (n10 + 0.5) / na, (n01 + 0.5) / na
    d_adj = p10 - p01
    se = math.sqrt(max((p10 + p01 - d_adj * d_adj) / na, 0.0))
    low, high = max(-1.0, d_adj - z * se), min(1.0, d_adj + z * se)
    pvalue = 1.0 if n10 + n01 == 0 else float(binomtest(n10, n10 + n01, 0.5).pvalue)
    return diff, low, high, pvalue, n10, n01


def _robustness_result(models, deltas, nonrobust, exceed, move_sum, move_max, dist_sum, n, P, epsilon, tolerance,
                       method, confidence, seed) -> RobustnessResult:
    names = list(models)
    cols: dict = {k: [] for k in ("model", "delta", "n", "nonrobust_share", "low", "high", "perturbation_share",
                                  "mean_movement", "max_movement", "mean_distance", "robust")}
    largest: dict = {}
    for mi, name in enumerate(names):
        k = nonrobust[mi].sum(axis=1)
        lo, hi = fm.wilson(k, np.full(k.shape, n), confidence)
        share = k / n
        robust = share <= tolerance
        best = None
        for di, ok in enumerate(robust):
            if not ok:
                break
            best = float(deltas[di])
        largest[name] = best
        for di, delta in enumerate(deltas):
            cols["model"].append(name)
            cols["delta"].append(float(delta))
            cols["n"].append(n)
            cols["nonrobust_share"].append(float(share[di]))
            cols["low"].append(float(lo[di]))
            cols["high"].append(float(hi[di]))
            cols["perturbation_share"].append(float(exceed[mi, di] / (n * P)))
            cols["mean_movement"].append(float(move_sum[mi, di] / (n * P)))
            cols["max_movement"].append(float(move_max[mi, di]))
            cols["mean_distance"].append(float(dist_sum[di] / (n * P)))
            cols["robust"].append(bool(robust[di]))
    ranked = [m for m in names if largest[m] is not None]
    most = max(ranked, key=lambda m: largest[m]) if ranked else None
    notes = []
    if not ranked:
        notes.append(f"no model is epsilon-robust (non-robust share <= {tolerance:g}) even at the smallest delta "
                     f"{float(deltas[0]):g}")
    comparisons = None
    if len(names) > 1:
        rows: dict = {k: [] for k in ("model_a", "model_b", "delta", "difference", "low", "high", "pvalue",
                                      "only_a_nonrobust", "only_b_nonrobust")}
        for (ia, a), (ib, b) in itertools.combinations(enumerate(names), 2):
            for di, delta in enumerate(deltas):
                diff, low, high, p, n10, n01 = _paired_difference(nonrobust[ia, di], nonrobust[ib, di], confidence)
                for key, v in zip(rows, (a, b, float(delta), diff, low, high, p, n10, n01)):
                    rows[key].append(v)
        comparisons = src.arrow_table(rows)
    return RobustnessResult(table=src.arrow_table(cols), largest_robust_delta=largest, most_robust=most,
                            comparisons=comparisons, epsilon=epsilon, tolerance=tolerance, method=method, n=n,
                            n_perturbations=P, confidence=confidence, seed=seed, notes=tuple(notes))
