"""A/B tests over Arrow tables and Parquet logs: G-test and z-test, on the protocol.

Every function here is the same steps: build an :class:`ABTestState` with the
function's options, fold the data into it with the one fold engine
(:func:`fastevals._fold.fold`: counts per (segment, group, outcome) cell and
n / mean / M2 per (segment, group) cell, by one compiled pass; in process or
on Dask), and finalize in closed form.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from . import _cuped, _stats
from . import _source as src
from ._config import CHUNK_ROWS, PARALLEL_MIN_ROWS
from ._fold import check_backend, fold
from ._protocol import LABEL, NUMERIC, ConfidenceInterval, State, non_finite_error
from ._validation import (
    as_column_list,
    check_choice,
    check_finite_float,
    check_int,
    check_probability,
    check_seed,
)
from .results import (
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

    from numpy.typing import ArrayLike

    from ._typing import Columns, Data, Filter, Seed

__all__ = ["ABTestState", "abtest", "g_test", "g_test_counts", "z_test"]

_ALTERNATIVES = ("two-sided", "larger", "smaller")
_ADJUST = ("holm", "bh")
#: per-chunk partial tables are capped at this many cells x chunks; beyond it chunks grow
_MAX_PARTIAL_CELLS = 1 << 23
#: Monte Carlo work is refused beyond this many table cells drawn (tables x cells, all segments):
#: about 0.1 microsecond a cell on one core, so the limit is a few minutes on a laptop
MAX_MONTE_CARLO_CELLS = 10**9
#: tables holding more counts than this get no Monte Carlo p-value (Patefield's draws walk the
#: counts, and at such sizes the chi-square p-value is as good): a note says so
MAX_MONTE_CARLO_TOTAL = 10**9
#: the options that shape the finalize step (constructor options; overridable in g_test() / z_test())
_G_OPTIONS = ("correction", "monte_carlo", "seed", "adjust", "expected_split", "srm_threshold", "backend")
_Z_OPTIONS = ("control", "kind", "alternative", "margin", "confidence", "adjust", "expected_split",
              "srm_threshold", "variance")


def _sort_key(label):
    if isinstance(label, tuple):
        return tuple(_sort_key(x) for x in label)
    return (type(label).__name__, label)


def _label_columns(names: list[str], labels: list) -> dict[str, list]:
    if len(names) == 1:
        return {names[0]: list(labels)}
    return {name: [lab[k] for lab in labels] for k, name in enumerate(names)}


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


def _check_monte_carlo(monte_carlo, cells: int = 4):
    monte_carlo = check_int("monte_carlo", monte_carlo, low=1, allow_none=True)
    if monte_carlo is not None and monte_carlo * cells > MAX_MONTE_CARLO_CELLS:
        most = max(1, MAX_MONTE_CARLO_CELLS // cells)
        raise ValueError(
            f"monte_carlo={monte_carlo} would draw {monte_carlo:,} random tables of {cells:,} cells in all "
            f"({monte_carlo * cells:.3g} cells, about {monte_carlo * cells * 1e-7 / 60:,.0f} CPU-minutes or more), "
            f"over the limit of {MAX_MONTE_CARLO_CELLS:.0e} cells: pass at most monte_carlo={most} "
            "(10,000 to 100,000 tables give the p-value to within about 0.005 to 0.0015)")
    return monte_carlo


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
        from ._kernels import cells

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
        from ._kernels import cells

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


def _expected_shares(expected_split, labels) -> np.ndarray:
    if expected_split is None:
        return np.ones(len(labels))
    if isinstance(expected_split, dict):
        missing = [g for g in labels if g not in expected_split and str(g) not in expected_split]
        if missing:
            raise ValueError(f"`expected_split` has no share for group(s) {missing!r}")
        shares = np.array([expected_split.get(g, expected_split.get(str(g))) for g in labels], dtype=float)
    else:
        shares = np.asarray(expected_split, dtype=float)
        if shares.shape != (len(labels),):
            raise ValueError(f"`expected_split` needs {len(labels)} shares (groups in sorted order "
                             f"{labels!r}); got {list(shares)!r}")
    if not np.all(np.isfinite(shares)) or np.any(shares <= 0):
        raise ValueError(f"`expected_split` shares must be positive and finite; got {shares.tolist()!r}")
    return shares


def _warn_srm(srm: SRMResult, stacklevel: int = 4) -> None:
    if srm.mismatch:
        warnings.warn(srm.message(), SampleRatioMismatchWarning, stacklevel=stacklevel)


def _interval_method(kind: str, adjusted: bool, ratio: bool, variance: str) -> str:
    if ratio:
        return "delta method (ratio of sums)"
    if adjusted:
        return "regression adjustment, " + ("HC1 robust" if variance == "hc1" else "Welch") + " standard error"
    return "wald, unpooled" if kind == "proportion" else "wald, Welch standard error"


def _control_index(control, groups: list, column: str) -> tuple[int, str]:
    """The control's index among the sorted groups, and how it was chosen (in words)."""
    if control is None:
        if "control" in groups:
            return groups.index("control"), "the group named 'control'"
        return 0, "the first group in sorted order"
    if control in groups:
        return groups.index(control), "given"
    as_text = [str(g) for g in groups]
    if str(control) in as_text:
        return as_text.index(str(control)), "given"
    raise ValueError(f"`control`={control!r} is not a group of column {column!r}; groups: {groups!r}")


def _g_iv(correction, monte_carlo, seed, adjust, backend="auto"):
    correction = check_choice("correction", correction, ("williams", "yates"), allow_none=True)
    monte_carlo = _check_monte_carlo(monte_carlo)
    seed_key = check_seed("seed", seed)
    adjust = check_choice("adjust", adjust, _ADJUST, allow_none=True)
    backend = check_backend(backend, supported=("auto", "cpu", "cuda"))
    return correction, monte_carlo, seed_key, adjust, backend


_SMALL_COUNTS_NOTE = ("small counts (a cell under 100 or an expected count under 5): the chi-square p-value is "
                      "unreliable; read pvalue_mc")


def _g_single(observed, correction, monte_carlo, seed_key, backend="auto") -> dict:
    """G-test of one R x C table without empty rows or columns."""
    obs = np.asarray(observed, dtype=np.float64)
    r, c = obs.shape
    expected = _stats.expected_counts(obs)
    dof = (r - 1) * (c - 1)
    if correction == "yates":
        if (r, c) != (2, 2):
            raise ValueError(f"correction='yates' applies to 2 x 2 tables only; this table is {r} x {c}")
        g = float(_stats.g_statistic(_stats.yates_adjust(obs, expected), expected))
    else:
        g = float(_stats.g_statistic(obs, expected))
        if correction == "williams":
            g /= float(_stats.williams_q(obs))
    pvalue = float(_stats.chi2_sf(g, dof))
    small = bool(obs.min() < 100 or expected.min() < 5)
    pvalue_mc = None
    note = ""
    used = "cpu"
    total = float(obs.sum())
    skipped = bool(monte_carlo) and total > MAX_MONTE_CARLO_TOTAL
    if monte_carlo and not skipped:
        pvalue_mc, used = _monte_carlo_pvalue(obs, expected, monte_carlo, seed_key, backend)
    if skipped:
        note = _mc_skipped_note(total, float(expected.min()))
        warnings.warn(note, RuntimeWarning, stacklevel=4)
    elif small:
        note = _SMALL_COUNTS_NOTE + ("" if monte_carlo else " (pass monte_carlo=N)")
    return dict(statistic=g, pvalue=pvalue, dof=dof, expected_freq=expected, observed=observed,
                correction=correction, pvalue_mc=pvalue_mc, n_monte_carlo=0 if skipped else (monte_carlo or 0),
                small_counts=small, note=note, backend=used)


def _mc_skipped_note(total: float, min_expected: float) -> str:
    """Why a table of more than MAX_MONTE_CARLO_TOTAL counts gets no Monte Carlo p-value."""
    why = (f"Monte Carlo p-value not computed: the table holds {total:.3g} counts, over "
           f"{MAX_MONTE_CARLO_TOTAL:.0e} (Patefield's draws walk the counts and would take hours)")
    if min_expected >= 5:
        return why + (f"; with every expected count at least {min_expected:.3g} the chi-square p-value is "
                      "exact enough there (read pvalue)")
    return why + (f"; the smallest expected count is {min_expected:.3g}, under 5: the chi-square p-value "
                  "may be off; drop or pool the sparse rows/columns and test them apart")


def _g_columns(rows: list[dict]) -> dict:
    """Per-segment results (dicts of :func:`_g_single`) as the sliced table's columns."""
    return dict(
        statistic=np.array([r["statistic"] for r in rows], dtype=np.float64),
        dof=np.array([r["dof"] for r in rows], dtype=np.int64),
        pvalue=np.array([r["pvalue"] for r in rows], dtype=np.float64),
        pvalue_mc=np.array([np.nan if r["pvalue_mc"] is None else r["pvalue_mc"] for r in rows],
                           dtype=np.float64),
        backend=[r.get("backend", "cpu") for r in rows],
        small_counts=np.array([r["small_counts"] for r in rows], dtype=np.bool_),
        note=[r.get("note", "") for r in rows],
    )


def _g_segments_plain(counts: np.ndarray) -> dict:
    """The uncorrected G-test of every segment's (group x outcome) table at once, as the
    sliced table's columns (those of :func:`_g_columns`).

    Equal to :func:`_g_single` on each table with its empty rows and columns dropped
    (they add nothing to G and are left out of the dof and the small-count check);
    one vectorized pass instead of a Python call per segment.
    """
    obs = counts.astype(np.float64)
    keep_r = obs.sum(axis=2) > 0
    keep_c = obs.sum(axis=1) > 0
    n_r, n_c = keep_r.sum(axis=1), keep_c.sum(axis=1)
    expected = _stats.expected_counts(obs)
    g = _stats.g_statistic(obs, expected)  # the accurate form, as the single-table test uses
    dof = (n_r - 1) * (n_c - 1)
    valid = (n_r >= 2) & (n_c >= 2)
    p = np.full(g.shape, np.nan)
    p[valid] = _stats.chi2_sf(g[valid], dof[valid])
    kept = keep_r[:, :, None] & keep_c[:, None, :]
    small = (np.where(kept, obs, np.inf).min(axis=(1, 2)) < 100) | (
        np.where(kept, expected, np.inf).min(axis=(1, 2)) < 5)
    small |= ~valid
    note = _SMALL_COUNTS_NOTE + " (pass monte_carlo=N)"
    return dict(
        statistic=np.where(valid, g, np.nan),
        dof=np.where(valid, dof, 0).astype(np.int64),
        pvalue=p,
        pvalue_mc=np.full(g.shape, np.nan),
        backend=["cpu"] * g.shape[0],
        small_counts=small,
        note=[(note if small[k] else "") if valid[k] else "fewer than two groups or outcome levels"
              for k in range(g.shape[0])],
    )


def _monte_carlo_pvalue(obs: np.ndarray, expected: np.ndarray, n_tables: int, seed_key: int,
                        backend: str = "auto") -> tuple[float, str]:
    """(1 + #{G_sim >= G_obs}) / (N + 1) over N tables with the observed margins (uncorrected G),
    and the backend that drew them.
    """
    from ._cuda.backend import resolve_backend
    from ._kernels import patefield

    used = resolve_backend(backend, n_tables * obs.size)
    if used == "cuda":
        from ._cuda import patefield  # type: ignore[no-redef]  # the CUDA twin: same functions

    if not np.all(obs == np.round(obs)):
        raise ValueError("monte_carlo needs integer counts in `observed`")
    rows = obs.sum(axis=1).astype(np.int64)
    cols = obs.sum(axis=0).astype(np.int64)
    total = int(rows.sum())
    g_obs = float(_stats.g_statistic(obs, expected))
    if total <= 4_000_000:
        x = np.arange(total + 1, dtype=np.float64)
        xlogx = np.zeros(total + 1)
        xlogx[1:] = x[1:] * np.log(x[1:])
    else:
        xlogx = np.zeros(0)
    # G of an equal table is recomputed with other rounding: compare with a relative tolerance
    threshold = g_obs - 1e-7 * max(1.0, abs(g_obs))
    hits = patefield.monte_carlo_g_hits(rows, cols, np.log(expected), xlogx, threshold, n_tables,
                                        np.uint64(seed_key), 1024)
    return (1.0 + int(hits)) / (n_tables + 1.0), used


# ------------------------------------------------------------------------------------------------
# public API

# ------------------------------------------------------------------------------------------------
# public API


def _run(state: ABTestState, data, engine) -> ABTestState:
    state = fold(state, data, engine=engine)
    state.check_not_empty()
    return state


def g_test(data: Data, *, group: str, outcome: str, by: Columns | None = None, correction: str | None = None,
           monte_carlo: int | None = None, seed: Seed = None, adjust: str | None = "holm", nulls: str = "raise",
           filter: Filter = None, batch_size: int | None = None,
           expected_split: Mapping[Any, float] | Sequence[float] | None = None, progress: bool | None = None,
           engine: str | None = None, backend: str = "auto") -> GTestResult | ABTable:
    """G-test of independence between ``group`` and ``outcome`` (any R x C table).

    Parameters
    ----------
    data : table-like
        A pyarrow Table/RecordBatch/RecordBatchReader/Dataset, a Parquet path, folder, glob or list
        of paths, a pandas or polars DataFrame, an object with ``__arrow_c_stream__``, a dict of
        arrays, or a Dask DataFrame.
    group, outcome : str
        Columns: strings, dictionary-encoded strings, integers or booleans.
    by : str or list of str, optional
        Segment columns: one test per segment, all in the same pass; returns an :class:`ABTable`.
    correction : {None, "williams", "yates"}
        Williams' correction (any table) or Yates' continuity correction (2 x 2 only).
    monte_carlo : int, optional
        Also compute a Monte Carlo p-value from this many random tables with the observed
        margins (Patefield's algorithm; seeded, reproducible on any thread count). At most
        ``MAX_MONTE_CARLO_CELLS`` (1e9) table cells in all (a clear error beyond); tables of more
        than 1e9 counts get no Monte Carlo p-value (a warning and a note: the chi-square p-value
        is exact enough there).
    seed : int or numpy Generator, optional
        Seed of the Monte Carlo tables; None draws a fresh one (the p-value then varies a little
        from run to run).
    adjust : {"holm", "bh", None}
        Adjustment of the per-segment p-values (``by`` only).
    nulls : {"raise", "drop"}
        ``"drop"`` leaves out rows with a null (or NaN / inf in a numeric column) and counts them.
    filter : pyarrow.compute.Expression, optional
        Row filter, pushed into the Parquet scan.
    batch_size : int, optional
        Rows per scanned batch.
    expected_split : dict or sequence, optional
        Expected share of each group for the sample-ratio-mismatch check (equal by default).
    progress : bool, optional
        None (default): shown on long scans when stderr is a terminal.
    engine : {None, "auto", "arrow", "dask"}
        None runs a ``dask.dataframe.DataFrame`` on Dask (one state per partition, tree-merged on
        the current ``distributed.Client``) and everything else in this process; "dask" has the
        Dask workers read Parquet paths themselves.
    backend : {"auto", "cpu", "cuda"}
        Where the Monte Carlo tables are drawn: ``"cuda"`` on an NVIDIA GPU (the same
        counter-based tables, so the same p-value; needs the ``cuda`` extra and a GPU, else
        an error saying why); ``"auto"`` uses a GPU only when one is present and the
        tables x cells are many. The result's ``backend`` says which ran.

    Returns
    -------
    GTestResult or ABTable
        ``statistic, pvalue, dof, expected_freq``; equal to
        ``scipy.stats.chi2_contingency(observed, correction=False, lambda_="log-likelihood")``.

    Raises
    ------
    ValueError
        Unknown columns, a single group or outcome level, empty input, nulls (with
        ``nulls="raise"``), options out of range.

    Examples
    --------
    >>> import numpy as np, fastevals
    >>> rng = np.random.default_rng(0)
    >>> data = {"variant": rng.choice(["a", "b"], 10_000), "converted": rng.random(10_000) < 0.1}
    >>> res = fastevals.g_test(data, group="variant", outcome="converted")
    >>> bool(0 <= res.pvalue <= 1), res.dof
    (True, 1)

    References
    ----------
    R. R. Sokal and F. J. Rohlf, *Biometry*, 3rd ed., section 17.2 (G-test, Williams' correction).
    D. A. Williams, "Improved likelihood ratio tests for complete contingency tables", Biometrika 63 (1976).
    """
    st = ABTestState(group=group, outcome=outcome, by=by, correction=correction, monte_carlo=monte_carlo,
                     seed=seed, adjust=adjust, nulls=nulls, filter=filter, batch_size=batch_size,
                     expected_split=expected_split, progress=progress, backend=backend)
    return _run(st, data, engine).g_test()


def z_test(data: Data, *, group: str, value: str, control: str | None = None, kind: str = "mean",
           alternative: str = "two-sided", margin: float = 0.0, confidence: float = 0.95, by: Columns | None = None,
           adjust: str | None = "holm", nulls: str = "raise", filter: Filter = None,
           batch_size: int | None = None, expected_split: Mapping[Any, float] | Sequence[float] | None = None,
           progress: bool | None = None, engine: str | None = None, covariate: str | Sequence[str] | None = None,
           denominator: str | None = None, variance="welch") -> ZTestResult | ABTable:
    """Two-sample z-test of every group against ``control`` on the mean (or proportion) of ``value``;
    with regression adjustment (CUPED) on ``covariate`` and ratio metrics with ``denominator``.

    ``kind="mean"``: unequal-variance (Welch) standard error, as statsmodels
    ``CompareMeans.ztest_ind(usevar="unequal")`` and ``zconfint_diff``.
    ``kind="proportion"`` (0/1 values): pooled standard error for the test
    (``proportions_ztest``), unpooled for the interval
    (``confint_proportions_2indep(method="wald")``).

    Parameters
    ----------
    data : table-like
        Any source fastevals reads (Arrow, Parquet path, pandas, polars, dict of arrays, Dask).
    group, value : str
        The group (variant) column and the numeric metric column.
    control : optional
        The control group. Without it the control is the group named "control" if there is one,
        else the first group in sorted order; the result says which, in words
        (``control_source`` and a note).
    kind : {"mean", "proportion"}
    alternative : {"two-sided", "larger", "smaller"}
    margin : float
        Tests treatment - control against ``margin`` instead of 0 (with ``alternative="larger"``:
        superiority by at least ``margin``; with a negative margin: non-inferiority).
    confidence : float
        Level of the intervals (``confidence_interval``, ``relative_difference_ci``).
    by : str or list of str, optional
        Segment columns: one comparison per (segment, treatment), Holm-adjusted (``adjust``).
    adjust : {"holm", "bh", None}
    nulls : {"raise", "drop"}
        ``"drop"`` leaves out rows with a null, NaN or inf in any column used, and counts them.
    filter, batch_size, expected_split, progress, engine
        As in :func:`g_test`.
    covariate : str or list of str, optional
        Pre-experiment covariates (e.g. the metric's pre-period value, or a model's prediction as in
        CUPAC): regression adjustment. The difference is the coefficient on the treatment indicator of
        OLS ``value ~ 1 + treatment + covariates`` on the two groups' rows (per segment), i.e. the
        plain difference minus ``theta' (xbar_t - xbar_c)`` with the pooled within-group coefficient
        ``theta``. Kept as per-cell co-moments: mergeable, one pass, every segment at once.
    denominator : str, optional
        Ratio metric: per group ``sum(value) / sum(denominator)`` (e.g. revenue per session) with rows
        as the units (e.g. users); standard error by the delta method (ddof=1 covariances).
        Covariates adjust its linearization (pass the numerator's and the denominator's
        pre-period columns as two covariates).
    variance : {"welch", "hc1"}
        ``"welch"``: the Welch standard error of the adjusted values ``value - theta' covariates``
        of each group (as CUPED is usually reported; the delta method for ratios).
        ``"hc1"``: statsmodels' HC1 (heteroskedasticity-robust) standard error of the OLS coefficient;
        with covariates the scan then also keeps third and fourth co-moments (slower scan).

    Returns
    -------
    ZTestResult or ABTable
        A :class:`ZTestResult` for one treatment without ``by``, else an :class:`ABTable` with a row
        per (segment, treatment) and adjusted p-values. With covariates both report
        ``variance_reduction`` (1 - adjusted variance / plain variance of the difference) and
        ``extra_sample_size`` (rows a plain test would need on top of these for the same standard
        error).

    Raises
    ------
    ValueError
        Unknown columns, non-numeric or non-finite values, a single group, ``kind="proportion"``
        with covariates or a denominator, ``variance="hc1"`` with a denominator.

    Examples
    --------
    >>> import numpy as np, fastevals
    >>> rng = np.random.default_rng(1)
    >>> data = {"variant": np.repeat(["a", "b"], 5000), "revenue": rng.exponential(10, 10_000)}
    >>> res = fastevals.z_test(data, group="variant", value="revenue", control="a")
    >>> res.control, res.treatment, res.n_treatment
    ('a', 'b', 5000)

    Regression adjustment on a pre-period covariate:

    >>> pre = rng.exponential(10, 10_000)
    >>> data = {"variant": np.repeat(["a", "b"], 5000), "pre": pre,
    ...         "revenue": 0.8 * pre + rng.normal(0, 3, 10_000) + np.repeat([0.0, 0.5], 5000)}
    >>> res = fastevals.z_test(data, group="variant", value="revenue", control="a", covariate="pre")
    >>> round(res.difference, 3), round(res.variance_reduction, 2)
    (0.502, 0.88)

    References
    ----------
    A. Deng, Y. Xu, R. Kohavi, T. Walker, "Improving the sensitivity of online controlled experiments
    by utilizing pre-experiment data", WSDM 2013.
    A. Deng, U. Knoblich, J. Lu, "Applying the delta method in metric analytics", KDD 2018.
    """
    st = ABTestState(group=group, value=value, by=by, control=control, kind=kind, alternative=alternative,
                     margin=margin, confidence=confidence, adjust=adjust, nulls=nulls, filter=filter,
                     batch_size=batch_size, expected_split=expected_split, progress=progress,
                     covariate=covariate, denominator=denominator, variance=variance)
    return _run(st, data, engine).z_test()


def abtest(data: Data, *, group: str, outcome: str | None = None, value: str | None = None, by: Columns | None = None,
           control: str | None = None, kind: str = "mean", alternative: str = "two-sided", margin: float = 0.0,
           confidence: float = 0.95, correction: str | None = None, monte_carlo: int | None = None,
           seed: Seed = None, adjust: str | None = "holm", nulls: str = "raise", filter: Filter = None,
           batch_size: int | None = None, expected_split: Mapping[Any, float] | Sequence[float] | None = None,
           progress: bool | None = None, engine: str | None = None, backend: str = "auto",
           covariate: str | Sequence[str] | None = None, denominator: str | None = None, variance="welch"
           ) -> ABTestReport:
    """G-test on ``outcome`` and z-test on ``value`` in one pass over ``data``.

    Parameters
    ----------
    data : table-like
        As in :func:`g_test`.
    group : str
        The group (variant) column.
    outcome, value : str, optional
        The G-test's categorical outcome and the z-test's numeric metric; give one or both. They may
        name the same 0/1 column (a conversion flag: G-test and z-test of it).
    by, control, kind, alternative, margin, confidence, adjust, covariate, denominator, variance
        As in :func:`z_test` (``by`` and ``adjust`` apply to both tests).
    correction, monte_carlo, seed, backend
        As in :func:`g_test`.
    nulls, filter, batch_size, expected_split, progress, engine
        As in :func:`g_test`.

    Returns
    -------
    ABTestReport
        ``g_test``, ``z_test`` (None where not asked for), ``srm``, ``n``, ``n_dropped``;
        ``str(report)`` is what ``fastevals abtest`` prints.

    Raises
    ------
    ValueError
        Neither ``outcome`` nor ``value``; as :func:`g_test` and :func:`z_test`.

    Examples
    --------
    >>> import numpy as np, fastevals
    >>> rng = np.random.default_rng(2)
    >>> data = {"variant": rng.choice(["control", "new"], 20_000),
    ...         "converted": rng.random(20_000) < 0.1, "revenue": rng.exponential(5, 20_000)}
    >>> rep = fastevals.abtest(data, group="variant", outcome="converted", value="revenue")
    >>> rep.z_test.control, rep.g_test.dof
    ('control', 1)
    """
    if outcome is None and value is None:
        raise ValueError("give `outcome` (for the G-test), `value` (for the z-test), or both")
    st = ABTestState(group=group, outcome=outcome, value=value, by=by, control=control, kind=kind,
                     alternative=alternative, margin=margin, confidence=confidence, correction=correction,
                     monte_carlo=monte_carlo, seed=seed, adjust=adjust, nulls=nulls, filter=filter,
                     batch_size=batch_size, expected_split=expected_split, progress=progress, backend=backend,
                     covariate=covariate, denominator=denominator, variance=variance)
    return _run(st, data, engine).finalize()


def g_test_counts(observed: ArrayLike, *, correction: str | None = None, monte_carlo: int | None = None,
                  seed: Seed = None, backend: str = "auto") -> GTestResult:
    """G-test of independence on a table of counts, or on a stack of tables ``(..., R, C)``.

    A single table with an all-zero row or column raises (its expected counts
    are zero); in a stack, such tables get NaN and a RuntimeWarning says how many.

    Parameters
    ----------
    observed : array-like
        Counts, ``(R, C)`` or a stack ``(..., R, C)``; R, C >= 2.
    correction, monte_carlo, seed, backend
        As in :func:`g_test`. Tables of more than 1e9 counts get no Monte Carlo p-value (a
        RuntimeWarning and a note say why: the chi-square p-value is exact enough there).

    Returns
    -------
    GTestResult
        Unpacks as ``statistic, pvalue, dof, expected_freq`` (arrays for a stack).

    Raises
    ------
    ValueError, TypeError
        Not an array of finite non-negative counts, fewer than 2 rows or columns, an all-zero row
        or column in a single table, ``monte_carlo`` beyond the limit.

    Examples
    --------
    >>> import fastevals
    >>> res = fastevals.g_test_counts([[120, 880], [150, 850]])
    >>> round(res.statistic, 4), res.dof
    (3.8605, 1)
    """
    correction, monte_carlo, seed_key, _, backend = _g_iv(correction, monte_carlo, seed, None, backend)
    try:
        obs = np.asarray(observed, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"`observed` must be an array of counts; got {type(observed).__name__}") from None
    if obs.ndim < 2:
        raise ValueError(f"`observed` must have at least 2 dimensions (R x C); got shape {obs.shape}")
    r, c = obs.shape[-2:]
    if r < 2 or c < 2:
        raise ValueError(f"`observed` tables must be at least 2 x 2; got {r} x {c}")
    if obs.size == 0 or not np.all(np.isfinite(obs)) or np.any(obs < 0):
        raise ValueError("`observed` must hold finite, non-negative counts")
    if correction == "yates" and (r, c) != (2, 2):
        raise ValueError(f"correction='yates' applies to 2 x 2 tables only; these are {r} x {c}")
    degenerate = (obs.sum(axis=-1) == 0).any(axis=-1) | (obs.sum(axis=-2) == 0).any(axis=-1)
    if obs.ndim == 2:
        if degenerate:
            rz = np.flatnonzero(obs.sum(axis=1) == 0).tolist()
            cz = np.flatnonzero(obs.sum(axis=0) == 0).tolist()
            raise ValueError(f"`observed` has all-zero rows {rz} / columns {cz}: expected counts would be "
                             "zero; drop them first")
        if monte_carlo:
            _check_monte_carlo(monte_carlo, r * c)
        res = _g_single(obs, correction, monte_carlo, seed_key, backend)
        res["observed"] = np.asarray(observed)
        return GTestResult(**res, n=int(obs.sum()) if obs.sum() < 2**63 else 0)
    expected = _stats.expected_counts(obs)
    if correction == "yates":
        g = _stats.g_statistic(_stats.yates_adjust(obs, expected), expected)
    else:
        g = _stats.g_statistic(obs, expected)
        if correction == "williams":
            g = g / _stats.williams_q(obs)
    g = np.where(degenerate, np.nan, g)
    dof = (r - 1) * (c - 1)
    pvalue = _stats.chi2_sf(g, dof)
    if degenerate.any():
        warnings.warn(f"{int(degenerate.sum())} table(s) of the stack have an all-zero row or column; "
                      "their statistic and p-value are NaN", RuntimeWarning, stacklevel=2)
    with np.errstate(invalid="ignore"):
        small = (obs.min(axis=(-2, -1)) < 100) | (np.nan_to_num(expected, nan=0.0).min(axis=(-2, -1)) < 5)
    pvalue_mc = None
    used = set()
    if monte_carlo:
        _check_monte_carlo(monte_carlo, obs.size)
        flat_obs = obs.reshape(-1, r, c)
        flat_exp = expected.reshape(-1, r, c)
        flat_deg = degenerate.reshape(-1)
        pmc = np.full(flat_obs.shape[0], np.nan)
        for k in range(flat_obs.shape[0]):
            if not flat_deg[k] and flat_obs[k].sum() <= MAX_MONTE_CARLO_TOTAL:
                key = (seed_key + 0x9E3779B97F4A7C15 * (k + 1)) & 0xFFFFFFFFFFFFFFFF
                pmc[k], b = _monte_carlo_pvalue(flat_obs[k], flat_exp[k], monte_carlo, key, backend)
                used.add(b)
        pvalue_mc = pmc.reshape(degenerate.shape)
        huge = int(np.count_nonzero(flat_obs.sum(axis=(1, 2)) > MAX_MONTE_CARLO_TOTAL))
        if huge:
            warnings.warn(f"{huge} table(s) of the stack hold more than {MAX_MONTE_CARLO_TOTAL:.0e} counts: their "
                          "Monte Carlo p-value is NaN (the chi-square p-value is exact enough there)",
                          RuntimeWarning, stacklevel=2)
    return GTestResult(statistic=g, pvalue=pvalue, dof=dof, expected_freq=expected, observed=np.asarray(observed),
                       correction=correction, pvalue_mc=pvalue_mc, n_monte_carlo=monte_carlo or 0,
                       small_counts=small, backend="cuda" if "cuda" in used else "cpu",
                       n=int(obs.sum()) if obs.sum() < 2**63 else 0)


def warmup(parallel: bool = True) -> None:
    """Compile (or load from the on-disk cache) the A/B kernels for the common column types."""
    rows = PARALLEL_MIN_ROWS if parallel else 1000
    rng = np.random.default_rng(0)
    data = {
        "g": pa.array(rng.choice(["a", "b"], rows)).dictionary_encode(),
        "o": rng.integers(0, 2, rows).astype(np.int8),
        "v": rng.random(rows),
    }
    ABTestState(group="g", outcome="o", value="v").update(data)
    ABTestState(group="g", value="v", covariate="o").update(data)  # the co-moment kernel (CUPED)
    g_test_counts([[5, 6], [7, 8]], monte_carlo=10, seed=0)
