"""The :class:`Profile` state: a one-pass, mergeable sketch of a data set's columns.

What a profile holds, per segment (one segment unless ``by=`` is given)
-----------------------------------------------------------------------
* categorical columns (strings, dictionary, booleans, and integer columns named in
  ``categorical=``): exact counts per category (:class:`fastevals._source.LabelIndex` codes,
  stable across batches and merges);
* numeric columns: counts on ``K`` fine bins between fixed edges plus two tail bins (values
  below the first edge / above the last one), and the count, mean, M2, min and max (kept as
  sums of the values shifted by the middle edge, so merging is an addition). The edges are
  the ``n_bins + 1`` quantiles of a *pilot* sample (the first ``pilot_rows`` rows of the
  reference, duplicates removed) chosen once, before any batch is folded, and stored in the
  state's parameters: two states merge only when their edges are equal, so in-process
  streaming, in-memory and Dask (each partition gets a copy of the state with the same
  edges) give the same counts;
* ``keep_values=True`` (the exact mode of :func:`fastevals.drift`) also keeps every numeric
  value (8 bytes per value and column, plus 8 per value for the segment code with ``by=``);
* with ``label=`` and ``prediction=``: per segment the rows and prediction errors, and for a
  score prediction with a 0/1 label the score's fine-bin counts per class (for the AUC).

The KS error of the binned form: the two empirical CDFs are known exactly at every edge, so
the statistic evaluated there is a lower bound of the exact one and the exact one is at most
that plus the largest bin mass (of either sample) (see ``fastevals._drift._math``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import _source as src
from .._config import PARALLEL_MIN_ROWS
from .._protocol import LABEL, NUMERIC, State
from .._validation import as_column_list, check_int

NUMERIC_T = "numeric"
CATEGORICAL_T = "categorical"
LABEL_T = "label"

#: default number of fine bins of a numeric column's sketch
DEFAULT_BINS = 1000
#: default rows of the pilot sample that fixes the edges
DEFAULT_PILOT_ROWS = 1 << 18


def column_type(t: pa.DataType, name: str, categorical: list[str]) -> str:
    """The drift type of an Arrow column type: numeric or categorical."""
    if pa.types.is_dictionary(t) or pa.types.is_string(t) or pa.types.is_large_string(t) \
            or pa.types.is_boolean(t) or getattr(pa.types, "is_string_view", lambda _: False)(t):
        return CATEGORICAL_T
    if pa.types.is_integer(t):
        return CATEGORICAL_T if name in categorical else NUMERIC_T
    if pa.types.is_floating(t):
        if name in categorical:
            raise TypeError(f"column {name!r} (given in `categorical`) has type {t}; categorical columns must "
                            "hold strings, dictionary values, integers or booleans")
        return NUMERIC_T
    raise TypeError(f"column {name!r} has type {t}; drift compares numeric columns (integers, floats) and "
                    "categorical ones (strings, dictionary, booleans, integers)")


def pilot_edges(values: np.ndarray, n_bins: int) -> list[float]:
    """``n_bins + 1`` quantiles of ``values`` (duplicates removed; at least two edges)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return [0.0, 1.0]
    values = np.sort(values)
    # the inverted-CDF quantiles (np.quantile(..., method="inverted_cdf")) of the sorted pilot
    idx = np.ceil(np.linspace(0.0, 1.0, n_bins + 1) * values.size).astype(np.int64) - 1
    edges = np.unique(values[np.clip(idx, 0, values.size - 1)])
    if edges.size == 1:
        edges = np.array([edges[0], np.nextafter(edges[0], np.inf)])
    return [float(e) for e in edges]


class Profile(State, kind="profile"):
    """A reference profile: the mergeable, serializable sketch that :func:`fastevals.drift` compares.

    Build it with :func:`fastevals.profile` (which fixes the numeric columns' edges from a pilot
    sample); constructing it directly with ``edges=None`` fixes them from the first batch it is
    given.

    Parameters
    ----------
    columns : list of str, optional
        Columns to profile (None: every column of the input but ``by``/``label``/``prediction``).
    categorical : list of str, optional
        Integer columns to treat as categorical (strings, dictionary and booleans always are).
    by : str or list of str, optional
        Segment column(s): one sketch per segment.
    label, prediction : str, optional
        The label (prior shift) and a model's prediction (concept drift: error rate, and AUC
        for a score with a 0/1 label).
    n_bins : int
        Fine bins of a numeric column (default 1000).
    threshold : float
        A score prediction counts as class 1 at or above it (error rate).
    keep_values : bool
        Keep every numeric value (for exact KS and Wasserstein).
    pilot_rows : int
        Rows of the pilot sample that fixes the edges (:func:`fastevals.profile`).
    edges, types : dict, optional
        Fixed edges per numeric column and the type of each column (set by :func:`fastevals.profile`).
    backend : {"auto", "cpu"}
    nulls, filter, batch_size, progress
        As everywhere (see :class:`fastevals._protocol.State`).

    Examples
    --------
    >>> import numpy as np, fastevals
    >>> rng = np.random.default_rng(0)
    >>> ref = fastevals.profile({"x": rng.normal(size=1000), "c": np.array(["a", "b"] * 500)}, n_bins=50)
    >>> ref.n, ref.types
    (1000, {'x': 'numeric', 'c': 'categorical'})
    >>> fastevals.Profile.from_bytes(ref.to_bytes()) == ref
    True
    """

    def __init__(self, *, columns=None, categorical=None, by=None, label=None, prediction=None,
                 n_bins: int = DEFAULT_BINS, threshold: float = 0.5, keep_values: bool = False,
                 pilot_rows: int = DEFAULT_PILOT_ROWS, edges=None, types=None, backend="auto",
                 nulls="raise", filter=None, batch_size=None, progress=None):
        from .._fold import check_backend

        self.backend = check_backend(backend)
        self._columns = as_column_list("columns", columns or None) or None
        self.categorical = as_column_list("categorical", categorical or None)
        self.by = as_column_list("by", by or None)
        self.label = None if label is None else as_column_list("label", label)[0]
        self.prediction = None if prediction is None else as_column_list("prediction", prediction)[0]
        if self.prediction is not None and self.label is None:
            raise ValueError("`prediction` needs `label` (concept drift compares the model's errors)")
        self.n_bins = check_int("n_bins", n_bins, low=1, high=1 << 20)
        self.threshold = float(threshold)
        self.keep_values = bool(keep_values)
        self.pilot_rows = check_int("pilot_rows", pilot_rows, low=1)
        # the layout (column types, numeric edges) is fixed by the first input when not given; the
        # code reading it runs after that (Any: mypy cannot see the ordering)
        self.edges: Any = None if edges is None else {str(k): [float(x) for x in v] for k, v in dict(edges).items()}
        self.types: Any = None if types is None else {str(k): str(v) for k, v in dict(types).items()}
        super().__init__(nulls=nulls, filter=filter, batch_size=batch_size, progress=progress)
        self._segments = src.LabelIndex()
        self._counts: dict[str, np.ndarray] = {}
        self._moments: dict[str, np.ndarray] = {}
        self._cats: dict[str, src.LabelIndex] = {}
        self._values: dict[str, list] = {}
        self._perf = np.zeros((0, 2), dtype=np.int64)  # per segment: rows, errors
        self._score_counts: Any = None  # (segments * 2, K + 2) for a score prediction
        if self.types is not None:
            self._allocate()

    # -- layout -------------------------------------------------------------------------------------
    @property
    def profiled_columns(self) -> list[str]:
        """Columns compared by drift (the label last, when given)."""
        if self.types is None:
            return list(self._columns or [])
        return [c for c in self.types if c != self.prediction]

    def _allocate(self) -> None:
        for c, t in self.types.items():
            if c == self.prediction:
                continue
            if t == NUMERIC_T:
                if self.edges is None or c not in self.edges:
                    raise ValueError(f"numeric column {c!r} has no edges")
                k = len(self.edges[c]) - 1
                self._counts[c] = np.zeros((0, k + 2), dtype=np.int64)
                self._moments[c] = np.zeros((0, 5))
                if self.keep_values:
                    self._values[c] = []
            else:
                self._cats[c] = src.LabelIndex()
                self._counts[c] = np.zeros((0, 0), dtype=np.int64)
        if self._score_prediction:
            k = len(self.edges[self.prediction]) - 1
            self._score_counts = np.zeros((0, k + 2), dtype=np.int64)

    @property
    def _score_prediction(self) -> bool:
        return self.prediction is not None and self.types.get(self.prediction) == NUMERIC_T

    @property
    def n_segments(self) -> int:
        return max(len(self._segments), 0)

    def _grow_segments(self, s: int) -> None:
        for c, a in self._counts.items():
            if a.shape[0] < s:
                self._counts[c] = np.vstack([a, np.zeros((s - a.shape[0], a.shape[1]), dtype=np.int64)])
        for c, m in self._moments.items():
            if m.shape[0] < s:
                extra = np.zeros((s - m.shape[0], 5))
                extra[:, 3], extra[:, 4] = np.inf, -np.inf
                self._moments[c] = np.vstack([m, extra])
        if self._perf.shape[0] < s:
            self._perf = np.vstack([self._perf, np.zeros((s - self._perf.shape[0], 2), dtype=np.int64)])
        if self._score_counts is not None and self._score_counts.shape[0] < 2 * s:
            add = 2 * s - self._score_counts.shape[0]
            self._score_counts = np.vstack([self._score_counts,
                                            np.zeros((add, self._score_counts.shape[1]), dtype=np.int64)])

    def _grow_categories(self, c: str) -> None:
        a = self._counts[c]
        width = len(self._cats[c])
        if a.shape[1] < width:
            self._counts[c] = np.hstack([a, np.zeros((a.shape[0], width - a.shape[1]), dtype=np.int64)])

    # -- protocol -----------------------------------------------------------------------------------
    def _params(self) -> dict:
        return {"columns": self._columns, "categorical": self.categorical or None, "by": self.by or None,
                "label": self.label, "prediction": self.prediction, "n_bins": self.n_bins,
                "threshold": self.threshold, "keep_values": self.keep_values, "pilot_rows": self.pilot_rows,
                "edges": self.edges, "types": self.types}

    def _requirements(self) -> dict:
        reqs = {}
        cols = list(self.types) if self.types is not None else list(self._columns or [])
        for c in cols:
            if c in (self.label, self.prediction):
                continue
            t = self.types.get(c) if self.types else None
            reqs[c] = ("columns", NUMERIC if t == NUMERIC_T else LABEL)
        for c in self.by:
            reqs[c] = ("by", LABEL)
        if self.label is not None:
            reqs[self.label] = ("label", LABEL)
        if self.prediction is not None:
            t = self.types.get(self.prediction) if self.types else None
            reqs[self.prediction] = ("prediction", NUMERIC if t == NUMERIC_T else LABEL)
        return reqs

    def update(self, data, *, row_offset=None):
        if self.types is None:
            self._fix_layout(data)
        return super().update(data, row_offset=row_offset)

    def _fix_layout(self, data) -> None:
        """Fix types and edges from ``data``'s schema and first rows (a state built without them)."""
        types, edges = resolve_layout(data, columns=self._columns, categorical=self.categorical, by=self.by,
                                      label=self.label, prediction=self.prediction, n_bins=self.n_bins,
                                      pilot_rows=self.pilot_rows, edges=self.edges, filter=self.filter)
        self.types, self.edges = types, edges
        self._allocate()

    def _segment_codes(self, batch: pa.RecordBatch) -> tuple[np.ndarray, bool]:
        if not self.by:
            if len(self._segments) == 0:
                self._segments.add(())
                self._grow_segments(1)
            return np.zeros(0, dtype=np.int64), False
        parts = [src.local_codes(batch.column(c)) for c in self.by]
        local = src.combine_codes(parts)
        idx = np.asarray(local.codes, dtype=np.int64) - local.offset
        present = np.bincount(idx, minlength=local.width) > 0
        if len(self.by) == 1:
            mapping = np.full(local.width, -1, dtype=np.int64)
            hit = np.flatnonzero(present)
            for i, lab in zip(hit, local.labels(hit)):
                mapping[i] = self._segments.add((src._plain(lab),))
        else:
            mapping = self._segments.map_local(local, present)
        self._grow_segments(len(self._segments))
        return np.ascontiguousarray(mapping[idx]), True

    def _update_batch(self, batch: pa.RecordBatch, rows) -> None:
        from .._kernels import drift as kernels

        seg, has_seg = self._segment_codes(batch)
        n_seg = len(self._segments)
        for c, t in self.types.items():
            if c == self.prediction:
                continue
            arr = batch.column(c)
            if t == NUMERIC_T:
                values = np.ascontiguousarray(src.numeric_view(arr), dtype=np.float64)
                edges, lut, scale = self._lookup(c)
                kernels.bin_values(values, seg, has_seg, edges, lut, scale, self.shift(c), self._counts[c],
                                   self._moments[c], PARALLEL_MIN_ROWS)
                if self.keep_values:
                    # no copy: ``values`` is a fresh array or a view of an immutable Arrow buffer that it
                    # keeps alive; ``seg`` is fresh for every batch
                    self._values[c].append((seg if has_seg else None, values))
            else:
                codes = self._category_codes(c, arr)
                self._add_category_counts(c, codes, seg, has_seg, n_seg)
        if self.prediction is not None:
            self._update_performance(batch, seg, has_seg, n_seg)

    def shift(self, c: str) -> float:
        """The fixed shift of a numeric column's moment sums: its middle edge."""
        e = self.edges[c]
        return float(e[len(e) // 2])

    def _lookup(self, c: str):
        """(edges, grid lookup, scale) of a numeric column, built once per state (not stored)."""
        from .._kernels import drift as kernels

        cache = self.__dict__.setdefault("_lookups", {})
        if c not in cache:
            edges = np.asarray(self.edges[c], dtype=np.float64)
            cache[c] = (edges, *kernels.bin_lookup(edges))
        return cache[c]

    def _category_codes(self, c: str, arr: pa.Array) -> np.ndarray:
        local = src.local_codes(arr)
        idx = np.asarray(local.codes, dtype=np.int64) - local.offset
        present = np.bincount(idx, minlength=local.width) > 0
        mapping = self._cats[c].map_local(local, present)
        self._grow_categories(c)
        return mapping[idx]

    def _add_category_counts(self, c, codes, seg, has_seg, n_seg) -> None:
        width = self._counts[c].shape[1]
        if has_seg:
            flat = np.bincount(seg * width + codes, minlength=n_seg * width).reshape(n_seg, width)
            self._counts[c][:n_seg] += flat
        else:
            self._counts[c][0] += np.bincount(codes, minlength=width)

    def _binary_label(self, arr: pa.Array) -> np.ndarray:
        if pa.types.is_dictionary(arr.type) or not (pa.types.is_integer(arr.type) or pa.types.is_boolean(arr.type)):
            raise TypeError(f"column {self.label!r} (given as `label`) has type {arr.type}; a score "
                            "`prediction` needs a 0/1 (integer or boolean) label")
        y = src.numeric_view(arr)
        if y.size and (int(y.min()) < 0 or int(y.max()) > 1):
            raise ValueError(f"column {self.label!r} (given as `label`) must hold 0/1 for a score `prediction`; "
                             f"found values in [{int(y.min())}, {int(y.max())}]")
        return y.astype(np.int64)

    def _update_performance(self, batch, seg, has_seg, n_seg) -> None:
        from .._kernels import drift as kernels

        lab = batch.column(self.label)
        pred = batch.column(self.prediction)
        if self._score_prediction:
            y = self._binary_label(lab)
            score = np.ascontiguousarray(src.numeric_view(pred), dtype=np.float64)
            wrong = ((score >= self.threshold).astype(np.int64) != y)
            cls = (seg * 2 if has_seg else np.zeros(len(y), dtype=np.int64)) + y
            assert self.prediction is not None  # a score prediction is a column
            edges, lut, scale = self._lookup(self.prediction)
            kernels.bin_values(score, np.ascontiguousarray(cls), True, edges, lut, scale, 0.0, self._score_counts,
                               kernels.empty_moments(self._score_counts.shape[0]), PARALLEL_MIN_ROWS)
        else:
            try:
                a, b = lab, pred
                if pa.types.is_dictionary(a.type):
                    a = a.dictionary_decode()
                if pa.types.is_dictionary(b.type):
                    b = b.dictionary_decode()
                wrong = np.asarray(pc.not_equal(a, b).to_numpy(zero_copy_only=False), dtype=bool)
            except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise TypeError(f"cannot compare `prediction` column {self.prediction!r} ({pred.type}) with "
                                f"`label` column {self.label!r} ({lab.type}): {exc}") from None
        if has_seg:
            self._perf[:n_seg, 0] += np.bincount(seg, minlength=n_seg)
            self._perf[:n_seg, 1] += np.bincount(seg, weights=wrong, minlength=n_seg).astype(np.int64)
        else:
            self._perf[0, 0] += len(wrong)
            self._perf[0, 1] += int(np.count_nonzero(wrong))

    def _merge_from(self, other: Profile) -> None:
        from .._kernels import drift as kernels

        if other.types is None:
            return
        if self.types is None:
            self.types, self.edges = dict(other.types), other.edges
            self._allocate()
        seg_map = np.array([self._segments.add(lab) for lab in other._segments.labels], dtype=np.int64)
        self._grow_segments(len(self._segments))
        for c, t in self.types.items():
            if c == self.prediction:
                continue
            if t == NUMERIC_T:
                np.add.at(self._counts[c], seg_map, other._counts[c])
                mine = self._moments[c]
                part = kernels.empty_moments(mine.shape[0])
                part[seg_map] = other._moments[c]
                kernels.merge_moments(mine, part)  # an addition: exact when the sums are
                if self.keep_values:
                    for s, v in other._values[c]:
                        self._values[c].append((None if s is None else seg_map[s], v))
            else:
                cat_map = np.array([self._cats[c].add(lab) for lab in other._cats[c].labels], dtype=np.int64)
                self._grow_categories(c)
                if cat_map.size:
                    np.add.at(self._counts[c], (seg_map[:, None], cat_map[None, :]), other._counts[c])
        self._perf[seg_map] += other._perf
        if self._score_counts is not None:
            rows = np.stack([2 * seg_map, 2 * seg_map + 1], axis=1).reshape(-1)
            np.add.at(self._score_counts, rows, other._score_counts)

    # -- bytes --------------------------------------------------------------------------------------
    def _arrays(self) -> dict:
        out = {}
        for c, a in self._counts.items():
            out[f"counts:{c}"] = a
        for c, m in self._moments.items():
            out[f"moments:{c}"] = m
        for c in self._values:
            seg, vals = self.values(c)
            out[f"values:{c}"] = vals
            if seg is not None:
                out[f"values_segment:{c}"] = seg
        out["performance"] = self._perf
        if self._score_counts is not None:
            out["score_counts"] = self._score_counts
        return out

    def _set_arrays(self, arrays: dict) -> None:
        for key, a in arrays.items():
            kind, _, c = key.partition(":")
            if kind == "counts":
                self._counts[c] = a
            elif kind == "moments":
                self._moments[c] = a
            elif kind == "values":
                self._values[c] = [(arrays.get(f"values_segment:{c}"), a)]
            elif kind == "performance":
                self._perf = a
            elif kind == "score_counts":
                self._score_counts = a

    def _extra(self):
        return {"segments": list(self._segments.labels),
                "categories": {c: list(ix.labels) for c, ix in self._cats.items()}}

    def _set_extra(self, extra) -> None:
        if not extra:
            return
        self._segments = src.LabelIndex(extra["segments"])
        for c, labels in extra["categories"].items():
            self._cats[c] = src.LabelIndex(labels)

    # -- reading --------------------------------------------------------------------------------------
    @property
    def segments(self) -> list:
        """Segment labels (tuples of the ``by`` values; ``()`` without ``by``)."""
        return list(self._segments.labels)

    def counts(self, column: str) -> np.ndarray:
        """Counts of ``column``: (segments, K + 2) fine bins, or (segments, categories)."""
        return self._counts[column]

    def moments(self, column: str) -> np.ndarray:
        """(segments, 5): count, mean, M2 (sum of squared deviations), min, max of a numeric column."""
        raw = self._moments[column]
        out = raw.copy()
        n = raw[:, 0]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, 1] = np.where(n > 0, self.shift(column) + raw[:, 1] / n, 0.0)
            out[:, 2] = np.where(n > 0, np.maximum(raw[:, 2] - raw[:, 1] ** 2 / n, 0.0), 0.0)
        return out

    def categories(self, column: str) -> list:
        """Category labels of a categorical column, in code order."""
        return list(self._cats[column].labels)

    def values(self, column: str) -> tuple[np.ndarray | None, np.ndarray]:
        """(segment codes or None, values) of a numeric column kept with ``keep_values``, sorted by
        (segment, value).
        """
        parts = self._values[column]
        if not parts:
            return None, np.zeros(0)
        vals = np.concatenate([v for _, v in parts])  # a new array: sorted in place
        if parts[0][0] is None:
            vals.sort()
            return None, vals
        seg = np.concatenate([s for s, _ in parts]).astype(np.int64)
        order = np.lexsort((vals, seg))
        return seg[order], vals[order]

    def performance(self) -> np.ndarray:
        """(segments, 2): rows and prediction errors."""
        return self._perf

    def score_counts(self) -> np.ndarray | None:
        """(segments, 2, K + 2) fine-bin counts of a score prediction by label (0, 1)."""
        if self._score_counts is None:
            return None
        return self._score_counts.reshape(-1, 2, self._score_counts.shape[1])

    def finalize(self):
        """The profile's per-column summary (rows, mean, std, min, max, categories); comparing
        it with other data is :func:`fastevals.drift`'s job.
        """
        from .result import ProfileSummary

        self.check_not_empty()
        return ProfileSummary.from_profile(self)

    @classmethod
    def _example(cls):
        rng = np.random.default_rng(7)
        n = 400
        # x on a grid of 1/8: every sum is exact, so merge == update on the concatenation bit for bit
        data = {"x": rng.integers(-40, 40, n) / 8.0, "k": rng.integers(0, 5, n),
                "c": rng.choice(["a", "b", "c"], n), "g": rng.integers(0, 2, n)}
        types = {"x": NUMERIC_T, "k": NUMERIC_T, "c": CATEGORICAL_T}
        edges = {"x": pilot_edges(data["x"], 20), "k": pilot_edges(data["k"], 20)}
        return {"by": "g", "n_bins": 20, "edges": edges, "types": types}, data


def resolve_layout(data, *, columns, categorical, by, label, prediction, n_bins, pilot_rows, edges=None,
                   filter=None, schema=None, pilot=None):
    """Types of the profiled columns and fixed edges of the numeric ones, from ``data``'s schema
    and its first ``pilot_rows`` rows (or the given ``pilot`` table).
    """
    if schema is None:
        source = src.open_source(data, filter=filter, batch_size=pilot_rows, columns_hint=None)
        schema = source.schema
    else:
        source = None
    names = schema.names
    special = set(by) | {label, prediction} - {None}
    cols = list(columns) if columns else [c for c in names if c not in special]
    for c in cols + list(by) + [x for x in (label, prediction) if x is not None]:
        if c not in names:
            shown = ", ".join(repr(n) for n in names[:20])
            raise ValueError(f"unknown column {c!r}; the input has columns: {shown}")
    for c in categorical:
        if c not in cols:
            raise ValueError(f"column {c!r} given in `categorical` is not among the profiled columns")
    if not cols and label is None:
        raise ValueError("no column to profile: give `columns` (the input has only by/label/prediction columns)")
    types = {c: column_type(schema.field(c).type, c, categorical) for c in cols if c != label}
    if label is not None:
        types[label] = LABEL_T
    if prediction is not None:
        t = schema.field(prediction).type
        types[prediction] = NUMERIC_T if pa.types.is_floating(t) else CATEGORICAL_T
    fixed = dict(edges or {})
    need = [c for c, t in types.items() if t == NUMERIC_T and c not in fixed]
    if need:
        if pilot is None:
            pilot = _pilot_table(source, need, pilot_rows)
        for c in need:
            arr = pilot.column(c)
            if arr.null_count:
                arr = arr.drop_null()
            vals = src.numeric_view(arr.combine_chunks()) if len(arr) else np.zeros(0)
            fixed[c] = pilot_edges(vals, n_bins)
    return types, ({c: fixed[c] for c in types if types[c] == NUMERIC_T} or None)


def _pilot_table(source, columns, pilot_rows) -> pa.Table:
    batches, rows = [], 0
    for batch in source.batches(columns):
        batches.append(batch.slice(0, pilot_rows - rows))
        rows += batches[-1].num_rows
        if rows >= pilot_rows:
            break
    if not batches:
        return pa.table({c: pa.array([], pa.float64()) for c in columns})
    return pa.Table.from_batches(batches)
