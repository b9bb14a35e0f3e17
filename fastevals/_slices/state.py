"""The mergeable state of :func:`fastevals.slices`: per-slice count, sum and sum of squares.

Layout: the slice columns are coded (categorical levels through a :class:`LabelIndex`, numeric
columns through fixed bin edges); every combination of 1 .. ``max_order`` columns (a *combo*)
owns a dense block of cells, one per combination of its columns' codes, in ``stats``
(``cells x width``: count, shifted sum, and for a loss the shifted sum of squares). When a
categorical column meets a new level the blocks are re-laid out (old cells copied).
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import _source as src
from .._config import PARALLEL_MIN_ROWS
from .._fold import check_backend
from .._protocol import LABEL, NUMERIC, State
from .._validation import as_column_list, check_choice, check_int, check_probability

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from .._typing import Columns, Filter

#: rows coded and counted at once (bounds the (rows x columns) int32 code matrix)
SUB_BATCH_ROWS = 1 << 20
#: parts of a parallel count (a function of nothing but this constant: same sums on any thread count)
PARALLEL_PARTS = 8
#: bytes of the per-part private cell blocks of one parallel count
PART_BYTES = 1 << 26
#: rows sampled (the first rows read) for quantile edges
EDGE_SAMPLE_ROWS = 1 << 20
#: cells a state may hold in all
MAX_CELLS = 50_000_000

_ADJUST = ("bh", "holm", "none")
_SORT = ("score", "excess", "difference", "pvalue")


def _kernels():
    from .._kernels import slices as ks

    return ks


def quantile_edges(values: np.ndarray, n_bins: int) -> list[float]:
    """Distinct ``np.quantile`` edges (linear interpolation) of ``values`` at ``linspace(0, 1, n_bins + 1)``.

    Tied quantiles collapse, so a column with few distinct values gets fewer bins.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return []
    e = np.unique(np.quantile(v, np.linspace(0.0, 1.0, n_bins + 1)))
    return [float(x) for x in e]


def bin_label(edges, k: int) -> str:
    """Text of bin ``k`` of ``edges``: the end bins are open (``< e1``, ``>= e_last-1``)."""
    nb = len(edges) - 1
    if nb <= 1:
        return "all"
    if k == 0:
        return f"< {edges[1]:.6g}"
    if k == nb - 1:
        return f">= {edges[nb - 1]:.6g}"
    return f"[{edges[k]:.6g}, {edges[k + 1]:.6g})"


def _slices_iv(error, label, prediction, loss, columns, max_order, min_size, alpha, adjust, n_bins, edges,
               max_levels, score_alpha, sort_by, confidence, backend) -> dict:
    """Validate the options once (the state and the public function share it)."""
    given = {"error": error, "loss": loss}
    for name, v in (*given.items(), ("label", label), ("prediction", prediction)):
        if v is not None and (not isinstance(v, str) or not v):
            raise TypeError(f"`{name}` must be a column name (str); got {v!r}")
    ways = (error is not None) + (loss is not None) + (label is not None or prediction is not None)
    if ways != 1:
        raise ValueError("give exactly one of `error` (0/1 column), `label` and `prediction` (error = "
                         "label != prediction) or `loss` (numeric column, mean loss)")
    if (label is None) != (prediction is None):
        raise ValueError("`label` and `prediction` go together: give both (error = label != prediction)")
    cols = None if columns is None else as_column_list("columns", columns)
    if cols is not None and not cols:
        raise ValueError("`columns` is empty: name at least one column to slice by")
    metric_cols = [c for c in (error, label, prediction, loss) if c is not None]
    if cols is not None:
        clash = [c for c in cols if c in metric_cols]
        if clash:
            raise ValueError(f"`columns` must not include the metric's column(s) {clash!r}")
    if edges is not None:
        if not isinstance(edges, dict):
            raise TypeError(f"`edges` must be a dict {{column: increasing bin edges}}; got {type(edges).__name__}")
        clean = {}
        for c, e in edges.items():
            a = np.asarray(e, dtype=np.float64)
            if a.ndim != 1 or a.size < 2 or not np.all(np.isfinite(a)) or np.any(np.diff(a) <= 0):
                raise ValueError(f"`edges` of column {c!r} must be at least 2 finite, strictly increasing "
                                 f"numbers; got {e!r}")
            clean[str(c)] = [float(x) for x in a]
        edges = clean
    return dict(
        error=error, label=label, prediction=prediction, loss=loss, columns=cols,
        max_order=check_int("max_order", max_order, low=1, high=3),
        min_size=check_int("min_size", min_size, low=2),
        alpha=check_probability("alpha", alpha),
        adjust=check_choice("adjust", adjust, _ADJUST),
        n_bins=check_int("n_bins", n_bins, low=2, high=1000),
        edges=edges,
        max_levels=check_int("max_levels", max_levels, low=2),
        score_alpha=check_probability("score_alpha", score_alpha, open_interval=False),
        sort_by=check_choice("sort_by", sort_by, _SORT),
        confidence=check_probability("confidence", confidence),
        backend=check_backend(backend),
    )


class SlicesState(State, kind="slices"):
    """Mergeable state of :func:`fastevals.slices`: count, sum and sum of squares of every slice.

    Takes the keyword arguments of :func:`fastevals.slices` (see there). Used alone (not through
    :func:`~fastevals.slices`), ``columns=None`` means every column but the metric's, resolved
    from the first input's schema; floating-point columns are binned with quantile edges of the
    first batch folded in, unless ``edges`` gives them (states merge only with equal edges:
    :func:`~fastevals.slices` fixes them before counting). Integer columns are categorical unless
    ``edges`` names them.

    Examples
    --------
    >>> import numpy as np
    >>> from fastevals import SlicesState
    >>> data = {"err": np.array([1, 0, 0, 1, 1, 0, 0, 0]), "dev": np.array(list("aabbaabb"))}
    >>> a = SlicesState(error="err", columns=["dev"], min_size=2).update({k: v[:4] for k, v in data.items()})
    >>> b = SlicesState(error="err", columns=["dev"], min_size=2).update({k: v[4:] for k, v in data.items()})
    >>> a.merge(b) == SlicesState(error="err", columns=["dev"], min_size=2).update(data)
    True
    """

    def __init__(self, *, error: str | None = None, label: str | None = None, prediction: str | None = None,
                 loss: str | None = None, columns: Columns | None = None, max_order: int = 2, min_size: int = 30,
                 alpha: float = 0.05, adjust: str = "bh", n_bins: int = 10,
                 edges: Mapping[str, Sequence[float]] | None = None, max_levels: int = 100, score_alpha: float = 0.95,
                 sort_by: str = "score", confidence: float = 0.95, nulls: str = "raise", filter: Filter = None,
                 batch_size: int | None = None, progress: bool | None = None, engine: str | None = None,
                 backend: str = "auto"):
        super().__init__(nulls=nulls, filter=filter, batch_size=batch_size, progress=progress)
        self.spec = _slices_iv(error, label, prediction, loss, columns, max_order, min_size, alpha, adjust,
                               n_bins, edges, max_levels, score_alpha, sort_by, confidence, backend)
        self.engine = engine
        self.binary = loss is None
        self.width = 2 if self.binary else 3
        self.slice_columns: list[str] | None = self.spec["columns"]
        self.kinds: dict[str, str] | None = None  # column -> "cat" | "bin"
        self.edges: dict[str, list[float] | None] = {}
        self.index: dict[str, src.LabelIndex] = {}
        self.shift: float | None = 0.0 if self.binary else None
        self.levels = np.zeros(0, dtype=np.int64)
        self.stats = np.zeros((0, self.width))
        self.total = np.zeros(self.width)
        if self.slice_columns is not None and edges is not None:
            unknown = [c for c in self.spec["edges"] if c not in self.slice_columns]
            if unknown:
                raise ValueError(f"`edges` names column(s) {unknown!r} that are not in `columns`")

    # -- protocol ---------------------------------------------------------------------------------------
    def _params(self) -> dict:
        s = self.spec
        return {k: s[k] for k in ("error", "label", "prediction", "loss")} | {
            "columns": self.slice_columns, "max_order": s["max_order"], "min_size": s["min_size"],
            "alpha": s["alpha"], "adjust": s["adjust"], "n_bins": s["n_bins"], "edges": s["edges"],
            "max_levels": s["max_levels"], "score_alpha": s["score_alpha"], "sort_by": s["sort_by"],
            "confidence": s["confidence"],
        }

    @property
    def metric_columns(self) -> dict[str, tuple[str, str]]:
        s = self.spec
        if s["error"] is not None:
            return {s["error"]: ("error", NUMERIC)}
        if s["loss"] is not None:
            return {s["loss"]: ("loss", NUMERIC)}
        return {s["label"]: ("label", LABEL), s["prediction"]: ("prediction", LABEL)}

    def _resolved(self) -> tuple[list[str], dict[str, str]]:
        """The slice columns and their kinds, once the input's schema has fixed them."""
        if self.slice_columns is None or self.kinds is None:
            raise ValueError("this SlicesState does not know its columns' kinds yet: update it with data first "
                             "(or use fastevals.slices, which resolves them from the schema)")
        return self.slice_columns, self.kinds

    def _requirements(self) -> dict[str, tuple[str, str]]:
        columns, kinds = self._resolved()
        need = dict(self.metric_columns)
        for c in columns:
            need[c] = ("columns", NUMERIC if kinds[c] == "bin" else LABEL)
        return need

    def update(self, data, *, row_offset: int | None = None):
        """Fold ``data`` in (see :meth:`fastevals._protocol.State.update`); the first call resolves the
        columns and their kinds from the input's schema.
        """
        if self.kinds is None:
            source = src.open_source(data, filter=self.filter, batch_size=self.batch_size)
            self._resolve(source.schema)
        return super().update(data, row_offset=row_offset)

    def _resolve(self, schema: pa.Schema) -> None:
        """Fix the slice columns (``columns=None``: every column but the metric's) and which are binned."""
        metric = set(self.metric_columns)
        if self.slice_columns is None:
            self.slice_columns = [n for n in schema.names if n not in metric]
            if not self.slice_columns:
                raise ValueError("no column to slice by: the input has only the metric's column(s)")
        columns = self.slice_columns
        given = self.spec["edges"] or {}
        kinds = {}
        for c in columns:
            if c not in schema.names:
                shown = ", ".join(repr(n) for n in schema.names[:20])
                raise ValueError(f"unknown column {c!r} (given as `columns`); the input has columns: {shown}")
            t = schema.field(c).type
            if c in given:
                if not (pa.types.is_integer(t) or pa.types.is_floating(t)):
                    raise TypeError(f"column {c!r} has `edges` but type {t}; binning needs a numeric column")
                kinds[c] = "bin"
                self.edges[c] = list(given[c])
            elif pa.types.is_floating(t):
                kinds[c] = "bin"
                self.edges[c] = None  # from the first batch
            else:
                kinds[c] = "cat"
                self.index[c] = src.LabelIndex()
        self.kinds = kinds
        self.levels = np.array([self._n_levels(c) for c in columns], dtype=np.int64)
        self.stats = np.zeros((self._layout(self.levels)[3], self.width))

    def _n_levels(self, c: str) -> int:
        if self._resolved()[1][c] == "bin":
            e = self.edges[c]
            return 0 if e is None else len(e) - 1
        return len(self.index[c])

    # -- layout -----------------------------------------------------------------------------------------
    def combos(self) -> list[tuple[int, ...]]:
        """The column combinations counted, in block order (all of size 1 .. max_order)."""
        C = len(self._resolved()[0])
        return [cm for k in range(1, min(self.spec["max_order"], C) + 1)
                for cm in itertools.combinations(range(C), k)]

    def _layout(self, levels):
        """(cols, offsets, strides, n_cells) of the blocks for the given level counts."""
        combos = self.combos()
        K = max((len(cm) for cm in combos), default=1)
        cols = np.full((len(combos), K), -1, dtype=np.int64)
        strides = np.zeros((len(combos), K), dtype=np.int64)
        offsets = np.zeros(len(combos), dtype=np.int64)
        off = 0
        for m, cm in enumerate(combos):
            offsets[m] = off
            size = 1
            for k in range(len(cm) - 1, -1, -1):
                cols[m, k] = cm[k]
                strides[m, k] = size
                size *= int(levels[cm[k]])
            off += size
        if off > MAX_CELLS:
            raise ValueError(f"{off:,} slice cells would be needed (over {MAX_CELLS:,}): lower `max_order`, "
                             "`n_bins` or the number of `columns`, or drop columns with many levels")
        return cols, offsets, strides, off

    def blocks(self, stats=None, levels=None):
        """``(combo, block view of shape (levels of its columns..., width))`` for each combo."""
        stats = self.stats if stats is None else stats
        levels = self.levels if levels is None else levels
        _, offsets, _, _ = self._layout(levels)
        out = []
        for m, cm in enumerate(self.combos()):
            dims = tuple(int(levels[c]) for c in cm)
            size = math.prod(dims)
            out.append((cm, stats[offsets[m]:offsets[m] + size].reshape(*dims, self.width)))
        return out

    def _grow(self, new_levels: np.ndarray) -> None:
        if np.array_equal(new_levels, self.levels):
            return
        new_stats = np.zeros((self._layout(new_levels)[3], self.width))
        for (_, old), (_, new) in zip(self.blocks(), self.blocks(new_stats, new_levels)):
            new[tuple(slice(0, s) for s in old.shape[:-1])] = old
        self.stats, self.levels = new_stats, np.asarray(new_levels, dtype=np.int64)

    # -- folding ------------------------------------------------------------------------------------------
    def _metric_values(self, batch: pa.RecordBatch) -> np.ndarray:
        s = self.spec
        if s["loss"] is not None:
            return np.asarray(src.numeric_view(batch.column(s["loss"])), dtype=np.float64)
        if s["error"] is not None:
            v = np.asarray(src.numeric_view(batch.column(s["error"])), dtype=np.float64)
            bad = (v != 0.0) & (v != 1.0)
            if bad.any():
                raise ValueError(f"column {s['error']!r} (given as `error`) must hold 0/1 or booleans (1 = the "
                                 f"model was wrong); found {v[bad][0]!r}. For a numeric loss use `loss=`")
            return v
        a, b = batch.column(s["label"]), batch.column(s["prediction"])
        a = a.dictionary_decode() if pa.types.is_dictionary(a.type) else a
        b = b.dictionary_decode() if pa.types.is_dictionary(b.type) else b
        try:
            wrong = pc.not_equal(a, b)
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
            raise TypeError(f"columns {s['label']!r} (`label`, {a.type}) and {s['prediction']!r} (`prediction`, "
                            f"{b.type}) cannot be compared; give them the same type") from None
        return src.numeric_view(wrong).astype(np.float64)

    def _update_batch(self, batch: pa.RecordBatch, rows) -> None:
        for lo in range(0, batch.num_rows, SUB_BATCH_ROWS):
            self._fold(batch.slice(lo, SUB_BATCH_ROWS))

    def _fold(self, batch: pa.RecordBatch) -> None:
        n = batch.num_rows
        v = self._metric_values(batch)
        if self.shift is None:  # a loss: shift by the first batch's mean (stable sums of squares)
            self.shift = float(np.mean(v))
        y = v - self.shift if self.shift else v
        columns, kinds = self._resolved()
        C = len(columns)
        codes = np.empty((n, C), dtype=np.int32)
        new_levels = self.levels.copy()
        for j, c in enumerate(columns):
            arr = batch.column(c)
            if kinds[c] == "bin":
                x = np.asarray(src.numeric_view(arr), dtype=np.float64)
                edges = self.edges[c]
                if edges is None:
                    e = quantile_edges(x, self.spec["n_bins"])
                    edges = self.edges[c] = e if len(e) >= 2 else [e[0], e[0] + 1.0]
                    new_levels[j] = len(edges) - 1
                inner = np.asarray(edges[1:-1])
                codes[:, j] = np.searchsorted(inner, x, side="right")
            else:
                lc = src.local_codes(arr)
                local = lc.codes.astype(np.int64) - lc.offset
                present = np.bincount(local, minlength=lc.width) > 0
                mapping = self.index[c].map_local(lc, present)
                if len(self.index[c]) > self.spec["max_levels"]:
                    raise ValueError(f"column {c!r} (given as `columns`) has more than max_levels="
                                     f"{self.spec['max_levels']} distinct values: bin it (give it `edges`), leave "
                                     "it out of `columns`, or raise `max_levels`")
                new_levels[j] = len(self.index[c])
                codes[:, j] = mapping[local]
        self._grow(new_levels)
        cols, offsets, strides, n_cells = self._layout(self.levels)
        ks = _kernels()
        y = np.ascontiguousarray(y, dtype=np.float64)
        if n >= PARALLEL_MIN_ROWS:
            parts = max(1, min(PARALLEL_PARTS, PART_BYTES // max(1, n_cells * self.width * 8)))
            out = np.zeros((parts, n_cells, self.width))
            ks.count_cells_parallel(codes, y, cols, offsets, strides, out)
        else:
            out = np.zeros((1, n_cells, self.width))
            ks.count_cells_serial(codes, y, cols, offsets, strides, out)
        self.stats += out.sum(axis=0)
        self.total += [n, float(np.sum(y)), float(np.dot(y, y)) if self.width == 3 else 0.0][:self.width]

    # -- merge and bytes ----------------------------------------------------------------------------------
    def _merge_from(self, other: SlicesState) -> None:
        if other.kinds is None:
            return
        o_columns, o_kinds = other._resolved()
        if self.kinds is None:
            self.kinds = dict(o_kinds)
            self.slice_columns = list(o_columns)
            self.edges = {c: (None if e is None else list(e)) for c, e in other.edges.items()}
            self.index = {c: src.LabelIndex() for c in other.index}
            self.levels = np.array([self._n_levels(c) for c in self.slice_columns], dtype=np.int64)
            self.stats = np.zeros((self._layout(self.levels)[3], self.width))
        if self.slice_columns != other.slice_columns or self.kinds != other.kinds:
            raise ValueError("cannot merge SlicesStates over different columns: "
                             f"{self.slice_columns!r} vs {other.slice_columns!r}")
        columns, kinds = self._resolved()
        for c in columns:
            o_edges = other.edges[c] if kinds[c] == "bin" else None
            if o_edges is not None:
                if self.edges[c] is None and not self.stats.any():
                    self.edges[c] = list(o_edges)
                elif self.edges[c] != other.edges[c]:
                    raise ValueError(f"cannot merge SlicesStates whose bins of column {c!r} differ "
                                     f"({self.edges[c]} vs {other.edges[c]}): pass the same `edges=` to both "
                                     "(fastevals.slices fixes them before counting)")
        # other's codes -> self's codes
        maps = []
        for c in columns:
            if kinds[c] == "cat":
                maps.append(np.array([self.index[c].add(lab) for lab in other.index[c].labels], dtype=np.int64))
            else:
                maps.append(np.arange(other._n_levels(c), dtype=np.int64))
        self._grow(np.array([self._n_levels(c) for c in columns], dtype=np.int64))
        o_stats, o_total = other.stats, other.total
        if not self.binary:
            if self.shift is None:
                self.shift = other.shift
            elif other.shift is not None and other.shift != self.shift:
                o_stats, o_total = _reshift(o_stats, other.shift - self.shift), _reshift(
                    o_total[None, :], other.shift - self.shift)[0]
        for (cm, mine), (_, theirs) in zip(self.blocks(), other.blocks(o_stats, other.levels)):
            mine[np.ix_(*[maps[c] for c in cm])] += theirs
        self.total = self.total + o_total

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"stats": self.stats, "total": self.total, "levels": self.levels}

    def _set_arrays(self, arrays) -> None:
        self.stats = arrays["stats"].reshape(-1, self.width)
        self.total = arrays["total"]
        self.levels = arrays["levels"].astype(np.int64)

    def _extra(self):
        return {
            "kinds": self.kinds, "shift": self.shift,
            "edges": {c: e for c, e in self.edges.items()},
            "labels": {c: list(ix.labels) for c, ix in self.index.items()},
        }

    def _set_extra(self, extra) -> None:
        self.kinds = extra["kinds"]
        self.shift = extra["shift"]
        self.edges = {c: (None if e is None else list(e)) for c, e in extra["edges"].items()}
        self.index = {c: src.LabelIndex(labels) for c, labels in extra["labels"].items()}

    # -- finalize -----------------------------------------------------------------------------------------
    def finalize(self):
        """The :class:`~fastevals.SlicesResult`: every slice tested, the significant ones reported."""
        from ._math import finalize_slices

        self.check_not_empty()
        return finalize_slices(self)

    def level_label(self, j: int, code: int):
        """The value of slice column ``j`` at ``code`` (a category, or a bin's text)."""
        columns, kinds = self._resolved()
        c = columns[j]
        if kinds[c] == "bin":
            return bin_label(self.edges[c], int(code))
        return self.index[c].labels[int(code)]

    @classmethod
    def _example(cls):
        rng = np.random.default_rng(17)
        n = 400
        country = rng.choice(["BR", "DE", "US"], n)
        device = rng.choice(["android", "ios"], n)
        age = rng.uniform(18, 80, n)
        p = np.where((country == "BR") & (device == "android"), 0.5, 0.1)
        err = (rng.random(n) < p).astype(np.int8)
        kwargs = {"error": "err", "columns": ["country", "device", "age"], "edges": {"age": [18, 30, 50, 80]},
                  "min_size": 10}
        return kwargs, {"err": err, "country": country, "device": device, "age": age}


def _reshift(stats: np.ndarray, d: float) -> np.ndarray:
    """Sums of (x - K_old) re-expressed as sums of (x - K_new), d = K_old - K_new."""
    out = stats.copy()
    n, s = stats[:, 0], stats[:, 1]
    out[:, 1] = s + n * d
    out[:, 2] = stats[:, 2] + 2.0 * d * s + n * d * d
    return out
