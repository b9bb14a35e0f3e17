"""The fairness state: counts per (segment, group, label, prediction-or-score-bin) cell, and the
same counts under every Poisson-bootstrap replicate.
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from .. import _source as src
from .._config import MAX_RESAMPLES
from .._protocol import LABEL, NUMERIC, RowIds, State
from .._validation import as_column_list, check_int, check_probability, check_seed

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .._typing import Columns, Filter, Seed


def _sort_key(label):
    if isinstance(label, tuple):
        return tuple(_sort_key(x) for x in label)
    if label is None:
        return (3, "")
    if isinstance(label, (bool, numbers.Number)):
        return (0, label)
    if isinstance(label, str):
        return (1, label)
    return (2, repr(label))


def _one_column(name, value, *, allow_none=True):
    cols = as_column_list(name, value, allow_none=allow_none)
    if len(cols) > 1:
        raise ValueError(f"`{name}` must name one column; got {value!r}")
    return cols[0] if cols else None


def _canonical(label):
    """Labels as plain Python values, so a label's key does not depend on its NumPy type."""
    if isinstance(label, tuple):
        return tuple(_canonical(x) for x in label)
    if isinstance(label, np.generic):
        return label.item()
    return label


def _cut_points(threshold, thresholds) -> list[float]:
    cuts = {float(threshold)}
    if thresholds is not None:
        if isinstance(thresholds, (str, bytes)) or not hasattr(thresholds, "__iter__"):
            raise TypeError(f"`thresholds` must be a sequence of numbers; got {thresholds!r}")
        values = np.asarray(list(thresholds), dtype=np.float64)
        if values.size == 0 or not np.all(np.isfinite(values)):
            raise ValueError(f"`thresholds` must be a non-empty sequence of finite numbers; got {thresholds!r}")
        cuts.update(float(v) for v in values)
    return sorted(cuts)


class FairnessState(State, kind="fairness"):
    """Mergeable state of :func:`fastevals.fairness`: counts per cell and per bootstrap replicate.

    A cell is (segment of ``by``, group of ``sensitive``, label 0/1, prediction 0/1), or, with a
    ``score`` column, (segment, group, label, score bin between consecutive cut points): the
    predictions at every threshold are then sums of bins, so one pass gives the whole sweep.
    The state holds only the counts: a Poisson-bootstrap replicate's count of a cell, the sum of
    its rows' Poisson(1) weights, is a Poisson(count) draw, made at finalize from a counter-based
    stream keyed by the seed, the replicate and the cell's labels (:attr:`rep`). Memory is
    ``O(cells)``, the replicates cost ``O(n_resamples x cells)`` whatever the rows, and they do
    not depend on batching, threads or Dask partitioning.

    Parameters
    ----------
    label, prediction, score, threshold, thresholds, sensitive, n_resamples, confidence, seed, by,
    nulls, filter, batch_size, progress, backend
        As in :func:`fastevals.fairness`.  ``seed=None`` draws a seed once, here, so that
        copies of the state (one per Dask partition) share it.

    Examples
    --------
    >>> import numpy as np
    >>> from fastevals import FairnessState
    >>> rng = np.random.default_rng(0)
    >>> data = {"y": rng.integers(0, 2, 1000), "yhat": rng.integers(0, 2, 1000),
    ...         "gender": rng.choice(["f", "m"], 1000)}
    >>> a = FairnessState(label="y", prediction="yhat", sensitive="gender", n_resamples=50, seed=1)
    >>> b = a.copy()
    >>> whole = a.copy().update(data)
    >>> _ = a.update({k: v[:600] for k, v in data.items()})
    >>> _ = b.update({k: v[600:] for k, v in data.items()}, row_offset=600)
    >>> a.merge(b) == whole
    True
    """

    def __init__(self, *, label: str, sensitive: Columns, prediction: str | None = None, score: str | None = None,
                 threshold: float = 0.5, thresholds: Sequence[float] | None = None, n_resamples: int = 1000,
                 confidence: float = 0.95, seed: Seed = None, by: Columns | None = None, nulls: str = "raise",
                 filter: Filter = None, batch_size: int | None = None, progress: bool | None = None,
                 backend: str = "auto"):
        from .._fold import check_backend

        self.label = _one_column("label", label, allow_none=False)
        self.prediction = _one_column("prediction", prediction)
        self.score = _one_column("score", score)
        if (self.prediction is None) == (self.score is None):
            raise ValueError("give exactly one of `prediction` (a 0/1 column) and `score` (a numeric column "
                             f"thresholded at `threshold`); got prediction={prediction!r}, score={score!r}")
        if (isinstance(threshold, bool) or not isinstance(threshold, (float, numbers.Real))
                or not np.isfinite(float(threshold))):
            raise TypeError(f"`threshold` must be a finite number; got {threshold!r}")
        self.threshold = float(threshold)
        if thresholds is not None and self.score is None:
            raise ValueError("`thresholds` (a threshold sweep) needs a `score` column, not `prediction`")
        self.cuts = _cut_points(self.threshold, thresholds) if self.score is not None else None
        self.thresholds = None if thresholds is None else [float(t) for t in thresholds]
        self.sensitive = as_column_list("sensitive", sensitive, allow_none=False)
        self.by = as_column_list("by", by)
        used = [self.label, *(c for c in (self.prediction, self.score) if c), *self.sensitive, *self.by]
        if len(set(used)) != len(used):
            raise ValueError(f"a column is used twice among label/prediction/score/sensitive/by: {used!r}")
        self.n_resamples = check_int("n_resamples", n_resamples, low=0, high=MAX_RESAMPLES - 1)
        self.confidence = check_probability("confidence", confidence)
        self.seed = check_seed("seed", seed)
        self.backend = check_backend(backend)
        super().__init__(nulls=nulls, filter=filter, batch_size=batch_size, progress=progress)
        self.bins = 2 if self.cuts is None else len(self.cuts) + 1
        self.groups = src.LabelIndex()
        self.segments = src.LabelIndex()
        self.own = np.zeros((0, 0, 2, self.bins), dtype=np.int64)
        self._rep: np.ndarray | None = None  # the replicates' counts, drawn at finalize

    # -- protocol ---------------------------------------------------------------------------------
    def _params(self) -> dict:
        return {"label": self.label, "prediction": self.prediction, "score": self.score,
                "threshold": self.threshold, "thresholds": self.thresholds, "sensitive": list(self.sensitive),
                "by": list(self.by) or None, "n_resamples": self.n_resamples, "confidence": self.confidence,
                "seed": self.seed, "backend": self.backend}

    def _requirements(self) -> dict:
        req = {self.label: ("label", NUMERIC)}
        if self.prediction is not None:
            req[self.prediction] = ("prediction", NUMERIC)
        else:
            req[self.score] = ("score", NUMERIC)
        for c in self.sensitive:
            req[c] = ("sensitive", LABEL)
        for c in self.by:
            req[c] = ("by", LABEL)
        return req

    @classmethod
    def _example(cls):
        rng = np.random.default_rng(7)
        n = 3000
        group = rng.choice(np.array(["a", "b", "c"]), n)
        y = rng.integers(0, 2, n)
        score = np.clip(0.3 * y + 0.1 * (group == "a") + rng.uniform(0, 0.7, n), 0, 1)
        data = {"y": y, "score": score, "group": group, "region": rng.choice(np.array(["n", "s"]), n)}
        kwargs = {"label": "y", "score": "score", "sensitive": "group", "by": "region",
                  "thresholds": [0.3, 0.5, 0.7], "n_resamples": 40, "seed": 11}
        return kwargs, data

    # -- update -----------------------------------------------------------------------------------
    def _binary(self, batch, column: str, arg: str) -> np.ndarray:
        arr = batch.column(column)
        v = src.numeric_view(arr)
        if not pa.types.is_boolean(arr.type):
            bad = (v != 0) & (v != 1)
            if bad.any():
                raise ValueError(f"column {column!r} (given as `{arg}`) must hold 0/1 values or booleans; "
                                 f"found {v[bad][0]!r}")
        return v.astype(np.int64)

    def _codes(self, batch, columns, index: src.LabelIndex) -> np.ndarray:
        lc = src.combine_codes([src.local_codes(batch.column(c)) for c in columns])
        local = np.asarray(lc.codes, dtype=np.int64) - lc.offset
        present = np.bincount(local, minlength=lc.width) > 0
        return index.map_local(lc, present)[local]

    def _update_batch(self, batch: pa.RecordBatch, rows: RowIds) -> None:
        y = self._binary(batch, self.label, "label")
        if self.prediction is not None:
            k = self._binary(batch, self.prediction, "prediction")
        else:
            score = src.numeric_view(batch.column(self.score)).astype(np.float64, copy=False)
            k = np.searchsorted(np.asarray(self.cuts), score, side="right").astype(np.int64)
        n_groups, n_segments = len(self.groups), len(self.segments)
        g = self._codes(batch, self.sensitive, self.groups)
        if self.by:
            s = self._codes(batch, self.by, self.segments)
        else:
            self.segments.add(None)
            s = np.zeros(batch.num_rows, dtype=np.int64)
        if (len(self.groups), len(self.segments)) != (n_groups, n_segments):
            self._grow()
        S, G = len(self.segments), len(self.groups)
        cells = ((s * G + g) * 2 + y) * self.bins + k
        self.own += np.bincount(cells, minlength=S * G * 2 * self.bins).reshape(self.own.shape)
        self._rep = None
        if (len(self.groups), len(self.segments)) != (n_groups, n_segments):
            self._canonical_order()

    def _grow(self) -> None:
        S, G = len(self.segments), len(self.groups)
        s0, g0 = self.own.shape[:2]
        own = np.zeros((S, G, 2, self.bins), dtype=np.int64)
        own[:s0, :g0] = self.own
        self.own = own

    def _canonical_order(self) -> None:
        # labels sorted, so that the state does not depend on the order rows (or states) came in:
        # update on a concatenation and any merge of its parts give equal states
        so = sorted(range(len(self.segments)), key=lambda i: _sort_key(self.segments.labels[i]))
        go = sorted(range(len(self.groups)), key=lambda i: _sort_key(self.groups.labels[i]))
        if so != list(range(len(so))) or go != list(range(len(go))):
            self.segments = src.LabelIndex([self.segments.labels[i] for i in so])
            self.groups = src.LabelIndex([self.groups.labels[i] for i in go])
            self.own = np.ascontiguousarray(self.own[so][:, go])

    def _merge_from(self, other: FairnessState) -> None:
        smap = np.array([self.segments.add(x) for x in other.segments.labels], dtype=np.int64)
        gmap = np.array([self.groups.add(x) for x in other.groups.labels], dtype=np.int64)
        self._grow()
        if smap.size and gmap.size:
            self.own[np.ix_(smap, gmap)] += other.own
        self._canonical_order()
        self._rep = None

    def _arrays(self) -> dict:
        return {"own": self.own}

    def _set_arrays(self, arrays) -> None:
        self.own = arrays["own"]
        self._rep = None

    # -- the bootstrap: one Poisson draw per (replicate, cell) -------------------------------------
    def cell_keys(self) -> np.ndarray:
        """A 64-bit key per cell, from its labels only (segment, group, label, bin): a cell's
        replicate counts do not depend on which other cells exist or the order they came in.
        """
        import hashlib

        keys = np.empty(self.own.size, dtype=np.uint64)
        i = 0
        for seg in self.segments.labels:
            for grp in self.groups.labels:
                for y in (0, 1):
                    for k in range(self.bins):
                        text = repr((_canonical(seg), _canonical(grp), y, k)).encode()
                        keys[i] = int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")
                        i += 1
        return keys

    @property
    def rep(self) -> np.ndarray:
        """Every cell's count in each Poisson-bootstrap replicate, ``(n_resamples, *own.shape)``.

        The sum of a cell's rows' Poisson(1) weights is Poisson(count): one counter-based draw
        per (replicate, cell) (keyed by the seed, the replicate and :meth:`cell_keys`) has the
        distribution of the per-row Poisson bootstrap, at a cost that does not grow with the rows
        (design.md's sufficient-statistics shortcut).
        """
        if self._rep is None:
            from .._kernels import poisson as kp

            lam = self.own.reshape(-1).astype(np.float64)
            work = self.n_resamples * lam.size
            kern = kp.poisson_cell_counts if work >= 50_000 else kp.poisson_cell_counts_serial
            draws = kern(np.uint64(self.seed), 0, self.n_resamples, self.cell_keys(), lam)
            self._rep = draws.reshape((self.n_resamples, *self.own.shape))
        return self._rep

    def _extra(self):
        return {"groups": list(self.groups.labels), "segments": list(self.segments.labels)}

    def _set_extra(self, extra) -> None:
        self.groups = src.LabelIndex(extra["groups"])
        self.segments = src.LabelIndex(extra["segments"])

    # -- finalize ---------------------------------------------------------------------------------
    def finalize(self):
        """The :class:`~fastevals.FairnessResult` of the rows folded in so far."""
        from .result import build_result

        self.check_not_empty()
        return build_result(self)
