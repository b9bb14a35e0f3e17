"""Metrics for :func:`fastevals.bootstrap`, each naming the columns it reads.

A metric is one of two kinds:

* **sum metrics** (mean, sum, proportion, ratio, std, accuracy, error_rate,
  precision, recall, f1, mse, rmse, mae, log_loss, brier): the statistic is a
  function of weighted column sums ``S_j = sum_i w_i v_ij`` of a few per-row
  features ``v_ij`` and of the weight total ``n = sum_i w_i``.  A bootstrap
  replicate keeps only those sums.  When every feature is a 0/1 indicator
  (proportion, accuracy, error rate, precision, recall, F1) the metric is
  *categorical* and the engine uses the sufficient-statistics shortcut.
* **sorted metrics** (roc_auc, average_precision, quantile, median): the data
  are sorted once and each replicate makes one weighted pass.

Metrics combine into paired comparisons on the same rows: ``metric_b - metric_a``
(difference) and ``metric_b / metric_a`` (relative); both sides see the same
bootstrap weights.

Example
-------
>>> from fastevals import metrics
>>> m = metrics.accuracy("label", "pred_new") - metrics.accuracy("label", "pred_old")
>>> m.name
'accuracy(label, pred_new) - accuracy(label, pred_old)'
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = [
    "Metric", "SumMetric", "SortedMetric", "Comparison",
    "mean", "sum", "proportion", "ratio", "std", "accuracy", "error_rate", "precision", "recall", "f1",
    "mse", "rmse", "mae", "log_loss", "brier", "quantile", "median", "roc_auc", "average_precision",
]

def _check_col(arg: str, value) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"`{arg}` must be a column name (str); got {value!r}")
    return value


class Metric:
    """Base class: a statistic of some columns, combinable with ``-`` and ``/``."""

    name: str

    def leaves(self) -> list[Metric]:
        """The distinct leaf metrics (the ones with their own sums), in first-use order."""
        return [self]

    def columns(self) -> dict[str, tuple[str, str]]:
        """``{column: (argument, kind)}`` for :meth:`Source.require`."""
        raise NotImplementedError

    def combine(self, values: dict[int, np.ndarray]) -> np.ndarray:
        """Value of the expression given each leaf's values (keyed by ``id(leaf)``)."""
        return values[id(self)]

    def __sub__(self, other):
        return Comparison(self, other, "-")

    def __truediv__(self, other):
        return Comparison(self, other, "/")

    def __repr__(self) -> str:
        return f"<metric {self.name}>"

    def __reduce__(self):
        # metrics hold closures; a pickled metric is rebuilt from the call that made it
        recipe = getattr(self, "_recipe", None)
        if recipe is None:
            return super().__reduce__()
        return _rebuild, recipe


def _rebuild(factory: str, args: tuple, kwargs: dict) -> Metric:
    return globals()[factory](*args, **kwargs)


def to_spec(metric: Metric) -> dict[str, Any]:
    """A metric as plain data (what a state's bytes store): the call that made it, or a comparison tree."""
    if isinstance(metric, Comparison):
        return {"op": metric.op, "left": to_spec(metric.left), "right": to_spec(metric.right)}
    recipe = getattr(metric, "_recipe", None)
    if recipe is None:
        raise TypeError(f"metric {metric.name!r} was not made by a fastevals.metrics function; it cannot be "
                        "stored")
    factory, args, kwargs = recipe
    return {"factory": factory, "args": list(args), "kwargs": dict(kwargs)}


def from_spec(spec: Mapping[str, Any]) -> Metric:
    """The metric of :func:`to_spec`'s data."""
    if "op" in spec:
        return Comparison(from_spec(spec["left"]), from_spec(spec["right"]), spec["op"])
    if spec.get("factory") not in __all__ or spec["factory"][0].isupper():
        raise ValueError(f"unknown metric factory in stored state: {spec.get('factory')!r}")
    return _rebuild(spec["factory"], tuple(spec["args"]), spec["kwargs"])


def _recorded(factory):
    """Remember how a metric was made, so that it pickles (states travel to Dask workers)."""
    @functools.wraps(factory)
    def make(*args, **kwargs):
        m = factory(*args, **kwargs)
        m._recipe = (factory.__name__, args, kwargs)
        return m

    return make


class Comparison(Metric):
    """``left - right`` or ``left / right`` evaluated on the same bootstrap weights (paired)."""

    def __init__(self, left: Metric, right: Metric, op: str):
        if not isinstance(left, Metric) or not isinstance(right, Metric):
            raise TypeError("metrics combine only with metrics (metrics.mean('x') - metrics.mean('y'))")
        self.left, self.right, self.op = left, right, op
        self.name = f"{left.name} {op} {right.name}"

    def leaves(self) -> list[Metric]:
        """The distinct leaf metrics (the ones with their own sums), in first-use order."""
        out: list[Metric] = []
        for leaf in self.left.leaves() + self.right.leaves():
            if all(leaf is not o for o in out):
                out.append(leaf)
        return out

    def columns(self):
        """The columns read, as :meth:`Metric.columns`."""
        cols = dict(self.left.columns())
        cols.update(self.right.columns())
        return cols

    def combine(self, values):
        """The comparison of the two sides' values (``left - right`` or ``left / right``)."""
        a = self.left.combine(values)
        b = self.right.combine(values)
        with np.errstate(divide="ignore", invalid="ignore"):
            return a - b if self.op == "-" else a / b


class SumMetric(Metric):
    """A statistic of weighted feature sums (see the module docstring).

    ``features(cols, ctx)`` returns a float64 array (F, rows) from a dict of
    column arrays; ``stat(S, n)`` maps sums ``S[..., F]`` and weight totals
    ``n[...]`` to the statistic; ``categorical`` marks 0/1 features.
    """

    def __init__(self, name, cols, features, stat, n_features, *, categorical=False, prepare=None, rebase=None):
        self.name = name
        self._rebase = rebase
        self._cols = cols
        self._features = features
        self._stat = stat
        self.n_features = n_features
        self.categorical = categorical
        self._prepare = prepare

    def columns(self):
        """The columns read, as :meth:`Metric.columns`."""
        return dict(self._cols)

    def prepare(self, cols, ctx: dict) -> None:
        """Called with the first batch (e.g. to fix the shift of ``std``)."""
        if self._prepare is not None:
            self._prepare(cols, ctx)

    def features(self, cols, ctx) -> np.ndarray:
        """The per-row features summed by the kernel, ``(n, n_features)``."""
        return self._features(cols, ctx)

    def rebase(self, S: np.ndarray, n: np.ndarray, ctx_from: dict, ctx_to: dict) -> np.ndarray:
        """Sums ``S[..., F]`` (weight totals ``n``) made under ``ctx_from`` re-expressed under ``ctx_to``.

        Needed to merge states whose :meth:`prepare` saw different first batches.
        """
        if self._rebase is None:
            if ctx_from != ctx_to:
                raise ValueError(f"{self.name}: cannot merge states prepared differently")
            return S
        return self._rebase(np.asarray(S, dtype=np.float64), np.asarray(n, dtype=np.float64), ctx_from, ctx_to)

    def stat(self, S: np.ndarray, n: np.ndarray) -> np.ndarray:
        """The statistic from the weighted feature sums ``S`` and weight totals ``n``."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self._stat(np.asarray(S, dtype=np.float64), np.asarray(n, dtype=np.float64))


class SortedMetric(Metric):
    """A statistic computed by a weighted pass over rows sorted once.

    kind: ``"auc"`` / ``"ap"`` (``label`` and ``score`` columns) or ``"quantile"`` (``value``, ``q``).
    """

    def __init__(self, name, kind, cols, *, label=None, score=None, value=None, q=0.5):
        self.name = name
        self.kind = kind
        self._cols = cols
        self.label, self.score, self.value, self.q = label, score, value, q

    def columns(self):
        """The columns read, as :meth:`Metric.columns`."""
        return dict(self._cols)


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def _weighted(name, value_fn, cols, weight, *, categorical=False, finish=None):
    """Mean-type metric: ``sum(w * v) / sum(w)`` of a per-row value, optionally weighted."""
    finish = finish or (lambda m: m)
    if weight is None:
        def feats(c, ctx):
            return value_fn(c)[None, :]

        def stat(S, n):
            return finish(S[..., 0] / n)

        return SumMetric(name, cols, feats, stat, 1, categorical=categorical)
    weight = _check_col("weight", weight)
    cols = dict(cols)
    cols[weight] = ("weight", "numeric")

    def feats_w(c, ctx):
        sw = _f64(c[weight])
        return np.stack([sw * value_fn(c), sw])

    def stat_w(S, n):
        return finish(S[..., 0] / S[..., 1])

    return SumMetric(name, cols, feats_w, stat_w, 2)


def _binary(name, arr, column):
    a = np.asarray(arr)
    if a.dtype.kind == "f":
        bad = (a != 0) & (a != 1)
    else:
        bad = (a != 0) & (a != 1)
    if bad.any():
        v = a[bad][0]
        raise ValueError(f"{name}: column {column!r} must hold 0/1 or booleans; found {v!r}")
    return a != 0


@_recorded
def mean(column: str, *, weight: str | None = None) -> SumMetric:
    """Mean of ``column`` (weighted by the ``weight`` column if given).

    Parameters
    ----------
    column : str
        Numeric column to average.
    weight : str, optional
        Column of non-negative row weights; the statistic is then weighted by it.

    Returns
    -------
    SumMetric
        The metric, for :func:`fastevals.bootstrap`.

    Raises
    ------
    TypeError
        If a column name is not a non-empty string.

    Examples
    --------
    >>> from fastevals import metrics
    >>> metrics.mean("x").name
    'mean(x)'
    >>> metrics.mean("x", weight="w").name
    'mean(x, weight=w)'
    """
    column = _check_col("column", column)
    wtxt = f", weight={weight}" if weight else ""
    return _weighted(f"mean({column}{wtxt})", lambda c: _f64(c[column]), {column: ("column", "numeric")},
                     weight)


@_recorded
def sum(column: str, *, weight: str | None = None) -> SumMetric:  # noqa: A001 - the metric's name
    """Sum of ``column`` (times ``weight`` if given); the bootstrap resamples the rows.

    Parameters
    ----------
    column : str
        Numeric column to add up.
    weight : str, optional
        Column of row weights; the sum is then of ``column * weight``.

    Returns
    -------
    SumMetric
        The metric, for :func:`fastevals.bootstrap`.

    Raises
    ------
    TypeError
        If a column name is not a non-empty string.

    Examples
    --------
    >>> from fastevals import metrics
    >>> metrics.sum("revenue").name
    'sum(revenue)'
    """
    column = _check_col("column", column)
    cols = {column: ("column", "numeric")}
    if weight is not None:
        cols[_check_col("weight", weight)] = ("weight", "numeric")

    def feats(c, ctx):
        v = _f64(c[column])
        return (v if weight is None else v * _f64(c[weight]))[None, :]

    return SumMetric(f"sum({column})", cols, feats, lambda S, n: S[..., 0], 1)


@_recorded
def proportion(column: str, *, weight: str | None = None) -> SumMetric:
    """Share of rows where the 0/1 (or boolean) ``column`` is 1: a conversion rate.

    Parameters
    ----------
    column : str
        Column of 0/1 values or booleans (anything else is a ``ValueError`` when the data are read).
    weight : str, optional
        Column of non-negative row weights; the statistic is then weighted by it.

    Returns
    -------
    SumMetric
        The metric, for :func:`fastevals.bootstrap`.

    Raises
    ------
    TypeError
        If a column name is not a non-empty string.

    Examples
    --------
    >>> from fastevals import metrics
    >>> metrics.proportion("converted").name
    'proportion(converted)'
    """
    column = _check_col("column", column)
    return _weighted(f"proportion({column})",
                     lambda c: _binary("proportion", c[column], column).astype(np.float64),
                     {column: ("column", "numeric")}, weight, categorical=weight is None)


@_recorded
def ratio(numerator: str, denominator: str) -> SumMetric:
    """``sum(numerator) / sum(denominator)`` (revenue per session): a ratio of sums, not a mean of ratios.

    Parameters
    ----------
    numerator : str
        Numeric column summed above the line.
    denominator : str
        Numeric column summed below the line.

    Returns
    -------
    SumMetric
        The metric, for :func:`fastevals.bootstrap`.

    Raises
    ------
    TypeError
        If a column name is not a non-empty string.

    Examples
    --------
    >>> from fastevals import metrics
    >>> metrics.ratio("revenue", "sessions").name
    'ratio(revenue, sessions)'
    """
    numerator = _check_col("numerator", numerator)
    denominator = _check_col("denominator", denominator)

    def feats(c, ctx):
        return np.stack([_f64(c[numerator]), _f64(c[denominator])])

    return SumMetric(f"ratio({numerator}, {denominator})",
                     {numerator: ("numerator", "numeric"), denominator: ("denominator", "numeric")},
                     feats, lambda S, n: S[..., 0] / S[..., 1], 2)


@_recorded
def std(column: str, *, ddof: int = 0) -> SumMetric:
    """Standard deviation of ``column`` (``ddof`` as in ``numpy.std``; weights act as repeat counts).

    Parameters
    ----------
    column : str
        Numeric column.
    ddof : int, default 0
        Delta degrees of freedom: the divisor is ``n - ddof``.

    Returns
    -------
    SumMetric
        The metric, for :func:`fastevals.bootstrap`.

    Raises
    ------
    TypeError
        If a column name is not a non-empty string.
    ValueError
        If ``ddof`` is not a non-negative integer.

    Examples
    --------
    >>> from fastevals import metrics
    >>> metrics.std("x", ddof=1).name
    'std(x)'
    """
    column = _check_col("column", column)
    if isinstance(ddof, bool) or not isinstance(ddof, (int, np.integer)) or ddof < 0:
        raise ValueError(f"`ddof` must be a non-negative integer; got {ddof!r}")

    def prepare(c, ctx):
        # the sums are of (x - shift): a shift near the mean keeps sum of squares free of cancellation
        ctx["shift"] = float(np.mean(_f64(c[column])))

    def feats(c, ctx):
        d = _f64(c[column]) - ctx["shift"]
        return np.stack([d, d * d])

    def stat(S, n):
        m = S[..., 0] / n
        var = (S[..., 1] - n * m * m) / (n - ddof)
        return np.sqrt(np.maximum(var, 0.0))

    def rebase(S, n, ctx_from, ctx_to):
        # x - to = (x - from) + d: sum of (x - to) and of its square from those about `from`
        d = ctx_from["shift"] - ctx_to["shift"]
        out = np.empty_like(S)
        out[..., 0] = S[..., 0] + d * n
        out[..., 1] = S[..., 1] + 2.0 * d * S[..., 0] + d * d * n
        return out

    return SumMetric(f"std({column})", {column: ("column", "numeric")}, feats, stat, 2, prepare=prepare,
                     rebase=rebase)


def _pair_cols(y_true, y_pred, second="y_pred"):
    y_true = _check_col("y_true", y_true)
    y_pred = _check_col(second, y_pred)
    return y_true, y_pred, {y_true: ("y_true", "numeric"), y_pred: (second, "numeric")}


@_recorded
def accuracy(y_true: str, y_pred: str, *, weight: str | None = None) -> SumMetric:
    """Share of rows where ``y_pred == y_true``.

    Parameters
    ----------
    y_true : str
        Column of true labels.
    y_pred : str
        Column of predicted labels.
    weight : str, optional
        Column of non-negative row weights; the statistic is then weighted by it.

    Returns
    -------
    SumMetric
        The metric, for :func:`fastevals.bootstrap`.

    Raises
    ------
    TypeError
        If a column name is not a non-empty string.

    Examples
    --------
    >>> from fastevals import metrics
    >>> metrics.accuracy("label", "pred").name
    'accuracy(label, pred)'
    """
    y, p, cols = _pair_cols(y_true, y_pred)
    return _weighted(f"accuracy({y}, {p})", lambda c: (np.asarray(c[y]) == np.asarray(c[p])).astype(np.float64),
                     cols, weight, categorical=weight is None)


@_recorded
def error_rate(y_true: str, y_pred: str, *, weight: str | None = None) -> SumMetric:
    """Share of rows where ``y_pred != y_true``.

    Parameters
    ----------
    y_true : str
        Column of true labels.
    y_pred : str
        Column of predicted labels.
    weight : str, optional
        Column of non-negative row weights; the statistic is then weighted by it.

    Returns
    -------
    SumMetric
        The metric, for :func:`fastevals.bootstrap`.

    Raises
    ------
    TypeError
        If a column name is not a non-empty string.

    Examples
    --------
    >>> from fastevals import metrics
    >>> metrics.error_rate("label", "pred").name
    'error_rate(label, pred)'
    """
    y, p, cols = _pair_cols(y_true, y_pred)
    return _weighted(f"error_rate({y}, {p})",
                     lambda c: (np.asarray(c[y]) != np.asarray(c[p])).astype(np.float64),
                     cols, weight, categorical=weight is None)


def _confusion(name, y, p, pos_label, parts, stat):
    def feats(c, ctx):
        t = np.asarray(c[y]) == pos_label
        q = np.asarray(c[p]) == pos_label
        out = {"tp": t & q, "pp": q, "pos": t}
        return np.stack([out[k].astype(np.float64) for k in parts])

    return SumMetric(name, {y: ("y_true", "numeric"), p: ("y_pred", "numeric")}, feats, stat, len(parts),
                     categorical=True)


@_recorded
def precision(y_true: str, y_pred: str, *, pos_label: Any = 1) -> SumMetric:
    """TP / (TP + FP) for the class ``pos_label`` (as ``sklearn.metrics.precision_score``).

    Parameters
    ----------
    y_true : str
        Column of true labels.
    y_pred : str
        Column of predicted labels.
    pos_label : Any, default 1
        The value of the positive class in both columns.

    Returns
    -------
    SumMetric
        The metric, for :func:`fastevals.bootstrap`.

    Raises
    ------
    TypeError
        If a column name is not a non-empty string.

    Examples
    --------
    >>> from fastevals import metrics
    >>> metrics.precision("label", "pred").name
    'precision(label, pred)'
    """
    y, p, _ = _pair_cols(y_true, y_pred)
    return _confusion(f"precision({y}, {p})", y, p, pos_label, ["tp", "pp"], lambda S, n: S[..., 0] / S[..., 1])


@_recorded
def recall(y_true: str, y_pred: str, *, pos_label: Any = 1) -> SumMetric:
    """TP / (TP + FN) for the class ``pos_label`` (as ``sklearn.metrics.recall_score``).

    Parameters
    ----------
    y_true : str
        Column of true labels.
    y_pred : str
        Column of predicted labels.
    pos_label : Any, default 1
        The value of the positive class in both columns.

    Returns
    -------
    SumMetric
        The metric, for :func:`fastevals.bootstrap`.

    Raises
    ------
    TypeError
        If a column name is not a non-empty string.

    Examples
    --------
    >>> from fastevals import metrics
    >>> metrics.recall("label", "pred").name
    'recall(label, pred)'
    """
    y, p, _ = _pair_cols(y_true, y_pred)
    return _confusion(f"recall({y}, {p})", y, p, pos_label, ["tp", "pos"], lambda S, n: S[..., 0] / S[..., 1])


@_recorded
def f1(y_true: str, y_pred: str, *, pos_label: Any = 1) -> SumMetric:
    """2 TP / (2 TP + FP + FN) for the class ``pos_label`` (as ``sklearn.metrics.f1_score``).

    Parameters
    ----------
    y_true : str
        Column of true labels.
    y_pred : str
        Column of predicted labels.
    pos_label : Any, default 1
        The value of the positive class in both columns.

    Returns
    -------
    SumMetric
        The metric, for :func:`fastevals.bootstrap`.

    Raises
    ------
    TypeError
        If a column name is not a non-empty string.

    Examples
    --------
    >>> from fastevals import metrics
    >>> metrics.f1("label", "pred").name
    'f1(label, pred)'
    """
    y, p, _ = _pair_cols(y_true, y_pred)
    return _confusion(f"f1({y}, {p})", y, p, pos_label, ["tp", "pp", "pos"],
                      lambda S, n: 2.0 * S[..., 0] / (S[..., 1] + S[..., 2]))


@_recorded
def mse(y_true: str, y_pred: str, *, weight: str | None = None) -> SumMetric:
    """Mean squared error.

    Parameters
    ----------
    y_true : str
        Numeric column of true values.
    y_pred : str
        Numeric column of predictions.
    weight : str, optional
        Column of non-negative row weights; the statistic is then weighted by it.

    Returns
    -------
    SumMetric
        The metric, for :func:`fastevals.bootstrap`.

    Raises
    ------
    TypeError
        If a column name is not a non-empty string.

    Examples
    --------
    >>> from fastevals import metrics
    >>> metrics.mse("y", "y_hat").name
    'mse(y, y_hat)'
    """
    y, p, cols = _pair_cols(y_true, y_pred)
    return _weighted(f"mse({y}, {p})", lambda c: (_f64(c[p]) - _f64(c[y])) ** 2, cols, weight)


@_recorded
def rmse(y_true: str, y_pred: str, *, weight: str | None = None) -> SumMetric:
    """Root mean squared error.

    Parameters
    ----------
    y_true : str
        Numeric column of true values.
    y_pred : str
        Numeric column of predictions.
    weight : str, optional
        Column of non-negative row weights; the statistic is then weighted by it.

    Returns
    -------
    SumMetric
        The metric, for :func:`fastevals.bootstrap`.

    Raises
    ------
    TypeError
        If a column name is not a non-empty string.

    Examples
    --------
    >>> from fastevals import metrics
    >>> metrics.rmse("y", "y_hat").name
    'rmse(y, y_hat)'
    """
    y, p, cols = _pair_cols(y_true, y_pred)
    return _weighted(f"rmse({y}, {p})", lambda c: (_f64(c[p]) - _f64(c[y])) ** 2, cols, weight,
                     finish=np.sqrt)


@_recorded
def mae(y_true: str, y_pred: str, *, weight: str | None = None) -> SumMetric:
    """Mean absolute error.

    Parameters
    ----------
    y_true : str
        Numeric column of true values.
    y_pred : str
        Numeric column of predictions.
    weight : str, optional
        Column of non-negative row weights; the statistic is then weighted by it.

    Returns
    -------
    SumMetric
        The metric, for :func:`fastevals.bootstrap`.

    Raises
    ------
    TypeError
        If a column name is not a non-empty string.

    Examples
    --------
    >>> from fastevals import metrics
    >>> metrics.mae("y", "y_hat").name
    'mae(y, y_hat)'
    """
    y, p, cols = _pair_cols(y_true, y_pred)
    return _weighted(f"mae({y}, {p})", lambda c: np.abs(_f64(c[p]) - _f64(c[y])), cols, weight)


@_recorded
def log_loss(y_true: str, y_prob: str, *, weight: str | None = None) -> SumMetric:
    """Binary cross-entropy of probabilities ``y_prob`` (clipped to [eps, 1 - eps] like scikit-learn).

    Parameters
    ----------
    y_true : str
        Column of 0/1 labels or booleans.
    y_prob : str
        Column of predicted probabilities of the label 1.
    weight : str, optional
        Column of non-negative row weights; the statistic is then weighted by it.

    Returns
    -------
    SumMetric
        The metric, for :func:`fastevals.bootstrap`.

    Raises
    ------
    TypeError
        If a column name is not a non-empty string.

    Examples
    --------
    >>> from fastevals import metrics
    >>> metrics.log_loss("label", "prob").name
    'log_loss(label, prob)'
    """
    y, p, cols = _pair_cols(y_true, y_prob, "y_prob")
    eps = np.finfo(np.float64).eps

    def value(c):
        t = _binary("log_loss", c[y], y)
        q = np.clip(_f64(c[p]), eps, 1 - eps)
        return -np.where(t, np.log(q), np.log1p(-q))

    return _weighted(f"log_loss({y}, {p})", value, cols, weight)


@_recorded
def brier(y_true: str, y_prob: str, *, weight: str | None = None) -> SumMetric:
    """Brier score: mean of ``(y_prob - y_true) ** 2``.

    Parameters
    ----------
    y_true : str
        Column of 0/1 labels or booleans.
    y_prob : str
        Column of predicted probabilities of the label 1.
    weight : str, optional
        Column of non-negative row weights; the statistic is then weighted by it.

    Returns
    -------
    SumMetric
        The metric, for :func:`fastevals.bootstrap`.

    Raises
    ------
    TypeError
        If a column name is not a non-empty string.

    Examples
    --------
    >>> from fastevals import metrics
    >>> metrics.brier("label", "prob").name
    'brier(label, prob)'
    """
    y, p, cols = _pair_cols(y_true, y_prob, "y_prob")
    return _weighted(f"brier({y}, {p})", lambda c: (_f64(c[p]) - _binary("brier", c[y], y)) ** 2, cols, weight)


@_recorded
def quantile(column: str, q: float) -> SortedMetric:
    """The ``q`` quantile of ``column`` (``numpy.quantile``'s default linear interpolation).

    Parameters
    ----------
    column : str
        Numeric column.
    q : float
        The quantile's level, in [0, 1].

    Returns
    -------
    SortedMetric
        The metric, for :func:`fastevals.bootstrap`.

    Raises
    ------
    TypeError
        If a column name is not a non-empty string.
    ValueError
        If ``q`` is not a number in [0, 1].

    Examples
    --------
    >>> from fastevals import metrics
    >>> metrics.quantile("latency", 0.99).name
    'quantile(latency, 0.99)'
    """
    column = _check_col("column", column)
    if isinstance(q, bool) or not isinstance(q, (int, float, np.floating)) or not 0.0 <= float(q) <= 1.0:
        raise ValueError(f"`q` must be a number in [0, 1]; got {q!r}")
    return SortedMetric(f"quantile({column}, {float(q):g})", "quantile", {column: ("column", "numeric")},
                        value=column, q=float(q))


@_recorded
def median(column: str) -> SortedMetric:
    """The median of ``column``.

    Parameters
    ----------
    column : str
        Numeric column.

    Returns
    -------
    SortedMetric
        The metric, for :func:`fastevals.bootstrap`.

    Raises
    ------
    TypeError
        If a column name is not a non-empty string.

    Examples
    --------
    >>> from fastevals import metrics
    >>> metrics.median("latency").name
    'median(latency)'
    """
    m = quantile(column, 0.5)
    m.name = f"median({column})"
    return m


@_recorded
def roc_auc(y_true: str, y_score: str) -> SortedMetric:
    """Area under the ROC curve (ties count one half), as ``sklearn.metrics.roc_auc_score``.

    Parameters
    ----------
    y_true : str
        Column of 0/1 labels or booleans.
    y_score : str
        Numeric column of scores (higher means the label 1 is likelier).

    Returns
    -------
    SortedMetric
        The metric, for :func:`fastevals.bootstrap`.

    Raises
    ------
    TypeError
        If a column name is not a non-empty string.

    Examples
    --------
    >>> from fastevals import metrics
    >>> metrics.roc_auc("label", "score").name
    'roc_auc(label, score)'
    """
    y, s, _ = _pair_cols(y_true, y_score, "y_score")
    return SortedMetric(f"roc_auc({y}, {s})", "auc", {y: ("y_true", "numeric"), s: ("y_score", "numeric")},
                        label=y, score=s)


@_recorded
def average_precision(y_true: str, y_score: str) -> SortedMetric:
    """Average precision, as ``sklearn.metrics.average_precision_score``.

    Parameters
    ----------
    y_true : str
        Column of 0/1 labels or booleans.
    y_score : str
        Numeric column of scores (higher means the label 1 is likelier).

    Returns
    -------
    SortedMetric
        The metric, for :func:`fastevals.bootstrap`.

    Raises
    ------
    TypeError
        If a column name is not a non-empty string.

    Examples
    --------
    >>> from fastevals import metrics
    >>> metrics.average_precision("label", "score").name
    'average_precision(label, score)'
    """
    y, s, _ = _pair_cols(y_true, y_score, "y_score")
    return SortedMetric(f"average_precision({y}, {s})", "ap",
                        {y: ("y_true", "numeric"), s: ("y_score", "numeric")}, label=y, score=s)
