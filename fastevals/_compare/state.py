"""The state of a model comparison: exact moments, cluster sums and paired bootstrap sums.

Per row, each model gives one or a few *features* (its score, its squared error,
its correct/incorrect outcome, its true positives...); every metric here is a
smooth function of the features' means.  The state holds, for the ``F``
features of the ``K`` models:

* ``n``, the feature means and their co-moment matrix (``F x F``, Chan et al.'s
  pairwise merge): the analytic (paired) covariance of the models' metrics;
* with ``cluster=``: per cluster, the feature sums and the row count (the CR1
  cluster-robust covariance);
* for ``metric="accuracy"``: the ``K x K`` integer counts of rows both models
  got right (McNemar's discordant pairs, exactly);
* with ``n_resamples=B``: per replicate, the Poisson-weighted feature sums
  (``B x F``) and weight totals, the same weights for every model (the paired
  bootstrap), keyed by the global row index, the ``item`` id or the ``cluster``;
* for ``metric="auc"``: the rows themselves (scores, labels and weight keys):
  a rank statistic is not a function of sums.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from .. import _source as src
from .._config import MAX_RESAMPLES, PARALLEL_MIN_ROWS
from .._protocol import LABEL, NUMERIC, RowIds, State
from .._validation import as_column_list, check_choice, check_int, check_probability, check_seed

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .._typing import Filter, Seed

METRICS = ("mean", "accuracy", "mse", "rmse", "mae", "f1", "auc")
#: metrics where a larger value is better (the ranking's direction)
HIGHER_IS_BETTER = {"mean": True, "accuracy": True, "mse": False, "rmse": False, "mae": False, "f1": True,
                    "auc": True}
#: metrics that compare a prediction with the `label` column
NEEDS_LABEL = ("mse", "rmse", "mae", "f1", "auc")
TESTS = ("paired", "mcnemar")
ADJUST = ("holm", "bh", "none")
#: the seed used when `seed=None` (documented: results are reproducible by default)
DEFAULT_SEED = 0


def _metric_name(metric) -> str:
    from .. import metrics as mx

    if isinstance(metric, mx.Metric):
        raise ValueError(
            f"`metric`: a fastevals.metrics expression ({metric.name!r}) names its own columns, so it "
            "compares fixed columns rather than a list of models; use fastevals.bootstrap(data, expr) for "
            "one such expression, or give compare_models a metric name: " + ", ".join(repr(m) for m in METRICS))
    return check_choice("metric", metric, METRICS)


def compare_iv(*, models, label, item, cluster, metric, test, confidence, n_resamples, seed, adjust,
               higher_is_better):
    """Validate the options of a comparison once (``_compare_iv`` in scipy's words)."""
    models = as_column_list("models", models, allow_none=False)
    metric = _metric_name(metric)
    test = check_choice("test", test, TESTS)
    label = None if label is None else as_column_list("label", label)[0]
    item = None if item is None else as_column_list("item", item)[0]
    cluster = None if cluster is None else as_column_list("cluster", cluster)[0]
    for name, col in (("label", label), ("item", item), ("cluster", cluster)):
        if col is not None and col in models:
            raise ValueError(f"column {col!r} is given both as a model and as `{name}`")
    if metric in NEEDS_LABEL and label is None:
        raise ValueError(f"metric={metric!r} compares predictions with the truth: give `label=` (the truth column)")
    if test == "mcnemar" and metric != "accuracy":
        raise ValueError(f"test='mcnemar' tests correct/incorrect outcomes: it needs metric='accuracy' "
                         f"(got metric={metric!r})")
    confidence = check_probability("confidence", confidence)
    n_resamples = check_int("n_resamples", n_resamples, low=0, high=MAX_RESAMPLES)
    seed = DEFAULT_SEED if seed is None else check_seed("seed", seed)
    adjust = check_choice("adjust", "none" if adjust is None else adjust, ADJUST)
    if higher_is_better is None:
        higher_is_better = HIGHER_IS_BETTER[metric]
    elif not isinstance(higher_is_better, (bool, np.bool_)):
        raise TypeError(f"`higher_is_better` must be None or a bool; got {higher_is_better!r}")
    return dict(models=models, label=label, item=item, cluster=cluster, metric=metric, test=test,
                confidence=confidence, n_resamples=n_resamples, seed=seed, adjust=adjust,
                higher_is_better=bool(higher_is_better))


def n_features(metric: str, k: int) -> int:
    """Features per row for ``k`` models: ``k``, or ``2k + 1`` for F1 (true and predicted positives, label)."""
    return 2 * k + 1 if metric == "f1" else k


def _binary(name: str, arg: str, v: np.ndarray) -> None:
    if v.size and not np.all((v == 0) | (v == 1)):
        bad = v[(v != 0) & (v != 1)][:3]
        raise ValueError(f"column {name!r} (given as `{arg}`) must hold 0/1 values for this metric; "
                         f"found {bad.tolist()!r}")


class CompareModelsState(State, kind="compare"):
    """Sufficient statistics of a comparison of ``K`` models on the same items (see :func:`compare_models`).

    Parameters
    ----------
    models, label, item, cluster, metric, test, confidence, n_resamples, seed, adjust, higher_is_better
        As :func:`compare_models` (``seed=None`` means :data:`DEFAULT_SEED`).
    model, score
        The long layout is pivoted by :func:`compare_models`; the state reads wide tables only.
    nulls, filter, batch_size, progress
        The common scan options (:class:`fastevals._protocol.State`).
    engine, backend
        Accepted so that the state takes :func:`compare_models`' keyword arguments; they choose how
        it is folded and are not part of the state.

    Examples
    --------
    >>> import numpy as np
    >>> st = CompareModelsState(models=["a", "b"], n_resamples=50, seed=1)
    >>> st = st.update({"a": np.array([1.0, 2.0, 3.0]), "b": np.array([1.5, 2.0, 2.0])})
    >>> st.n
    3
    """

    # the validated options (compare_iv), set from a dict in __init__
    models: list[str]
    label: str | None
    item: str | None
    cluster: str | None
    metric: str
    test: str
    confidence: float
    n_resamples: int
    seed: int
    adjust: str
    higher_is_better: bool

    def __init__(self, *, models: Sequence[str] | None = None, model: str | None = None, score: str | None = None,
                 label: str | None = None, item: str | None = None, cluster: str | None = None, metric: str = "mean",
                 test: str = "paired", confidence: float = 0.95, n_resamples: int = 1000, seed: Seed = None,
                 adjust: str = "holm", higher_is_better: bool | None = None, nulls: str = "raise",
                 filter: Filter = None, batch_size: int | None = None, progress: bool | None = None,
                 engine: str | None = None, backend: str = "auto"):
        from .._fold import check_backend

        check_backend(backend)  # engine: how the state is folded (fastevals._fold.fold), not what it holds
        if model is not None or score is not None:
            raise ValueError("CompareModelsState reads the wide layout (one column per model, `models=`); "
                             "compare_models(data, model=..., score=..., item=...) pivots long input first")
        opts = compare_iv(models=models, label=label, item=item, cluster=cluster, metric=metric, test=test,
                          confidence=confidence, n_resamples=n_resamples, seed=seed, adjust=adjust,
                          higher_is_better=higher_is_better)
        self.__dict__.update(opts)
        super().__init__(nulls=nulls, filter=filter, batch_size=batch_size, progress=progress)
        K = len(self.models)
        F = n_features(self.metric, K)
        self.k, self.f = K, F
        self.mean = np.zeros(F)
        self.m2 = np.zeros((F, F))
        self.both = np.zeros((K, K), dtype=np.int64) if self.metric == "accuracy" else np.zeros((0, 0), np.int64)
        self.boot_sums = np.zeros((self.n_resamples, F))
        self.boot_weights = np.zeros(self.n_resamples, dtype=np.int64)
        self.clusters = src.LabelIndex()
        self.cluster_sums = np.zeros((0, F))
        self.cluster_counts = np.zeros(0, dtype=np.int64)
        # metric="auc": the rows (scores, labels, weight keys)
        self.rows_x = np.zeros((0, K))
        self.rows_y = np.zeros(0, dtype=np.int8)
        self.rows_key = np.zeros(0, dtype=np.uint64)

    # -- protocol -----------------------------------------------------------------------------------
    def _params(self) -> dict:
        return dict(models=list(self.models), label=self.label, item=self.item, cluster=self.cluster,
                    metric=self.metric, test=self.test, confidence=self.confidence,
                    n_resamples=self.n_resamples, seed=self.seed, adjust=self.adjust,
                    higher_is_better=self.higher_is_better)

    def _requirements(self) -> dict:
        req = {m: ("models", NUMERIC) for m in self.models}
        if self.label is not None:
            req[self.label] = ("label", NUMERIC)
        if self.item is not None:
            req[self.item] = ("item", LABEL)
        if self.cluster is not None:
            req[self.cluster] = ("cluster", LABEL)
        return req

    @property
    def keyed_by(self) -> str:
        """What the bootstrap weights are keyed by: ``"cluster"``, ``"item"`` or ``"row"``."""
        return "cluster" if self.cluster is not None else ("item" if self.item is not None else "row")

    def _features(self, batch: pa.RecordBatch) -> np.ndarray:
        K, n = self.k, batch.num_rows
        cols = [src.numeric_view(batch.column(m)) for m in self.models]
        y = None if self.label is None else src.numeric_view(batch.column(self.label)).astype(np.float64)
        X = np.empty((n, self.f))
        for k, c in enumerate(cols):
            p = c.astype(np.float64, copy=False)
            if self.metric == "mean":
                X[:, k] = p
            elif self.metric == "accuracy":
                if y is None:
                    _binary(self.models[k], "models", p)
                    X[:, k] = p
                else:
                    X[:, k] = p == y
            elif self.metric in ("mse", "rmse"):
                assert y is not None  # compare_iv: these metrics need label=
                X[:, k] = (p - y) ** 2
            elif self.metric == "mae":
                assert y is not None
                X[:, k] = np.abs(p - y)
            elif self.metric == "f1":
                assert y is not None
                _binary(self.models[k], "models", p)
                X[:, k] = p * y
                X[:, K + k] = p
            else:  # auc: the scores
                X[:, k] = p
        if self.metric in ("f1", "auc"):
            assert self.label is not None and y is not None  # compare_iv: these metrics need label=
            _binary(self.label, "label", y)
        if self.metric == "f1":
            X[:, 2 * K] = y
        return X

    def _keys(self, batch: pa.RecordBatch, rows: RowIds):
        """(g0, keys): the weight keys of the batch's rows (keys empty: global rows g0, g0 + 1, ...)."""
        from .._bootstrap.state import _cluster_keys

        col = self.cluster if self.cluster is not None else self.item
        if col is not None:
            return 0, np.ascontiguousarray(_cluster_keys(batch.column(col)), dtype=np.uint64)
        if rows.contiguous:
            return rows.start, np.empty(0, dtype=np.uint64)
        return 0, rows.array()

    def _update_batch(self, batch: pa.RecordBatch, rows: RowIds) -> None:
        # sub-chunks bound the memory of the float64 feature block (~32 MB) whatever the batch size;
        # they are folded in row order, so the sums are those of one pass
        n = batch.num_rows
        step = max(4096, (1 << 22) // self.f)
        parallel = n * self.f >= PARALLEL_MIN_ROWS
        n_before = self.n - n  # the base counted this batch's rows already
        for lo in range(0, n, step):
            part = batch.slice(lo, min(step, n - lo))
            kept = None if rows.kept is None else rows.kept[lo:lo + part.num_rows]
            start = rows.start + lo if kept is None else rows.start
            self._update_part(part, RowIds(start, part.num_rows, kept), n_before + lo, parallel)

    def _update_part(self, batch: pa.RecordBatch, rows: RowIds, n_before: int, parallel: bool) -> None:
        X = np.ascontiguousarray(self._features(batch))
        mean_b, m2_b = self._add_moments(n_before, X)
        if self.metric == "accuracy":
            # X'X of 0/1 columns (integers) from the chunk's co-moments, without a second product
            self.both += np.rint(m2_b + np.outer(mean_b, mean_b) * X.shape[0]).astype(np.int64)
        if self.cluster is not None:
            self._add_clusters(batch.column(self.cluster), X)
        g0, keys = self._keys(batch, rows)
        if self.metric == "auc":
            self.rows_x = np.concatenate([self.rows_x, X])
            y = src.numeric_view(batch.column(self.label)).astype(np.int8)
            self.rows_y = np.concatenate([self.rows_y, y])
            k = keys if keys.size else np.arange(g0, g0 + X.shape[0], dtype=np.uint64)
            self.rows_key = np.concatenate([self.rows_key, k])
            return
        if self.n_resamples:
            from .._kernels import compare as kc

            fn = kc.accumulate_parallel if parallel else kc.accumulate_serial
            fn(np.uint64(self.seed), np.int64(g0), keys, X, self.boot_sums, self.boot_weights)

    def _add_moments(self, n_a: int, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n_b = X.shape[0]
        mean_b = X.mean(axis=0)
        D = X - mean_b
        m2_b = D.T @ D
        self._chan(n_a, mean_b, m2_b, n_b)
        return mean_b, m2_b

    def _chan(self, n_a, mean_b, m2_b, n_b) -> None:
        # Chan, Golub & LeVeque's pairwise update, for the whole co-moment matrix
        n = n_a + n_b
        if n_b == 0:
            return
        delta = mean_b - self.mean
        self.m2 = self.m2 + m2_b + np.outer(delta, delta) * (n_a * n_b / n)
        self.mean = self.mean + delta * (n_b / n)

    def _add_clusters(self, arr, X) -> None:
        local = src.local_codes(arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr)
        lc = local.codes.astype(np.int64) - local.offset
        present = np.bincount(lc, minlength=local.width) > 0
        codes = self.clusters.map_local(local, present)[lc]
        G = len(self.clusters)
        self._grow(G)
        self.cluster_counts += np.bincount(codes, minlength=G)
        for f in range(self.f):
            self.cluster_sums[:, f] += np.bincount(codes, weights=X[:, f], minlength=G)

    def _grow(self, G: int) -> None:
        old = self.cluster_counts.shape[0]
        if G > old:
            self.cluster_sums = np.concatenate([self.cluster_sums, np.zeros((G - old, self.f))])
            self.cluster_counts = np.concatenate([self.cluster_counts, np.zeros(G - old, np.int64)])

    def _merge_from(self, other: CompareModelsState) -> None:
        self._chan(self.n, other.mean, other.m2, other.n)
        self.both = self.both + other.both
        self.boot_sums = self.boot_sums + other.boot_sums
        self.boot_weights = self.boot_weights + other.boot_weights
        if len(other.clusters):
            codes = np.array([self.clusters.add(lab) for lab in other.clusters.labels], dtype=np.int64)
            self._grow(len(self.clusters))
            np.add.at(self.cluster_sums, codes, other.cluster_sums)
            np.add.at(self.cluster_counts, codes, other.cluster_counts)
        self.rows_x = np.concatenate([self.rows_x, other.rows_x])
        self.rows_y = np.concatenate([self.rows_y, other.rows_y])
        self.rows_key = np.concatenate([self.rows_key, other.rows_key])

    def _arrays(self) -> dict:
        return dict(mean=self.mean, m2=self.m2, both=self.both, boot_sums=self.boot_sums,
                    boot_weights=self.boot_weights, cluster_sums=self.cluster_sums,
                    cluster_counts=self.cluster_counts, rows_x=self.rows_x, rows_y=self.rows_y,
                    rows_key=self.rows_key)

    def _set_arrays(self, arrays: dict) -> None:
        for name, value in arrays.items():
            setattr(self, name, value)

    def _extra(self):
        return list(self.clusters.labels)

    def _set_extra(self, extra) -> None:
        self.clusters = src.LabelIndex(extra or [])

    @classmethod
    def _example(cls):
        rng = np.random.default_rng(7)
        n = 200
        y = rng.normal(3.0, 1.0, n)
        data = {"y": y, "a": y + rng.normal(0, 1.0, n), "b": y + rng.normal(0.2, 1.2, n),
                "c": y + rng.normal(0, 1.5, n), "passage": rng.integers(0, 20, n)}
        return dict(models=["a", "b", "c"], label="y", cluster="passage", metric="rmse", n_resamples=64,
                    seed=3), data

    def finalize(self):
        """The comparison: each model's metric, every pairwise difference, the ranking (see :func:`compare_models`)."""
        from ._math import finalize_comparison

        self.check_not_empty()
        return finalize_comparison(self)

