"""The one protocol every analysis speaks: states, results, intervals.

An analysis is a :class:`State` (sufficient statistics: ``update``, ``merge``,
``finalize``, ``copy``, ``to_bytes`` / ``from_bytes``) and a :class:`Result`
(``to_dict``, ``to_arrow``, ``to_pandas``, ``to_polars``, a readable ``__str__``
that the CLI prints, ``_repr_html_``, a short ``__repr__`` and ``plot``).
docs/design.md says why; CONTRIBUTING.md says how to add an analysis.

What a new state writes, and what it inherits
---------------------------------------------
A subclass of :class:`State` declares ``kind="..."`` (its name in the registry
and in its bytes) and implements:

* ``__init__(self, *, <the analysis function's options>)``, storing them, then
  calling ``super().__init__(nulls=..., filter=..., batch_size=..., progress=...)``;
* ``_params(self) -> dict``: the constructor's keyword arguments (JSON-able:
  str, int, float, bool, None, lists, tuples, dicts); two states merge only
  when their params are equal, and ``from_bytes`` rebuilds the state with them;
* ``_requirements(self) -> dict``: ``{column: (argument_name, kind)}`` with kind
  :data:`LABEL`, :data:`NUMERIC` (finite numbers: NaN/inf raise or are dropped
  with ``nulls="drop"``) or :data:`ANY`;
* ``_update_batch(self, batch, rows)``: fold one ``pyarrow.RecordBatch`` (only
  the required columns, no nulls, no NaN/inf in numeric columns) into the
  state; ``rows`` gives the global row indices of the batch's rows (the
  Poisson bootstrap's keys), see :class:`RowIds`;
* ``_merge_from(self, other)``: add ``other``'s statistics into ``self`` (a
  fresh copy: :meth:`State.merge` makes it, so no caller's state mutates);
* ``_arrays(self) -> dict[str, np.ndarray]`` and ``_set_arrays(self, arrays)``
  for the bytes (labels that grow with the data go into ``_extra()`` /
  ``_set_extra(extra)`` as JSON);
* ``finalize(self) -> Result``.

The base gives the scan (:meth:`State.update`: the input layer, null and
non-finite handling, row counts ``n_read`` / ``n_dropped``, progress), Dask
(:func:`fastevals._fold.fold`), ``merge``, ``copy``, ``to_bytes``,
``from_bytes`` and ``__eq__``.
"""

from __future__ import annotations

import copy as _copy
import html
import io
import json
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass, fields, is_dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import _source as src
from ._validation import check_choice

LABEL = src.LABEL
NUMERIC = src.NUMERIC
#: a column read as it is (any type; nulls still raise or are dropped)
ANY = "any"

#: the bytes format of every state; bump when a state's layout changes
FORMAT_VERSION = 1
_MAGIC = b"fastevals.state"

#: every State subclass by kind (filled by ``__init_subclass__``)
STATES: dict[str, type[State]] = {}
#: every Result subclass by class name
RESULTS: dict[str, type[Result]] = {}

_EXTRAS = {"pandas": "pandas", "polars": "polars", "matplotlib": "plot"}


def optional_import(module: str, what: str):
    """Import an optional dependency, or raise ImportError naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        extra = _EXTRAS.get(top)
        hint = f"pip install 'fastevals[{extra}]'" if extra else f"pip install {top}"
        raise ImportError(f"{what} needs {top}, which is not installed: {hint}") from None


# ----------------------------------------------------------------------------------------------------
# intervals


class _Bounds(NamedTuple):
    low: float
    high: float


class ConfidenceInterval(_Bounds):
    """A confidence interval: unpacks as ``low, high``; also knows its ``confidence`` and ``method``.

    Parameters
    ----------
    low, high : float or array_like
        The bounds: floats, or arrays for a band (one interval per point of a curve).
    confidence : float, optional
        The confidence level (e.g. 0.95).
    method : str, optional
        How the interval was computed (e.g. ``"wilson"``, ``"percentile"``).

    Attributes
    ----------
    low, high : float or numpy.ndarray
        The bounds; the interval unpacks and compares as the pair ``(low, high)``.
    confidence : float or None
        The confidence level.
    method : str or None
        How the interval was computed.

    Examples
    --------
    >>> ci = ConfidenceInterval(0.1, 0.3, confidence=0.95, method="wilson")
    >>> low, high = ci
    >>> (low, high, ci.confidence, ci.method)
    (0.1, 0.3, 0.95, 'wilson')
    """

    confidence: float | None
    method: str | None

    def __new__(cls, low, high, confidence: float | None = None, method: str | None = None):
        # scalars become floats; arrays (a band: one interval per point of a curve) stay arrays
        low = float(low) if np.ndim(low) == 0 else np.asarray(low, dtype=np.float64)
        high = float(high) if np.ndim(high) == 0 else np.asarray(high, dtype=np.float64)
        self = super().__new__(cls, low, high)
        self.confidence = None if confidence is None else float(confidence)
        self.method = method
        return self

    @property
    def width(self) -> float:
        """``high - low`` (an array for a band).

        Returns
        -------
        float or numpy.ndarray
            The interval's width.

        Examples
        --------
        >>> ConfidenceInterval(0.25, 0.75).width
        0.5
        """
        return self.high - self.low

    def __contains__(self, value) -> bool:
        return bool(np.all((self.low <= value) & (value <= self.high)))

    def __repr__(self) -> str:
        extra = "" if self.confidence is None else f", confidence={self.confidence:g}"
        extra += "" if not self.method else f", method={self.method!r}"
        return f"ConfidenceInterval(low={fmt(self.low)}, high={fmt(self.high)}{extra})"

    def to_dict(self) -> dict:
        """The interval as plain Python, ready for JSON.

        Returns
        -------
        dict
            ``{"low", "high", "confidence", "method"}`` (bounds as floats, or lists for a band).

        Examples
        --------
        >>> ConfidenceInterval(0.1, 0.3, confidence=0.9, method="wilson").to_dict()
        {'low': 0.1, 'high': 0.3, 'confidence': 0.9, 'method': 'wilson'}
        """
        return {"low": plain(self.low), "high": plain(self.high), "confidence": self.confidence,
                "method": self.method}


# ----------------------------------------------------------------------------------------------------
# formatting (the one renderer: results' __str__, the CLI, HTML)


def fmt(x, digits: int = 4) -> str:
    """One number or label as the text tables print it (no ``-0``, no whole arrays)."""
    if x is None:
        return "-"
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}"
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        text = f"{x:.{digits - 1}e}" if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e6) else f"{x:.{digits}g}"
        return text[1:] if text.startswith("-") and float(text) == 0 else text
    if isinstance(x, _Bounds):
        return f"[{fmt(x.low, digits)}, {fmt(x.high, digits)}]"
    if isinstance(x, np.ndarray):
        return f"<array {x.shape} {x.dtype}>"
    if isinstance(x, Result):
        return f"<{type(x).__name__}>"
    if isinstance(x, (list, tuple)) and (len(x) > 6 or not all(
            v is None or isinstance(v, (str, bool, int, float, np.generic)) for v in x)):
        return f"<{len(x)} items>"
    return str(x)


def render_table(table: pa.Table, *, max_rows: int = 20, columns=None) -> str:
    """An aligned plain-text table (numbers right-aligned); the first ``max_rows`` rows and a count."""
    if columns is not None:
        table = table.select([c for c in columns if c in table.column_names])
    names = table.column_names
    shown = table.slice(0, max_rows).to_pylist()
    cells = [[fmt(r[c]) for c in names] for r in shown]
    widths = [max([len(c), *(len(row[k]) for row in cells)]) for k, c in enumerate(names)]
    out = ["  ".join(c.rjust(w) for c, w in zip(names, widths)), "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    if table.num_rows > max_rows:
        out.append(f"... {table.num_rows - max_rows:,} more row(s) of {table.num_rows:,}")
    return "\n".join(out)


def _html_table(table: pa.Table, max_rows: int = 50) -> str:
    names = table.column_names
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in names)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(fmt(r[c]))}</td>" for c in names) + "</tr>"
        for r in table.slice(0, max_rows).to_pylist()
    )
    more = f"<p>... {table.num_rows - max_rows:,} more rows</p>" if table.num_rows > max_rows else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


def plain(value):
    """``value`` as plain Python (lists, floats, str, dicts), ready for JSON."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pa.Table):
        return value.to_pylist()
    if isinstance(value, ConfidenceInterval):
        return value.to_dict()
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return value


# ----------------------------------------------------------------------------------------------------
# results


if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
elif sys.version_info >= (3, 11):
    from typing import dataclass_transform
else:  # pragma: no cover - Python 3.10 at run time: the marker only serves type checkers
    def dataclass_transform(**_):
        return lambda f: f


_T = TypeVar("_T")


@dataclass_transform(frozen_default=True)
def result_dataclass(cls: type[_T]) -> type[_T]:
    """Decorate a :class:`Result` subclass: a frozen, slotted dataclass that keeps the base's short repr.

    (A plain ``@dataclass`` would write its own ``__repr__``, printing whole arrays.)
    """
    return dataclass(frozen=True, slots=True, repr=False)(cls)


class Result:
    """Base of every result: conversions, text, HTML, a short repr and plotting.

    Subclasses are frozen, slotted dataclasses made with :func:`result_dataclass`. A result with one row per
    segment, group, slice... keeps it in a ``table`` field (a ``pyarrow.Table``):
    ``to_arrow`` returns it. Others are one row: ``to_arrow`` gives a one-row
    table of their scalar fields (an interval becomes ``<name>_low`` /
    ``<name>_high``). Override ``_title``, ``_summary_lines`` and ``_plot`` to
    say more.

    Examples
    --------
    >>> import fastevals
    >>> data = {"p": [0.1, 0.4, 0.8, 0.9], "y": [0, 0, 1, 1]}
    >>> res = fastevals.CalibrationState(prob="p", label="y").update(data).finalize()
    >>> isinstance(res, Result)
    True
    >>> res.to_dict()["n"], res.to_arrow().num_rows
    (4, 15)
    >>> print(str(res).splitlines()[0])
    calibration (uniform bins: 15)
    """

    __slots__ = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        RESULTS[cls.__name__] = cls

    # -- conversions --------------------------------------------------------------------------------
    def _field_names(self) -> list[str]:
        return [f.name for f in fields(self)] if is_dataclass(self) else []

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values (lists, floats, str; tables as lists of row dicts), ready for JSON.

        Returns
        -------
        dict
            One entry per field; intervals as ``{low, high, confidence, method}``.
        """
        return {name: plain(getattr(self, name)) for name in self._field_names()}

    def _row(self) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for name in self._field_names():
            v = getattr(self, name)
            if isinstance(v, _Bounds) and np.ndim(v.low) == 0:
                prefix = "" if name == "confidence_interval" else f"{name.removesuffix('_ci')}_"
                row[f"{prefix}low"], row[f"{prefix}high"] = float(v.low), float(v.high)
            elif isinstance(v, (bool, int, float, str, np.generic)) or v is None:
                row[name] = plain(v)
        return row

    def to_arrow(self) -> pa.Table:
        """The result as an Arrow table: its ``table`` field, or one row of its scalar fields.

        Returns
        -------
        pyarrow.Table
            The ``table`` field, or one row of the scalar fields (an interval ``x_ci`` as ``x_low`` /
            ``x_high``).
        """
        table = getattr(self, "table", None)
        if isinstance(table, pa.Table):
            return table
        row = self._row()
        return pa.table({k: pa.array([v]) for k, v in row.items()})

    def to_pandas(self):
        """The result's table as a pandas DataFrame (needs pandas).

        Returns
        -------
        pandas.DataFrame
            :meth:`to_arrow` converted.

        Raises
        ------
        ImportError
            If pandas is not installed (the message names the extra).
        """
        optional_import("pandas", "to_pandas()")
        return self.to_arrow().to_pandas()

    def to_polars(self):
        """The result's table as a polars DataFrame (needs polars).

        Returns
        -------
        polars.DataFrame
            :meth:`to_arrow` converted.

        Raises
        ------
        ImportError
            If polars is not installed (the message names the extra).
        """
        pl = optional_import("polars", "to_polars()")
        return pl.from_arrow(self.to_arrow())

    # -- text ---------------------------------------------------------------------------------------
    def _title(self) -> str:
        return type(self).__name__

    def _summary_lines(self) -> list[str]:
        """Lines printed above the table (or alone, for a one-row result)."""
        if isinstance(getattr(self, "table", None), pa.Table):
            return []
        return [f"{k}: {fmt(v)}" for k, v in self._row().items()]

    def _notes(self) -> list[str]:
        """Warnings and explanations printed last (``warnings`` / ``notes`` fields when present)."""
        out = []
        for name in ("notes", "warnings"):
            v = getattr(self, name, None) if name in self._field_names() else None
            if isinstance(v, str) and v:
                out.append(v)
            elif isinstance(v, (list, tuple)):
                out.extend(str(x) for x in v)
        return out

    def __str__(self) -> str:
        parts = [self._title()]
        parts += self._summary_lines()
        table = getattr(self, "table", None)
        if isinstance(table, pa.Table):
            parts.append(render_table(table))
        parts += [f"note: {n}" for n in self._notes()]
        return "\n".join(parts)

    def _repr_html_(self) -> str:
        body = "".join(f"<p>{html.escape(line)}</p>" for line in self._summary_lines())
        table = getattr(self, "table", None)
        body += _html_table(table if isinstance(table, pa.Table) else self.to_arrow())
        notes = "".join(f"<p><em>{html.escape(n)}</em></p>" for n in self._notes())
        return f"<div><strong>{html.escape(self._title())}</strong>{body}{notes}</div>"

    def __repr__(self) -> str:
        items = []
        for name in self._field_names()[:8]:
            v = getattr(self, name)
            items.append(f"{name}={fmt(v) if not isinstance(v, pa.Table) else f'<table {v.num_rows} rows>'}")
        more = ", ..." if len(self._field_names()) > 8 else ""
        return f"{type(self).__name__}({', '.join(items)}{more})"

    # -- plotting -----------------------------------------------------------------------------------
    def plot(self, ax=None, path=None):
        """Draw the result with matplotlib and return the Axes; ``path`` also saves the figure there.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Axes to draw on (default: a new figure).
        path : str or path-like, optional
            Where to save the figure.

        Returns
        -------
        matplotlib.axes.Axes
            The Axes drawn on.

        Raises
        ------
        ImportError
            If matplotlib is not installed (the message names the extra).
        NotImplementedError
            If this kind of result has no plot.
        """
        plt = optional_import("matplotlib.pyplot", "plot()")
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4.5))
        self._plot(ax)
        if path is not None:
            ax.figure.tight_layout()
            ax.figure.savefig(path)
        return ax

    def _plot(self, ax) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no plot")


def check_plot_path(path) -> None:
    """Fail before computing when a plot is asked for and matplotlib is missing."""
    if path is not None:
        optional_import("matplotlib.pyplot", "plotting")


# ----------------------------------------------------------------------------------------------------
# states


class RowIds:
    """Global row indices of a batch's rows (after null dropping): ``start + kept``.

    The Poisson bootstrap keys its weights by them; most states ignore them.
    ``array()`` materializes them as uint64.
    """

    __slots__ = ("start", "count", "kept")

    def __init__(self, start: int, count: int, kept: np.ndarray | None = None):
        self.start, self.count, self.kept = int(start), int(count), kept

    def array(self) -> np.ndarray:
        if self.kept is None:
            return np.arange(self.start, self.start + self.count, dtype=np.uint64)
        return (self.start + self.kept).astype(np.uint64)

    @property
    def contiguous(self) -> bool:
        return self.kept is None


def non_finite_error(column: str, argument: str, count: int, rows: int) -> ValueError:
    """The one message for NaN / inf values in a numeric column under ``nulls="raise"``."""
    return ValueError(f"column {column!r} (given as `{argument}`) has {count:,} NaN or infinite value(s) in a "
                      f"batch of {rows:,} rows; pass nulls='drop' (CLI: --nulls drop) to leave those rows out")


def resolve_progress(progress) -> bool:
    """``progress=None`` (the default everywhere): shown when stderr is a terminal, never in a pipeline."""
    if progress is None:
        try:
            return bool(sys.stderr.isatty())
        except (AttributeError, ValueError):
            return False
    return bool(progress)


class State:
    """Base of every analysis state (see the module docstring for what a subclass writes).

    Common options: ``nulls`` ("raise" or "drop": rows with a null, NaN or inf in
    a column the analysis reads), ``filter`` (a ``pyarrow.compute.Expression``
    pushed into the scan), ``batch_size`` (rows per scanned batch), ``progress``
    (None: shown on a terminal only).

    Parameters
    ----------
    nulls : {"raise", "drop"}, default "raise"
        What a null, NaN or inf in a column the analysis reads does: raise, or drop the row.
    filter : pyarrow.compute.Expression, optional
        Row filter pushed into the scan.
    batch_size : int, optional
        Rows per scanned batch.
    progress : bool, optional
        Show a progress bar (default: on a terminal only, for long work).

    Attributes
    ----------
    n_read : int
        Rows read (after the filter).
    n_dropped : int
        Rows dropped (nulls, NaN, inf) with ``nulls="drop"``.

    Examples
    --------
    >>> import fastevals
    >>> data = {"p": [0.1, 0.4, 0.8, 0.9], "y": [0, 0, 1, 1]}
    >>> st = fastevals.CalibrationState(prob="p", label="y").update(data)
    >>> st.n, st.columns
    (4, ['p', 'y'])
    >>> st.merge(st).n
    8
    >>> fastevals.state_from_bytes(st.to_bytes()) == st
    True
    """

    kind: ClassVar[str] = ""
    #: the layout version of this state's bytes
    version: ClassVar[int] = 1

    def __init_subclass__(cls, kind: str | None = None, **kwargs):
        super().__init_subclass__(**kwargs)
        if kind:
            if kind in STATES and STATES[kind].__qualname__ != cls.__qualname__:
                raise TypeError(f"two states named {kind!r}: {STATES[kind].__name__} and {cls.__name__}")
            cls.kind = kind
            STATES[kind] = cls

    def __init__(self, *, nulls: str = "raise", filter=None, batch_size: int | None = None, progress=None):
        from ._validation import check_int

        self.nulls = check_choice("nulls", nulls, ("raise", "drop"))
        if filter is not None and not isinstance(filter, pc.Expression):
            raise TypeError(
                f"`filter` must be a pyarrow.compute.Expression such as pc.field('country') == 'DE'; got {filter!r}"
            )
        self.filter = filter
        self.batch_size = check_int("batch_size", batch_size, low=1, allow_none=True)
        self.progress = progress
        self.n_read = 0
        self.n_dropped = 0

    # -- to be written by each state ----------------------------------------------------------------
    def _params(self) -> dict:
        raise NotImplementedError

    def _requirements(self) -> dict[str, tuple[str, str]]:
        raise NotImplementedError

    def _update_batch(self, batch: pa.RecordBatch, rows: RowIds) -> None:
        raise NotImplementedError

    def _merge_from(self, other) -> None:
        raise NotImplementedError

    def _arrays(self) -> dict[str, np.ndarray]:
        return {}

    def _checks_finite(self) -> set[str]:
        """Numeric columns whose NaN / inf values ``_update_batch`` detects itself (raising
        :func:`non_finite_error`), so that ``nulls="raise"`` scans skip the base's screening pass
        over them (a full pass over the column: 4-5 ms per 10M floats).
        """
        return set()

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        pass

    def _extra(self) -> Any:
        return None

    def _set_extra(self, extra) -> None:
        pass

    def finalize(self):
        """The analysis' result from the statistics folded so far (written by each state).

        Returns
        -------
        Result
            The analysis' result.

        Raises
        ------
        ValueError
            If no row was used.
        """
        raise NotImplementedError

    # -- given --------------------------------------------------------------------------------------
    @property
    def n(self) -> int:
        """Rows used so far (read less dropped).

        Returns
        -------
        int
            ``n_read - n_dropped``.
        """
        return self.n_read - self.n_dropped

    @property
    def columns(self) -> list[str]:
        """The columns this state reads.

        Returns
        -------
        list of str
            The required columns' names.
        """
        return list(self._requirements())

    def _all_params(self) -> dict:
        """The subclass' params and the common options that change what a state holds."""
        return {**self._params(), "nulls": self.nulls, "batch_size": self.batch_size}

    def rows_used_in(self, table: pa.Table, **_) -> int:
        """Rows of ``table`` that key weights (Dask's offset pass): rows read, or rows used when the
        state keys its rows by their place among the rows used (``row_keys = "used"``).

        Parameters
        ----------
        table : pyarrow.Table
            One partition's rows (after the filter).
        **_
            Ignored (the Dask fold's keyword arguments).

        Returns
        -------
        int
            The number of rows that advance the global row index.
        """
        if self.row_keys == "read":
            return table.num_rows
        return sum(batch.num_rows for batch, _, _, _ in self._scan(table, 0))

    #: what a row's global index counts: "read" (rows after the filter) or "used" (after dropped rows too)
    row_keys: ClassVar[str] = "read"

    def update(self, data, *, row_offset: int | None = None):
        """Fold ``data`` (any input the input layer takes) into this state and return it.

        ``row_offset`` is the global index of the input's first row (default: the
        rows this state has read so far), which keys the bootstrap's weights.

        Parameters
        ----------
        data : table-like
            Arrow table or batches, a Parquet path / folder / glob, a pandas or polars DataFrame, an object
            with ``__arrow_c_stream__``, or a dict of arrays.
        row_offset : int, optional
            The global index of ``data``'s first row.

        Returns
        -------
        State
            This state (updated in place).

        Raises
        ------
        ValueError
            If a required column is missing or has nulls, NaN or inf with ``nulls="raise"``.
        TypeError
            If a required column has the wrong type.
        """
        if row_offset is None:
            row_offset = self.n_read if self.row_keys == "read" else self.n
        for batch, ids, read, dropped in self._scan(data, int(row_offset), progress=self.progress):
            self.n_read += read
            self.n_dropped += dropped
            if batch is not None:
                self._update_batch(batch, ids)
        return self

    def _scan(self, data, start: int, *, progress=False):
        """Yield ``(batch, rows, n_read, n_dropped)`` per scanned batch (``batch`` None when every row
        of it was dropped): the required columns, checked, with nulls / NaN / inf raised or dropped.
        """
        reqs = self._requirements()
        # a filter may read columns the analysis does not: dict and DataFrame inputs then keep them all
        hint = list(reqs) if self.filter is None else None
        source = src.open_source(data, filter=self.filter, batch_size=self.batch_size, columns_hint=hint)
        checked = {c: (a, k) for c, (a, k) in reqs.items() if k != ANY}
        source.require(checked)
        for c, (a, _) in reqs.items():
            if c not in source.schema.names:
                shown = ", ".join(repr(n) for n in source.schema.names[:20])
                raise ValueError(f"unknown column {c!r} (given as `{a}`); the input has columns: {shown}")
        numeric = [c for c, (_, k) in reqs.items() if k == NUMERIC]
        if self.nulls == "raise":  # columns the state's kernel checks itself need no screening pass
            numeric = [c for c in numeric if c not in self._checks_finite()]
        meter = src.Progress(resolve_progress(progress), total=source.num_rows, after=2.0)
        read = used = 0
        for batch in source.batches(list(reqs)):
            n = batch.num_rows
            if n == 0:
                continue
            keep = self._valid_rows(batch, reqs, numeric)
            first = start + (read if self.row_keys == "read" else used)
            read += n
            if keep is None:
                ids = RowIds(first, n)
                dropped = 0
            else:
                kept = np.flatnonzero(keep)
                dropped = n - kept.size
                batch = batch.filter(pa.array(keep)) if kept.size else None
                ids = RowIds(first, kept.size, kept if self.row_keys == "read" else None)
            used += n - dropped
            yield batch, ids, n, dropped
            meter.update(read)
        meter.close(read)

    def _valid_rows(self, batch, reqs, numeric) -> np.ndarray | None:
        bad = None
        for c in reqs:
            arr = batch.column(c)
            if arr.null_count:
                if self.nulls == "raise":
                    raise ValueError(f"column {c!r} (given as `{reqs[c][0]}`) has null values "
                                     f"({arr.null_count:,} in a batch of {len(arr):,} rows); "
                                     "pass nulls='drop' (CLI: --nulls drop) to leave those rows out")
                valid = np.asarray(pc.is_valid(arr).to_numpy(zero_copy_only=False), dtype=bool)
                bad = ~valid if bad is None else bad | ~valid
        for c in numeric:
            arr = batch.column(c)
            if not pa.types.is_floating(arr.type):
                continue
            values = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64) if arr.null_count \
                else src.numeric_view(arr)
            if arr.null_count == 0:
                with np.errstate(invalid="ignore", over="ignore"):  # the sum is only a fast screen
                    if math.isfinite(float(np.add.reduce(values, dtype=np.float64))):
                        continue
            nonfinite = ~np.isfinite(values)
            if arr.null_count:
                nonfinite &= np.asarray(pc.is_valid(arr).to_numpy(zero_copy_only=False), dtype=bool)
            if not nonfinite.any():
                continue
            if self.nulls == "raise":
                raise non_finite_error(c, reqs[c][0], int(nonfinite.sum()), len(arr))
            bad = nonfinite if bad is None else bad | nonfinite
        return None if bad is None else ~bad

    def check_not_empty(self) -> None:
        """Raise a clear ValueError when no row was used.

        Raises
        ------
        ValueError
            If no row was read, or every row read was dropped.
        """
        if self.n == 0:
            if self.n_read == 0:
                raise ValueError("empty input: no rows (after the filter, if one was given)")
            raise ValueError(f"no rows left: all {self.n_read:,} rows had nulls, NaN or inf in "
                             f"{self.columns!r} and were dropped")

    def _check_mergeable(self, other) -> None:
        if type(other) is not type(self):
            raise TypeError(f"cannot merge a {type(other).__name__} into a {type(self).__name__}")
        if _canonical(other._params()) != _canonical(self._params()):
            raise ValueError(f"cannot merge {type(self).__name__}s built with different options: "
                             f"{self._params()} vs {other._params()}")
        if other.nulls != self.nulls:
            raise ValueError(f"cannot merge states built with nulls={self.nulls!r} and nulls={other.nulls!r}")

    def merge(self, other):
        """A new state holding both states' data (neither input changes; associative, commutative).

        Parameters
        ----------
        other : State
            A state of the same type, built with the same options.

        Returns
        -------
        State
            A new state with the statistics of both.

        Raises
        ------
        TypeError
            If ``other`` is another type of state.
        ValueError
            If ``other`` was built with other options.
        """
        self._check_mergeable(other)
        new = self.copy()
        new._merge_from(other)
        new.n_read += other.n_read
        new.n_dropped += other.n_dropped
        return new

    def copy(self):
        """An independent copy.

        Returns
        -------
        State
            A deep copy of this state.
        """
        return _copy.deepcopy(self)

    def __eq__(self, other) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        if _canonical(self._params()) != _canonical(other._params()):
            return False
        if (self.n_read, self.n_dropped) != (other.n_read, other.n_dropped):
            return False
        if _canonical(self._extra()) != _canonical(other._extra()):
            return False
        a, b = self._arrays(), other._arrays()
        return a.keys() == b.keys() and all(np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f")
                                            for k in a)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._params().items() if v is not None)
        return f"{type(self).__name__}({params}; n={self.n:,})"

    # -- bytes --------------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The state in fastevals' one versioned Arrow IPC format (see :meth:`from_bytes`).

        Returns
        -------
        bytes
            An Arrow IPC stream (statistics and the options that shape them; not ``filter`` or
            ``progress``).
        """
        arrays = self._arrays()
        names = list(arrays)
        table = pa.table({
            "name": pa.array(names, pa.string()),
            "dtype": pa.array([arrays[k].dtype.str for k in names], pa.string()),
            "shape": pa.array([list(arrays[k].shape) for k in names], pa.list_(pa.int64())),
            "data": pa.array([np.ascontiguousarray(arrays[k]).tobytes() for k in names], pa.large_binary()),
        })
        meta = {
            "magic": _MAGIC.decode(),
            "format": FORMAT_VERSION,
            "kind": self.kind,
            "version": self.version,
            "params": _encode(self._all_params()),
            "extra": _encode(self._extra()),
            "rows": [self.n_read, self.n_dropped],
        }
        table = table.replace_schema_metadata({b"fastevals": json.dumps(meta).encode()})
        sink = io.BytesIO()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return sink.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, **scan_options):
        """Rebuild a state from :meth:`to_bytes`; a clear ValueError for anything else.

        The bytes hold the statistics and the options that shape them, not the scan
        options of future updates: a ``filter`` (a pyarrow expression) or ``progress``
        is given again here (``Cls.from_bytes(b, filter=...)``) when later updates need it.

        Parameters
        ----------
        data : bytes
            What :meth:`to_bytes` wrote.
        **scan_options
            ``filter``, ``progress`` or ``batch_size`` for later updates.

        Returns
        -------
        State
            The rebuilt state (of this class; of the stored kind when called on ``State``).

        Raises
        ------
        ValueError
            If ``data`` is not a fastevals state's bytes (garbage, truncated), holds another kind of
            state, or a layout newer than this fastevals reads.
        TypeError
            If ``data`` is not bytes, or an option other than the scan options is given.
        """
        meta, table = _read_state_bytes(data)
        kind = str(meta.get("kind"))
        target = STATES.get(kind) if cls is State else cls
        if target is None:
            raise ValueError(f"these bytes hold a fastevals state of unknown kind {kind!r}")
        if kind != target.kind:
            raise ValueError(f"these bytes hold a {kind!r} state, not a {target.kind!r} state "
                             f"({target.__name__}); use fastevals.state_from_bytes to read any state")
        if int(meta.get("version", 0)) > target.version:
            raise ValueError(f"these bytes hold a {kind!r} state of layout version {meta['version']}, newer than "
                             f"this fastevals reads ({target.version}); upgrade fastevals")
        unknown = set(scan_options) - {"filter", "progress", "batch_size"}
        if unknown:
            raise TypeError(f"from_bytes takes only the scan options filter, progress and batch_size; "
                            f"got {sorted(unknown)}")
        params = {**_decode(meta["params"]), **scan_options}
        state = target(**params)
        state.n_read, state.n_dropped = (int(x) for x in meta["rows"])
        arrays = {}
        for row in table.to_pylist():
            arrays[row["name"]] = np.frombuffer(row["data"], dtype=np.dtype(row["dtype"])).reshape(row["shape"]).copy()
        state._set_extra(_decode(meta["extra"]))
        state._set_arrays(arrays)
        return state


def state_from_bytes(data: bytes, **scan_options: Any) -> State:
    """Any fastevals state from its bytes (the kind is read from them).

    ``fastevals.state_from_bytes(b)`` reads what any state's ``to_bytes()`` wrote;
    ``SomeState.from_bytes(b)`` also checks that the bytes hold that kind of state.

    Parameters
    ----------
    data : bytes
        What a state's ``to_bytes()`` wrote.
    **scan_options : Any
        ``filter``, ``progress`` or ``batch_size`` for later updates (the bytes do not hold them).

    Returns
    -------
    State
        The state, of the kind stored in the bytes.

    Raises
    ------
    ValueError
        If ``data`` is not a fastevals state's bytes (garbage, truncated), or holds a state of an unknown
        kind or of a layout newer than this fastevals reads.
    TypeError
        If ``data`` is not bytes.

    Examples
    --------
    >>> import fastevals
    >>> st = fastevals.CalibrationState(prob="p", label="y").update({"p": [0.2, 0.7], "y": [0, 1]})
    >>> back = fastevals.state_from_bytes(st.to_bytes())
    >>> type(back).__name__, back == st
    ('CalibrationState', True)
    >>> fastevals.state_from_bytes(b"not a state")
    Traceback (most recent call last):
    ...
    ValueError: ...
    """
    return State.from_bytes(data, **scan_options)


def _read_state_bytes(data) -> tuple[dict, pa.Table]:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected the bytes of a fastevals state (from to_bytes()); got {type(data).__name__}")
    try:
        reader = pa.ipc.open_stream(pa.py_buffer(bytes(data)))
        table = reader.read_all()
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
        raise ValueError(f"these bytes are not a fastevals state (not an Arrow IPC stream: {exc})") from None
    raw = (table.schema.metadata or {}).get(b"fastevals")
    try:
        meta = json.loads(raw) if raw is not None else None
    except ValueError:
        meta = None
    if not isinstance(meta, dict) or meta.get("magic") != _MAGIC.decode():
        raise ValueError("these bytes are an Arrow stream but not a fastevals state (no fastevals metadata)")
    if int(meta.get("format", 0)) > FORMAT_VERSION:
        raise ValueError(f"these bytes use fastevals state format {meta['format']}, newer than this fastevals "
                         f"reads ({FORMAT_VERSION}); upgrade fastevals")
    return meta, table


# JSON with tuples and non-finite floats kept (labels may be tuples; params may hold inf)
def _encode(value):
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {"__dict__": [[_encode(k), _encode(v)] for k, v in value.items()]}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": repr(value)}
    return value


def _decode(value):
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if "__tuple__" in value:
            return tuple(_decode(v) for v in value["__tuple__"])
        if "__dict__" in value:
            return {_decode(k): _decode(v) for k, v in value["__dict__"]}
        if "__float__" in value:
            return float(value["__float__"])
    return value


def _canonical(value):
    return json.dumps(_encode(value), sort_keys=True, default=repr)


def iter_registered() -> Iterator[type[State]]:
    """Every registered state class (import the analysis modules first)."""
    yield from STATES.values()
