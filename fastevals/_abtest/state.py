"""The A/B test's state, :class:`ABTestState`: counts per (segment, group, outcome) cell and
n / mean / M2 (and, with covariates or a denominator, co-moments) per (segment, group) cell,
folded by one compiled pass per batch, mergeable and serializable on the protocol.

Its ``finalize()`` / ``g_test()`` / ``z_test()`` assemble the results with the finalize math of
:mod:`fastevals._abtest._math`.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from .. import _cuped, _stats
from .. import _source as src
from .._config import CHUNK_ROWS, PARALLEL_MIN_ROWS
from .._fold import check_backend
from .._protocol import LABEL, NUMERIC, ConfidenceInterval, State, non_finite_error
from .._validation import (
    as_column_list,
    check_choice,
    check_finite_float,
    check_probability,
    check_seed,
)
from ._math import (
    _ADJUST,
    _check_monte_carlo,
    _control_index,
    _expected_shares,
    _g_columns,
    _g_segments_plain,
    _g_single,
    _interval_method,
    _label_columns,
    _warn_srm,
)
from .result import (
    ABTable,
    ABTestReport,
    GTestResult,
    SampleRatioMismatchWarning,
    SRMResult,
    ZTestResult,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

    from .._typing import Columns, Filter, Seed

__all__ = ["ABTestState"]

_ALTERNATIVES = ("two-sided", "larger", "smaller")
#: per-chunk partial tables are capped at this many cells x chunks; beyond it chunks grow
_MAX_PARTIAL_CELLS = 1 << 23
#: the options that shape the finalize step (constructor options; overridable in g_test() / z_test())
_G_OPTIONS = ("correction", "monte_carlo", "seed", "adjust", "expected_split", "srm_threshold", "backend")
_Z_OPTIONS = ("control", "kind", "alternative", "margin", "confidence", "adjust", "expected_split",
              "srm_threshold", "variance")


def _sort_key(label):
    if isinstance(label, tuple):
        return tuple(_sort_key(x) for x in label)
    return (type(label).__name__, label)


def _chan_merge(na, ma, m2a, nb, mb, m2b):
    """Merge (n, mean, M2) moments elementwise (Chan, Golub & LeVeque 1979)."""
    n = na + nb
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(n > 0, nb / np.maximum(n, 1), 0.0)
        delta = mb - ma
        mean = np.where(na == 0, mb, np.where(nb == 0, ma, ma + delta * frac))
        m2 = np.where(
            na == 0, m2b, np.where(nb == 0, m2a, m2a + m2b + delta * delta * na * frac)
        )
    return n, mean, m2


# Kernels compile once per combination of argument dtypes (seconds each), so codes and values
# are brought to a few dtypes: codes int32 or int8 (small dictionaries, int8 and boolean columns),
# values float64 or int8 (0/1 flags).


def _codes_for_kernel(lc: src.LocalCodes) -> tuple[np.ndarray, int]:
    codes = lc.codes
    if codes.dtype in (np.int32, np.int8):
        return codes, lc.offset
    if codes.dtype == np.uint8 and lc.offset == 0 and lc.width <= 2:
        return codes.view(np.int8), 0  # booleans: 0/1 bytes
    # local widths are below 2**31 (integer ranges <= 2**16, combined segments <= 2**24)
    shifted = codes.astype(np.int64) - lc.offset if lc.offset else codes
    return shifted.astype(np.int32), 0


def _values_for_kernel(arr: pa.Array) -> np.ndarray:
    values = src.numeric_view(arr)
    if values.dtype in (np.float64, np.int8):
        return values
    if pa.types.is_boolean(arr.type):
        return values.view(np.int8)
    return values.astype(np.float64)


def _plain_label(x):
    if isinstance(x, np.generic):
        return x.item()
    if x is not None and not isinstance(x, (str, int, float, bool)):
        raise TypeError(f"`control` must be a group label (str, int, float or bool); got {x!r}")
    return x


def _check_split(expected_split):
    """``expected_split`` as plain JSON-able values (a dict of shares, or a list)."""
    if expected_split is None:
        return None
    if isinstance(expected_split, dict):
        return {_plain_label(k): float(v) for k, v in expected_split.items()}
    try:
        return [float(x) for x in expected_split]
    except (TypeError, ValueError):
        raise TypeError(f"`expected_split` must be a dict {{group: share}} or a sequence of shares; "
                        f"got {expected_split!r}") from None

def _z_options(kind, alternative, margin, confidence, variance, multi: bool, denominator, covariates, degree):
    kind = check_choice("kind", kind, ("mean", "proportion"))
    alternative = check_choice("alternative", alternative, _ALTERNATIVES)
    margin = check_finite_float("margin", margin)
    confidence = check_probability("confidence", confidence)
    variance = check_choice("variance", variance, _cuped.VARIANCES)
    if kind == "proportion" and (multi or variance != "welch"):
        raise ValueError("kind='proportion' uses the pooled proportion test; covariates, a denominator and "
                         "variance='hc1' need kind='mean' (on 0/1 values it is the same difference)")
    if variance == "hc1" and denominator is not None:
        raise ValueError("variance='hc1' is the robust standard error of an OLS coefficient: it does not "
                         "apply to a ratio metric (`denominator`); use variance='welch' (delta method)")
    if variance == "hc1" and covariates and degree < 4:
        raise ValueError("variance='hc1' with covariates needs the fourth co-moments, which this state did "
                         "not keep: build it with ABTestState(..., variance='hc1') (or pass variance='hc1' "
                         "to z_test / abtest)")
    return kind, alternative, margin, confidence, variance


class ABTestState(State, kind="abtest"):
    """Mergeable sufficient statistics of an A/B test, on the protocol.

    Counts per (segment, group, outcome level) and n / mean / M2 of ``value``
    per (segment, group) (``counts``, ``cell_n``, ``cell_mean``, ``cell_m2``).
    ``update`` folds data in (one compiled pass per batch), ``merge`` combines
    states of shards (a new state; associative and commutative), ``finalize()``
    gives the :func:`abtest` report and ``g_test()`` / ``z_test()`` one part of
    it, ``to_bytes`` / ``from_bytes`` serialize losslessly; :meth:`from_aggregates`
    builds one from sums computed in SQL.

    The constructor takes the keyword arguments of :func:`abtest` (not ``data``,
    ``engine``); the finalize options (``control``, ``kind``, ``correction``,
    ``monte_carlo``, ``seed``...) are kept for ``finalize()``.

    With ``covariate`` (regression adjustment, CUPED) or ``denominator`` (a ratio
    metric), each (segment, group) cell also keeps the means and central
    co-moment sums of ``value``, the denominator and the covariates (second
    order; up to fourth with ``variance="hc1"``, for the robust standard error),
    merged with the shift formula of :mod:`fastevals._cuped`, never as raw sums
    of powers.

    Parameters
    ----------
    group, outcome, value, by, control, kind, alternative, margin, confidence, correction, monte_carlo, seed, \
adjust, nulls, filter, batch_size, expected_split, progress, backend, covariate, denominator, variance
        As in :func:`abtest`. ``outcome`` and ``value`` may name the same 0/1 column (G-test and
        z-test of one conversion column).
    srm_threshold : float
        The sample-ratio check flags a mismatch below this p-value (0.001).

    Raises
    ------
    ValueError, TypeError
        An option out of its range, a column named twice, ``covariate`` / ``denominator``
        without ``value``.

    Examples
    --------
    >>> import numpy as np, fastevals
    >>> st = fastevals.ABTestState(group="variant", outcome="converted")
    >>> _ = st.update({"variant": np.array(["a", "b"] * 500), "converted": np.arange(1000) % 3 == 0})
    >>> round(st.g_test().pvalue, 6), st.n
    (1.0, 1000)
    >>> back = fastevals.ABTestState.from_bytes(st.to_bytes())
    >>> back == st
    True
    """

    def __init__(self, *, group: str, outcome: str | None = None, value: str | None = None, by: Columns | None = None,
                 control: str | None = None, kind: str = "mean", alternative: str = "two-sided", margin: float = 0.0,
                 confidence: float = 0.95, correction: str | None = None, monte_carlo: int | None = None,
                 seed: Seed = None, adjust: str | None = "holm", nulls: str = "raise",
                 filter: Filter = None, batch_size: int | None = None,
                 expected_split: Mapping[Any, float] | Sequence[float] | None = None, progress: bool | None = None,
                 backend: str = "auto", covariate: str | Sequence[str] | None = None, denominator: str | None = None,
                 variance="welch", srm_threshold: float = 0.001):
        super().__init__(nulls=nulls, filter=filter, batch_size=batch_size, progress=progress)
        groups = as_column_list("group", group, allow_none=False)
        if len(groups) != 1:
            raise ValueError(f"`group` must name one column; got {group!r}")
        self.group = groups[0]
        self.outcome = as_column_list("outcome", outcome)[0] if outcome is not None else None
        self.value = as_column_list("value", value)[0] if value is not None else None
        self.by = as_column_list("by", by)
        self.covariates = as_column_list("covariate", covariate)
        if denominator is not None and len(as_column_list("denominator", denominator)) != 1:
            raise ValueError(f"`denominator` must name one column; got {denominator!r}")
        self.denominator = as_column_list("denominator", denominator)[0] if denominator is not None else None
        if (self.covariates or self.denominator is not None) and self.value is None:
            raise ValueError("`covariate` and `denominator` adjust the z-test on `value`: give `value` too")
        cols = self.columns
        if len(set(cols)) != len(cols):
            raise ValueError(f"a column is used twice among group/outcome/value/by/covariate/denominator: {cols!r} "
                             "(only `outcome` and `value` may name the same 0/1 column)")
        #: numeric columns of the co-moments: value, denominator, covariates (empty: plain z-test)
        self.moment_columns: list[str] = []
        if self.covariates or self.denominator:
            assert self.value is not None  # checked above: covariate/denominator need `value`
            self.moment_columns = [self.value] + ([self.denominator] if self.denominator else []) + self.covariates
        self.variance = check_choice("variance", variance, _cuped.VARIANCES)
        # fourth co-moments only where the HC1 standard error needs them (they cost ~3x in the scan)
        self.moment_degree = 4 if (self.variance == "hc1" and self.covariates) else 2
        # finalize options, checked now (fail before the scan)
        self.control = _plain_label(control)
        self.test_kind, self.alternative, self.margin, self.confidence, _ = _z_options(
            kind, alternative, margin, confidence, self.variance, bool(self.moment_columns), self.denominator,
            self.covariates, self.moment_degree)
        self.correction = check_choice("correction", correction, ("williams", "yates"), allow_none=True)
        self.monte_carlo = _check_monte_carlo(monte_carlo)
        if isinstance(seed, np.random.Generator):
            seed = check_seed("seed", seed)
        elif seed is not None:
            check_seed("seed", seed)
            seed = int(seed)
        self.seed = seed
        self.adjust = check_choice("adjust", None if adjust == "none" else adjust, _ADJUST, allow_none=True)
        self.expected_split = _check_split(expected_split)
        self.backend = check_backend(backend, supported=("auto", "cpu", "cuda"))
        self.srm_threshold = check_probability("srm_threshold", srm_threshold)
        nv = len(self.moment_columns)
        self.n_moments = len(_cuped.monomials(nv, self.moment_degree)) if nv else 0
        self.segments = src.LabelIndex()
        self.groups = src.LabelIndex()
        self.outcomes = src.LabelIndex()
        self.counts = np.zeros((0, 0, 0), dtype=np.int64)
        self.cell_n = np.zeros((0, 0), dtype=np.int64)
        self.cell_mean = np.zeros((0, 0))
        self.cell_m2 = np.zeros((0, 0))
        self.mu = np.zeros((0, 0, nv))  # per-cell means of moment_columns
        self.mom = np.zeros((0, 0, self.n_moments))  # per-cell central co-moment sums (_cuped)
        # first value of `value` that is neither 0 nor 1 (None: all 0/1 so far): kind="proportion"
        # must refuse other values
        self.non_binary_value: str | None = None
        self._order_memo = None  # (label counts, sorted orders): see _sorted

    # -- protocol -----------------------------------------------------------------------------------
    def _params(self) -> dict:
        return dict(group=self.group, outcome=self.outcome, value=self.value, by=self.by or None,
                    control=self.control, kind=self.test_kind, alternative=self.alternative, margin=self.margin,
                    confidence=self.confidence, correction=self.correction, monte_carlo=self.monte_carlo,
                    seed=self.seed, adjust=self.adjust, expected_split=self.expected_split, backend=self.backend,
                    covariate=self.covariates or None, denominator=self.denominator, variance=self.variance,
                    srm_threshold=self.srm_threshold)

    @property
    def columns(self) -> list[str]:
        """The columns this state reads (a column named as both outcome and value once)."""
        cols = [self.group] + self.by + [c for c in (self.outcome, self.value, self.denominator) if c is not None]
        cols += self.covariates
        if self.outcome is not None and self.outcome == self.value:
            cols.remove(self.value)
        return cols

    def _checks_finite(self) -> set[str]:
        # a NaN or inf poisons its cell's mean (plain z-test) or co-moments (CUPED, ratio): the
        # kernels' results show it, with no screening pass over the rows
        return {c for c in (self.value, self.denominator, *self.covariates) if c is not None}

    def _requirements(self) -> dict:
        req = {self.group: ("group", LABEL)}
        for b in self.by:
            req[b] = ("by", LABEL)
        if self.outcome is not None:
            req[self.outcome] = ("outcome", LABEL)
        if self.value is not None:
            # one 0/1 column as both outcome and value is read as a number (its levels are its values)
            req[self.value] = ("outcome and value" if self.value == self.outcome else "value", NUMERIC)
        if self.denominator is not None:
            req[self.denominator] = ("denominator", NUMERIC)
        for c in self.covariates:
            req[c] = ("covariate", NUMERIC)
        return req

    def _arrays(self) -> dict[str, np.ndarray]:
        return dict(counts=self.counts, cell_n=self.cell_n, cell_mean=self.cell_mean, cell_m2=self.cell_m2,
                    mu=self.mu, mom=self.mom)

    def _set_arrays(self, arrays) -> None:
        for name in ("counts", "cell_n", "cell_mean", "cell_m2", "mu", "mom"):
            setattr(self, name, arrays[name])
        self._order_memo = None

    def _extra(self):
        return dict(segments=list(self.segments.labels), groups=list(self.groups.labels),
                    outcomes=list(self.outcomes.labels), non_binary_value=self.non_binary_value)

    def _set_extra(self, extra) -> None:
        self.segments = src.LabelIndex(extra["segments"])
        self.groups = src.LabelIndex(extra["groups"])
        self.outcomes = src.LabelIndex(extra["outcomes"])
        self.non_binary_value = extra["non_binary_value"]
        self._order_memo = None

    @classmethod
    def _example(cls):
        rng = np.random.default_rng(14)
        n = 400
        data = {"variant": rng.choice(["control", "new"], n), "device": rng.choice(["ios", "web"], n),
                "converted": (rng.random(n) < 0.3).astype(np.int8), "revenue": rng.exponential(5.0, n)}
        return dict(group="variant", outcome="converted", value="revenue", by="device"), data

    def _merge_from(self, other: ABTestState) -> None:
        st = other
        s_map = np.array([self.segments.add(x) for x in st.segments.labels], dtype=np.int64)
        g_map = np.array([self.groups.add(x) for x in st.groups.labels], dtype=np.int64)
        o_map = np.array([self.outcomes.add(x) for x in st.outcomes.labels], dtype=np.int64)
        self._grow(len(self.segments), len(self.groups), len(self.outcomes))
        if s_map.size and g_map.size:
            self.counts[np.ix_(s_map, g_map, o_map)] += st.counts
            sub = np.ix_(s_map, g_map)
            self.cell_n[sub], self.cell_mean[sub], self.cell_m2[sub] = _chan_merge(
                self.cell_n[sub], self.cell_mean[sub], self.cell_m2[sub], st.cell_n, st.cell_mean, st.cell_m2)
            if self.moment_columns:
                self.mu[sub], self.mom[sub] = _cuped.merge(self.mu[sub], self.mom[sub], st.mu, st.mom,
                                                           len(self.moment_columns), self.moment_degree)
        if self.non_binary_value is None:
            self.non_binary_value = st.non_binary_value

    # -- update -------------------------------------------------------------------------------

    def _grow(self, s: int, g: int, o: int) -> None:
        S, G, O = self.counts.shape
        if (s, g, o) == (S, G, O):
            return
        counts = np.zeros((s, g, o), dtype=np.int64)
        counts[:S, :G, :O] = self.counts
        self.counts = counts
        for name, dtype in (("cell_n", np.int64), ("cell_mean", np.float64), ("cell_m2", np.float64)):
            arr = np.zeros((s, g), dtype=dtype)
            arr[:S, :G] = getattr(self, name)
            setattr(self, name, arr)
        for name in ("mu", "mom"):
            old = getattr(self, name)
            arr = np.zeros((s, g, old.shape[2]))
            arr[:S, :G] = old
            setattr(self, name, arr)

    def _update_batch(self, batch: pa.RecordBatch, ids=None) -> None:
        from .._kernels import cells

        rows = batch.num_rows
        g_lc = src.local_codes(batch.column(self.group))
        grp, grp_off = _codes_for_kernel(g_lc)
        if self.by:
            s_lc = src.combine_codes([src.local_codes(batch.column(b)) for b in self.by])
            seg, seg_off = _codes_for_kernel(s_lc)
            n_seg = s_lc.width
        else:
            s_lc = None
            seg, seg_off, n_seg = np.empty(0, np.int32), 0, 1
        if self.outcome is not None:
            o_lc = src.local_codes(batch.column(self.outcome))
            out, out_off = _codes_for_kernel(o_lc)
            n_out = o_lc.width
        else:
            o_lc = None
            out, out_off, n_out = np.empty(0, np.int8), 0, 1
        multi = bool(self.moment_columns)
        if self.value is not None and not multi:
            val = _values_for_kernel(batch.column(self.value))
        else:
            val = np.empty(0, np.float64)
        n_grp = g_lc.width
        n_cells = n_seg * n_grp
        chunk = CHUNK_ROWS
        width = n_out if self.outcome is not None else 1
        n_chunks = -(-rows // chunk)
        if n_chunks * n_cells * (width + 3) > _MAX_PARTIAL_CELLS:
            chunk = max(chunk, -(-rows // max(1, _MAX_PARTIAL_CELLS // (n_cells * (width + 3)))))
        if multi:
            mu, mom, n, mean, m2 = self._fold_moments(batch, seg, seg_off, grp, grp_off, n_grp, n_cells, chunk)
            if self.outcome is not None:
                kernel = cells.fold_cells_parallel if rows >= PARALLEL_MIN_ROWS else cells.fold_cells_serial
                cnt = kernel(seg, seg_off, grp, grp_off, n_grp, out, out_off, n_out, np.empty(0, np.float64),
                             n_cells, chunk)[0]
            else:
                cnt = n.copy()
        else:
            kernel = cells.fold_cells_parallel if rows >= PARALLEL_MIN_ROWS else cells.fold_cells_serial
            cnt, n, mean, m2 = kernel(seg, seg_off, grp, grp_off, n_grp, out, out_off, n_out, val, n_cells, chunk)
        if self.value is not None and not multi:
            if not np.all(np.isfinite(mean)):  # a NaN or inf value poisons its cell's mean
                raise non_finite_error(self.value, "value", int(np.count_nonzero(~np.isfinite(val))), rows)
            if self.non_binary_value is None:
                i = cells.first_non_binary(val)
                if i >= 0:
                    self.non_binary_value = val[i].item()
        n = n.reshape(n_seg, n_grp)
        cnt = cnt.reshape(n_seg, n_grp, width)
        seg_present = n.sum(axis=1) > 0
        grp_present = n.sum(axis=0) > 0
        s_map = self.segments.map_local(s_lc, seg_present) if s_lc is not None else np.array([self.segments.add(None)])
        g_map = self.groups.map_local(g_lc, grp_present)
        if o_lc is not None:
            o_map = self.outcomes.map_local(o_lc, cnt.sum(axis=(0, 1)) > 0)
        else:
            o_map = np.array([self.outcomes.add(None)])
        self._grow(len(self.segments), len(self.groups), len(self.outcomes))
        si, gi = np.flatnonzero(s_map >= 0), np.flatnonzero(g_map >= 0)
        oi = np.flatnonzero(o_map >= 0)
        S, G, O = s_map[si], g_map[gi], o_map[oi]
        self.counts[np.ix_(S, G, O)] += cnt[np.ix_(si, gi, oi)]
        sub = np.ix_(S, G)
        loc = np.ix_(si, gi)
        mean = mean.reshape(n_seg, n_grp)[loc]
        m2 = m2.reshape(n_seg, n_grp)[loc]
        self.cell_n[sub], self.cell_mean[sub], self.cell_m2[sub] = _chan_merge(
            self.cell_n[sub], self.cell_mean[sub], self.cell_m2[sub], n[loc], mean, m2
        )
        if multi:
            nv = len(self.moment_columns)
            self.mu[sub], self.mom[sub] = _cuped.merge(
                self.mu[sub], self.mom[sub], mu.reshape(n_seg, n_grp, nv)[loc],
                mom.reshape(n_seg, n_grp, -1)[loc], nv, self.moment_degree)

    def _fold_moments(self, batch, seg, seg_off, grp, grp_off, n_grp, n_cells, chunk):
        """Per-cell means and central co-moments of ``moment_columns`` in one batch: one compiled
        pass of shifted sums (shifts: each cell's means over the first rows), a second pass with
        the means as shifts where the first shifts proved too far for the sums to keep their digits.
        """
        from .._kernels import cells

        cols = self.moment_columns
        nv, deg = len(cols), self.moment_degree
        arrays = []
        for c in cols:
            a = src.numeric_view(batch.column(c))
            arrays.append(a if a.dtype == np.float64 else a.astype(np.float64))
        y = arrays[0]
        X = arrays[1].reshape(1, -1) if nv == 2 else np.stack(arrays[1:])
        rows = y.shape[0]
        parent, var = _cuped.kernel_tables(nv, deg)
        slots = n_cells * cells.LANES * parent.shape[0]
        if -(-rows // chunk) * slots > _MAX_PARTIAL_CELLS:
            chunk = max(chunk, -(-rows // max(1, _MAX_PARTIAL_CELLS // slots)))
        # shifts: per-cell means of the first rows (their overall mean for cells not among them)
        m = min(rows, cells.SHIFT_ROWS)
        cell = grp[:m].astype(np.int64) - grp_off
        if seg.shape[0]:
            cell = cell + (seg[:m].astype(np.int64) - seg_off) * n_grp
        cnt = np.bincount(cell, minlength=n_cells).astype(np.float64)
        K = np.zeros((n_cells, nv))
        with np.errstate(invalid="ignore", divide="ignore"):
            for j, a in enumerate(arrays):
                fill = float(a[:m].mean()) if m else 0.0
                k = np.bincount(cell, weights=a[:m], minlength=n_cells) / cnt
                K[:, j] = np.where((cnt > 0) & np.isfinite(k), k, fill if math.isfinite(fill) else 0.0)
        kernel = cells.fold_moments_parallel if rows >= PARALLEL_MIN_ROWS else cells.fold_moments_serial
        sq = [_cuped.moment_index(nv, deg)[tuple(2 if i == j else 0 for i in range(nv))] for j in range(nv)]
        for attempt in range(2):
            acc = kernel(seg, seg_off, grp, grp_off, n_grp, y, X, K, parent, var, n_cells, chunk)
            raw = acc.reshape(acc.shape[0], n_cells, cells.LANES, -1).sum(axis=(0, 2))
            mu, mom = _cuped.central(raw, K, nv, deg)
            present = raw[:, 0] > 0
            if not np.all(np.isfinite(mu[present])) or not np.all(np.isfinite(mom[present])):
                for c, a in zip(cols, arrays):
                    bad = int(np.count_nonzero(~np.isfinite(a)))
                    if bad:
                        raise non_finite_error(c, self._requirements()[c][0], bad, rows)
            redo = np.zeros(n_cells, dtype=bool)
            for j in sq:
                redo |= present & (raw[:, j] > cells.REDO_RATIO * mom[:, j])
            if attempt or not redo.any():
                break
            K = np.where(present[:, None], mu, K)
        n = raw[:, 0].astype(np.int64)
        index = _cuped.moment_index(nv, deg)
        m2 = mom[:, index[(2,) + (0,) * (nv - 1)]].copy()
        return mu, mom, n, mu[:, 0].copy(), m2


    # -- aggregates computed elsewhere ------------------------------------------------------
    @classmethod
    def from_aggregates(cls, table, *, group: str, value: str, covariate=None, denominator: str | None = None,
                        by=None, **options) -> ABTestState:
        """A state from per-(segment, group) sufficient statistics computed elsewhere (e.g. in SQL).

        Parameters
        ----------
        table : pyarrow Table, pandas/polars DataFrame or dict of arrays
            One row per (segment, group) (rows of the same cell are merged) with the columns
            ``by...``, ``group``, ``n`` (rows), ``sum_<v>`` for each numeric column ``v`` (the
            value, the denominator, the covariates) and, for each pair ``v, w`` of them (``v``
            before ``w`` in that order, squares included), either ``sum_<v>_<w>`` (the raw sum
            of products) or ``comoment_<v>_<w>`` (the centered sum
            ``sum((v - mean_v) * (w - mean_w))``, e.g. DuckDB's ``regr_sxy(w, v)``, which keeps
            more digits than raw sums when the means are large compared with the spread).
        group, value, covariate, denominator, by
            As in :func:`z_test`.
        **options
            Other options of the state (``control``, ``confidence``, ``variance``...), as in
            :func:`abtest`.

        Returns
        -------
        ABTestState
            With second co-moments only: ``z_test(variance="welch")`` (and ``"hc1"`` without
            covariates) work as on the rows.

        Raises
        ------
        ValueError
            A missing column, a negative or non-integer ``n``, non-finite sums.

        Examples
        --------
        >>> import fastevals
        >>> agg = {"variant": ["control", "new"], "n": [4, 4], "sum_y": [10.0, 14.0],
        ...        "sum_y_y": [30.0, 54.0]}
        >>> st = fastevals.ABTestState.from_aggregates(agg, group="variant", value="y")
        >>> round(st.z_test().difference, 6)
        1.0
        """
        st = cls(group=group, value=value, by=by, covariate=covariate, denominator=denominator, **options)
        if isinstance(table, pa.RecordBatchReader) or hasattr(table, "read_all"):
            table = table.read_all()
        if not isinstance(table, pa.Table):
            table = src.arrow_table(table) if isinstance(table, dict) else pa.table(table)
        names = set(table.column_names)
        numeric = [value] + ([denominator] if denominator is not None else []) + st.covariates

        def column(name):
            return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)

        needed = [group, *st.by, "n"] + [f"sum_{v}" for v in numeric]
        missing = [c for c in needed if c not in names]
        if missing:
            raise ValueError(f"from_aggregates: table has no column(s) {missing!r}; columns: {sorted(names)!r}")
        n = column("n")
        if not np.all(np.isfinite(n)) or np.any(n < 0) or np.any(n != np.round(n)):
            raise ValueError("from_aggregates: column 'n' must hold non-negative integer row counts")
        k = len(numeric)
        sums = np.stack([column(f"sum_{v}") for v in numeric], axis=1)
        rows = table.num_rows
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n[:, None] > 0, sums / np.maximum(n, 1)[:, None], 0.0)
        C = np.zeros((rows, k, k))
        for i in range(k):
            for j in range(i, k):
                a, b = numeric[i], numeric[j]
                raw = next((f"sum_{x}_{y}" for x, y in ((a, b), (b, a)) if f"sum_{x}_{y}" in names), None)
                cen = next((f"comoment_{x}_{y}" for x, y in ((a, b), (b, a)) if f"comoment_{x}_{y}" in names), None)
                if cen is not None:
                    c = column(cen)
                elif raw is not None:
                    c = column(raw) - sums[:, i] * mean[:, j]
                else:
                    raise ValueError(f"from_aggregates: table needs column 'sum_{a}_{b}' (sum of {a} * {b}) or "
                                     f"'comoment_{a}_{b}' (its centered version)")
                C[:, i, j] = C[:, j, i] = np.where(n > 0, c, 0.0)
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(C))):
            raise ValueError("from_aggregates: the sums must be finite")
        cell_mu = mean
        if st.moment_columns:
            index = _cuped.moment_index(k, 2)
            mom = np.zeros((rows, st.n_moments))
            mom[:, 0] = n
            for i in range(k):
                for j in range(i, k):
                    powers = [0] * k
                    powers[i] += 1
                    powers[j] += 1
                    mom[:, index[tuple(powers)]] = C[:, i, j]
        labels_g = table.column(group).to_pylist()
        by_cols = [table.column(b).to_pylist() for b in st.by]
        o = st.outcomes.add(None)
        for r in range(rows):
            if n[r] == 0:
                continue
            if st.by:
                lab = by_cols[0][r] if len(st.by) == 1 else tuple(col[r] for col in by_cols)
                s = st.segments.add(lab)
            else:
                s = st.segments.add(None)
            g = st.groups.add(labels_g[r])
            st._grow(len(st.segments), len(st.groups), len(st.outcomes))
            one = np.array([[int(n[r])]])
            sub = (slice(s, s + 1), slice(g, g + 1))
            st.cell_n[sub], st.cell_mean[sub], st.cell_m2[sub] = _chan_merge(
                st.cell_n[sub], st.cell_mean[sub], st.cell_m2[sub], one,
                                                              np.array([[mean[r, 0]]]), np.array([[C[r, 0, 0]]]))
            st.counts[s, g, o] += int(n[r])
            if st.moment_columns:
                st.mu[sub], st.mom[sub] = _cuped.merge(st.mu[sub], st.mom[sub], cell_mu[r][None, None],
                                                       mom[r][None, None], k, 2)
        st.n_read = int(n.sum())
        # a 0/1 value has sum(y * y) == sum(y); anything else cannot be a proportion
        raw_yy = C[:, 0, 0] + sums[:, 0] * mean[:, 0]
        if not np.allclose(raw_yy, sums[:, 0], rtol=1e-12, atol=0):
            st.non_binary_value = "not 0/1 (from aggregates)"
        if len(st.segments) == 0:
            raise ValueError("from_aggregates: no rows with n > 0")
        return st

    # -- finalize -------------------------------------------------------------------------------
    def _sorted(self):
        """Segment / group / outcome orders sorted by label, so that finalize does not depend on
        the order in which labels were seen (merge stays commutative). Labels are only ever
        appended, so their counts identify the orders; they are kept for the next call.
        """
        key = (len(self.segments), len(self.groups), len(self.outcomes))
        memo = self._order_memo
        if memo is not None and memo[0] == key:
            return memo[1]
        so = sorted(range(len(self.segments)), key=lambda i: _sort_key(self.segments.labels[i]))
        go = sorted(range(len(self.groups)), key=lambda i: _sort_key(self.groups.labels[i]))
        oo = sorted(range(len(self.outcomes)), key=lambda i: _sort_key(self.outcomes.labels[i]))
        orders = tuple(np.array(o, dtype=np.int64) for o in (so, go, oo))
        for o in orders:
            o.flags.writeable = False
        self._order_memo = (key, orders)
        return orders

    def _check_nonempty(self):
        if self.cell_n.sum() == 0:
            self.check_not_empty()
            raise ValueError("empty input: no rows to analyse")
        if len(self.groups) < 2:
            only = self.groups.labels[0] if self.groups.labels else None
            raise ValueError(
                f"column {self.group!r} has a single group ({only!r}); a test needs at least two groups"
            )

    def srm(self, expected_split=None, threshold: float | None = None) -> SRMResult:
        """Sample-ratio-mismatch check of the groups' row counts (all segments together).

        ``expected_split`` and ``threshold`` default to the state's ``expected_split`` and
        ``srm_threshold``.
        """
        _, go, _ = self._sorted()
        labels = [self.groups.labels[i] for i in go]
        sizes = self.cell_n.sum(axis=0)[go]
        split = self.expected_split if expected_split is None else _check_split(expected_split)
        shares = _expected_shares(split, labels)
        stat, p = _stats.srm_test(sizes, shares)
        threshold = self.srm_threshold if threshold is None else check_probability("threshold", threshold)
        return SRMResult(float(stat), float(p), tuple(labels), tuple(int(x) for x in sizes),
                         tuple(float(x) for x in shares / shares.sum()), threshold, int(sizes.sum()))

    def _options(self, names, overrides: dict, what: str) -> dict:
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            raise TypeError(f"{what}() takes the options {', '.join(names)}; got {unknown}")
        mine = self._params()
        mine["srm_threshold"] = self.srm_threshold
        out = {k: mine["kind" if k == "kind" else k] for k in names}
        out.update(overrides)
        return out

    def finalize(self) -> ABTestReport:
        """The :func:`abtest` report: the G-test (with ``outcome``), the z-test (with ``value``) and
        the sample-ratio check, with the state's options; warns once on a sample-ratio mismatch.
        """
        self._check_nonempty()
        with warnings.catch_warnings():
            # the SRM warning is raised once, below, not once per test
            warnings.simplefilter("ignore", SampleRatioMismatchWarning)
            g = self.g_test() if self.outcome is not None else None
            z = self.z_test() if self.value is not None else None
        srm = self.srm()
        _warn_srm(srm, stacklevel=3)
        return ABTestReport(n=self.n, n_dropped=self.n_dropped, group=self.group, outcome=self.outcome,
                            value=self.value, by=tuple(self.by), control=None if z is None else z.control,
                            sample_ratio_mismatch=srm.mismatch, g_test=g, z_test=z, srm=srm)

    def g_test(self, **overrides):
        """G-test of independence of group and outcome (per segment when ``by`` is set).

        Takes the state's options; ``correction``, ``monte_carlo``, ``seed``, ``adjust``,
        ``expected_split``, ``srm_threshold`` and ``backend`` may be overridden for this call.
        Returns a :class:`GTestResult`, or an :class:`ABTable` with ``by``.
        """
        if self.outcome is None:
            raise ValueError("this state has no `outcome` column: a G-test needs one")
        o = self._options(_G_OPTIONS, overrides, "g_test")
        correction = check_choice("correction", o["correction"], ("williams", "yates"), allow_none=True)
        monte_carlo = _check_monte_carlo(o["monte_carlo"])
        seed_key = check_seed("seed", o["seed"])
        adjust = check_choice("adjust", None if o["adjust"] == "none" else o["adjust"], _ADJUST, allow_none=True)
        backend = check_backend(o["backend"], supported=("auto", "cpu", "cuda"))
        self._check_nonempty()
        so, go, oo = self._sorted()
        if len(self.outcomes) < 2:
            raise ValueError(
                f"column {self.outcome!r} has a single level ({self.outcomes.labels[0]!r}); "
                "a G-test needs at least two outcome levels"
            )
        srm = self.srm(o["expected_split"], o["srm_threshold"])
        _warn_srm(srm)
        counts = self.counts[np.ix_(so, go, oo)]
        groups = tuple(self.groups.labels[i] for i in go)
        outcomes = tuple(self.outcomes.labels[i] for i in oo)
        if monte_carlo:
            _check_monte_carlo(monte_carlo, int(np.count_nonzero(counts.sum(axis=2) > 0)) * len(outcomes))
        if not self.by:
            res = _g_single(counts[0], correction, monte_carlo, seed_key, backend)
            return GTestResult(**res, groups=groups, outcomes=outcomes, srm=srm, n=self.n,
                               n_dropped=self.n_dropped)
        rows = []
        plain = correction is None and not monte_carlo
        for k in range(counts.shape[0] if not plain else 0):
            obs = counts[k]
            keep_r = obs.sum(axis=1) > 0
            keep_c = obs.sum(axis=0) > 0
            if keep_r.sum() < 2 or keep_c.sum() < 2:
                rows.append(dict(statistic=np.nan, pvalue=np.nan, dof=0, pvalue_mc=None,
                                 small_counts=True, note="fewer than two groups or outcome levels"))
                continue
            res = _g_single(obs[np.ix_(keep_r, keep_c)], correction, monte_carlo,
                            (seed_key + 0x9E3779B97F4A7C15 * (k + 1)) & 0xFFFFFFFFFFFFFFFF, backend)
            rows.append(res)
        res = _g_segments_plain(counts) if plain else _g_columns(rows)
        seg_labels = [self.segments.labels[i] for i in so]
        cols = _label_columns(self.by, seg_labels)
        cols["n"] = counts.sum(axis=(1, 2))
        for g_idx, g in enumerate(groups):
            cols[f"n[{g}]"] = counts[:, g_idx, :].sum(axis=1)
        if len(outcomes) == 2:
            # share of the second outcome level (e.g. converted == 1) per group: what people read first
            for g_idx, g in enumerate(groups):
                with np.errstate(invalid="ignore", divide="ignore"):
                    share = counts[:, g_idx, 1] / counts[:, g_idx, :].sum(axis=1)
                cols[f"rate[{g}]"] = share
        cols["statistic"] = res["statistic"]
        cols["dof"] = res["dof"]
        cols["pvalue"] = res["pvalue"]
        cols["pvalue_adjusted"] = _stats.adjust_pvalues(res["pvalue"], adjust)
        if monte_carlo:
            cols["pvalue_mc"] = res["pvalue_mc"]
            cols["pvalue_mc_adjusted"] = _stats.adjust_pvalues(res["pvalue_mc"], adjust)
            cols["backend"] = res["backend"]
        cols["small_counts"] = res["small_counts"]
        cols["note"] = res["note"]
        notes = tuple(dict.fromkeys(n for n in res["note"] if n))
        return ABTable(src.arrow_table(cols), "g_test", adjust, n=self.n, n_dropped=self.n_dropped,
                       by=tuple(self.by), srm=srm, notes=notes)

    def z_test(self, **overrides):
        """Every other group against ``control`` on the mean (or proportion) of ``value``;
        regression-adjusted with the state's covariates, a ratio of sums with its denominator
        (see :func:`z_test`).

        Takes the state's options; ``control``, ``kind``, ``alternative``, ``margin``, ``confidence``,
        ``adjust``, ``expected_split``, ``srm_threshold`` and ``variance`` may be overridden for this
        call. Returns a :class:`ZTestResult`, or an :class:`ABTable` with ``by`` or several treatments.
        """
        if self.value is None:
            raise ValueError("this state has no `value` column: a z-test needs one")
        o = self._options(_Z_OPTIONS, overrides, "z_test")
        multi = bool(self.moment_columns)
        kind, alternative, margin, confidence, variance = _z_options(
            o["kind"], o["alternative"], o["margin"], o["confidence"], o["variance"], multi, self.denominator,
            self.covariates, self.moment_degree)
        adjust = check_choice("adjust", None if o["adjust"] == "none" else o["adjust"], _ADJUST, allow_none=True)
        control = _plain_label(o["control"])
        self._check_nonempty()
        if kind == "proportion":
            self._check_binary()
        so, go, _ = self._sorted()
        groups = [self.groups.labels[i] for i in go]
        c_idx, control_source = _control_index(control, groups, self.group)
        srm = self.srm(o["expected_split"], o["srm_threshold"])
        _warn_srm(srm)
        n = self.cell_n[np.ix_(so, go)]
        mean = self.cell_mean[np.ix_(so, go)]
        m2 = self.cell_m2[np.ix_(so, go)]
        treat = [j for j in range(len(groups)) if j != c_idx]
        S = n.shape[0]
        seg_rows = np.repeat(np.arange(S), len(treat))
        t_rows = np.tile(np.array(treat), S)
        nc, mc, m2c = n[seg_rows, c_idx], mean[seg_rows, c_idx], m2[seg_rows, c_idx]
        nt, mt, m2t = n[seg_rows, t_rows], mean[seg_rows, t_rows], m2[seg_rows, t_rows]
        adjusted = multi or variance != "welch"
        if not adjusted:
            r = _stats.z_compare(nc, mc, m2c, nt, mt, m2t, kind=kind, alternative=alternative,
                                 margin=margin, confidence=confidence)
            extra_notes = [""] * len(seg_rows)
        else:
            if multi:
                mu = self.mu[np.ix_(so, go)]
                mom = self.mom[np.ix_(so, go)]
                nv, deg = len(self.moment_columns), self.moment_degree
            else:  # variance="hc1" without covariates: (n, mean, M2) are all it needs
                mu = mean[..., None]
                mom = np.stack([n.astype(float), np.zeros_like(m2), m2], axis=-1)
                nv, deg = 1, 2
            stats_c = dict(n=nc, mean=mu[seg_rows, c_idx], M=mom[seg_rows, c_idx])
            stats_t = dict(n=nt, mean=mu[seg_rows, t_rows], M=mom[seg_rows, t_rows])
            r = _cuped.compare(stats_c, stats_t, ratio=self.denominator is not None, n_cov=len(self.covariates),
                               variance=variance, degree=deg, alternative=alternative, margin=margin,
                               confidence=confidence)
            assert nv == 1 + (self.denominator is not None) + len(self.covariates)
            extra_notes = r.pop("notes")
            mc, mt = r.pop("mean_control"), r.pop("mean_treatment")
        need = 2 + len(self.covariates) if variance == "hc1" else 2
        bad = (nc < 2) | (nt < 2) | ((nc + nt) <= need)
        notes = [("fewer than two rows in control or treatment" if bad[k] else extra_notes[k])
                 for k in range(len(seg_rows))]
        for key in r:
            if key != "theta":
                r[key] = np.where(bad, np.nan, r[key])
        if adjusted and not self.by and len(treat) == 1 and notes[0]:
            warnings.warn(f"z-test on {self.value!r}: {notes[0]}", RuntimeWarning, stacklevel=3)
        extra = {"standard_error_unadjusted": r["std_error"]}
        if adjusted:
            extra = dict(covariates=tuple(self.covariates), denominator=self.denominator, variance=variance,
                         variance_reduction=r["variance_reduction"], extra_sample_size=r["extra_sample_size"],
                         standard_error_unadjusted=r["standard_error_unadjusted"],
                         adjusted_mean_control=r["adjusted_mean_control"],
                         adjusted_mean_treatment=r["adjusted_mean_treatment"])
        method = _interval_method(kind, adjusted, self.denominator is not None, variance)
        if not self.by and len(treat) == 1:
            scalars = {k: float(v[0]) for k, v in extra.items() if isinstance(v, np.ndarray)}
            extra.update(scalars)
            if adjusted:
                extra["theta"] = tuple(float(x) for x in r["theta"][0])
            return ZTestResult(
                statistic=float(r["statistic"][0]), pvalue=float(r["pvalue"][0]),
                difference=float(r["difference"][0]),
                confidence_interval=ConfidenceInterval(float(r["ci_low"][0]), float(r["ci_high"][0]),
                                                       confidence=confidence, method=method),
                relative_difference=float(r["relative_difference"][0]),
                relative_difference_ci=ConfidenceInterval(float(r["rel_low"][0]), float(r["rel_high"][0]),
                                                           confidence=confidence, method="delta method"),
                standard_error=float(r["std_error"][0]), control=groups[c_idx], treatment=groups[treat[0]],
                mean_control=float(mc[0]), mean_treatment=float(mt[0]), n_control=int(nc[0]),
                n_treatment=int(nt[0]), kind=kind, alternative=alternative, margin=margin,
                confidence=confidence, control_source=control_source, value=self.value, srm=srm, n=self.n,
                n_dropped=self.n_dropped, note=notes[0], **extra,
            )
        cols = {}
        if self.by:
            seg_labels = [self.segments.labels[so[i]] for i in seg_rows]
            cols.update(_label_columns(self.by, seg_labels))
        cols["control"] = [groups[c_idx]] * len(seg_rows)
        cols["treatment"] = [groups[j] for j in t_rows]
        cols["n_control"] = nc
        cols["n_treatment"] = nt
        cols["mean_control"] = mc
        cols["mean_treatment"] = mt
        if adjusted and multi:
            cols["adjusted_mean_control"] = r["adjusted_mean_control"]
            cols["adjusted_mean_treatment"] = r["adjusted_mean_treatment"]
        cols["difference"] = r["difference"]
        cols["low"] = r["ci_low"]
        cols["high"] = r["ci_high"]
        cols["relative_difference"] = r["relative_difference"]
        cols["relative_difference_low"] = r["rel_low"]
        cols["relative_difference_high"] = r["rel_high"]
        cols["standard_error"] = r["std_error"]
        if adjusted:
            cols["standard_error_unadjusted"] = r["standard_error_unadjusted"]
            cols["variance_reduction"] = r["variance_reduction"]
            cols["extra_sample_size"] = r["extra_sample_size"]
            for j, c in enumerate(self.covariates):
                cols[f"theta[{c}]"] = np.where(bad, np.nan, r["theta"][:, j])
        cols["statistic"] = r["statistic"]
        cols["pvalue"] = r["pvalue"]
        cols["pvalue_adjusted"] = _stats.adjust_pvalues(r["pvalue"], adjust)
        cols["note"] = notes
        test = f"z_test[{kind}]" if not adjusted else f"z_test[{'ratio' if self.denominator else kind}, {variance}]"
        return ABTable(src.arrow_table(cols), test, adjust, n=self.n, n_dropped=self.n_dropped,
                       control=groups[c_idx], control_source=control_source, by=tuple(self.by), srm=srm,
                       notes=tuple(dict.fromkeys(n for n in notes if n)))

    def _check_binary(self):
        if self.non_binary_value is not None:
            raise ValueError(
                f"kind='proportion' needs 0/1 values, but column {self.value!r} has other values "
                f"(such as {self.non_binary_value!r}); use kind='mean'"
            )

