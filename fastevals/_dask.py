"""Run any fastevals analysis on a Dask cluster: one state per partition, tree-merged.

Every analysis is a mergeable state (``update`` / ``merge``), so a cluster
needs no second implementation: each partition of a ``dask.dataframe``
(only the columns the analysis reads) is turned into an Arrow table on the
worker that holds it, folded into a fresh state there, and the partition
states are merged pairwise in a tree of tasks. Only states (a few kB) travel
between machines, never rows. The merge tree keeps partition order, so a
result does not depend on which worker ran what, and it equals the
in-process result on the same data (counts exactly, means and variances to
rounding).

Dask is imported only when a Dask collection is given (or ``engine="dask"``
is asked for): ``import fastevals`` never imports it.

Two entry points:

* :func:`fold_on_dask` ``(ddf, make_state, columns, **update_kwargs) -> state``;
* :func:`update_state` ``(state, data, **update_kwargs) -> (state, scan)``,
  which folds in-process for ordinary inputs and on Dask for Dask
  collections, so public functions call it instead of ``state.update``.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from . import _source as src
from ._validation import check_choice, check_int

if TYPE_CHECKING:
    from typing import Any

    from ._protocol import State
    from ._typing import Filter

_ENGINES = ("auto", "arrow", "dask")
_INSTALL_HINT = "install the dask extra: pip install 'fastevals[dask]'"

#: states merged by one task of the merge tree
DEFAULT_SPLIT_EVERY = 8


def is_dask_collection(data) -> bool:
    """True if ``data`` is a Dask collection (DataFrame, Series, Bag, Array...).

    Never imports Dask: an object can only be a Dask collection if Dask was
    imported already.

    Examples
    --------
    >>> from fastevals._dask import is_dask_collection
    >>> is_dask_collection({"a": [1, 2]})
    False
    """
    if "dask" not in sys.modules:
        return False
    from dask.base import is_dask_collection as _is_collection

    return bool(_is_collection(data))


def _import_dask():
    try:
        import dask
        import dask.dataframe as dd
    except ImportError as exc:  # pragma: no cover - the extra is installed in the test environment
        raise ImportError(f"running on Dask needs dask[dataframe] and distributed; {_INSTALL_HINT}") from exc
    return dask, dd


# ------------------------------------------------------------------------------------------------
# what runs on the workers


def _partition_table(part) -> pa.Table:
    """A partition (pandas, or anything with ``to_arrow``) as an Arrow table."""
    if isinstance(part, pa.Table):
        return part
    if isinstance(part, pa.RecordBatch):
        return pa.Table.from_batches([part])
    if type(part).__module__.split(".")[0] == "pandas":
        # nthreads=1: a pool per partition costs more than it saves (the worker is the parallelism)
        return pa.Table.from_pandas(part, preserve_index=False, nthreads=1)
    if hasattr(part, "to_arrow"):  # cudf, polars
        return part.to_arrow()
    raise TypeError(f"cannot turn a Dask partition of type {type(part).__name__} into an Arrow table")


def _row_counts(state) -> tuple[int, int] | None:
    """``(rows read, rows dropped)`` of states that count them (the protocol's ``n_read`` /
    ``n_dropped``, or the jackknife pass's ``rows_read`` / ``rows_dropped``), else None.
    """
    read = getattr(state, "n_read", getattr(state, "rows_read", None))
    dropped = getattr(state, "n_dropped", getattr(state, "rows_dropped", None))
    if isinstance(read, int) and isinstance(dropped, int):
        return read, dropped
    return None


def _stats_of(returned, state, before, rows: int | None) -> src.ScanStats:
    """What an update read: the scan it returned, else the change in the state's row counts,
    else ``rows``.
    """
    stats = getattr(returned, "stats", None)
    if isinstance(stats, src.ScanStats):
        return dataclasses.replace(stats)
    after = _row_counts(state)
    if before is not None and after is not None:
        return src.ScanStats(rows_read=after[0] - before[0], rows_dropped=after[1] - before[1], batches=1)
    return src.ScanStats(rows_read=rows or 0, batches=1)


def _filtered_table(part, filter) -> pa.Table:
    table = _partition_table(part)
    if filter is not None and table.num_rows:
        table = table.filter(filter)
    return table


def _partition_rows(part, filter, make_state=None, update_kwargs=None) -> int:
    """Worker side: rows of a partition that the state will key (for row offsets).

    Rows passing ``filter``; a state with a ``rows_used_in(table, **update_kwargs)`` method
    (one that drops rows with nulls, say) counts the rows it would use.
    """
    table = _filtered_table(part, filter)
    counter = getattr(make_state(), "rows_used_in", None) if make_state is not None else None
    if counter is None or table.num_rows == 0:
        return table.num_rows
    return int(counter(table, **(update_kwargs or {})))


def _fold_partition(part, make_state: Callable, update_kwargs: dict, filter=None,
                    offset_arg: str | None = None, offset: int = 0):
    """Worker side: one fresh state folded over one partition (rows passing ``filter``)."""
    table = _filtered_table(part, filter)
    state = make_state()
    if table.num_rows == 0:
        return state, src.ScanStats()
    kwargs = dict(update_kwargs)
    if offset_arg is not None:
        kwargs[offset_arg] = offset
    before = _row_counts(state)
    returned = state.update(table, **kwargs)
    return state, _stats_of(returned, state, before, table.num_rows)


def _merge_states(items: list):
    """Worker side: merge ``(state, stats)`` pairs left to right (partition order)."""
    state, stats = items[0]
    stats = dataclasses.replace(stats)
    for other, other_stats in items[1:]:
        merged = state.merge(other)
        state = state if merged is None else merged  # a merge may work in place
        stats.rows_read += other_stats.rows_read
        stats.rows_dropped += other_stats.rows_dropped
        stats.batches += other_stats.batches
    return state, stats


# ------------------------------------------------------------------------------------------------
# driver side


def _filter_columns(filter, names: Sequence[str]) -> list[str]:
    """Columns a pyarrow filter expression may read (a superset: names found in its text)."""
    if filter is None:
        return []
    text = str(filter)
    return [name for name in names if isinstance(name, str) and name in text]


def _project(ddf, columns, filter):
    names = list(ddf.columns)
    if columns is None:
        return ddf
    columns = list(columns)
    missing = [c for c in columns if c not in names]
    if missing:
        shown = ", ".join(repr(n) for n in names[:20]) + (" ..." if len(names) > 20 else "")
        raise ValueError(f"unknown column {missing[0]!r}; the Dask DataFrame has columns: {shown}")
    extra = [c for c in _filter_columns(filter, names) if c not in columns]
    return ddf[columns + extra]


def _fold_on_dask(ddf, make_state: Callable, columns, *, filter=None, offset_arg: str | None = None,
                  split_every: int = DEFAULT_SPLIT_EVERY, scheduler=None, **update_kwargs):
    dask, dd = _import_dask()
    if not isinstance(ddf, dd.DataFrame):
        raise TypeError(
            f"`data` must be a dask.dataframe.DataFrame to run on Dask; got {type(ddf).__module__}."
            f"{type(ddf).__name__}"
        )
    if not callable(make_state):
        raise TypeError(f"`make_state` must be a callable returning a fresh state; got {make_state!r}")
    if filter is not None and not isinstance(filter, pc.Expression):
        raise TypeError(
            f"`filter` must be a pyarrow.compute.Expression such as pc.field('country') == 'DE'; got {filter!r}"
        )
    if offset_arg is not None and not isinstance(offset_arg, str):
        raise TypeError(f"`offset_arg` must be the name of an update() keyword or None; got {offset_arg!r}")
    split_every = check_int("split_every", split_every, low=2)
    if "progress" in update_kwargs:
        update_kwargs["progress"] = False  # workers' stderr is nobody's terminal
    ddf = _project(ddf, columns, filter)
    from dask import delayed

    run = uuid.uuid4().hex[:12]
    parts = ddf.to_delayed()
    offsets = [0] * len(parts)
    if offset_arg is not None:
        # a first pass counts each partition's rows, so that partition i knows the global index
        # of its first row (row-keyed weights then do not depend on the partitioning)
        count = delayed(_partition_rows, pure=False)
        rows = dask.compute(*[count(p, filter, make_state, update_kwargs, dask_key_name=f"fastevals-rows-{run}-{i}")
                              for i, p in enumerate(parts)], scheduler=scheduler)
        offsets = [0, *itertools.accumulate(int(r) for r in rows)][:-1]
    fold = delayed(_fold_partition, pure=False)
    merge = delayed(_merge_states, pure=False)
    level = [fold(part, make_state, update_kwargs, filter, offset_arg, offsets[i],
                  dask_key_name=f"fastevals-fold-{run}-{i}")
             for i, part in enumerate(parts)]
    depth = 0
    while len(level) > 1:
        depth += 1
        level = [merge(level[i:i + split_every], dask_key_name=f"fastevals-merge-{run}-{depth}-{k}")
                 for k, i in enumerate(range(0, len(level), split_every))]
    (result,) = dask.compute(level[0], scheduler=scheduler)
    state, stats = result
    return state, stats, len(parts)


def fold_on_dask(ddf: Any, make_state: Callable, columns: Sequence[str] | None = None, *, filter: Filter = None,
                 offset_arg: str | None = None, split_every: int = DEFAULT_SPLIT_EVERY, scheduler: Any | None = None,
                 **update_kwargs: Any) -> State:
    """Fold a Dask DataFrame into one state: a state per partition, merged in a tree.

    Parameters
    ----------
    ddf : dask.dataframe.DataFrame
        For example ``dask.dataframe.read_parquet("logs/*.parquet")``.
    make_state : callable
        Returns a fresh (empty) state; called once per partition, on the worker.
        It is pickled with the task graph, so a class, a ``functools.partial``
        or a module-level function (not a lambda defined in ``__main__`` of a
        process the workers cannot import).
    columns : list of str, optional
        The columns the state reads; only these (plus those a ``filter`` names)
        are read from the partitions. All columns when None.
    filter : pyarrow.compute.Expression, optional
        Rows to keep, applied to each partition on its worker before ``update``.
    offset_arg : str, optional
        Name of an ``update`` keyword that receives the global index of the
        partition's first row (``"row_offset"`` for states whose weights are keyed
        by row index, like the bootstrap's): a first, cheap pass counts the rows
        of every partition (after ``filter``), so that row ``i`` of the data gets
        the same key on 1, 3 or 17 partitions as in one process. A state whose
        ``rows_used_in(table, **update_kwargs)`` method says how many rows of a table
        it would use (after dropping nulls) is counted with it.
    split_every : int
        States merged per task of the merge tree (at least 2).
    scheduler : optional
        Passed to ``dask.compute``; by default the current ``distributed.Client``,
        else Dask's default scheduler.
    **update_kwargs
        Passed to ``state.update(table, ...)`` on each partition (``nulls``,
        ``batch_size``...; ``progress`` is turned off on workers).

    Returns
    -------
    state
        The merged state, in this process.

    Examples
    --------
    >>> import functools, numpy as np, pandas as pd, dask.dataframe as dd
    >>> from fastevals import ABTestState
    >>> from fastevals._dask import fold_on_dask
    >>> df = pd.DataFrame({"variant": np.repeat(["a", "b"], 500), "converted": np.arange(1000) % 3 == 0})
    >>> ddf = dd.from_pandas(df, npartitions=4)
    >>> make = functools.partial(ABTestState, group="variant", outcome="converted")
    >>> st = fold_on_dask(ddf, make, ["variant", "converted"], scheduler="sync")
    >>> int(st.counts.sum())
    1000
    """
    state, _, _ = _fold_on_dask(ddf, make_state, columns, filter=filter, offset_arg=offset_arg,
                                split_every=split_every, scheduler=scheduler, **update_kwargs)
    return state


def read_parquet(path, **read_parquet_kwargs):
    """Open a Parquet path, folder, glob (local or remote) or list of them as a Dask DataFrame.

    ``dask.dataframe.read_parquet`` with Arrow-backed dtypes by default, so that
    each partition turns back into the same Arrow types (integers with nulls
    stay integers, NaN stays NaN and null stays null). Nothing is read until an
    analysis runs; only the columns it needs are read then.
    """
    _, dd = _import_dask()
    ok = isinstance(path, (str, os.PathLike)) or (
        isinstance(path, (list, tuple)) and path and all(isinstance(p, (str, os.PathLike)) for p in path)
    )
    if not ok:
        raise TypeError(
            "engine='dask' reads Parquet: `data` must be a path, folder, glob or list of paths "
            "(or a dask.dataframe.DataFrame); for in-memory data use "
            f"dask.dataframe.from_pandas(df, npartitions=...); got {type(path).__name__}"
        )
    paths = os.fspath(path) if isinstance(path, (str, os.PathLike)) else [os.fspath(p) for p in path]
    read_parquet_kwargs.setdefault("dtype_backend", "pyarrow")
    return dd.read_parquet(paths, **read_parquet_kwargs)


@dataclass
class ScanSummary:
    """What a fold read (on Dask: summed over partitions): the counterpart of
    :class:`fastevals._source.Scan`, with the same ``stats`` and ``check_not_empty()``.
    """

    columns: list[str] | None
    stats: src.ScanStats
    partitions: int = 1
    description: str = "the input"

    def check_not_empty(self) -> None:
        src.check_rows_left(self.stats, self.description, self.columns)


def check_engine(engine) -> str:
    """Normalize the ``engine`` argument: None or "auto", "arrow" (this process) or "dask"."""
    return check_choice("engine", engine if engine is not None else "auto", _ENGINES)


def wants_dask(data, engine=None) -> bool:
    """True if ``data`` / ``engine`` ask for a run on Dask (checks ``engine`` too)."""
    engine = check_engine(engine)
    on_dask = is_dask_collection(data)
    if engine == "arrow" and on_dask:
        raise ValueError("engine='arrow' reads in this process; a Dask collection needs engine='dask' (or None)")
    return engine == "dask" or on_dask


def update_state(state, data, *, engine=None, in_process: Callable | None = None,
                 make_state: Callable | None = None, columns=None, offset_arg: str | None = None,
                 split_every: int = DEFAULT_SPLIT_EVERY, scheduler=None, **update_kwargs):
    """Fold ``data`` into ``state``, in this process or on Dask, and return ``(state, scan)``.

    The one call public functions make instead of ``state.update(data, ...)``:

    * ordinary inputs (``engine`` None/"auto"/"arrow"): ``in_process(data, **update_kwargs)``
      (default ``state.update``); returns the same ``state`` and the scan ``in_process``
      returned if it is one (``stats`` and ``check_not_empty()``), else a :class:`ScanSummary`;
    * a Dask DataFrame (``engine`` None/"auto"/"dask"), or a Parquet path, glob or list of
      paths with ``engine="dask"`` (opened by :func:`read_parquet`): a fresh copy of ``state``
      per partition, tree-merged on the current ``distributed.Client``; returns the merged
      state (a new object) and a :class:`ScanSummary` of all partitions.

    On Dask ``state`` must be fresh (no data folded in yet) unless ``make_state`` is given;
    ``columns`` defaults to ``state.columns`` when the state has that attribute; a ``filter``
    keyword is applied to each partition on its worker (see :func:`fold_on_dask`, also for
    ``offset_arg``).

    Examples
    --------
    >>> import numpy as np
    >>> from fastevals import ABTestState
    >>> from fastevals._dask import update_state
    >>> st = ABTestState(group="variant", outcome="converted")
    >>> st, scan = update_state(st, {"variant": np.array(["a", "b"] * 50), "converted": np.arange(100) % 2})
    >>> scan.stats.rows_read
    100
    """
    if columns is None:
        columns = getattr(state, "columns", None)
    cols = list(columns) if columns is not None else None
    if not wants_dask(data, engine):
        before = _row_counts(state)
        returned = (in_process or state.update)(data, **update_kwargs)
        if isinstance(getattr(returned, "stats", None), src.ScanStats) and hasattr(returned, "check_not_empty"):
            return state, returned
        return state, ScanSummary(cols, _stats_of(returned, state, before, None))
    if is_dask_collection(data):
        description = "the Dask DataFrame"
    else:
        data = read_parquet(data)
        description = "the Parquet input (read by Dask)"
    if make_state is None:
        if getattr(state, "rows_read", 0):
            raise ValueError("update_state on Dask needs a fresh state (or a `make_state` callable): "
                             "this one already holds data")
        make_state = _Fresh(state)
    filter = update_kwargs.pop("filter", None)
    folded, stats, parts = _fold_on_dask(data, make_state, columns, filter=filter, offset_arg=offset_arg,
                                         split_every=split_every, scheduler=scheduler, **update_kwargs)
    return folded, ScanSummary(cols, stats, parts, description)


class _Fresh:
    """A picklable factory: copies of a fresh state (one per partition)."""

    def __init__(self, template):
        self.template = template

    def __call__(self):
        return copy.deepcopy(self.template)

    def __repr__(self) -> str:
        return f"_Fresh({type(self.template).__name__})"
