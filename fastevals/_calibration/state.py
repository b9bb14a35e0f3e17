"""The calibration state (a protocol :class:`~fastevals._protocol.State`) and the two quantile passes."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from .. import _source as src
from .._config import CHUNK_ROWS, MAX_RESAMPLES, PARALLEL_MIN_ROWS
from .._protocol import ANY, LABEL, NUMERIC, ConfidenceInterval, State
from .._validation import as_column_list, check_choice, check_int, check_probability, check_seed
from ._math import (
    _NAN_HINT,
    _changed_between_passes,
    _check_edges,
    _check_two_classes,
    _curve,
    _fine_histograms,
    _QuantilePlan,
    uniform_edges,
)
from .result import BrierDecomposition, CalibrationResult

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from .._typing import Columns, Filter, Seed

_STRATEGIES = ("uniform", "quantile")
_MULTICLASS = ("top-label", "classwise")
#: tolerance of the row-sum check for multiclass probabilities
ROW_SUM_TOL = 1e-6


def _k():
    from .._kernels import calibration as kern

    return kern


# ----------------------------------------------------------------------------------------------------
# the state


@dataclass(frozen=True)
class _Layout:
    """What the columns hold, read off the input's schema on the first update."""

    prob: tuple  # one column (binary or fixed-size list) or one per class
    label: str
    weights: str | None
    by: tuple
    n_classes: int | None  # None: binary
    list_column: bool
    multiclass: str | None  # None (binary), "top-label", "classwise"
    check_rows: bool

    @property
    def n_curves(self) -> int:
        return int(self.n_classes or 1) if self.multiclass == "classwise" else 1

    def to_json(self) -> dict:
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in dataclasses.fields(self)}

    @classmethod
    def from_json(cls, d: dict) -> _Layout:
        return cls(**{**d, "prob": tuple(d["prob"]), "by": tuple(d["by"])})


def _resolve_layout(schema: pa.Schema, prob: list[str], label: str, weights, by: list[str], multiclass: str,
                    check_rows: bool) -> _Layout:
    """Binary or multiclass, from the prob argument and the schema."""
    names = schema.names
    for c in prob:
        if c not in names:
            shown = ", ".join(repr(n) for n in names[:20])
            raise ValueError(f"unknown column {c!r} (given as `prob`); the input has columns: {shown}")
    list_column = False
    if len(prob) == 1:
        t = schema.field(prob[0]).type
        if pa.types.is_fixed_size_list(t):
            if not (pa.types.is_floating(t.value_type) or pa.types.is_integer(t.value_type)):
                raise TypeError(f"column {prob[0]!r} (given as `prob`) is a list of {t.value_type}; expected floats")
            n_classes = t.list_size
            list_column = True
        elif pa.types.is_list(t) or pa.types.is_large_list(t):
            raise TypeError(f"column {prob[0]!r} (given as `prob`) is a variable-size list; cast it to a "
                            "fixed-size list (pa.list_(pa.float64(), K)) or pass one column per class")
        else:
            _check_numeric(prob[0], t)
            n_classes = None
    else:
        for c in prob:
            _check_numeric(c, schema.field(c).type)
        n_classes = len(prob)
    if n_classes is not None and n_classes < 2:
        raise ValueError(f"multiclass `prob` needs at least 2 classes; got {n_classes}")
    return _Layout(tuple(prob), label, weights, tuple(by), n_classes, list_column,
                   None if n_classes is None else multiclass, bool(check_rows))


def _check_numeric(column: str, t: pa.DataType) -> None:
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
        raise TypeError(f"column {column!r} (given as `prob`) has type {t}; expected integers, floats or booleans")


def _prob_columns(prob) -> list[str]:
    if isinstance(prob, str):
        return [prob]
    if isinstance(prob, Sequence) and not isinstance(prob, bytes):
        return as_column_list("prob", list(prob), allow_none=False)
    raise TypeError(f"`prob` must be a column name or a list of column names; got {prob!r}")


def _check_quantile_edges(edges, n_bins: int) -> np.ndarray:
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim not in (1, 2) or e.shape[-1] != n_bins + 1:
        raise ValueError(f"`quantile_edges` must hold n_bins + 1 = {n_bins + 1} edges (a row per class for "
                         f"classwise bins); got shape {e.shape}")
    if not np.all(np.isfinite(e)) or e.min() < 0 or e.max() > 1 or np.any(np.diff(e, axis=-1) < 0):
        raise ValueError("`quantile_edges` must be finite, non-decreasing and within [0, 1]")
    return e


def _in_memory_table(data, filter, columns):
    """Turn a dict or DataFrame input into an Arrow table once (the scans that follow reuse it).

    Only ``columns`` are converted, or every column when a ``filter`` is given: it may
    name a column the analysis does not read (the base scan's column hint would drop
    it). Other inputs are returned as they are.
    """
    if isinstance(data, dict) or type(data).__module__.split(".")[0] in ("pandas", "polars"):
        source = src.open_source(data, columns_hint=None if filter is not None else list(columns))
        return pa.Table.from_batches(list(source.batches(source.schema.names)), schema=source.schema)
    return data


class CalibrationState(State, kind="calibration"):
    """Mergeable sufficient statistics of calibration curves (the state behind :func:`calibration`).

    A fixed-size table per (curve, segment, bin): count, weight, weighted
    means of p and y, centred second moments (Chan et al. merge), sum of
    squared weights and the Brier sum; with ``n_resamples`` also Poisson
    bootstrap replicate sums per (curve, replicate, segment, bin), keyed by the
    global row index (``update(data, row_offset=k)`` sets the index of the
    input's first row; by default rows follow those read so far).

    It takes the keyword arguments of :func:`calibration` (defaults included)
    except ``engine``. ``strategy="quantile"`` needs the quantile edges, which
    take a first pass over the data: :func:`calibration` computes them and
    passes them as ``quantile_edges``; otherwise give the edges as
    ``strategy=<array>``. Whether the input is binary or multiclass is read off
    its schema on the first update.

    Parameters
    ----------
    prob, label, n_bins, strategy, weights, multiclass, by, n_resamples, confidence, seed, check_rows, backend
        As in :func:`calibration`.
    quantile_edges : array, optional
        With ``strategy="quantile"``: the edges (one row per class for classwise bins).
    nulls, filter, batch_size, progress
        The common scan options (see :class:`fastevals._protocol.State`).

    Raises
    ------
    ValueError, TypeError
        For an invalid option, naming it.

    Examples
    --------
    >>> import numpy as np, fastevals
    >>> rng = np.random.default_rng(0)
    >>> p = rng.random(1000)
    >>> data = {"p": p, "y": (rng.random(1000) < p).astype(np.int8)}
    >>> a = fastevals.CalibrationState(prob="p", label="y").update({k: v[:400] for k, v in data.items()})
    >>> b = fastevals.CalibrationState(prob="p", label="y").update({k: v[400:] for k, v in data.items()},
    ...                                                           row_offset=400)
    >>> merged = a.merge(b).finalize()
    >>> whole = fastevals.calibration(data, prob="p", label="y")
    >>> merged.n, bool(abs(merged.ece - whole.ece) < 1e-12)
    (1000, True)
    """

    def __init__(self, *, prob: str, label: str, n_bins: int = 15, strategy: str = "uniform",
                 weights: str | None = None, multiclass: str = "top-label", by: Columns | None = None,
                 n_resamples: int = 0, confidence: float = 0.95, seed: Seed = None, check_rows: bool = True,
                 backend: str = "auto", quantile_edges: ArrayLike | None = None, nulls: str = "raise",
                 filter: Filter = None, batch_size: int | None = None, progress: bool | None = None):
        super().__init__(nulls=nulls, filter=filter, batch_size=batch_size, progress=progress)
        self._prob_cols = _prob_columns(prob)
        self.prob = prob if isinstance(prob, str) else list(self._prob_cols)
        if not isinstance(label, str):
            raise TypeError(f"`label` must be a column name; got {label!r}")
        if weights is not None and not isinstance(weights, str):
            raise TypeError(f"`weights` must be a column name or None; got {weights!r}")
        self.label, self.weights = label, weights
        self.by = as_column_list("by", by)
        self.multiclass = check_choice("multiclass", multiclass, _MULTICLASS)
        self.n_resamples = check_int("n_resamples", n_resamples, low=0, high=MAX_RESAMPLES)
        self.confidence = check_probability("confidence", confidence)
        self.seed = check_seed("seed", seed) if (seed is not None or self.n_resamples) else 0
        self.check_rows = bool(check_rows)
        self.backend = check_choice("backend", backend, ("auto", "cpu", "cuda"))
        self.quantile_edges = None
        if isinstance(strategy, str):
            self.strategy = check_choice("strategy", strategy, _STRATEGIES)
            self.n_bins = check_int("n_bins", n_bins, low=1)
            if self.strategy == "uniform":
                self._edges = uniform_edges(self.n_bins)
            elif quantile_edges is None:
                raise ValueError(
                    "CalibrationState(strategy='quantile') needs the quantile edges, which take a first pass "
                    "over the data: use fastevals.calibration(..., strategy='quantile'), or give the edges as "
                    "strategy=<array of edges> (or quantile_edges=)")
            else:
                self._edges = _check_quantile_edges(quantile_edges, self.n_bins)
                self.quantile_edges = self._edges.tolist()
            self.strategy_name = self.strategy
        else:
            self._edges = _check_edges(strategy)
            self.strategy = self._edges.tolist()
            self.n_bins = len(self._edges) - 1
            self.strategy_name = "custom"
        self.segments = src.LabelIndex()
        self.backend_used = "cpu" if self.backend == "cpu" else None  # decided on the first batch
        # None until the first update reads the input's schema (every use after that sees a _Layout)
        self._lay: _Layout = None  # type: ignore[assignment]
        self.edges: np.ndarray | None = None  # (n_curves, n_bins + 1), set with the layout

    @classmethod
    def _example(cls):
        rng = np.random.default_rng(3)
        p = rng.random(60)
        y = (rng.random(60) < p).astype(np.int8)
        g = rng.integers(0, 3, 60)
        kwargs = {"prob": "p", "label": "y", "n_bins": 5, "by": "g", "n_resamples": 4, "seed": 1}
        return kwargs, {"p": p, "y": y, "g": g}

    # -- protocol
    def _params(self) -> dict:
        return {"prob": self.prob, "label": self.label, "n_bins": self.n_bins, "strategy": self.strategy,
                "weights": self.weights, "multiclass": self.multiclass, "by": self.by or None,
                "n_resamples": self.n_resamples, "confidence": self.confidence, "seed": self.seed,
                "check_rows": self.check_rows, "backend": self.backend, "quantile_edges": self.quantile_edges}

    def _requirements(self) -> dict:
        lay = self._lay
        # with nulls="raise" the binning kernels reject NaN probabilities themselves (as outside [0, 1]), which
        # saves the scan a pass over them; the schema check of _resolve_layout stands in for the scan's
        plain = self.nulls == "raise" or (lay is not None and lay.list_column)
        reqs = {c: ("prob", ANY if plain else NUMERIC) for c in self._prob_cols}
        reqs[self.label] = ("label", NUMERIC)
        if self.weights:
            reqs[self.weights] = ("weights", NUMERIC)
        for c in self.by:
            reqs[c] = ("by", LABEL)
        return reqs

    def _extra(self):
        return {"layout": None if self._lay is None else self._lay.to_json(),
                "segments": list(self.segments.labels), "backend_used": self.backend_used}

    def _set_extra(self, extra) -> None:
        if not extra:
            return
        if extra.get("layout") is not None:
            self._setup(_Layout.from_json(extra["layout"]))
        for lab in extra.get("segments", ()):
            self.segments.add(lab)
        self.backend_used = extra.get("backend_used")

    def _arrays(self) -> dict:
        if self._lay is None:
            return {}
        return {"count": self.count, "stats": self.stats, "boot": self.boot}

    def _set_arrays(self, arrays) -> None:
        if arrays:
            self.count, self.stats, self.boot = arrays["count"], arrays["stats"], arrays["boot"]

    # -- layout
    def _column_hint(self) -> list[str]:
        return list(dict.fromkeys(self._prob_cols + [self.label] + ([self.weights] if self.weights else [])
                                  + self.by))

    def _resolve(self, schema: pa.Schema) -> None:
        """Read binary / multiclass off the input's schema (once)."""
        if self._lay is None:
            self._setup(_resolve_layout(schema, self._prob_cols, self.label, self.weights, self.by,
                                        self.multiclass, self.check_rows))

    def _setup(self, lay: _Layout) -> None:
        nc = lay.n_curves
        e = self._edges
        edges = np.ascontiguousarray(np.broadcast_to(e, (nc, e.shape[-1])) if e.ndim == 1 else e)
        if edges.shape[0] != nc:
            raise ValueError(f"`quantile_edges` has {edges.shape[0]} rows for {nc} curves")
        kern = _k()
        self._lay = lay
        self.edges = edges
        self._inner = [np.ascontiguousarray(r[1:-1]) for r in edges]
        self._lut = [kern.bin_lookup(i) for i in self._inner]
        lin = np.linspace(0.0, 1.0, self.n_bins + 1)
        self._uniform = [bool(np.array_equal(r, lin)) for r in edges]
        # per-bin shifts of the moment sums: the bin centres (uniform: exactly (b + 0.5) / n_bins)
        self._shift = [kern.uniform_shift(self.n_bins) if u else np.ascontiguousarray((r[:-1] + r[1:]) / 2)
                       for r, u in zip(edges, self._uniform, strict=True)]
        n_seg = 0 if self.by else 1
        self.count = np.zeros((nc, n_seg * self.n_bins), dtype=np.int64)
        self.stats = np.zeros((nc, n_seg * self.n_bins, kern.N_STATS), dtype=np.float64)
        self.boot = np.zeros((nc, self.n_resamples, n_seg * self.n_bins, 3), dtype=np.float64)

    def update(self, data, *, row_offset: int | None = None):
        """Fold ``data`` (any input the input layer takes) into the state and return it.

        Parameters
        ----------
        data
            Arrow table or batch, Parquet path, DataFrame, dict of arrays...
        row_offset : int, optional
            Global index of the input's first row (keys the bootstrap weights).

        Returns
        -------
        CalibrationState
            This state.
        """
        data = _in_memory_table(data, self.filter, self._column_hint())
        if self._lay is None:
            self._resolve(src.open_source(data, columns_hint=self._column_hint()).schema)
        return super().update(data, row_offset=row_offset)

    # -- growing the segment axis
    @property
    def n_segments(self) -> int:
        return len(self.segments) if self.by else 1

    def _grow(self, n_seg: int) -> None:
        cells = n_seg * self.n_bins
        old = self.count.shape[1]
        if cells <= old:
            return
        nc = self.count.shape[0]
        cnt = np.zeros((nc, cells), dtype=np.int64)
        cnt[:, :old] = self.count
        st = np.zeros((nc, cells, self.stats.shape[2]), dtype=np.float64)
        st[:, :old] = self.stats
        bt = np.zeros((nc, self.n_resamples, cells, 3), dtype=np.float64)
        bt[:, :, :old] = self.boot
        self.count, self.stats, self.boot = cnt, st, bt

    # -- reading a batch
    def _label_view(self, batch):
        y = src.numeric_view(batch.column(self.label))
        if y.dtype == np.int8:
            y = y.view(np.uint8)  # same kernel as booleans (-1 becomes 255: still "not 0/1")
        if self._lay.n_classes is not None and y.dtype.kind == "f":
            raise TypeError(f"column {self.label!r} (given as `label`) must hold integer class indices "
                            f"0..{self._lay.n_classes - 1} for multiclass input; got floats")
        return y

    def _class_probabilities(self, batch):
        """Return multiclass probabilities as ``(matrix, columns)``, one of them None.

        The C-contiguous (rows, classes) view of a fixed-size-list column, or the
        per-class column views.
        """
        lay = self._lay
        k = lay.n_classes
        if not lay.list_column:
            return None, [src.numeric_view(batch.column(c)) for c in lay.prob]
        arr = batch.column(lay.prob[0])
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        flat = arr.flatten() if arr.offset == 0 else arr.values.slice(arr.offset * k, len(arr) * k)
        if flat.null_count:
            raise ValueError(f"column {lay.prob[0]!r} (given as `prob`) has null class probabilities")
        return np.ascontiguousarray(src.numeric_view(flat).reshape(len(arr), k)), None

    def _curves(self, batch):
        """Per-curve (p, y, target) arrays of a batch, validated for the multiclass checks."""
        lay = self._lay
        y = self._label_view(batch)
        if lay.n_classes is None:
            return [(src.numeric_view(batch.column(lay.prob[0])), y, -1)], y
        k = lay.n_classes
        mat, cols = self._class_probabilities(batch)
        kern = _k()
        top = kern.top_label_parallel if len(y) >= PARALLEL_MIN_ROWS else kern.top_label_serial
        if mat is None:
            mat = np.column_stack(cols)
        if lay.multiclass == "top-label":
            conf, correct, bad = top(mat, y, k, ROW_SUM_TOL, lay.check_rows, CHUNK_ROWS)
            self._raise_flags(bad, k)
            return [(conf, correct, -1)], y
        _, _, bad = top(mat, y, k, ROW_SUM_TOL, lay.check_rows, CHUNK_ROWS)
        self._raise_flags(bad, k)
        if cols is None:
            cols = [np.ascontiguousarray(mat[:, j]) for j in range(k)]
        return [(cols[j], y, j) for j in range(k)], y

    def _raise_flags(self, bad, k):
        """Raise on the multiclass kernel's flags.

        ``bad``: rows with a probability outside [0, 1] or NaN, labels outside the
        classes, rows not summing to 1.
        """
        n_p, n_y, n_s = (int(v) for v in bad)
        if n_p:
            raise ValueError(f"`prob` ({', '.join(map(repr, self._lay.prob))}) has {n_p:,} row(s) with a "
                             f"probability outside [0, 1] or NaN{_NAN_HINT}")
        if n_y:
            raise ValueError(f"column {self.label!r} (given as `label`) has {n_y:,} value(s) outside the "
                             f"class indices 0..{k - 1}")
        if n_s:
            raise ValueError(f"{n_s:,} row(s) of `prob` do not sum to 1 (tolerance {ROW_SUM_TOL:g}); "
                             "pass check_rows=False (CLI: --no-check-rows) to skip this check")

    def _weights(self, batch):
        if not self.weights:
            return np.empty(0, dtype=np.float64)
        w = src.numeric_view(batch.column(self.weights))
        if (w.dtype.kind == "f" and not np.isfinite(w.min() + w.max())) or w.min() < 0:
            raise ValueError(f"column {self.weights!r} (given as `weights`) must hold finite, non-negative weights")
        return w

    def _segment_codes(self, batch):
        if not self.by:
            return np.empty(0, dtype=np.int64)
        lc = src.combine_codes([src.local_codes(batch.column(c)) for c in self.by])
        local = np.asarray(lc.codes, dtype=np.int64) - lc.offset
        present = np.bincount(local, minlength=lc.width) > 0
        mapping = self.segments.map_local(lc, present)
        return mapping[local]

    def _update_batch(self, batch, rows) -> None:
        n = batch.num_rows
        kern = _k()
        if self.backend_used is None:
            from .._cuda.backend import resolve_backend

            self.backend_used = resolve_backend(self.backend, n * self._lay.n_curves)
        if self._lay.multiclass == "top-label" and self.backend_used == "cpu" and not self.n_resamples:
            self._update_top_label(batch)
            return
        curves, _ = self._curves(batch)
        w = self._weights(batch)
        seg = self._segment_codes(batch)
        self._grow(self.n_segments)
        n_cells = self.count.shape[1]
        fold_bins = kern.fold_bins_parallel if n >= PARALLEL_MIN_ROWS else kern.fold_bins_serial
        if self.backend_used == "cuda":
            from .._cuda import calibration as cuda_kern

            fold_bins = cuda_kern.fold_bins
        for c, (p, y, target) in enumerate(curves):
            inner, lut = self._inner[c], self._lut[c]
            uni = self._uniform[c]
            cnt, st, bad_p, bad_y = fold_bins(p, y, target, w, seg, self.n_bins, inner, lut, uni, self._shift[c],
                                              n_cells, CHUNK_ROWS)
            if bad_p:
                raise ValueError(f"`prob` ({self._lay.prob[0]!r}) has {int(bad_p):,} value(s) outside [0, 1] or NaN"
                                 f"{_NAN_HINT}")
            if bad_y:
                raise ValueError(f"column {self.label!r} (given as `label`) has {int(bad_y):,} "
                                 "value(s) other than 0 and 1")
            kern.merge_into(self.count[c], self.stats[c], cnt, st)
            if self.n_resamples:
                cells, obs = kern.assign_cells(p, y, target, seg, self.n_bins, inner, lut, uni, CHUNK_ROWS)
                pb, wb = p, w
                if rows.kept is not None:
                    # rows were dropped: spread the kept rows back to their read positions with weight 0
                    # in the gaps, so each row keeps its global key (rows.start + position)
                    full = rows.kept[-1] + 1
                    pb = np.zeros(full, dtype=np.float64)
                    pb[rows.kept] = p
                    c2 = np.zeros(full, dtype=cells.dtype)
                    c2[rows.kept] = cells
                    o2 = np.zeros(full, dtype=obs.dtype)
                    o2[rows.kept] = obs
                    wb = np.zeros(full, dtype=np.float64)
                    wb[rows.kept] = w if w.size else 1.0
                    cells, obs = c2, o2
                kern.bootstrap_sums(pb, cells, obs, wb, rows.start, np.uint64(self.seed), self.n_resamples,
                                    self.boot[c])

    def _update_top_label(self, batch) -> None:
        """Fold top-label curves on the CPU without bootstrap.

        Max/argmax, the multiclass checks and the binning in one kernel pass (the
        confidences are never materialized).
        """
        k = self._lay.n_classes
        y = self._label_view(batch)
        mat, cols = self._class_probabilities(batch)
        if mat is None:
            mat = np.column_stack(cols)
        w = self._weights(batch)
        seg = self._segment_codes(batch)
        self._grow(self.n_segments)
        kern = _k()
        fold_tl = kern.fold_top_label_parallel if len(y) >= PARALLEL_MIN_ROWS else kern.fold_top_label_serial
        cnt, st, bad = fold_tl(mat, y, k, ROW_SUM_TOL, self._lay.check_rows, w, seg, self.n_bins, self._inner[0],
                               self._lut[0], self._uniform[0], self._shift[0], self.count.shape[1], CHUNK_ROWS)
        self._raise_flags(bad, k)
        kern.merge_into(self.count[0], self.stats[0], cnt, st)

    def _merge_from(self, other: CalibrationState) -> None:
        if other._lay is None:
            return
        if self._lay is None:
            self._setup(other._lay)
        elif self._lay != other._lay:
            raise ValueError(f"cannot merge CalibrationStates of inputs with different layouts: {self._lay} "
                             f"vs {other._lay}")
        kern = _k()
        nb = self.n_bins
        if self.by:
            order = [self.segments.add(lab) for lab in other.segments.labels]
            self._grow(len(self.segments))
            cells = (np.asarray(order, dtype=np.int64)[:, None] * nb + np.arange(nb)).reshape(-1)
        else:
            cells = np.arange(nb)
        for c in range(self.count.shape[0]):
            cnt = np.zeros(self.count.shape[1], dtype=np.int64)
            st = np.zeros(self.stats.shape[1:], dtype=np.float64)
            m = other.count.shape[1]
            cnt[cells[:m]] = other.count[c]
            st[cells[:m]] = other.stats[c]
            kern.merge_into(self.count[c], self.stats[c], cnt, st)
            if self.n_resamples:
                self.boot[c][:, cells[:m]] += other.boot[c]
        used = {self.backend_used, other.backend_used}
        self.backend_used = "cuda" if "cuda" in used else ("cpu" if "cpu" in used else None)

    # -- finalize
    def finalize(self) -> CalibrationResult:
        """Return the :class:`CalibrationResult` of the rows folded so far (closed-form NumPy math).

        Returns
        -------
        CalibrationResult

        Raises
        ------
        ValueError
            When no row was used, or classwise input with fewer than two classes present.
        """
        self.check_not_empty()
        nb = self.n_bins
        nc = self.count.shape[0]
        n_seg = self.count.shape[1] // nb
        cnt = self.count.reshape(nc, n_seg, nb)
        st = self.stats.reshape(nc, n_seg, nb, -1)
        boot = self.boot.reshape(nc, self.n_resamples, n_seg, nb, 3)
        if self._lay.multiclass != "classwise":
            labels = [None]
        elif self._lay.list_column:
            labels = list(range(nc))  # type: ignore[arg-type]
        else:
            labels = list(self._lay.prob)  # one column per class: the curve is named by its column
        if self.by:
            total_cnt = np.zeros((nc, nb), dtype=np.int64)
            total_st = np.zeros((nc, nb, st.shape[3]))
            kern = _k()
            for c in range(nc):
                for s in range(n_seg):
                    kern.merge_into(total_cnt[c], total_st[c], np.ascontiguousarray(cnt[c, s]),
                                    np.ascontiguousarray(st[c, s]))
            total_boot = boot.sum(axis=2)
        else:
            total_cnt, total_st, total_boot = cnt[:, 0], st[:, 0], boot[:, :, 0]
        overall = self._result(total_cnt, total_st, total_boot, labels, self.n_dropped)
        _check_two_classes(overall, self.label, self._lay.multiclass)
        if not self.by:
            return overall
        segs = {lab: self._result(cnt[:, s], st[:, s], boot[:, :, s], labels, 0)
                for s, lab in enumerate(self.segments.labels)}
        return dataclasses.replace(overall, segments=segs)

    def _result(self, cnt, st, boot, labels, n_dropped):
        confidence = self.confidence
        curves = []
        rep_ece = []
        weighted = self.weights is not None
        for c, lab in enumerate(labels):
            curve, reps = _curve(self.edges[c], cnt[c], st[c], boot[c] if self.n_resamples else None,
                                 lab, confidence, weighted)
            curves.append(curve)
            rep_ece.append(reps)
        alpha = 1 - confidence
        if len(curves) == 1:
            c0 = curves[0]
            ece, rms, mce, dsq = c0.ece, c0.rms, c0.mce, c0.debiased_l2_sq
            dec = c0.brier
            ece_ci = c0.ece_ci
        else:
            ece = float(np.mean([c.ece for c in curves]))
            rms = float(np.sqrt(np.mean([c.rms ** 2 for c in curves])))
            mce = float(np.max([c.mce for c in curves]))
            dsq = float(np.mean([c.debiased_l2_sq for c in curves]))
            names = [f.name for f in dataclasses.fields(BrierDecomposition)]
            dec = BrierDecomposition(**{f: float(sum(getattr(c.brier, f) for c in curves)) for f in names})
            ece_ci = None
            if self.n_resamples:
                reps = np.mean(np.vstack(rep_ece), axis=0)
                lo, hi = np.percentile(reps, [100 * alpha / 2, 100 * (1 - alpha / 2)])
                ece_ci = ConfidenceInterval(float(lo), float(hi), confidence=confidence, method="percentile")
        collapsed = tuple(int(i) for i in np.flatnonzero((np.diff(self.edges, axis=1) == 0).any(axis=0)))
        edges = self.edges[0].copy() if len(self.edges) == 1 or (self.edges == self.edges[0]).all() \
            else self.edges.copy()
        return CalibrationResult(
            ece=ece, ece_ci=ece_ci, rms=rms, mce=mce, debiased_l2_sq=dsq, brier=dec.brier,
            brier_decomposition=dec, curves=tuple(curves), segments=None, edges=edges,
            n_bins=self.n_bins, strategy=self.strategy_name, multiclass=self._lay.multiclass,
            n=int(cnt[0].sum()), n_dropped=int(n_dropped), collapsed_bins=collapsed,
            confidence=confidence, n_resamples=self.n_resamples, backend=self.backend_used or "cpu",
        )


# ----------------------------------------------------------------------------------------------------
# the two passes of exact quantile edges, as (unregistered) states folded like any other


class _QuantilePass(State):
    """Base of the quantile passes.

    A probe :class:`CalibrationState` (layout resolved) reads the curves' values
    of each batch; the scan (nulls, NaN, filter) is the final state's.
    """

    def __init__(self, probe: CalibrationState):
        super().__init__(nulls=probe.nulls, filter=probe.filter, batch_size=probe.batch_size,
                         progress=probe.progress)
        self.probe = probe

    def _params(self) -> dict:
        return self.probe._params()

    def _requirements(self) -> dict:
        return self.probe._requirements()

    def _values(self, batch) -> list[np.ndarray]:
        curves, _ = self.probe._curves(batch)
        return [np.asarray(p, dtype=np.float64) for p, _, _ in curves]


class _QuantileCounts(_QuantilePass):
    """Pass 1: counts of each curve's values on a fine uniform grid (integers, mergeable)."""

    def __init__(self, probe: CalibrationState):
        super().__init__(probe)
        self.hist = np.zeros((probe._lay.n_curves, _k().FINE_CELLS), dtype=np.int64)

    def _update_batch(self, batch, rows) -> None:
        arrays = self._values(batch)
        self.hist += _fine_histograms([arrays], len(arrays))

    def _merge_from(self, other) -> None:
        self.hist = self.hist + other.hist


class _QuantileValues(_QuantilePass):
    """Pass 2: the values in the fine cells that hold an order statistic the edges need.

    A few per edge, gathered by slot into buffers sized by pass 1's counts.
    """

    def __init__(self, probe: CalibrationState, plans: list[_QuantilePlan]):
        super().__init__(probe)
        self.plans = plans
        self.buffers = [np.empty(int(p.sizes.sum()), dtype=np.float64) for p in plans]
        self.positions = [p.starts.copy() for p in plans]

    def _update_batch(self, batch, rows) -> None:
        kern = _k()
        for c, x in enumerate(self._values(batch)):
            plan = self.plans[c]
            if kern.gather_cells(x, kern.FINE_CELLS, plan.slot, self.positions[c], plan.starts + plan.sizes,
                                 self.buffers[c]):
                raise _changed_between_passes()

    def _merge_from(self, other) -> None:
        for c, plan in enumerate(self.plans):
            buf, pos = self.buffers[c].copy(), self.positions[c].copy()
            for s, start in enumerate(plan.starts):
                m = int(other.positions[c][s] - start)
                if pos[s] + m > start + plan.sizes[s]:
                    raise _changed_between_passes()
                buf[pos[s]:pos[s] + m] = other.buffers[c][start:start + m]
                pos[s] += m
            self.buffers[c], self.positions[c] = buf, pos

    def edges(self) -> list[np.ndarray]:
        out = []
        for c, plan in enumerate(self.plans):
            ends = plan.starts + plan.sizes
            if not np.array_equal(self.positions[c], ends):
                raise _changed_between_passes()
            buf = self.buffers[c].copy()
            for lo, hi in zip(plan.starts, ends, strict=True):
                buf[lo:hi].sort()
            out.append(plan.edges(buf))
        return out
