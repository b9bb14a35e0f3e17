"""Memory stays bounded when scanning long Parquet files, and the back-pressured scan keeps
what the dataset scanner gave: filter pushdown, row-group pruning, hive partitions, projection,
order."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from fastevals import _source as src

resource = pytest.importorskip("resource")  # ru_maxrss: the peak RSS of a process (POSIX)

# A fresh process scans a file with a slow consumer (3 ms a batch, as a kernel on a busy
# machine) and reports its peak RSS; the 20M-row file must not cost 50 MB more than the 1M.
_SCAN = textwrap.dedent("""
    import json, resource, sys, time
    import numpy as np
    from fastevals import _source as src
    source = src.open_source(sys.argv[1])
    total, rows = 0.0, 0
    for batch in src.Scan(source, ["g", "y", "x"]):
        rows += batch.num_rows
        total += float(np.add.reduce(src.numeric_view(batch.column("x")), dtype=np.float64))
        time.sleep(0.003)
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    print(json.dumps({"rows": rows, "sum": total,
                      "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale}))
""")


def _write(path, n_rows: int, *, row_group: int = 1 << 16, seed: int = 0) -> float:
    """A Parquet file of int8 / int8 / float32 columns written in pieces; returns the sum of x."""
    rng = np.random.default_rng(seed)
    writer = None
    total = 0.0
    step = 1 << 21
    for start in range(0, n_rows, step):
        m = min(step, n_rows - start)
        x = rng.random(m, dtype=np.float32)
        total += float(np.add.reduce(x, dtype=np.float64))
        piece = pa.table({"g": rng.integers(0, 2, m, dtype=np.int8), "y": rng.integers(0, 2, m, dtype=np.int8),
                          "x": x})
        if writer is None:
            writer = pq.ParquetWriter(path, piece.schema, compression="none")
        writer.write_table(piece, row_group_size=row_group)
    writer.close()
    return total


def _peak_of_scan(path) -> dict:
    env = dict(os.environ)
    out = subprocess.run([sys.executable, "-c", _SCAN, str(path)], capture_output=True, text=True, env=env,
                         timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_peak_memory_does_not_grow_with_the_file(tmp_path):
    small, large = tmp_path / "rows_1m.parquet", tmp_path / "rows_20m.parquet"
    sums = {small: _write(small, 1_000_000, seed=1), large: _write(large, 20_000_000, seed=2)}
    got = {p: _peak_of_scan(p) for p in (small, large)}
    for p, n in ((small, 1_000_000), (large, 20_000_000)):
        assert got[p]["rows"] == n
        assert got[p]["sum"] == pytest.approx(sums[p], rel=1e-9)  # every row read once
    growth = (got[large]["peak"] - got[small]["peak"]) / 1e6
    # measured: +16 MB (one more run of row groups in flight), against +84-132 MB with one
    # dataset scanner over the file (pyarrow 26)
    assert growth < 50, f"peak RSS grew {growth:.0f} MB from a 1M-row to a 20M-row file"


# ----------------------------------------------------------------------------------------------
# the back-pressured scan gives the dataset scanner's rows


class _RG:
    def __init__(self, id, num_rows):
        self.id, self.num_rows = id, num_rows


def test_row_group_runs_cover_every_group_once_in_order():
    rng = np.random.default_rng(3)
    sizes = rng.integers(1, 50, 40)
    groups = [_RG(i, int(s)) for i, s in enumerate(sizes)]
    for batch_size in (1, 30, 100, 10_000):
        runs = list(src._row_group_runs(groups, batch_size))
        assert [i for run in runs for i in run] == list(range(40))
        for run in runs:
            rows = int(sizes[run].sum())
            assert len(run) == 1 or rows <= batch_size  # a run exceeds batch_size only as one big group
    assert list(src._row_group_runs([], 10)) == []


@pytest.fixture(scope="module")
def hive_folder(tmp_path_factory):
    rng = np.random.default_rng(4)
    n = 60_000
    table = pa.table({
        "country": rng.choice(["DE", "FR", "US"], n),
        "k": np.arange(n, dtype=np.int64),
        "x": rng.normal(size=n),
        "day": rng.integers(0, 7, n).astype(np.int32),
    })
    root = tmp_path_factory.mktemp("hive")
    ds.write_dataset(table, root, format="parquet", partitioning=["country"], partitioning_flavor="hive",
                     max_rows_per_group=3000, min_rows_per_group=3000)
    return root


@pytest.mark.parametrize("filter", [
    None,
    pc.field("country") == "FR",                              # a partition: whole files pruned
    pc.field("k") < 7_000,                                    # sorted column: row groups pruned
    (pc.field("k") >= 50_000) & (pc.field("country") != "US"),
    pc.field("day") == 3,                                     # a column that is not read
])
@pytest.mark.parametrize("batch_size", [1000, 10_000, 1 << 20])
def test_scan_matches_the_dataset_scanner(hive_folder, filter, batch_size):
    source = src.open_source(str(hive_folder), filter=filter, batch_size=batch_size)
    batches = list(source.batches(["k", "x", "country"]))
    got = pa.Table.from_batches(batches, schema=batches[0].schema) if batches else None
    ref = ds.dataset(hive_folder, format="parquet", partitioning="hive").to_table(
        columns=["k", "x", "country"], filter=filter)
    assert got is not None and got.num_rows == ref.num_rows > 0
    assert got.equals(ref)  # same rows, same order, same types (the partition column included)
    assert max(b.num_rows for b in batches) <= batch_size


def test_row_groups_are_pruned_by_statistics(hive_folder):
    dset = ds.dataset(hive_folder, format="parquet", partitioning="hive")
    filt = pc.field("k") < 7_000
    total = sum(f.num_row_groups for f in dset.get_fragments())
    kept = sum(len(f.subset(filter=filt, schema=dset.schema).row_groups) for f in dset.get_fragments())
    assert kept < total / 3  # what parquet_batches reads; the rest is never opened
    rows = sum(b.num_rows for b in src.parquet_batches(dset, ["k"], filt, 1 << 20))
    assert rows == 7_000


def test_files_with_different_types_are_cast_to_the_dataset_schema(tmp_path):
    pq.write_table(pa.table({"v": pa.array([1, 2, 3], pa.int64()), "w": [0.5, 1.5, 2.5]}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"v": pa.array([4, 5], pa.int32()), "w": [3.5, 4.5]}), tmp_path / "b.parquet")
    source = src.open_source(sorted(str(p) for p in tmp_path.glob("*.parquet")))
    got = pa.Table.from_batches(list(source.batches(["v", "w"])))
    assert got.column("v").type == pa.int64()
    assert got.column("v").to_pylist() == [1, 2, 3, 4, 5]
    assert got.column("w").to_pylist() == [0.5, 1.5, 2.5, 3.5, 4.5]


def test_the_scan_reads_lazily(tmp_path):
    """Nothing is read before the consumer asks for a batch; then runs of about batch_size rows,
    one run read ahead."""
    path = tmp_path / "t.parquet"
    _write(path, 50_000, row_group=5_000)
    dset = ds.dataset(path, format="parquet")
    batches = src.parquet_batches(dset, ["x"], None, 10_000)
    first = next(batches)
    assert first.num_rows == 5_000  # a run of two row groups, read as the scanner's batches
    assert sum(b.num_rows for b in batches) == 45_000


# ----------------------------------------------------------------------------------------------
# canonical kernel dtypes: one compiled variant whatever the column's dtype


_NUMERIC_TYPES = [pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint16(), pa.uint32(),
                  pa.uint64(), pa.float16(), pa.float32(), pa.float64(), pa.bool_()]


@pytest.mark.parametrize("t", _NUMERIC_TYPES, ids=str)
def test_kernel_array_widens_to_one_dtype_exactly(t):
    rng = np.random.default_rng(5)
    if pa.types.is_boolean(t):
        raw = rng.random(37) < 0.5
    elif pa.types.is_floating(t):
        raw = rng.normal(size=37).astype(t.to_pandas_dtype())
    else:
        info = np.iinfo(t.to_pandas_dtype())
        raw = rng.integers(max(info.min, -100), min(info.max, 100), 37).astype(t.to_pandas_dtype())
    arr = pa.array(raw, type=t)
    for part in (arr, arr.slice(4, 20)):
        want = np.asarray(part.to_numpy(zero_copy_only=False))
        got = src.kernel_array(part)
        assert got.dtype == np.float64 and got.flags.c_contiguous
        np.testing.assert_array_equal(got, want.astype(np.float64))
        if not pa.types.is_floating(t):
            got_int = src.kernel_array(part, src.KERNEL_INT)
            assert got_int.dtype == np.int64
            np.testing.assert_array_equal(got_int, want.astype(np.int64))
        else:
            with pytest.raises(TypeError, match="integer or boolean column"):
                src.kernel_array(part, src.KERNEL_INT)


def test_kernel_array_is_a_view_when_the_dtype_is_already_canonical():
    x = pa.array(np.arange(10.0))
    assert np.shares_memory(src.kernel_array(x), src.numeric_view(x))
    k = pa.array(np.arange(10, dtype=np.int64))
    assert np.shares_memory(src.kernel_array(k, src.KERNEL_INT), src.numeric_view(k))


def test_kernel_array_refuses_what_it_cannot_keep_exactly():
    with pytest.raises(ValueError, match="do not fit int64"):
        src.kernel_array(pa.array(np.array([1, 2**63 + 5], dtype=np.uint64)), src.KERNEL_INT)
    with pytest.raises(TypeError, match="expected a numeric column"):
        src.kernel_array(pa.array(["a", "b"]))
    with pytest.raises(ValueError, match="dtype must be"):
        src.kernel_array(pa.array([1, 2]), np.int8)
