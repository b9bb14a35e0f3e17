"""The one fold engine: a protocol state over any source, in this process or on Dask.

``fold(state, data, engine=...)`` is what every analysis function calls::

    state = SomeState(**options)
    state = fold(state, data, engine=engine)
    return state.finalize()

In process it is ``state.update(data)`` (the input layer scans the columns the
state needs, batch by batch). On Dask (a ``dask.dataframe.DataFrame``, or a
Parquet path with ``engine="dask"``) each partition is folded into a fresh copy
of the state on its worker, with its global row offset (so the bootstrap's
row-keyed weights do not depend on the partitioning), and the partition states
are tree-merged; only states travel.
"""

from __future__ import annotations

from typing import TypeVar

from . import _dask
from ._protocol import State

S = TypeVar("S", bound=State)


def fold(state: S, data, *, engine=None, scheduler=None) -> S:
    """Fold ``data`` into ``state`` and return the folded state.

    In process the same ``state`` object is updated and returned; on Dask a new
    state (the merge of the partitions' states) is returned, and ``state``
    must be fresh.
    """
    if not _dask.wants_dask(data, engine):
        return state.update(data)
    if state.n_read:
        raise ValueError("a fold on Dask starts from a fresh state; this one already holds data "
                         "(fold the new data into a fresh state and merge the two)")
    # a first pass counts each partition's rows only for states whose weights are keyed by row index
    offset_arg = "row_offset" if getattr(state, "keyed_by_row_offset", True) else None
    folded, _ = _dask.update_state(state, data, engine=engine, columns=state.columns, offset_arg=offset_arg,
                                   scheduler=scheduler, filter=state.filter)
    return folded


def check_backend(backend, *, supported=("auto", "cpu")) -> str:
    """Normalize ``backend=``; a clear error where an analysis has no such backend."""
    from ._validation import check_choice

    value = check_choice("backend", "auto" if backend is None else backend, ("auto", "cpu", "cuda"))
    if value not in supported:
        raise ValueError(f"backend={value!r} is not available for this analysis; it runs on: "
                         f"{', '.join(repr(s) for s in supported)}")
    return value
