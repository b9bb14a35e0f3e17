"""Sequential tests that allow peeking: one row per look, always-valid p-values and intervals."""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import _source as src
from .._abtest.state import _codes_for_kernel, _values_for_kernel  # the A/B cell kernel's inputs
from .._config import CHUNK_ROWS, PARALLEL_MIN_ROWS
from .._fold import check_backend, fold
from .._protocol import ANY, LABEL, NUMERIC, ConfidenceInterval, Result, State, result_dataclass
from .._special import ndtr
from .._validation import as_column_list, check_choice, check_probability
from . import _math

if TYPE_CHECKING:
    from .._typing import Data, Filter

SEQUENTIAL_METHODS = ("msprt", "confidence_sequence", "group_sequential")
_METHOD_TEXT = {"msprt": "mixture SPRT", "confidence_sequence": "asymptotic confidence sequence",
                "group_sequential": "group sequential (Lan-DeMets)"}
#: partial cells a batch may hold in the kernel (as fastevals._abtest.state)
_MAX_PARTIAL_CELLS = 1 << 23


def _sort_key(label):
    return (type(label).__name__, label)


def _plain(label):
    return label.item() if isinstance(label, np.generic) else label


def _time_values(dictionary: pa.Array, column: str) -> np.ndarray:
    t = dictionary.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return np.array(dictionary.to_pylist(), dtype=str)
    if pa.types.is_integer(t):
        return np.asarray(dictionary.to_numpy(zero_copy_only=False), dtype=np.int64)
    if pa.types.is_date(t) or pa.types.is_timestamp(t):
        values = dictionary.to_numpy(zero_copy_only=False)
        return values.astype("datetime64[D]") if pa.types.is_date(t) else values
    raise TypeError(f"column {column!r} (given as `time`) has type {t}; expected integers (a day or look "
                    "number), dates, timestamps or strings that sort in time order")


class SequentialState(State, kind="sequential"):
    """Per-(time, group) sufficient statistics of a sequential test: n, mean and M2 (Chan's merge).

    ``update`` with each new day's rows costs only those rows; ``merge`` combines shards; the state
    is serializable (``to_bytes``), so a daily job keeps it and folds the new day in. ``finalize``
    merges the cells cumulatively over the sorted time values and tests at every look. It takes the
    keyword arguments of :func:`sequential_test` (not ``data``, ``engine``, ``backend``).

    Examples
    --------
    >>> import numpy as np, fastevals
    >>> rng = np.random.default_rng(0)
    >>> day = np.repeat(np.arange(5), 400)
    >>> st = fastevals.SequentialState(group="variant", value="revenue", control="a")
    >>> for d in range(5):  # one update a day
    ...     rows = day == d
    ...     _ = st.update({"day": day[rows], "variant": np.array(["a", "b"] * 200),
    ...                    "revenue": rng.normal(1.0, 1.0, 400)})
    >>> res = st.finalize()
    >>> res.table.num_rows, res.reject
    (5, False)
    """

    def __init__(self, *, group: str, value: str | None = None, outcome: str | None = None, control: str | None = None,
                 time: str = "day", method: str = "msprt", alpha: float = 0.05, tau2: float | None = None,
                 tuning: float = 5000.0, spending: str = "obrien_fleming", max_n: int | None = None,
                 nulls: str = "raise", filter: Filter = None, batch_size: int | None = None,
                 progress: bool | None = None):
        super().__init__(nulls=nulls, filter=filter, batch_size=batch_size, progress=progress)
        self.group = _one_column("group", group)
        self.time = _one_column("time", time)
        if (value is None) == (outcome is None):
            raise ValueError("give the metric as `value` (a number per row) or as `outcome` (0/1 per row), "
                             "one of the two")
        self.value = _one_column("value", value) if value is not None else None
        self.outcome = _one_column("outcome", outcome) if outcome is not None else None
        cols = [self.group, self.time, self.value or self.outcome]
        if len(set(cols)) != len(cols):
            raise ValueError(f"a column is used twice among group/time/value|outcome: {cols!r}")
        if control is not None and not isinstance(control, (str, int, bool, np.integer)):
            raise TypeError(f"`control` must be a group label (str, int or bool); got {control!r}")
        self.control = _plain(control)
        self.method = check_choice("method", method, SEQUENTIAL_METHODS)
        self.alpha = check_probability("alpha", alpha)
        self.tau2 = _positive("tau2", tau2, allow_none=True)
        self.tuning = _positive("tuning", tuning)
        self.spending = check_choice("spending", spending, _math.SPENDINGS)
        if max_n is not None and (isinstance(max_n, bool) or not isinstance(max_n, numbers.Integral) or max_n < 2):
            raise ValueError(f"`max_n` must be an integer >= 2 (the planned rows in both groups) or None; "
                             f"got {max_n!r}")
        self.max_n = None if max_n is None else int(max_n)
        self.times: np.ndarray | None = None  # sorted distinct time values (NumPy array) once data came
        self.groups: list = []  # sorted group labels
        self.cell_n = np.zeros((0, 0), dtype=np.int64)
        self.cell_mean = np.zeros((0, 0))
        self.cell_m2 = np.zeros((0, 0))

    # -- protocol -----------------------------------------------------------------------------------
    def _params(self) -> dict:
        return {"group": self.group, "value": self.value, "outcome": self.outcome, "control": self.control,
                "time": self.time, "method": self.method, "alpha": self.alpha, "tau2": self.tau2,
                "tuning": self.tuning, "spending": self.spending, "max_n": self.max_n}

    def _requirements(self) -> dict:
        metric = ("value", self.value) if self.value is not None else ("outcome", self.outcome)
        return {self.group: ("group", LABEL), self.time: ("time", ANY), metric[1]: (metric[0], NUMERIC)}

    @classmethod
    def _example(cls):
        rng = np.random.default_rng(7)
        n = 240
        data = {"day": np.repeat(np.arange(6), n // 6), "variant": np.array(["a", "b"])[rng.integers(0, 2, n)],
                "revenue": rng.normal(10.0, 2.0, n)}
        return {"group": "variant", "value": "revenue", "control": "a", "time": "day"}, data

    def _update_batch(self, batch: pa.RecordBatch, rows) -> None:
        from .._kernels import cells

        tcol = batch.column(self.time)
        if not pa.types.is_dictionary(tcol.type):
            tcol = pc.dictionary_encode(tcol)
        times = _time_values(tcol.dictionary, self.time)
        t_codes = src.numeric_view(tcol.indices)
        seg = t_codes if t_codes.dtype in (np.int32, np.int8) else t_codes.astype(np.int32)
        g_lc = src.local_codes(batch.column(self.group))
        grp, grp_off = _codes_for_kernel(g_lc)
        metric = self.value or self.outcome
        val = _values_for_kernel(batch.column(metric))
        if self.outcome is not None:
            i = cells.first_non_binary(val)
            if i >= 0:
                raise ValueError(f"column {metric!r} (given as `outcome`) must hold 0/1 values; found "
                                 f"{val[i].item()!r} (use `value=` for a numeric metric)")
        n_seg, n_grp = len(times), g_lc.width
        n_cells = n_seg * n_grp
        rows_in = batch.num_rows
        chunk = CHUNK_ROWS
        if -(-rows_in // chunk) * n_cells * 4 > _MAX_PARTIAL_CELLS:
            chunk = max(chunk, -(-rows_in // max(1, _MAX_PARTIAL_CELLS // (n_cells * 4))))
        kernel = cells.fold_cells_parallel if rows_in >= PARALLEL_MIN_ROWS else cells.fold_cells_serial
        _, n, mean, m2 = kernel(seg, 0, grp, grp_off, n_grp, np.empty(0, np.int8), 0, 1, val, n_cells, chunk)
        n = n.reshape(n_seg, n_grp)
        mean = mean.reshape(n_seg, n_grp)
        m2 = m2.reshape(n_seg, n_grp)
        t_keep = np.flatnonzero(n.sum(axis=1) > 0)
        g_keep = np.flatnonzero(n.sum(axis=0) > 0)
        labels = [_plain(x) for x in g_lc.labels(g_keep)]
        self._add_cells(times[t_keep], labels, n[np.ix_(t_keep, g_keep)], mean[np.ix_(t_keep, g_keep)],
                        m2[np.ix_(t_keep, g_keep)])

    def _add_cells(self, times: np.ndarray, groups: list, n, mean, m2) -> None:
        if self.times is None:
            all_times = np.unique(times)
        else:
            try:
                all_times = np.union1d(self.times, times)
            except TypeError:  # numpy's DTypePromotionError is a TypeError
                raise TypeError(f"column {self.time!r} (given as `time`) changed type between inputs: "
                                f"{self.times.dtype} and {times.dtype}") from None
        all_groups = sorted(set(self.groups) | set(groups), key=_sort_key)
        T, G = len(all_times), len(all_groups)
        new_n = np.zeros((T, G), dtype=np.int64)
        new_mean = np.zeros((T, G))
        new_m2 = np.zeros((T, G))
        if self.times is not None and self.cell_n.size:
            ti = np.searchsorted(all_times, self.times)
            gi = np.array([all_groups.index(g) for g in self.groups])
            idx = np.ix_(ti, gi)
            new_n[idx], new_mean[idx], new_m2[idx] = self.cell_n, self.cell_mean, self.cell_m2
        ti = np.searchsorted(all_times, times)
        gi = np.array([all_groups.index(g) for g in groups])
        idx = np.ix_(ti, gi)
        new_n[idx], new_mean[idx], new_m2[idx] = _math.chan_merge(new_n[idx], new_mean[idx], new_m2[idx], n, mean, m2)
        self.times, self.groups = all_times, all_groups
        self.cell_n, self.cell_mean, self.cell_m2 = new_n, new_mean, new_m2

    def _merge_from(self, other) -> None:
        if other.times is not None and other.cell_n.size:
            self._add_cells(other.times, other.groups, other.cell_n, other.cell_mean, other.cell_m2)

    def _arrays(self) -> dict:
        if self.times is None:
            return {}
        return {"times": self.times, "n": self.cell_n, "mean": self.cell_mean, "m2": self.cell_m2}

    def _set_arrays(self, arrays) -> None:
        if "times" in arrays:
            self.times = arrays["times"]
            self.cell_n, self.cell_mean, self.cell_m2 = arrays["n"], arrays["mean"], arrays["m2"]

    def _extra(self):
        return {"groups": list(self.groups)}

    def _set_extra(self, extra) -> None:
        self.groups = list(extra["groups"]) if extra else []

    # -- finalize -----------------------------------------------------------------------------------
    def finalize(self) -> SequentialResult:
        """Test at every look (each distinct time value, rows up to it) and return the table."""
        self.check_not_empty()
        groups = self.groups
        if len(groups) < 2:
            raise ValueError(f"fewer than two groups in column {self.group!r}: found {groups!r}")
        notes = []
        control = self.control
        if control is None:
            control = groups[0]
            notes.append(f"control=None: the first group in sorted order, {control!r}, is the control")
        if control not in groups:
            raise ValueError(f"control {control!r} is not a value of column {self.group!r}; groups: {groups!r}")
        if len(groups) > 2:
            raise ValueError(f"a sequential test compares two groups; column {self.group!r} has {len(groups)}: "
                             f"{groups!r} (filter the rows to the control and one treatment)")
        assert self.times is not None  # set by the first update (check_not_empty: there was one)
        treatment = groups[1 - groups.index(control)]
        ci_, ti_ = groups.index(control), groups.index(treatment)
        # cumulative (n, mean, M2) per group over the sorted looks
        n = np.zeros(2, dtype=np.int64)
        mean = np.zeros(2)
        m2 = np.zeros(2)
        cum = []
        for k in range(len(self.times)):
            cols = [ci_, ti_]
            n, mean, m2 = _math.chan_merge(n, mean, m2, self.cell_n[k, cols], self.cell_mean[k, cols],
                                           self.cell_m2[k, cols])
            cum.append((n.copy(), mean.copy(), m2.copy()))
        n_c = np.array([c[0][0] for c in cum], dtype=np.float64)
        n_t = np.array([c[0][1] for c in cum], dtype=np.float64)
        mean_c = np.array([c[1][0] for c in cum])
        mean_t = np.array([c[1][1] for c in cum])
        m2_c = np.array([c[2][0] for c in cum])
        m2_t = np.array([c[2][1] for c in cum])
        ddof = 1.0 if self.value is not None else 0.0
        with np.errstate(invalid="ignore", divide="ignore"):
            var = m2_c / (n_c - ddof) / n_c + m2_t / (n_t - ddof) / n_t
            valid = (n_c >= 2) & (n_t >= 2) & (var > 0) & np.isfinite(var)
        table, stop = sequential_looks(
            times=self.times, n_c=n_c, n_t=n_t, estimate=mean_t - mean_c, var=var, valid=valid,
            method=self.method, alpha=self.alpha, tau2=self.tau2, tuning=self.tuning, spending=self.spending,
            max_n=self.max_n, notes=notes)
        last = table.num_rows - 1
        row = table.slice(last, 1).to_pylist()[0]
        stopped_time = None if stop is None else _plain(self.times[stop])
        if isinstance(stopped_time, np.datetime64):
            stopped_time = str(stopped_time)
        ci = ConfidenceInterval(row["low"] if row["low"] is not None else -math.inf,
                                row["high"] if row["high"] is not None else math.inf,
                                confidence=1.0 - self.alpha, method=self.method)
        return SequentialResult(
            estimate=row["estimate"], standard_error=row["standard_error"], confidence_interval=ci,
            pvalue=row["pvalue"], reject=bool(row["reject"]), stopped_look=None if stop is None else stop + 1,
            stopped_time=stopped_time, looks=table.num_rows, control=control, treatment=treatment,
            method=self.method, alpha=self.alpha, n=self.n, n_dropped=self.n_dropped, table=table,
            notes=tuple(notes))


def sequential_looks(*, times, n_c, n_t, estimate, var, valid, method, alpha, tau2, tuning, spending, max_n,
                     notes) -> tuple[pa.Table, int | None]:
    """The per-look table from the cumulative moments (NumPy; the formulas of the methods)."""
    K = len(times)
    se = np.sqrt(np.where(valid, var, np.nan))
    z = np.where(valid, estimate / np.where(valid, se, 1.0), np.nan)
    n_rows = n_c + n_t
    boundary = np.full(K, np.nan)
    pvalue = np.full(K, np.nan)
    low = np.full(K, np.nan)
    high = np.full(K, np.nan)
    reject = np.zeros(K, dtype=bool)
    v = np.flatnonzero(valid)
    if v.size < K:
        bad = np.flatnonzero(~valid) + 1
        notes.append(f"look(s) {_looks_text(bad)}: fewer than 2 rows in a group or no variance yet, no test there")
    if method in ("msprt", "confidence_sequence") and v.size:
        V = var[v]
        t2 = (_math.msprt_tau2(V, n_c[v], n_t[v], tau2) if method == "msprt"
              else _math.cs_tau2(V, n_rows[v], alpha, tuning))
        c = _math.mixture_z_boundary(V, t2, alpha)
        log_lr = _math.mixture_log_lr(z[v], V, t2)
        p = np.minimum.accumulate(np.minimum(1.0, np.exp(-log_lr)))
        half = c * se[v]
        boundary[v] = c
        pvalue[v] = p
        low[v] = np.maximum.accumulate(estimate[v] - half)
        high[v] = np.minimum.accumulate(estimate[v] + half)
        reject[v] = p <= alpha
        if np.any(low[v] > high[v]):
            notes.append("the running intersection of the intervals became empty (the model is off, e.g. the "
                         "effect drifts over time)")
        if method == "msprt":
            notes.append("mSPRT with a normal mixture (Johari, Pekelis, Walsh 2017); mixing variance "
                         + (f"tau2={tau2:g}" if tau2 is not None else "0.01 x the per-row variance"))
        else:
            notes.append(f"asymptotic confidence sequence (Waudby-Smith et al. 2023), tightest at {tuning:g} rows")
        notes.append("p-values are always valid (running minimum); intervals are the running intersection")
    elif v.size:
        total = float(max_n) if max_n is not None else float(n_rows[v][-1])
        frac = np.minimum(n_rows[v] / total, 1.0)
        # a look adds information only when the fraction grows; the rest of the looks spend nothing
        grow = np.concatenate([[True], np.diff(frac) > 0]) & (frac > 0)
        bz = np.full(v.size, np.inf)
        idx = np.flatnonzero(grow)
        if idx.size:
            bz[idx] = _math.group_sequential_z(frac[idx], alpha, spending, 2)[0]
        if idx.size < v.size:
            notes.append("looks that add no information (the planned max_n reached) get no alpha")
        a = np.abs(z[v])
        boundary[v] = bz
        pvalue[v] = 2.0 * np.asarray(ndtr(-a))
        finite = np.isfinite(bz)
        low[v] = np.where(finite, estimate[v] - bz * se[v], -np.inf)
        high[v] = np.where(finite, estimate[v] + bz * se[v], np.inf)
        reject[v] = np.logical_or.accumulate(a >= bz)
        notes.append(f"group sequential, {spending}-type Lan-DeMets spending at information fractions n / "
                     + (f"max_n={max_n:,}" if max_n is not None else "the last look's n (max_n=None: the data "
                        "seen are the whole design)"))
        notes.append("pvalue is the nominal p-value of the look; reject compares |z| with the boundary; "
                     "low/high is the repeated confidence interval")
    # a rejection is final: later looks stay rejected
    reject = np.logical_or.accumulate(reject)
    stop = int(np.argmax(reject)) if reject.any() else None

    def col(x):
        return pa.array(np.where(np.isnan(x), 0.0, x), mask=np.isnan(x))

    time_arr = pa.array(times) if times.dtype.kind != "U" else pa.array(times.tolist(), pa.string())
    table = pa.table({
        "look": pa.array(np.arange(1, K + 1, dtype=np.int64)),
        "time": time_arr,
        "n": pa.array(n_rows.astype(np.int64)),
        "n_control": pa.array(n_c.astype(np.int64)),
        "n_treatment": pa.array(n_t.astype(np.int64)),
        "estimate": col(np.where((n_c > 0) & (n_t > 0), estimate, np.nan)),
        "standard_error": col(se),
        "z": col(z),
        "low": col(low),
        "high": col(high),
        "pvalue": col(pvalue),
        "boundary": col(boundary),
        "reject": pa.array(reject),
    })
    return table, stop


def _looks_text(looks: np.ndarray) -> str:
    shown = ", ".join(str(int(x)) for x in looks[:10])
    return shown + (f" and {looks.size - 10} more" if looks.size > 10 else "")


def _one_column(name: str, value) -> str:
    cols = as_column_list(name, value, allow_none=False)
    if len(cols) != 1:
        raise ValueError(f"`{name}` must name one column; got {value!r}")
    return cols[0]


def _positive(name: str, value, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"`{name}` must be a positive number; got {value!r}")
    return float(value)


@result_dataclass
class SequentialResult(Result):
    """A sequential test of treatment against control: one row per look.

    Attributes
    ----------
    estimate, standard_error : float
        Difference of means (treatment minus control) at the last look, and its standard error.
    confidence_interval : ConfidenceInterval
        The always-valid interval at the last look (group sequential: the repeated confidence interval).
    pvalue : float
        At the last look: always-valid (mSPRT, confidence sequence) or nominal (group sequential).
    reject : bool
        Whether the test has rejected at some look so far.
    stopped_look, stopped_time
        The first look (1-based) and its time value where it rejected (None if it has not).
    looks : int
    control, treatment
        The group labels.
    method : str
    alpha : float
    n, n_dropped : int
    table : pyarrow.Table
        ``look, time, n, n_control, n_treatment, estimate, standard_error, z, low, high, pvalue, boundary,
        reject`` (``boundary``: the |z| at which the look rejects).
    notes : tuple of str
    """

    estimate: float | None
    standard_error: float | None
    confidence_interval: ConfidenceInterval
    pvalue: float | None
    reject: bool
    stopped_look: int | None
    stopped_time: object
    looks: int
    control: object
    treatment: object
    method: str
    alpha: float
    n: int
    n_dropped: int
    table: pa.Table
    notes: tuple

    def _title(self) -> str:
        return (f"Sequential test ({_METHOD_TEXT[self.method]}, alpha={self.alpha:g}): "
                f"{self.treatment!r} vs control {self.control!r}")

    def _summary_lines(self) -> list[str]:
        if self.stopped_look is None:
            decision = f"no rejection after {self.looks} look(s): keep collecting"
        else:
            decision = f"rejected at look {self.stopped_look} (time {self.stopped_time})"
        return [decision]

    def _plot(self, ax) -> None:
        t = self.table
        look = np.asarray(t.column("look").to_numpy())
        est = np.asarray(t.column("estimate").to_numpy(zero_copy_only=False), dtype=float)
        low = np.asarray(t.column("low").to_numpy(zero_copy_only=False), dtype=float)
        high = np.asarray(t.column("high").to_numpy(zero_copy_only=False), dtype=float)
        ax.plot(look, est, "o-", color="C0", label="estimate")
        ax.fill_between(look, np.where(np.isfinite(low), low, np.nan), np.where(np.isfinite(high), high, np.nan),
                        color="C0", alpha=0.2, label=f"{1 - self.alpha:g} interval")
        ax.axhline(0.0, color="grey", linewidth=0.8)
        if self.stopped_look is not None:
            ax.axvline(self.stopped_look, color="C3", linestyle="--", label=f"stop at look {self.stopped_look}")
        ax.set_xlabel("look")
        ax.set_ylabel("treatment - control")
        ax.set_title(self._title(), fontsize=9)
        ax.legend()


def sequential_test(data: Data, *, group: str, value: str | None = None, outcome: str | None = None,
                    control: str | None = None, time: str = "day", method: str = "msprt", alpha: float = 0.05,
                    tau2: float | None = None, tuning: float = 5000.0, spending: str = "obrien_fleming",
                    max_n: int | None = None, nulls: str = "raise", filter: Filter = None,
                    batch_size: int | None = None, progress: bool | None = None, engine: str | None = None,
                    backend: str = "auto") -> SequentialResult:
    """A two-group test that may be looked at after every day: one row per look, and where it would stop.

    One pass builds n / mean / M2 per (time, group) cell (the kernel of the A/B test); the cells are
    merged cumulatively over the sorted distinct values of ``time``, and each look (rows with
    ``time <=`` that value) gets the difference of means ``estimate``, its Welch standard error
    (``outcome``: unpooled ``p (1 - p) / n``), ``z``, an interval, a p-value, the ``boundary`` on ``|z|``
    and the decision ``reject`` (final once made). Methods (two-sided):

    * ``"msprt"``: mixture SPRT with a normal mixing distribution ``N(0, tau2)`` on the difference
      (Johari, Pekelis, Walsh 2017): ``Lambda = sqrt(V / (V + tau2)) exp(z**2 tau2 / (2 (V + tau2)))``,
      ``V`` the estimate's variance; p-value ``min(1, 1 / Lambda)`` as a running minimum; the interval
      is the set of differences not rejected, intersected over looks.
    * ``"confidence_sequence"``: the asymptotic confidence sequence of Waudby-Smith et al. (2023), the
      form GrowthBook uses: half-width
      ``sigma sqrt(2 (N rho**2 + 1) / (N rho)**2 log(sqrt(N rho**2 + 1) / alpha))`` with ``N`` rows in
      both groups, ``sigma**2 = N V`` and ``rho**2 = (-2 log alpha + log(1 - 2 log alpha)) / tuning``
      (tightest at ``tuning`` rows). It is the same normal mixture with ``tau2 = sigma**2 rho**2``.
    * ``"group_sequential"``: |z| against Lan-DeMets boundaries (:func:`group_sequential_bounds`) at the
      observed information fractions ``n / max_n``; ``pvalue`` is the look's nominal p-value and
      ``low``/``high`` the repeated confidence interval (Jennison and Turnbull 2000, ch. 9).

    Parameters
    ----------
    data : table, Parquet path, Dask DataFrame...
        Rows with a group, a time and a metric column.
    group : str
        Group column (exactly two groups).
    value : str, optional
        Numeric metric column (or give ``outcome``).
    outcome : str, optional
        0/1 (or boolean) metric column: a conversion rate.
    control : label, optional
        The control group; None: the first group in sorted order (a note says so).
    time : str, default "day"
        Look column: integers, dates, timestamps or strings that sort in time order.
    method : {"msprt", "confidence_sequence", "group_sequential"}, default "msprt"
    alpha : float, default 0.05
        Two-sided type I error over all looks; intervals have confidence ``1 - alpha``.
    tau2 : float, optional
        mSPRT mixing variance in the metric's units squared. None: 0.01 times the per-row variance
        (``V / (1/n_control + 1/n_treatment)``) at each look, i.e. effects of about 0.1 standard deviations.
    tuning : float, default 5000
        Confidence sequence: rows (both groups) where it is tightest (GrowthBook's tuning parameter).
    spending : {"obrien_fleming", "pocock"}, default "obrien_fleming"
        Group sequential spending function type.
    max_n : int, optional
        Group sequential: the planned rows in both groups. None: the last look's rows (the data seen
        are the whole design; earlier looks' boundaries then move as data are added).
    nulls : {"raise", "drop"}, default "raise"
    filter : pyarrow.compute.Expression, optional
    batch_size : int, optional
    progress : bool, optional
    engine : {None, "auto", "dask"}, optional
        ``"dask"`` (or a Dask DataFrame) folds partitions on the current ``distributed.Client``.
    backend : {"auto", "cpu"}, default "auto"

    Returns
    -------
    SequentialResult
        The table of looks; ``stopped_look``; the last look's ``estimate``, ``confidence_interval``,
        ``pvalue`` and ``reject``.

    Raises
    ------
    ValueError
        Unknown column, other than two groups, a control that is not a group, an ``outcome`` not 0/1,
        nulls or NaN (with ``nulls="raise"``), empty input.
    TypeError
        A ``time`` column of another type.

    References
    ----------
    R. Johari, L. Pekelis, D. Walsh, "Always valid inference: bringing sequential analysis to A/B
    testing", arXiv:1512.04922 (2017). I. Waudby-Smith, D. Arbour, R. Sinha, E. H. Kennedy, A. Ramdas,
    "Time-uniform central limit theory and asymptotic confidence sequences", Annals of Statistics (2024).

    Examples
    --------
    >>> import numpy as np, fastevals
    >>> rng = np.random.default_rng(1)
    >>> n = 20_000
    >>> data = {"day": np.repeat(np.arange(10), n // 10), "variant": np.array(["a", "b"] * (n // 2)),
    ...         "converted": (rng.random(n) < np.where(np.arange(n) % 2, 0.115, 0.10)).astype(np.int8)}
    >>> res = fastevals.sequential_test(data, group="variant", outcome="converted", control="a",
    ...                                 method="confidence_sequence")
    >>> res.reject, res.stopped_look
    (True, 3)
    """
    check_backend(backend)
    state = SequentialState(group=group, value=value, outcome=outcome, control=control, time=time, method=method,
                            alpha=alpha, tau2=tau2, tuning=tuning, spending=spending, max_n=max_n, nulls=nulls,
                            filter=filter, batch_size=batch_size, progress=progress)
    state = fold(state, data, engine=engine)
    return state.finalize()
