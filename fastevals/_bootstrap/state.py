"""The bootstrap's mergeable state: :class:`BootstrapState` (per-replicate weighted sums,
nothing per row), its cell codes and cluster keys, and :class:`_JackknifeSums`, BCa's second
pass as a state (one per Dask partition).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from .. import _dask
from .. import _source as src
from .. import metrics as _metrics
from .._config import PARALLEL_MIN_ROWS
from .._protocol import State
from .._validation import check_choice, check_int, check_probability
from ._math import _METHODS, _categorical_sums, _jack_moments, _results, _sort_for, _sorted_jackknife, _unit_sums

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .._typing import Columns, Filter, Seed
    from ..metrics import Metric
    from .api import _Args

# rows of a multinomial weight block (replicates x rows): bounds its memory
_MULTINOMIAL_BLOCK = 1 << 22


# ----------------------------------------------------------------------------------------------------
# weight keys


def _cluster_keys(arr) -> np.ndarray:
    """64-bit weight keys of a cluster column's values (equal values -> equal keys, in every batch)."""
    from .._kernels import poisson as kp

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if pa.types.is_dictionary(t):
        return _cluster_keys(arr.dictionary)[src.numeric_view(arr.indices)]
    if pa.types.is_integer(t):
        return kp.hash_keys_int(src.numeric_view(arr).astype(np.int64))
    if pa.types.is_boolean(t):
        return kp.hash_keys_int(src.numeric_view(arr).astype(np.int64))
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        if pa.types.is_string(t):
            arr = arr.cast(pa.large_string())
        arr = pa.concat_arrays([arr]) if arr.offset else arr
        bufs = arr.buffers()
        offsets = np.frombuffer(bufs[1], dtype=np.int64)[: len(arr) + 1]
        data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.empty(0, np.uint8)
        return kp.hash_keys_bytes(offsets, data)
    raise TypeError(f"the `cluster` column must hold integers or strings; got {t}")


# ----------------------------------------------------------------------------------------------------
# the engine


class _Cells:
    """(by..., group) combinations -> stable cell codes, batch by batch."""

    def __init__(self, columns):
        self.columns = columns
        self.index = src.LabelIndex()

    def codes(self, batch) -> np.ndarray | None:
        if not self.columns:
            return None
        parts = [src.local_codes(batch.column(c)) for c in self.columns]
        lc = src.combine_codes(parts)
        local = np.asarray(lc.codes, dtype=np.int64) - lc.offset
        present = np.bincount(local, minlength=lc.width) > 0
        gmap = self.index.map_local(lc, present)
        return np.ascontiguousarray(gmap[local])

    def __len__(self):
        return max(1, len(self.index))

    def label(self, c):
        if not self.columns:
            return ()
        lab = self.index.labels[c]
        return lab if len(self.columns) > 1 else (lab,)


def _cat(parts, dtype) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype=dtype)


def _grow(a, n_cells, axis):
    if a.shape[axis] >= n_cells:
        return a
    shape = list(a.shape)
    shape[axis] = n_cells - a.shape[axis]
    return np.concatenate([a, np.zeros(shape, dtype=a.dtype)], axis=axis)


class BootstrapState(State, kind="bootstrap"):
    """Mergeable state of a bootstrap: per-replicate weighted sums, nothing per row.

    ``update(data)`` folds rows in, ``merge(other)`` combines two states
    (associative and commutative: shards of a log merged in any tree give the
    one-pass answer), ``finalize()`` gives the intervals.  This is what
    :func:`bootstrap` runs, and what runs on each Dask partition.

    What the state holds, per (segment, group) cell:

    * sum metrics: the weight total and the weighted feature sums of each replicate
      (``B x cells x features``); categorical metrics (proportion, accuracy, precision...):
      only the count of each outcome pattern, the replicates are drawn at finalize;
    * sorted metrics (AUC, average precision, quantiles): the columns they read, since they
      sort all rows once (this part grows with the rows);
    * ``resampling="multinomial"``: the rows' features (classic bootstrap, small data).

    A row's weight is keyed by its global index (or its ``cluster`` value), so the
    state of rows ``k .. k + m - 1`` must be told ``row_offset=k``; states of
    overlapping row ranges do not merge (their weights would repeat).

    Parameters
    ----------
    metric, n_resamples, seed, cluster, by, group, resampling, nulls, backend
        As in :func:`bootstrap`.  ``seed=None`` draws a seed once, here: copies of the state
        (one per partition) share it.

    Example
    -------
    >>> import numpy as np
    >>> from fastevals import BootstrapState, metrics
    >>> x = np.random.default_rng(0).normal(size=1000)
    >>> a = BootstrapState(metrics.mean("x"), n_resamples=500, seed=3).update({"x": x[:400]})
    >>> b = BootstrapState(metrics.mean("x"), n_resamples=500, seed=3).update({"x": x[400:]}, row_offset=400)
    >>> one = BootstrapState(metrics.mean("x"), n_resamples=500, seed=3).update({"x": x})
    >>> lo1, hi1 = a.merge(b).finalize().confidence_interval
    >>> lo2, hi2 = one.finalize().confidence_interval
    >>> bool(np.isclose(lo1, lo2, rtol=1e-12) and np.isclose(hi1, hi2, rtol=1e-12))
    True
    """

    row_keys = "used"  # a row's weight is keyed by its place among the rows used (after drops)

    def __init__(self, metric: Metric | Sequence[Metric], *, n_resamples: int = 2000, confidence: float = 0.95,
                 method: str = "percentile", seed: Seed = None, cluster: str | None = None,
                 by: Columns | None = None, group: str | None = None, control: str | None = None,
                 comparison: str = "difference", resampling: str = "poisson", nulls: str = "raise",
                 filter: Filter = None, batch_size: int | None = None, progress: bool | None = None,
                 backend: str = "auto"):
        from .api import _bootstrap_iv  # api imports this module

        State.__init__(self, nulls=nulls, filter=filter, batch_size=batch_size, progress=progress)
        self._setup(_bootstrap_iv(metric, n_resamples, confidence, method, seed, cluster, by, group, control,
                                  resampling, nulls, progress, comparison, backend))

    @classmethod
    def _from_args(cls, args: _Args, *, filter=None, batch_size=None) -> BootstrapState:
        st = cls.__new__(cls)
        State.__init__(st, nulls=args.nulls, filter=filter, batch_size=batch_size, progress=args.progress)
        st._setup(args)
        return st

    def _setup(self, args: _Args) -> None:
        from .._kernels import bootstrap as kb

        self.a = args
        leaves: list = []
        for m in args.metrics:
            for leaf in m.leaves():
                if all(leaf is not o for o in leaves):
                    leaves.append(leaf)
        self.leaves = leaves
        self.sum_leaves = [lf for lf in leaves if isinstance(lf, _metrics.SumMetric)]
        self.sorted_leaves = [lf for lf in leaves if isinstance(lf, _metrics.SortedMetric)]
        # the sufficient-statistics shortcut: every leaf categorical, rows independent (no cluster)
        self.categorical = (not self.sorted_leaves and all(lf.categorical for lf in self.sum_leaves)
                            and args.cluster is None)
        self.offsets = []
        f = 0
        for lf in self.sum_leaves:
            self.offsets.append(f)
            f += lf.n_features
        self.F = f
        if self.categorical and self.F > 20:
            self.categorical = False
        need: dict = {}
        for lf in leaves:
            for col, spec in lf.columns().items():
                need.setdefault(col, (spec[0], src.NUMERIC))
        self.metric_cols = list(need)
        for col in args.by:
            need[col] = ("by", src.LABEL)
        if args.group:
            need[args.group] = ("group", src.LABEL)
        if args.cluster:
            need[args.cluster] = ("cluster", src.LABEL)
        self.need = need
        self.cells = _Cells(args.by + ([args.group] if args.group else []))
        self.ctx: list[dict] = [{} for _ in self.sum_leaves]
        B = args.n_resamples
        self.wsum = np.zeros((B, 1), dtype=np.int64)
        self.vsum = np.zeros((B, 1, self.F, kb.LANES), dtype=np.float64)
        self.s_full = np.zeros((1, self.F))
        self.n_full = np.zeros(1, dtype=np.int64)
        self.pat = np.zeros((1, 1 << self.F if self.categorical else 1), dtype=np.int64)
        self.multinomial = args.resampling == "multinomial"
        self.keep_cells = bool(self.sorted_leaves) or self.multinomial
        self.kept_cols: dict = {c: [] for lf in self.sorted_leaves for c in lf.columns()}
        self.kept_cells: list = []
        self.kept_keys: list = []
        self.kept_rows: list = []  # global row index of each kept row
        self.kept_V: list = []
        self.ranges: list = []  # [start, stop) global row ranges folded in
        self._data = None  # the in-process input, for BCa's second pass
        self._dask_input: tuple | None = None  # (data, engine, filter, batch_size) of a run on Dask, for the same
        self.backend_used = None if args.backend != "cpu" else "cpu"
        self.rows_hint = None  # rows of the whole input when known (the GPU's "large enough")

    def _requirements(self) -> dict:
        return self.need

    # -- the protocol's bytes ------------------------------------------------------------------------
    def _params(self) -> dict:
        a = self.a
        return {"metric": [_metrics.to_spec(m) for m in a.metrics], "n_resamples": a.n_resamples,
                "confidence": a.confidence, "method": a.method, "seed": a.seed, "cluster": a.cluster,
                "by": list(a.by), "group": a.group, "control": a.control, "comparison": a.comparison,
                "resampling": a.resampling, "backend": a.backend}

    def _arrays(self) -> dict:
        out = {"wsum": self.wsum, "vsum": self.vsum, "s_full": self.s_full, "n_full": self.n_full,
               "pat": self.pat, "ranges": np.array(self.ranges, dtype=np.int64).reshape(-1, 2)}
        if self.keep_cells:
            out["kept_cells"] = _cat(self.kept_cells, np.int64)
            out["kept_rows"] = _cat(self.kept_rows, np.int64)
        if self.kept_keys:
            out["kept_keys"] = _cat(self.kept_keys, np.uint64)
        if self.multinomial:
            out["kept_V"] = (np.concatenate(self.kept_V, axis=1) if self.kept_V
                             else np.zeros((self.F, 0), dtype=np.float64))
        for c, parts in self.kept_cols.items():
            out[f"col:{c}"] = _cat(parts, np.float64)
        return out

    def _set_arrays(self, arrays: dict) -> None:
        for name in ("wsum", "vsum", "s_full", "n_full", "pat"):
            setattr(self, name, arrays[name])
        self.ranges = [tuple(int(v) for v in r) for r in arrays["ranges"]]
        if "kept_cells" in arrays:
            self.kept_cells, self.kept_rows = [arrays["kept_cells"]], [arrays["kept_rows"]]
        if "kept_keys" in arrays:
            self.kept_keys = [arrays["kept_keys"]]
        if "kept_V" in arrays:
            self.kept_V = [arrays["kept_V"]]
        for c in self.kept_cols:
            self.kept_cols[c] = [arrays[f"col:{c}"]]

    def _extra(self) -> dict:
        return {"labels": list(self.cells.index.labels), "ctx": [dict(c) for c in self.ctx],
                "backend_used": self.backend_used}

    def _set_extra(self, extra: dict) -> None:
        self.cells.index = src.LabelIndex(extra["labels"])
        self.ctx = [dict(c) for c in extra["ctx"]]
        self.backend_used = extra["backend_used"]

    @classmethod
    def _example(cls):
        rng = np.random.default_rng(7)
        data = {"x": rng.exponential(size=120), "y": rng.integers(0, 2, 120), "seg": rng.integers(0, 3, 120)}
        return {"metric": [_metrics.mean("x"), _metrics.std("x")], "n_resamples": 64, "seed": 3, "by": "seg"}, data

    # -- what the weights are keyed by ------------------------------------------------------------
    @property
    def keyed_by_row(self) -> bool:
        """True when row weights are keyed by the global row index (no cluster, Poisson, per-row draws)."""
        if self.a.cluster is not None or self.multinomial:
            return False
        return bool(self.sorted_leaves) or (self.F > 0 and not self.categorical)

    def _on_gpu(self, n: int) -> bool:
        """Whether the per-row work runs on the GPU: decided once per state (``backend``), on the
        first batch (or the whole table's rows when known), and recorded in ``backend_used``.
        """
        if self.backend_used is None:
            from .._cuda.backend import resolve_backend

            rows = max(n, self.rows_hint or 0)
            self.backend_used = resolve_backend(self.a.backend, rows * self.a.n_resamples)
        return self.backend_used == "cuda"

    @property
    def keyed_by_row_offset(self) -> bool:
        """Whether Dask must give each partition its first row's global index (a counting pass)."""
        return self.keyed_by_row

    def _next_row(self) -> int:
        return max((stop for _, stop in self.ranges), default=0)

    # -- update --------------------------------------------------------------------------------------
    def update(self, data, *, row_offset: int | None = None) -> BootstrapState:
        """Fold the rows of ``data`` (any source fastevals reads) into the state; returns it.

        ``row_offset``: global index of the first row used (default: right after the rows
        folded so far).  The update is atomic: on an error the state is unchanged.
        """
        part = self._empty()
        part.ctx = copy.deepcopy(self.ctx)
        g0 = self._next_row() if row_offset is None else check_int("row_offset", row_offset, low=0)
        part.rows_hint = getattr(data, "num_rows", None) if isinstance(data, pa.Table) else None
        for batch, rows, read, dropped in part._scan(data, g0, progress=self.progress):
            part.n_read += read
            part.n_dropped += dropped
            if batch is not None:
                part._fold(batch, rows.start)
        if part.n:
            part.ranges.append((g0, g0 + part.n))
        self._absorb(part)
        self._data = data
        return self

    def _batch_features(self, batch):
        cols = {c: src.numeric_view(batch.column(c)) for c in self.metric_cols}
        if self.sum_leaves and not self.ctx[0].get("_prepared"):
            for lf, ctx in zip(self.sum_leaves, self.ctx):
                lf.prepare(cols, ctx)
                ctx["_prepared"] = True
        if len(self.sum_leaves) == 1:
            # one leaf: its features as they come (a zero-copy view for a float64 column)
            V = np.ascontiguousarray(self.sum_leaves[0].features(cols, self.ctx[0]), dtype=np.float64)
        elif self.F:
            V = np.empty((self.F, batch.num_rows), dtype=np.float64)
            for lf, off, ctx in zip(self.sum_leaves, self.offsets, self.ctx):
                V[off:off + lf.n_features] = lf.features(cols, ctx)
        else:
            V = np.empty((0, batch.num_rows), dtype=np.float64)
        return cols, V

    def _fold(self, batch, g0: int) -> None:
        from .._kernels import bootstrap as kb

        a = self.a
        n = batch.num_rows
        B = a.n_resamples
        cells = self.cells.codes(batch)
        C = len(self.cells)
        cols, V = self._batch_features(batch)
        keys = _cluster_keys(batch.column(a.cluster)) if a.cluster else None
        cc = cells if cells is not None else np.zeros(n, dtype=np.int64)
        # full-data sums (the estimate)
        self.s_full = _grow(self.s_full, C, 0)
        self.n_full = _grow(self.n_full, C, 0)
        if cells is None:
            self.n_full[0] += n
            self.s_full[0] += V.sum(axis=1)
        else:
            self.n_full += np.bincount(cc, minlength=C)
            for f in range(self.F):
                self.s_full[:, f] += np.bincount(cc, weights=V[f], minlength=C)
        if self.keep_cells:
            self.kept_cells.append(cc)
            self.kept_rows.append(np.arange(g0, g0 + n, dtype=np.int64))
        if self.sorted_leaves:
            for c in self.kept_cols:
                self.kept_cols[c].append(np.asarray(cols[c]).copy())
            if keys is not None:
                self.kept_keys.append(keys)
        if self.multinomial:
            self.kept_V.append(np.array(V, dtype=np.float64))
        elif self.categorical:
            code = np.zeros(n, dtype=np.int64)
            for f in range(self.F):
                code |= (V[f] != 0).astype(np.int64) << f
            self.pat = _grow(self.pat, C, 0)
            base = cc * self.pat.shape[1] if cells is not None else 0
            self.pat += np.bincount(base + code, minlength=C * self.pat.shape[1]).reshape(C, -1)
        elif self.F:
            self.wsum = _grow(self.wsum, C, 1)
            self.vsum = _grow(self.vsum, C, 1)
            if self._on_gpu(n):
                from .._cuda import bootstrap as cb

                kern = cb.accumulate_rows
            else:
                kern = kb.accumulate_rows_parallel if n * B >= PARALLEL_MIN_ROWS else kb.accumulate_rows_serial
            kern(np.uint64(a.seed), g0, n, keys if keys is not None else np.empty(0, np.uint64),
                 cells if cells is not None else np.empty(0, np.int64), np.ascontiguousarray(V),
                 self.wsum, self.vsum)

    # -- merge ---------------------------------------------------------------------------------------
    def _spec(self) -> tuple:
        a = self.a
        return ([m.name for m in a.metrics], a.n_resamples, a.seed, a.cluster, a.by, a.group, a.resampling,
                a.nulls)

    def _empty(self) -> BootstrapState:
        return BootstrapState._from_args(self.a, filter=self.filter, batch_size=self.batch_size)

    def merge(self, other: BootstrapState) -> BootstrapState:
        """A new state holding both states' rows (neither input changes).

        Both must have the same metrics, ``n_resamples``, seed, cluster, by, group and
        resampling, and (for row-keyed weights) disjoint row ranges.
        """
        if not isinstance(other, BootstrapState):
            raise TypeError(f"can only merge a BootstrapState with another; got {type(other).__name__}")
        if other._spec() != self._spec():
            raise ValueError("cannot merge bootstrap states with different settings: "
                             f"{self._spec()!r} vs {other._spec()!r}")
        out = self._empty()
        out._absorb(self)
        out._absorb(other)
        return out

    def _absorb(self, st: BootstrapState) -> None:
        """Add ``st`` (same settings) into this state, in place."""
        if self.keyed_by_row:
            for s0, s1 in st.ranges:
                for r0, r1 in self.ranges:
                    if s0 < r1 and r0 < s1:
                        raise ValueError(
                            f"the states cover overlapping rows ({r0}..{r1 - 1} and {s0}..{s1 - 1}): a row's "
                            "bootstrap weight is keyed by its global index, so each state must be given its "
                            "rows' place with update(..., row_offset=k)"
                        )
        if self.cells.columns:
            cmap = np.array([self.cells.index.add(lab) for lab in st.cells.index.labels], dtype=np.int64)
        else:
            cmap = np.zeros(1, dtype=np.int64)
        C = len(self.cells)
        c_st = cmap.shape[0]
        for i, theirs in enumerate(st.ctx):
            if not self.ctx[i].get("_prepared"):
                self.ctx[i] = copy.deepcopy(theirs)
        shifted = self._rebased(st)
        s_full, wsum, vsum, pat = shifted
        self.s_full = _grow(self.s_full, C, 0)
        self.n_full = _grow(self.n_full, C, 0)
        self.s_full[cmap] += _grow(s_full, c_st, 0)
        self.n_full[cmap] += _grow(st.n_full, c_st, 0)
        if self.categorical:
            self.pat = _grow(self.pat, C, 0)
            self.pat[cmap] += _grow(pat, c_st, 0)
        elif self.F and not self.multinomial:
            self.wsum = _grow(self.wsum, C, 1)
            self.vsum = _grow(self.vsum, C, 1)
            self.wsum[:, cmap] += _grow(wsum, c_st, 1)
            self.vsum[:, cmap] += _grow(vsum, c_st, 1)
        self.kept_cells.extend(cmap[c] for c in st.kept_cells)
        for c, parts in st.kept_cols.items():
            self.kept_cols[c].extend(parts)
        self.kept_keys.extend(st.kept_keys)
        self.kept_rows.extend(st.kept_rows)
        self.kept_V.extend(st.kept_V)
        self.ranges.extend(st.ranges)
        used = {self.backend_used, st.backend_used}
        self.backend_used = "cuda" if "cuda" in used else ("cpu" if "cpu" in used else None)
        self.n_read += st.n_read
        self.n_dropped += st.n_dropped

    def _rebased(self, st: BootstrapState):
        """``st``'s sums expressed with this state's per-leaf shifts (``std`` centres its sums)."""
        s_full, wsum, vsum, pat = st.s_full, st.wsum, st.vsum, st.pat
        for lf, off, mine, theirs in zip(self.sum_leaves, self.offsets, self.ctx, st.ctx):
            if not theirs.get("_prepared") or mine == theirs:
                continue
            sl = slice(off, off + lf.n_features)
            s_full = s_full.copy()
            s_full[:, sl] = lf.rebase(s_full[:, sl], _grow(st.n_full, s_full.shape[0], 0), theirs, mine)
            if self.F and not self.categorical and not self.multinomial:
                # lanes hold partial sums; the rebased total goes to lane 0
                vsum = vsum.copy()
                tot = lf.rebase(vsum[:, :, sl].sum(axis=3), wsum, theirs, mine)
                vsum[:, :, sl] = 0.0
                vsum[:, :, sl, 0] = tot
        if self.multinomial and any(t.get("_prepared") and m != t for m, t in zip(self.ctx, st.ctx)):
            raise ValueError("cannot merge multinomial bootstrap states of a metric with a data-dependent "
                             "centre (std); use resampling='poisson'")
        return s_full, wsum, vsum, pat

    # -- replicate values ----------------------------------------------------------------------------
    def _values(self):
        """Per leaf: replicate values ``(B, C)`` and the estimate ``(C,)``; sets what BCa reads."""
        a = self.a
        B = a.n_resamples
        seed = np.uint64(a.seed)
        C = len(self.cells)
        self.C = C
        self.s_full = s_full = _grow(self.s_full, C, 0)
        self.n_full = n_full = _grow(self.n_full, C, 0)
        if self.keep_cells:
            self._rows_in_order()
        if self.multinomial:
            self.mult_V = (np.concatenate(self.kept_V, axis=1) if self.kept_V
                           else np.zeros((self.F, 0)))
            self.mult_cells = np.concatenate(self.kept_cells) if self.kept_cells else np.zeros(0, np.int64)
        if self.F:
            if self.multinomial:
                S, nb = self._multinomial_sums(self.mult_V, self.mult_cells, C)
            elif self.categorical:
                self.pat = _grow(self.pat, C, 0)
                S, nb = _categorical_sums(seed, B, self.pat, self.F)
            else:
                self.wsum = _grow(self.wsum, C, 1)
                self.vsum = _grow(self.vsum, C, 1)
                S = self.vsum.sum(axis=3)
                nb = self.wsum
        else:
            S = np.zeros((B, C, 0))
            nb = np.zeros((B, C), dtype=np.int64)
        values = {}
        estimates = {}
        for lf, off in zip(self.sum_leaves, self.offsets):
            values[id(lf)] = lf.stat(S[:, :, off:off + lf.n_features], nb)
            estimates[id(lf)] = lf.stat(s_full[:, off:off + lf.n_features], n_full)
        if self.sorted_leaves:
            cols = {c: np.concatenate(v) for c, v in self.kept_cols.items()}
            cc = np.concatenate(self.kept_cells)
            keys = np.concatenate(self.kept_keys) if a.cluster is not None else None
            rows = np.concatenate(self.kept_rows)
            n = rows.shape[0]
            if keys is None and n and (rows[0] != 0 or rows[-1] != n - 1):
                # row-keyed weights: the kernel keys row i of the sorted input by its position
                raise ValueError(
                    f"sorted metrics (AUC, average precision, quantiles) need every row of the data; this "
                    f"state holds {n:,} rows numbered {int(rows.min())}..{int(rows.max())}, not 0..{n - 1}"
                )
            self.sorted_data = (cols, cc, keys)
            for lf in self.sorted_leaves:
                v, est = self._sorted_leaf(lf, cols, cc, keys, C, seed, B)
                values[id(lf)] = v
                estimates[id(lf)] = est
        self.values, self.estimates = values, estimates
        return values, estimates

    def _rows_in_order(self) -> None:
        """Put kept rows (merged in any order) back in global row order, in place."""
        rows = np.concatenate(self.kept_rows) if self.kept_rows else np.zeros(0, np.int64)
        if rows.shape[0] < 2 or np.all(rows[1:] > rows[:-1]):
            return
        if np.unique(rows).shape[0] != rows.shape[0]:
            return  # states of unrelated inputs (multinomial): keep the merge order
        perm = np.argsort(rows, kind="stable")
        self.kept_rows = [rows[perm]]
        self.kept_cells = [np.concatenate(self.kept_cells)[perm]]
        for c, parts in self.kept_cols.items():
            self.kept_cols[c] = [np.concatenate(parts)[perm]]
        if self.kept_keys:
            self.kept_keys = [np.concatenate(self.kept_keys)[perm]]
        if self.kept_V:
            self.kept_V = [np.concatenate(self.kept_V, axis=1)[:, perm]]

    def finalize(self, *, confidence: float | None = None, method: str | None = None, control=None):
        """The intervals: a :class:`BootstrapResult`, or a :class:`BootstrapTable` for several.

        The state's own ``confidence``, ``method`` and ``control`` unless given here.
        ``method="bca"`` needs a second pass over the data (the jackknife): it works on a
        state whose last update read a table, dataset or Parquet path (or ran on Dask).
        """
        confidence = self.a.confidence if confidence is None else check_probability("confidence", confidence)
        method = self.a.method if method is None else check_choice("method", method, _METHODS)
        control = self.a.control if control is None else control
        if control is not None and self.a.group is None:
            raise ValueError("`control` needs a state built with `group=`")
        if self.n == 0:
            if self.n_read:
                self.check_not_empty()
            raise ValueError("the bootstrap state holds no rows: update() it with data first")
        if method == "bca" and self._data is None and self._dask_input is None:
            raise ValueError("method='bca' reads the data twice (jackknife); this state has no input to read "
                             "again (it was merged or rebuilt from bytes): use method='percentile' or 'basic'")
        args = dataclasses.replace(self.a, confidence=confidence, method=method, control=control)
        return _results(self, args)

    # -- serialization -------------------------------------------------------------------------------
    def __getstate__(self):
        d = dict(self.__dict__)
        d["_data"] = None  # the input may be a table or an open stream; a copy on a worker reads its own
        d["_dask_input"] = None
        return d

    def _multinomial_sums(self, V, cc, C):
        a = self.a
        B = a.n_resamples
        S = np.zeros((B, C, self.F))
        nb = np.zeros((B, C), dtype=np.int64)
        for b0, W in self._multinomial_blocks(cc, C):
            for c in range(C):
                idx = np.flatnonzero(cc == c)
                Wc = W[:, idx]
                nb[b0:b0 + len(W), c] = Wc.sum(axis=1)
                S[b0:b0 + len(W), c] = Wc @ V[:, idx].T
        return S, nb

    def _multinomial_blocks(self, cc, C):
        """Blocks of multinomial weights W[b, i]: each cell's rows resampled with replacement."""
        B = self.a.n_resamples
        rng = np.random.default_rng(self.a.seed)
        n = cc.shape[0]
        step = max(1, _MULTINOMIAL_BLOCK // max(n, 1))
        members = [np.flatnonzero(cc == c) for c in range(C)]
        for b0 in range(0, B, step):
            m = min(step, B - b0)
            W = np.zeros((m, n), dtype=np.float64)
            for idx in members:
                k = idx.shape[0]
                if k == 0:
                    continue
                draws = rng.integers(0, k, size=(m, k))
                flat = (draws + (np.arange(m) * k)[:, None]).ravel()
                W[:, idx] = np.bincount(flat, minlength=m * k).reshape(m, k)
            yield b0, W

    def _sorted_leaf(self, lf, cols, cc, keys, C, seed, B):
        from .._kernels import bootstrap as kb

        x, y, order, tie_end, bounds = _sort_for(lf, cols, cc, C)
        kind = {"auc": 0, "ap": 1, "quantile": 2}[lf.kind]
        ones = np.ones((1, x.shape[0]))
        est = kb.sorted_weighted(kind, ones, x, y, tie_end, bounds, lf.q)[0]
        if self.a.resampling == "multinomial":
            out = np.empty((B, C))
            for b0, W in self._multinomial_blocks(cc, C):
                out[b0:b0 + len(W)] = kb.sorted_weighted(kind, np.ascontiguousarray(W[:, order]), x, y, tie_end,
                                                         bounds, lf.q)
            return out, est
        k = np.ascontiguousarray(keys[order]) if keys is not None else np.empty(0, np.uint64)
        if self._on_gpu(x.shape[0]):
            from .._cuda import bootstrap as cb

            kb = cb
        out = kb.sorted_poisson(kind, seed, B, x, y, tie_end, k, order.astype(np.int64), bounds, lf.q)
        return out, est

    # -- BCa: jackknife in closed form --------------------------------------------------------------
    def jackknife(self, expr, est_cells):
        """Per cell: (n, sum d^2, sum d^3) of the jackknife values of ``expr``."""
        return _jack_moments(self._jack_acc(expr, est_cells))

    def _needs_rescan(self, expr) -> bool:
        """True when the jackknife of ``expr`` reads the data again (sum leaves, per-row weights)."""
        if self.categorical or self.multinomial:
            return False
        return any(any(lf is e for e in expr.leaves()) for lf in self.sum_leaves)

    def _jack_acc(self, expr, est_cells, units=None, rows=None):
        """Power sums ``(C, 4)`` of jackknife deviations: sum m e^k, k = 0..3, e = theta_-i - theta_hat.

        ``units``: per-unit sums ``(cells, S, n)`` for the cluster jackknife; ``rows``: an
        iterable of ``(g0, cells, V)`` batches; both default to a second pass over the source.
        """
        C = self.C
        acc = np.zeros((C, 4))  # sum m, sum m e, sum m e^2, sum m e^3 with e = theta_-i - theta_hat
        expr_leaves = expr.leaves()
        sorted_jack = {}
        for lf in self.sorted_leaves:
            if any(lf is e for e in expr_leaves):
                cols, cc, _ = self.sorted_data
                sorted_jack[id(lf)] = _sorted_jackknife(lf, cols, cc, C)

        def add(cells, jack, mult):
            e = jack - est_cells[cells]
            for k in range(4):
                acc[:, k] += np.bincount(cells, weights=mult * e**k, minlength=C)

        sum_leaves = [(lf, off) for lf, off in zip(self.sum_leaves, self.offsets)
                      if any(lf is e for e in expr_leaves)]
        if self.categorical and self.a.resampling == "poisson":
            P = self.pat.shape[1]
            cells = np.repeat(np.arange(C), P)
            pats = np.tile(np.arange(P), C)
            mult = self.pat.ravel().astype(np.float64)
            keep = mult > 0
            cells, pats, mult = cells[keep], pats[keep], mult[keep]
            bits = ((pats[:, None] >> np.arange(self.F)) & 1).astype(np.float64)
            vals = {}
            for lf, off in sum_leaves:
                sl = slice(off, off + lf.n_features)
                vals[id(lf)] = lf.stat(self.s_full[cells, sl] - bits[:, sl], self.n_full[cells] - 1)
            add(cells, expr.combine(vals), mult)
        else:
            if self.a.cluster is not None:
                # leave one cluster out: per (cell, cluster) sums, one jackknife value per cluster
                cc_u, S_u, n_u = self._cluster_sums() if units is None else units
                vals = {}
                for lf, off in sum_leaves:
                    sl = slice(off, off + lf.n_features)
                    vals[id(lf)] = lf.stat(self.s_full[cc_u, sl] - S_u[sl].T, self.n_full[cc_u] - n_u)
                add(cc_u, expr.combine(vals), np.ones(cc_u.shape[0]))
                batches = []
            elif self.a.resampling == "multinomial":
                batches = [(0, self.mult_cells, self.mult_V)]
            elif not sum_leaves:
                cc = self.sorted_data[1]
                batches = [(0, cc, np.empty((self.F, cc.shape[0])))]
            else:
                batches = self._rescan() if rows is None else rows
            for g0, cc, V in batches:
                n = cc.shape[0]
                vals = {}
                for lf, off in sum_leaves:
                    sl = slice(off, off + lf.n_features)
                    vals[id(lf)] = lf.stat(self.s_full[cc, sl] - V[sl].T, self.n_full[cc] - 1)
                for key, jack in sorted_jack.items():
                    vals[key] = jack[g0:g0 + n]
                add(cc, expr.combine(vals), np.ones(n))
        return acc

    def _jackknife_on_dask(self, exprs, ests):
        """The BCa second pass on Dask: a fold of per-partition jackknife sums, then the moments."""
        need = [i for i, e in enumerate(exprs) if self._needs_rescan(e)]
        out = [None] * len(exprs)
        for i, e in enumerate(exprs):
            if i not in need:
                out[i] = self.jackknife(e, ests[i])
            elif any(lf is x for lf in self.sorted_leaves for x in e.leaves()):
                raise ValueError(f"method='bca' on Dask: {e.name} combines a sorted metric with a sum metric, "
                                 "whose jackknife needs both passes in one process; compare them in separate "
                                 "calls, or use method='percentile'")
        if not need:
            return out
        data, engine, filter, batch_size = self._dask_input
        probe = _JackknifeSums(self, [exprs[i] for i in need], [ests[i] for i in need])
        sums, _ = _dask.update_state(probe, data, engine=engine, filter=filter, batch_size=batch_size)
        for j, i in enumerate(need):
            if self.a.cluster is not None:
                cc, keys, S, n = sums.unit_parts()
                acc = self._jack_acc(exprs[i], ests[i], units=(cc, S, n))
            else:
                acc = sums.acc[j]
            out[i] = _jack_moments(acc)
        return out

    def _cluster_sums(self):
        """(cell, sums (F, units), rows) per (cell, cluster) unit, from a second pass."""
        parts = []
        for _, cc, V, keys in self._rescan(with_keys=True):
            parts.append(_unit_sums(cc, keys, V, np.ones(cc.shape[0], dtype=np.int64)))
        cc, keys, S, n = (np.concatenate([p[i] for p in parts], axis=-1) for i in range(4))
        cc, _, S, n = _unit_sums(cc, keys, S, n)
        return cc, S, n

    def _rescan(self, with_keys=False):
        if self._data is None or not src.open_source(self._data, filter=self.filter).rescannable:
            raise ValueError("method='bca' reads the data twice (jackknife); the input is a stream that can "
                             "be read once: pass a Table, dataset or Parquet path")
        g0 = 0
        for batch, _, _, _ in self._scan(self._data, 0):
            if batch is None:
                continue
            n = batch.num_rows
            cells = self.cells.codes(batch)
            _, V = self._batch_features(batch)
            cc = cells if cells is not None else np.zeros(n, dtype=np.int64)
            if with_keys:
                yield g0, cc, V, _cluster_keys(batch.column(self.a.cluster))
            else:
                yield g0, cc, V
            g0 += n


class _JackknifeSums:
    """BCa's second pass as a mergeable state (one per Dask partition).

    Holds a light copy of the filled bootstrap state (cells, full-data sums, metric
    centres) and adds, per partition, the power sums of each expression's jackknife
    deviations (or, with ``cluster``, per-unit sums, re-aggregated when merged:
    a unit may span partitions).
    """

    def __init__(self, state: BootstrapState, exprs, ests):
        light = copy.copy(state)
        for name in ("wsum", "vsum", "pat"):
            setattr(light, name, np.zeros((0,) * getattr(state, name).ndim))
        light.kept_cols, light.kept_cells, light.kept_keys, light.kept_rows, light.kept_V = {}, [], [], [], []
        light.values = light.estimates = None
        light.sorted_data = None
        light._data = None
        light._dask_input = None
        self.state = light
        self.exprs = list(exprs)
        self.ests = [np.asarray(e, dtype=np.float64) for e in ests]
        self.columns = state.columns
        self.acc = [np.zeros((state.C, 4)) for _ in self.exprs]
        self.units: list = []
        self.rows_read = 0
        self.rows_dropped = 0

    def update(self, data, **_):
        st = self.state
        st._data = data
        try:
            if st.a.cluster is not None:
                for _, cc, V, keys in st._rescan(with_keys=True):
                    self.units.append(_unit_sums(cc, keys, V, np.ones(cc.shape[0], dtype=np.int64)))
            else:
                batches = list(st._rescan())
                for j, (e, est) in enumerate(zip(self.exprs, self.ests)):
                    self.acc[j] += st._jack_acc(e, est, rows=batches)
        finally:
            st._data = None
        return self

    def unit_parts(self):
        cc, keys, S, n = (np.concatenate([u[i] for u in self.units], axis=-1) for i in range(4))
        return _unit_sums(cc, keys, S, n)

    def merge(self, other):
        for a, b in zip(self.acc, other.acc):
            a += b
        self.units.extend(other.units)
        if self.units:
            self.units = [self.unit_parts()]  # keep the merged state small
        return self
