"""The input layer: anything tabular -> Arrow record batches of the columns an
analysis needs -> NumPy views for the kernels.

Every analysis goes through :func:`open_source` (resolve the input once),
:meth:`Source.require` (check that the columns exist and have a usable type)
and :func:`scan` (batches, with nulls raised or dropped and a row count).
Label columns (groups, segments, outcome levels) are turned into small local
integer codes per batch by :func:`local_codes`; a :class:`LabelIndex` maps
those to codes that stay stable across batches.
"""

from __future__ import annotations

import glob
import os
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: default rows per batch when scanning files, datasets and streams.
DEFAULT_BATCH_SIZE = 1 << 20

# column kinds an analysis may ask for
LABEL = "label"  # group / segment / outcome level: strings, dictionary, integers, booleans
NUMERIC = "numeric"  # values: integers, floats, booleans

#: widest integer range coded by offset (value - min) instead of a hash table
_MAX_INT_RANGE = 1 << 16


def _type_ok(kind: str, t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        return kind == LABEL and _type_ok(LABEL, t.value_type)
    if kind == LABEL:
        return (
            pa.types.is_integer(t)
            or pa.types.is_boolean(t)
            or pa.types.is_string(t)
            or pa.types.is_large_string(t)
            or getattr(pa.types, "is_string_view", lambda _: False)(t)
        )
    if kind == NUMERIC:
        return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
    raise AssertionError(kind)


_KIND_TEXT = {
    LABEL: "strings, dictionary-encoded strings, integers or booleans",
    NUMERIC: "integers, floats or booleans",
}


class Source:
    """A resolved input: its schema and a way to read batches of some columns.

    Build it with :func:`open_source`.
    """

    def __init__(self, schema: pa.Schema, make_scanner, *, rescannable: bool, description: str,
                 table: pa.Table | None = None):
        self.schema = schema
        self._make_scanner = make_scanner
        self.rescannable = rescannable
        self.description = description
        self._table = table  # set for in-memory inputs: null counts are known up front
        self._scanned = False
        self.parquet_paths: list[str] = []  # set for Parquet paths: named when a file cannot be read

    @property
    def in_memory(self) -> bool:
        return self._table is not None

    @property
    def num_rows(self) -> int | None:
        """Rows of an in-memory input (before any null handling); None for files and streams."""
        return None if self._table is None else self._table.num_rows

    def require(self, columns: dict[str, tuple[str, str]]) -> None:
        """Check columns: ``{column: (argument_name, kind)}``.

        Raises ValueError for an unknown column and TypeError for a column
        whose type cannot serve, naming the argument and the column.
        """
        names = self.schema.names
        for col, (arg, kind) in columns.items():
            if col not in names:
                shown = ", ".join(repr(n) for n in names[:20]) + (" ..." if len(names) > 20 else "")
                raise ValueError(f"unknown column {col!r} (given as `{arg}`); the input has columns: {shown}")
            t = self.schema.field(col).type
            if not _type_ok(kind, t):
                raise TypeError(
                    f"column {col!r} (given as `{arg}`) has type {t}; expected {_KIND_TEXT[kind]}"
                )

    def null_count(self, column: str) -> int | None:
        if self._table is None:
            return None
        return self._table.column(column).null_count

    def batches(self, columns: Sequence[str]) -> Iterator[pa.RecordBatch]:
        if self._scanned and not self.rescannable:
            raise ValueError(
                f"{self.description} can be read only once and was already read; "
                "pass a Table, a dataset or a path for analyses that read the data twice"
            )
        self._scanned = True
        if not self.parquet_paths:
            yield from self._make_scanner(list(columns))
            return
        try:  # a file whose footer reads but whose pages do not fails here, mid-scan
            yield from self._make_scanner(list(columns))
        except (pa.ArrowInvalid, OSError) as exc:
            raise _unreadable_parquet(self.parquet_paths, exc) from None


def _unreadable_parquet(paths: Sequence[str], exc: Exception) -> ValueError:
    """A ValueError naming the first file of ``paths`` that is not a readable Parquet file."""
    import pyarrow.parquet as pq

    bad = None
    for path in paths:
        files = [os.path.join(d, f) for d, _, fs in os.walk(path) for f in sorted(fs)] if os.path.isdir(path) \
            else [path]
        for f in files:
            try:
                pq.ParquetFile(f).read()
            except (pa.ArrowInvalid, OSError):
                bad = f
                break
        if bad:
            break
    where = repr(bad) if bad else f"one of the {len(paths)} input path(s)"
    return ValueError(f"{where} is not a readable Parquet file (corrupt or truncated?): {exc}")


def _expand_paths(data) -> list[str]:
    items = [data] if isinstance(data, (str, os.PathLike)) else list(data)
    paths: list[str] = []
    for item in items:
        p = os.fspath(item)
        if any(ch in p for ch in "*?["):
            hits = sorted(glob.glob(p, recursive=True))
            if not hits:
                raise FileNotFoundError(f"no file matches the pattern {p!r}")
            paths.extend(hits)
        elif os.path.exists(p):
            paths.append(p)
        else:
            raise FileNotFoundError(f"no such file or folder: {p!r}")
    return paths


def _ds():
    """``pyarrow.dataset``, imported on first use: in-memory tables never need it (~0.1-0.2 s to import)."""
    import pyarrow.dataset as ds

    return ds


def _row_group_runs(row_groups, batch_size: int) -> Iterator[list[int]]:
    """Consecutive row group ids in runs of about ``batch_size`` rows (at least one group a run)."""
    run: list[int] = []
    rows = 0
    for rg in row_groups:
        if run and rows + rg.num_rows > batch_size:
            yield run
            run, rows = [], 0
        run.append(rg.id)
        rows += rg.num_rows
    if run:
        yield run


#: runs of row groups decoded ahead of the one being consumed, so that decoding overlaps the
#: consumer's work.  Measured on AB3 (10M rows, row groups of 1M, load ~1): 0 ahead was 20%
#: slower than 1; 2 ahead was 2-4% faster than 1 (within the noise) but its peak RSS grew
#: 27-35 MB from a 1M-row to a 20M-row file against 16 MB with 1 ahead (tests/test_memory.py)
_RUNS_AHEAD = 1


def parquet_batches(dataset, columns: Sequence[str], filter, batch_size: int) -> Iterator[pa.RecordBatch]:
    """The batches of a Parquet ``FileSystemDataset``, read with back-pressure.

    One scanner over a whole dataset (or file) decodes ahead of a slower consumer and queues
    what it decoded: a fresh process reading a 50M-row file peaked ~390 MB above one reading
    1M rows.  Here each file is read in runs of consecutive row groups of about ``batch_size``
    rows, one small scanner a run, and only :data:`_RUNS_AHEAD` runs are started ahead of the
    one being consumed (a scanner starts decoding when it is made): memory is bounded by a few
    runs, about ``(1 + _RUNS_AHEAD) * batch_size`` rows (or row groups, where a row group is
    larger), whatever the file's length.  Kept as before: the folders' hive partitions prune
    files (``get_fragments(filter)``), row-group statistics prune row groups
    (``subset(filter)``), the filter is applied to the rows inside the scanner (it may name
    columns that are not read), only ``columns`` are decoded, files whose types differ are
    cast to the dataset's schema, and rows come in file and row order (the bootstrap keys its
    weights by the global row index).
    """
    ds = _ds()
    options = ds.ParquetFragmentScanOptions(pre_buffer=False)
    schema = dataset.schema
    columns = list(columns)

    def pieces():
        for fragment in dataset.get_fragments(filter=filter):
            kept = fragment.subset(filter=filter, schema=schema) if filter is not None else fragment
            for run in _row_group_runs(kept.row_groups, batch_size):
                yield fragment.subset(row_group_ids=run)

    started: deque = deque()
    for piece in pieces():
        started.append(ds.Scanner.from_fragment(piece, schema=schema, columns=columns, filter=filter,
                                                batch_size=batch_size, fragment_scan_options=options,
                                                batch_readahead=1, fragment_readahead=1).to_batches())
        if len(started) > _RUNS_AHEAD:
            yield from started.popleft()
    while started:
        yield from started.popleft()


def _dataset_source(dataset, filter, batch_size, description, table=None) -> Source:
    ds = _ds()
    if isinstance(dataset, ds.FileSystemDataset) and isinstance(dataset.format, ds.ParquetFileFormat):

        def make(columns):
            return parquet_batches(dataset, columns, filter, batch_size)

    else:

        def make(columns):
            return dataset.scanner(columns=columns, filter=filter, batch_size=batch_size).to_batches()

    return Source(dataset.schema, make, rescannable=True, description=description, table=table)


def open_source(data, *, filter=None, batch_size: int | None = None, columns_hint=None) -> Source:
    """Resolve ``data`` into a :class:`Source`.

    Accepted: a pyarrow Table, RecordBatch or RecordBatchReader; a
    ``pyarrow.dataset.Dataset``; a Parquet file, folder, glob or list of
    paths; a pandas or polars DataFrame or any object with
    ``__arrow_c_stream__``; a dict of NumPy arrays (or sequences).

    ``filter`` is a ``pyarrow.compute.Expression`` pushed into the scan (into
    the Parquet reader for files).  ``batch_size`` bounds the rows per batch
    (default: the table's own chunks in memory, 2**20 rows when scanning).
    ``columns_hint`` lets dict and DataFrame inputs convert only what is used.
    """
    if filter is not None and not isinstance(filter, pc.Expression):
        raise TypeError(
            f"`filter` must be a pyarrow.compute.Expression such as pc.field('country') == 'DE'; got {filter!r}"
        )
    if batch_size is not None:
        from ._validation import check_int

        batch_size = check_int("batch_size", batch_size, low=1)
    scan_bs = batch_size or DEFAULT_BATCH_SIZE

    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if isinstance(data, dict):
        data = _table_from_dict(data, columns_hint)
    mod = type(data).__module__.split(".")[0]
    if mod == "pandas" and hasattr(data, "columns"):
        cols = [c for c in (columns_hint or data.columns) if c in data.columns]
        data = pa.Table.from_pandas(data[cols], preserve_index=False)
    elif mod == "polars" and hasattr(data, "to_arrow"):
        if hasattr(data, "collect"):  # LazyFrame
            data = data.collect()
        cols = [c for c in (columns_hint or data.columns) if c in data.columns]
        data = data.select(cols).to_arrow()

    if isinstance(data, pa.Table):
        table = data
        if filter is not None:
            return _dataset_source(_ds().dataset(table), filter, scan_bs, "the table", table=None)

        def make(columns):
            return iter(table.select(columns).to_batches(max_chunksize=batch_size))

        return Source(table.schema, make, rescannable=True, description="the table", table=table)
    # a Dataset exists only if pyarrow.dataset was imported
    if "pyarrow.dataset" in sys.modules and isinstance(data, sys.modules["pyarrow.dataset"].Dataset):
        return _dataset_source(data, filter, scan_bs, "the dataset")
    if isinstance(data, (str, os.PathLike)) or (
        isinstance(data, (list, tuple)) and data and all(isinstance(p, (str, os.PathLike)) for p in data)
    ):
        paths = _expand_paths(data)
        ds = _ds()
        try:
            if len(paths) == 1 and os.path.isdir(paths[0]):
                dset = ds.dataset(paths[0], format="parquet", partitioning="hive")
            else:
                dset = ds.dataset(paths, format="parquet")
        except (pa.ArrowInvalid, OSError) as exc:
            raise _unreadable_parquet(paths, exc) from None
        source = _dataset_source(dset, filter, scan_bs, f"the Parquet input {paths[0]!r}")
        source.parquet_paths = paths
        return source
    if isinstance(data, pa.RecordBatchReader) or hasattr(data, "__arrow_c_stream__"):
        reader = data if isinstance(data, pa.RecordBatchReader) else pa.RecordBatchReader.from_stream(data)

        def make(columns):
            scanner = _ds().Scanner.from_batches(reader, columns=columns, filter=filter, batch_size=scan_bs)
            return scanner.to_batches()

        return Source(reader.schema, make, rescannable=False, description="the record batch stream")
    dask_mod = type(data).__module__.startswith("dask")
    hint = " (for a Dask DataFrame use the dask extra's entry points)" if dask_mod else ""
    raise TypeError(
        "`data` must be a pyarrow Table/RecordBatch/RecordBatchReader/Dataset, a Parquet path, glob or list "
        f"of paths, a pandas or polars DataFrame, an object with __arrow_c_stream__ or a dict of arrays; "
        f"got {type(data).__name__}{hint}"
    )


def numpy_to_arrow(a: np.ndarray, *, nan_is_null: bool = False, valid: np.ndarray | None = None) -> pa.Array:
    """An Arrow array of a 1-d NumPy array; numbers and booleans without ``pa.array``.

    ``pa.array`` imports pandas on first use (0.4 s of a new process's first answer); numeric
    arrays become Arrow arrays over the same memory instead, booleans are bit-packed. NaN stays
    a value, as with ``pa.array``, or becomes null with ``nan_is_null`` (as with
    ``from_pandas=True``); ``valid`` (booleans) marks the other nulls. Other dtypes (strings,
    objects) go to ``pa.array``.
    """
    kind = a.dtype.kind
    if kind not in "biuf":
        return pa.array(a)
    if nan_is_null and kind == "f":
        valid = ~np.isnan(a) if valid is None else valid & ~np.isnan(a)
    mask, nulls = None, 0
    if valid is not None:
        nulls = len(a) - int(np.count_nonzero(valid))
        if nulls:
            mask = pa.py_buffer(np.packbits(valid, bitorder="little"))
    if kind == "b":
        bits = pa.py_buffer(np.packbits(a, bitorder="little"))
        return pa.Array.from_buffers(pa.bool_(), len(a), [mask, bits], null_count=nulls)
    a = np.ascontiguousarray(a if a.dtype.isnative else a.astype(a.dtype.newbyteorder("=")))
    return pa.Array.from_buffers(pa.from_numpy_dtype(a.dtype), len(a), [mask, pa.py_buffer(a)], null_count=nulls)


def arrow_array(values: list) -> pa.Array:
    """``pa.array(values)`` for the lists that result tables are made of (floats, integers,
    booleans or strings, None as null), without pa.array's pandas import; any other list goes
    to pa.array.
    """
    n = len(values)
    present = [v for v in values if v is not None]
    if not present:
        return pa.array(values)
    fill: Any = None
    dtype: Any = None
    kinds = set(map(type, present))  # one pass over the values; the tests below run per type
    booleans = all(issubclass(t, (bool, np.bool_)) for t in kinds)
    numbers = not any(issubclass(t, (bool, np.bool_)) for t in kinds)
    if booleans:
        dtype, fill = np.bool_, False
    elif numbers and all(issubclass(t, (int, np.integer)) for t in kinds):
        if -(1 << 63) <= int(min(present)) and int(max(present)) < (1 << 63):
            dtype, fill = np.int64, 0
    elif numbers and all(issubclass(t, (int, float, np.integer, np.floating)) for t in kinds):
        dtype, fill = np.float64, 0.0
    elif all(issubclass(t, str) for t in kinds):
        dtype, fill = str, ""
    if fill is None:
        return pa.array(values)
    valid = None if len(present) == n else np.array([v is not None for v in values])
    filled = values if valid is None else [fill if v is None else v for v in values]
    if dtype is not str:
        return numpy_to_arrow(np.array(filled, dtype=dtype), valid=valid)
    encoded = [v.encode("utf-8") for v in filled]
    ends = np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=n))
    if ends[-1] >= (1 << 31):
        return pa.array(values)
    offsets = np.zeros(n + 1, dtype=np.int32)
    offsets[1:] = ends
    mask = None if valid is None else pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(pa.string(), n, [mask, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))],
                                 null_count=n - len(present))


def arrow_table(columns: dict) -> pa.Table:
    """``pa.table(columns)`` for a dict of lists or NumPy arrays (a result table), with the same
    types, without importing pandas where the columns allow it (pa.array imports it on first use,
    0.3-0.4 s of a new process's first sliced answer).
    """
    arrays = {}
    for name, values in columns.items():
        if isinstance(values, (pa.Array, pa.ChunkedArray)):
            arrays[name] = values
        elif isinstance(values, np.ndarray) and values.ndim == 1 and values.dtype.kind in "biuf":
            arrays[name] = numpy_to_arrow(values)
        elif isinstance(values, list):
            arrays[name] = arrow_array(values)
        else:
            arrays[name] = pa.array(values)
    return pa.table(arrays)


def _table_from_dict(data: dict, columns_hint) -> pa.Table:
    cols = {}
    length = None
    for name, values in data.items():
        if not isinstance(name, str):
            raise TypeError(f"dict input keys must be column names (str); got {name!r}")
        if columns_hint is not None and name not in columns_hint:
            continue
        if isinstance(values, (pa.Array, pa.ChunkedArray)):
            arr = values
        else:
            a = np.asarray(values)
            if a.ndim != 1:
                raise ValueError(f"column {name!r} must be one-dimensional; got shape {a.shape}")
            try:
                arr = numpy_to_arrow(a)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
                raise TypeError(f"column {name!r} cannot be converted to Arrow: {exc}") from None
        if length is not None and len(arr) != length:
            raise ValueError(f"dict input columns differ in length: column {name!r} has {len(arr)} rows, "
                             f"others {length}")
        length = len(arr)
        cols[name] = arr
    if not cols:
        missing = ", ".join(repr(c) for c in (columns_hint or []))
        raise ValueError(f"the dict input has none of the columns needed ({missing}); keys: {list(data)!r}")
    return pa.table(cols)


# ----------------------------------------------------------------------------------------------------
# scanning with null handling


@dataclass
class ScanStats:
    rows_read: int = 0
    rows_dropped: int = 0
    batches: int = 0

    @property
    def rows_used(self) -> int:
        return self.rows_read - self.rows_dropped


class Progress:
    """Prints rows scanned to stderr once a scan has run for ``after`` seconds."""

    def __init__(self, enabled: bool, total: int | None = None, after: float = 1.5, stream=None):
        self.enabled = enabled
        self.total = total
        self.after = after
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()
        self.shown = False
        self._last = 0.0

    def update(self, rows: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter() - self.t0
        if now < self.after or now - self._last < 0.25:
            return
        self._last = now
        self.shown = True
        rate = rows / now if now > 0 else 0.0
        of = f" of {self.total:,}" if self.total else ""
        self.stream.write(f"\rscanned {rows:,}{of} rows ({rate / 1e6:,.1f} M rows/s)   ")
        self.stream.flush()

    def close(self, rows: int) -> None:
        if self.shown:
            now = time.perf_counter() - self.t0
            self.stream.write(f"\rscanned {rows:,} rows in {now:.1f} s{' ' * 20}\n")
            self.stream.flush()


@dataclass
class Scan:
    """Iterate the batches of ``columns`` with nulls (and NaNs in ``nan_columns``) raised or dropped."""

    source: Source
    columns: list[str]
    nulls: str = "raise"
    nan_columns: tuple[str, ...] = ()
    progress: Progress | None = None
    stats: ScanStats = field(default_factory=ScanStats)

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for batch in self.source.batches(self.columns):
            n = batch.num_rows
            self.stats.rows_read += n
            self.stats.batches += 1
            if n == 0:
                continue
            bad = [c for c in self.columns if batch.column(c).null_count]
            nan_bad = [c for c in self.nan_columns if _has_nan(batch.column(c))]
            if bad or nan_bad:
                if self.nulls == "raise":
                    self._raise(batch, bad, nan_bad)
                keep = None
                for c in self.columns:
                    arr = batch.column(c)
                    if arr.null_count:
                        v = pc.is_valid(arr)
                        keep = v if keep is None else pc.and_(keep, v)
                for c in nan_bad:
                    v = pc.invert(pc.is_nan(batch.column(c)))
                    v = pc.fill_null(v, False)
                    keep = v if keep is None else pc.and_(keep, v)
                batch = batch.filter(keep)
                self.stats.rows_dropped += n - batch.num_rows
                if batch.num_rows == 0:
                    continue
            if self.progress is not None:
                self.progress.update(self.stats.rows_read)
            yield batch
        if self.progress is not None:
            self.progress.close(self.stats.rows_read)

    def _raise(self, batch, bad, nan_bad):
        if bad:
            c = bad[0]
            total = self.source.null_count(c)
            if total is not None:
                count = f"{total:,} null value(s)"
            else:
                count = f"null values ({batch.column(c).null_count:,} in one batch of the scan)"
            raise ValueError(f"column {c!r} has {count}; pass nulls='drop' to leave those rows out")
        c = nan_bad[0]
        n_nan = int(pc.sum(pc.is_nan(batch.column(c))).as_py() or 0)
        raise ValueError(
            f"column {c!r} has NaN values ({n_nan:,} in a batch of {batch.num_rows:,} rows); "
            "pass nulls='drop' to leave those rows out"
        )

    def check_not_empty(self) -> None:
        check_rows_left(self.stats, self.source.description, self.columns)


def check_rows_left(stats: ScanStats, description: str, columns) -> None:
    """Raise a clear error when a scan (in this process or summed over Dask partitions) used no row."""
    if stats.rows_used == 0:
        if stats.rows_read == 0:
            raise ValueError(f"empty input: {description} has no rows (after the filter, if one was given)")
        raise ValueError(
            f"no rows left: all {stats.rows_read:,} rows had nulls or NaNs in {columns!r} and were dropped"
        )


def _has_nan(arr: pa.Array) -> bool:
    if not pa.types.is_floating(arr.type):
        return False
    if arr.null_count:
        return bool(pc.any(pc.is_nan(arr)).as_py())
    values = numeric_view(arr)
    # np.isnan on a sum is a fast screen: a NaN (or +inf and -inf together) poisons it
    s = float(np.add.reduce(values, dtype=np.float64))
    if np.isfinite(s):
        return False
    return bool(np.isnan(values).any())


# ----------------------------------------------------------------------------------------------------
# NumPy views


_NUMPY_OF_ARROW = {
    pa.int8(): np.int8, pa.int16(): np.int16, pa.int32(): np.int32, pa.int64(): np.int64,
    pa.uint8(): np.uint8, pa.uint16(): np.uint16, pa.uint32(): np.uint32, pa.uint64(): np.uint64,
    pa.float16(): np.float16, pa.float32(): np.float32, pa.float64(): np.float64,
}


def numeric_view(arr: pa.Array) -> np.ndarray:
    """A NumPy view of a numeric Arrow array without nulls (booleans become uint8 0/1).

    Read from the array's data buffer, not with ``Array.to_numpy``: that imports pandas on
    first use (0.3-0.4 s of a new process's first answer) when pandas is installed.
    """
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    n = len(arr)
    if pa.types.is_boolean(t):
        if n == 0:
            return np.zeros(0, dtype=np.uint8)
        bits = np.frombuffer(arr.buffers()[1], dtype=np.uint8)
        return np.unpackbits(bits, count=arr.offset + n, bitorder="little")[arr.offset:]
    dtype = _NUMPY_OF_ARROW.get(t)
    if dtype is None:
        return arr.to_numpy(zero_copy_only=True)
    if n == 0:
        return np.zeros(0, dtype=dtype)
    size = np.dtype(dtype).itemsize
    return np.frombuffer(arr.buffers()[1], dtype=dtype, count=n, offset=arr.offset * size)


#: the dtypes kernels are compiled for.  Numba compiles a kernel once per combination of its
#: arguments' dtypes (3.2-3.4 s a variant on a 2-core machine at load 2-4: ``benchmarks/compile_times.py``
#: found calibration's label as int8, int64 or float64 and prob as float32 each compiling a variant
#: of the same kernel), so columns are widened to one of these before a kernel sees them.
KERNEL_FLOAT = np.dtype(np.float64)
KERNEL_INT = np.dtype(np.int64)


def kernel_array(arr: pa.Array, dtype=KERNEL_FLOAT) -> np.ndarray:
    """A numeric Arrow array (no nulls) as contiguous NumPy of one canonical ``dtype``.

    ``dtype`` is :data:`KERNEL_FLOAT` (any integer, float or boolean column) or :data:`KERNEL_INT`
    (integer and boolean columns; booleans become 0/1).  A view when the column already has that
    dtype (no copy), one widening copy otherwise; never narrowing, so every value is kept exactly
    (integers beyond 2**53 excepted for float64, and uint64 above 2**63 refused for int64).

    Use it where a kernel would otherwise compile a variant per input dtype (int8, int16, uint8,
    bool, float32...): the copy costs a few milliseconds per million rows, a variant seconds.

    Raises
    ------
    TypeError
        A floating column asked for as integers, or a non-numeric column.
    ValueError
        A uint64 column with values that do not fit int64.
    """
    dtype = np.dtype(dtype)
    if dtype not in (KERNEL_FLOAT, KERNEL_INT):
        raise ValueError(f"dtype must be {KERNEL_FLOAT} or {KERNEL_INT}; got {dtype}")
    t = arr.type
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
        raise TypeError(f"expected a numeric column; got type {t}")
    if dtype == KERNEL_INT and pa.types.is_floating(t):
        raise TypeError(f"expected an integer or boolean column; got type {t}")
    values = numeric_view(arr)
    if values.dtype == dtype:
        return values
    if values.dtype == np.uint64 and dtype == KERNEL_INT and values.size and int(values.max()) >= (1 << 63):
        raise ValueError("a uint64 column has values above 2**63 - 1, which do not fit int64")
    return values.astype(dtype)


@dataclass
class LocalCodes:
    """Per-batch integer codes of a label column.

    Local index ``codes[i] - offset`` lies in ``[0, width)``; ``labels(idx)``
    gives the Python labels of local indices.
    """

    codes: np.ndarray
    offset: int
    width: int
    _labels: Any  # list of labels by local index, ("range", start), or a lazy lookup

    def labels(self, idx: np.ndarray) -> list:
        if isinstance(self._labels, tuple):
            start = self._labels[1]
            return [start + int(i) for i in idx]
        return [self._labels[int(i)] for i in idx]


def local_codes(arr: pa.Array) -> LocalCodes:
    """Local codes of a label column (no nulls)."""
    t = arr.type
    if pa.types.is_dictionary(t):
        indices = numeric_view(arr.indices)
        labels = arr.dictionary.to_pylist()
        return LocalCodes(indices, 0, len(labels), labels)
    if pa.types.is_boolean(t):
        return LocalCodes(numeric_view(arr), 0, 2, [False, True])
    if pa.types.is_integer(t):
        values = numeric_view(arr)
        mm = pc.min_max(arr).as_py()
        lo, hi = mm["min"], mm["max"]
        if hi - lo < _MAX_INT_RANGE:
            return LocalCodes(values, int(lo), int(hi - lo + 1), ("range", int(lo)))
    enc = pc.dictionary_encode(arr)
    return local_codes(enc)


def combine_codes(parts: list[LocalCodes]) -> LocalCodes:
    """Codes of the combination of several label columns (labels become tuples)."""
    if len(parts) == 1:
        return parts[0]
    width = 1
    for p in parts:
        width *= p.width
    n = len(parts[0].codes)
    if width <= (1 << 24):
        combined = np.zeros(n, dtype=np.int64)
        for p in parts:
            combined *= p.width
            combined += p.codes.astype(np.int64) - p.offset
        radices = [p.width for p in parts]

        def labels_of(i):
            out = []
            for p, r in zip(reversed(parts), reversed(radices)):
                out.append(p.labels(np.array([i % r]))[0])
                i //= r
            return tuple(reversed(out))

        return LocalCodes(combined, 0, width, _LazyLabels(labels_of))
    # too many combinations for a dense index: compress with np.unique
    keys = np.stack([p.codes.astype(np.int64) - p.offset for p in parts], axis=1)
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    labels = [tuple(p.labels(np.array([row[k]]))[0] for k, p in enumerate(parts)) for row in uniq]
    return LocalCodes(inverse.reshape(-1).astype(np.int64), 0, len(labels), labels)


class _LazyLabels:
    def __init__(self, fn):
        self.fn = fn

    def __getitem__(self, i):
        return self.fn(int(i))


class LabelIndex:
    """Maps labels to codes that stay stable across batches, in order of first appearance."""

    def __init__(self, labels: Sequence = ()):
        self.labels: list = []
        self._code: dict = {}
        for lab in labels:
            self.add(lab)

    def __len__(self) -> int:
        return len(self.labels)

    def add(self, label) -> int:
        code = self._code.get(label)
        if code is None:
            code = len(self.labels)
            self._code[label] = code
            self.labels.append(label)
        return code

    def code(self, label) -> int:
        return self._code[label]

    def __contains__(self, label) -> bool:
        return label in self._code

    def map_local(self, local: LocalCodes, present: np.ndarray) -> np.ndarray:
        """Global codes for each local index (``-1`` where ``present`` is False)."""
        out = np.full(local.width, -1, dtype=np.int64)
        idx = np.flatnonzero(present)
        for i, lab in zip(idx, local.labels(idx)):
            out[i] = self.add(_plain(lab))
        return out


def _plain(label):
    """Labels as plain Python values (NumPy scalars become int/float/bool)."""
    if isinstance(label, tuple):
        return tuple(_plain(x) for x in label)
    if isinstance(label, np.generic):
        return label.item()
    return label
