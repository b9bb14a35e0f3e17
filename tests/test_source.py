"""The input layer: every kind of source gives the same answer; columns,
types, nulls and filters are handled as documented."""

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import fastevals
from fastevals import _source as src


def make_table(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    return pa.table({
        "variant": rng.choice(["a", "b", "c"], n),
        "converted": (rng.random(n) < 0.2).astype(np.int8),
        "revenue": rng.exponential(3.0, n),
        "country": rng.choice(["DE", "FR"], n),
        "extra": rng.random(n),
    })


def state_of(data, **kw):
    st = fastevals.ABTestState(group="variant", outcome="converted", value="revenue", **kw)
    st.update(data)
    return st


def assert_same_state(a, b):
    sa, sb = a._sorted(), b._sorted()
    assert [a.groups.labels[i] for i in sa[1]] == [b.groups.labels[i] for i in sb[1]]
    assert [a.segments.labels[i] for i in sa[0]] == [b.segments.labels[i] for i in sb[0]]
    ca = a.counts[np.ix_(*sa)]
    cb = b.counts[np.ix_(*sb)]
    np.testing.assert_array_equal(ca, cb)
    np.testing.assert_array_equal(a.cell_n[np.ix_(sa[0], sa[1])], b.cell_n[np.ix_(sb[0], sb[1])])
    np.testing.assert_allclose(a.cell_mean[np.ix_(sa[0], sa[1])], b.cell_mean[np.ix_(sb[0], sb[1])], rtol=1e-12)
    np.testing.assert_allclose(a.cell_m2[np.ix_(sa[0], sa[1])], b.cell_m2[np.ix_(sb[0], sb[1])], rtol=1e-12)


class StreamOnly:
    """An object that only offers the Arrow C stream interface (like a duckdb result)."""

    def __init__(self, table):
        self.table = table

    def __arrow_c_stream__(self, requested_schema=None):
        return self.table.__arrow_c_stream__(requested_schema)


def test_every_source_kind_gives_the_same_state(tmp_path):
    table = make_table()
    ref = state_of(table)
    path = tmp_path / "one.parquet"
    pq.write_table(table, path, row_group_size=700)
    folder = tmp_path / "parts"
    folder.mkdir()
    for k, piece in enumerate([table.slice(0, 1000), table.slice(1000, 1000), table.slice(2000)]):
        pq.write_table(piece, folder / f"part-{k}.parquet")
    sources = {
        "record batch": table.combine_chunks().to_batches()[0],
        "reader": pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=500)),
        "dataset": ds.dataset(table),
        "file": str(path),
        "path object": path,
        "folder": str(folder),
        "glob": str(folder / "part-*.parquet"),
        "list of paths": [str(folder / f"part-{k}.parquet") for k in range(3)],
        "pandas": table.to_pandas(),
        "polars": pl.from_arrow(table),
        "c stream": StreamOnly(table),
        "dict": {c: table.column(c).to_numpy() for c in table.column_names},
    }
    for name, data in sources.items():
        try:
            assert_same_state(ref, state_of(data))
        except AssertionError as exc:
            raise AssertionError(f"input kind {name!r}: {exc}") from exc


def test_group_first_seen_late_gets_its_own_cell():
    n = 7000
    variant = np.array(["a", "b"] * (n // 2), dtype=object)
    variant[6500:] = "late"  # only in the 7th batch of 1000 rows
    table = pa.table({"variant": variant, "converted": np.arange(n) % 2, "revenue": np.ones(n)})
    st = state_of(table, batch_size=1000)
    counts = dict(zip(st.groups.labels, st.cell_n.sum(axis=0)))
    assert counts == {"a": 3250, "b": 3250, "late": 500}


@pytest.mark.parametrize("kind", ["string", "large_string", "dictionary", "int", "bool"])
def test_label_column_types_keep_their_labels(kind):
    rng = np.random.default_rng(3)
    n = 2000
    base = rng.integers(0, 2, n)
    col = {
        "string": pa.array(np.where(base == 1, "b", "a")),
        "large_string": pa.array(np.where(base == 1, "b", "a"), type=pa.large_string()),
        "dictionary": pa.array(np.where(base == 1, "b", "a")).dictionary_encode(),
        "int": pa.array(base * 10 + 7),
        "bool": pa.array(base == 1),
    }[kind]
    labels = {"string": ["a", "b"], "large_string": ["a", "b"], "dictionary": ["a", "b"],
              "int": [7, 17], "bool": [False, True]}[kind]
    table = pa.table({"variant": col, "converted": (rng.random(n) < 0.3), "revenue": rng.random(n)})
    res = fastevals.g_test(table, group="variant", outcome="converted")
    assert list(res.groups) == labels
    assert list(res.outcomes) == [False, True]
    expected = np.array([[np.sum((base == g) & ~table.column("converted").to_numpy(zero_copy_only=False)),
                          np.sum((base == g) & table.column("converted").to_numpy(zero_copy_only=False))]
                         for g in (0, 1)])
    np.testing.assert_array_equal(res.observed, expected)


def test_integer_groups_with_huge_values_and_wide_range():
    # values far apart: coded through a dictionary, not an offset table
    variant = np.array([10**12, -5, 3] * 600, dtype=np.int64)
    table = pa.table({"variant": variant, "converted": np.arange(1800) % 2 == 0})
    res = fastevals.g_test(table, group="variant", outcome="converted")
    assert list(res.groups) == [-5, 3, 10**12]
    assert res.observed.sum() == 1800


def test_numeric_view_is_zero_copy():
    arr = pa.array(np.arange(10, dtype=np.float64))
    view = src.numeric_view(arr)
    assert view.ctypes.data == arr.buffers()[1].address
    d = pa.array(["x", "y", "x"]).dictionary_encode()
    lc = src.local_codes(d)
    assert lc.codes.ctypes.data == d.indices.buffers()[1].address
    assert lc.labels(np.array([0, 1])) == ["x", "y"]


def test_projection_reads_only_needed_columns(tmp_path):
    table = make_table()
    path = tmp_path / "t.parquet"
    pq.write_table(table, path)
    source = src.open_source(str(path))
    batches = list(source.batches(["variant", "revenue"]))
    assert all(b.schema.names == ["variant", "revenue"] for b in batches)


def test_filter_is_pushed_into_the_scan(tmp_path):
    table = make_table()
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=500)
    expr = pc.field("country") == "DE"
    got = fastevals.z_test(str(path), group="variant", value="revenue", control="a", filter=expr)
    ref = fastevals.z_test(table.filter(expr), group="variant", value="revenue", control="a")
    # other batch boundaries merge moments in another order: equal to rounding
    np.testing.assert_allclose(got.column("statistic"), ref.column("statistic"), rtol=1e-12)
    np.testing.assert_array_equal(got.column("n_treatment"), ref.column("n_treatment"))
    # the same filter on an in-memory table
    got_mem = fastevals.z_test(table, group="variant", value="revenue", control="a", filter=expr)
    np.testing.assert_allclose(got_mem.column("statistic"), ref.column("statistic"), rtol=1e-12)


def test_nulls_raise_names_column_and_count():
    table = make_table(500)
    rev = table.column("revenue").to_pylist()
    rev[3] = None
    rev[10] = None
    t2 = table.set_column(2, "revenue", pa.array(rev))
    with pytest.raises(ValueError, match=r"column 'revenue' \(given as `value`\) has null values \(2 in .*'drop'"):
        fastevals.z_test(t2, group="variant", value="revenue")


def test_nulls_drop_reports_and_matches_filtered_input():
    table = make_table(900)
    rng = np.random.default_rng(5)
    mask = rng.random(900) < 0.1
    rev = pa.array(table.column("revenue").to_numpy(), mask=mask)
    t2 = table.set_column(2, "revenue", rev)
    res = fastevals.z_test(t2, group="variant", value="revenue", control="a", nulls="drop")
    ref = fastevals.z_test(table.filter(pa.array(~mask)), group="variant", value="revenue", control="a")
    assert res.n_dropped == int(mask.sum())
    np.testing.assert_allclose(res.column("statistic"), ref.column("statistic"), rtol=1e-12)


def test_nan_values_raise_or_drop():
    rng = np.random.default_rng(8)
    v = rng.random(400)
    v[7] = np.nan
    data = {"variant": np.repeat(["a", "b"], 200), "revenue": v}
    with pytest.raises(ValueError, match=r"column 'revenue' \(given as `value`\) has 1 NaN or infinite"):
        fastevals.z_test(data, group="variant", value="revenue")
    res = fastevals.z_test(data, group="variant", value="revenue", nulls="drop")
    assert res.n_dropped == 1 and res.n_control == 199


def test_infinite_values_raise():
    data = {"variant": np.repeat(["a", "b"], 20), "revenue": np.r_[np.inf, np.ones(39)]}
    with pytest.raises(ValueError, match="NaN or infinite"):
        fastevals.z_test(data, group="variant", value="revenue")


@pytest.mark.parametrize(
    "kwargs, exc, pattern",
    [
        (dict(group="nope", value="revenue"), ValueError, r"unknown column 'nope' \(given as `group`\)"),
        (dict(group="variant", value="country"), TypeError, r"column 'country' \(given as `value`\) has type string"),
        (dict(group="extra", value="revenue"), TypeError, r"column 'extra' \(given as `group`\) has type double"),
        (dict(group="variant", value="revenue", nulls="ignore"), ValueError, r"`nulls` must be one of"),
        (dict(group="variant", value="revenue", batch_size=0), ValueError, r"`batch_size` must be >= 1"),
        (dict(group="variant", value="revenue", filter="country == 'DE'"), TypeError, r"`filter` must be"),
    ],
)
def test_bad_arguments_get_clear_errors(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        fastevals.z_test(make_table(100), **kwargs)


def test_empty_input_and_single_group():
    empty = make_table(10).slice(0, 0)
    with pytest.raises(ValueError, match="empty input"):
        fastevals.g_test(empty, group="variant", outcome="converted")
    one = {"variant": np.array(["a"] * 50), "converted": np.arange(50) % 2}
    with pytest.raises(ValueError, match=r"column 'variant' has a single group \('a'\)"):
        fastevals.g_test(one, group="variant", outcome="converted")
    filtered = make_table(100)
    with pytest.raises(ValueError, match="empty input"):
        fastevals.g_test(filtered, group="variant", outcome="converted", filter=pc.field("country") == "XX")


def test_unsupported_input_type_and_missing_path(tmp_path):
    with pytest.raises(TypeError, match="`data` must be"):
        fastevals.g_test(42, group="a", outcome="b")
    with pytest.raises(FileNotFoundError, match="no such file"):
        fastevals.g_test(str(tmp_path / "missing.parquet"), group="a", outcome="b")
    with pytest.raises(FileNotFoundError, match="no file matches"):
        fastevals.g_test(str(tmp_path / "*.parquet"), group="a", outcome="b")


def test_dict_input_errors():
    with pytest.raises(ValueError, match="differ in length"):
        fastevals.g_test({"variant": np.array(["a", "b"]), "converted": np.array([1, 0, 1])},
                         group="variant", outcome="converted")
    with pytest.raises(ValueError, match="one-dimensional"):
        fastevals.g_test({"variant": np.zeros((2, 2)), "converted": np.array([1, 0])},
                         group="variant", outcome="converted")


def test_reader_is_read_once():
    table = make_table(100)
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    source = src.open_source(reader)
    list(source.batches(["variant"]))
    with pytest.raises(ValueError, match="can be read only once"):
        list(source.batches(["variant"]))


def test_pandas_categorical_and_nullable_columns():
    df = pd.DataFrame({
        "variant": pd.Categorical(["a", "b"] * 150),
        "converted": pd.array([1, 0, None, None, 1, 0] * 50, dtype="Int64"),
    })
    with pytest.raises(ValueError, match=r"column 'converted' \(given as `outcome`\) has null values \(100 in"):
        fastevals.g_test(df, group="variant", outcome="converted")
    res = fastevals.g_test(df, group="variant", outcome="converted", nulls="drop")
    assert res.n_dropped == 100
    assert res.observed.sum() == 200


def test_numeric_view_reads_arrow_buffers_like_to_numpy():
    # numeric_view reads the data buffer directly (Array.to_numpy imports pandas): offsets of
    # sliced arrays, bit-packed booleans at any offset, empty arrays
    from fastevals._source import numeric_view

    rng = np.random.default_rng(0)
    arrays = [pa.array(rng.integers(-50, 50, 41).astype(t)) for t in
              (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64)]
    arrays += [pa.array(rng.normal(size=41).astype(t)) for t in (np.float16, np.float32, np.float64)]
    arrays += [pa.array(rng.random(41) < 0.5), pa.array(np.zeros(0, dtype=bool)), pa.array(np.zeros(0))]
    for arr in arrays:
        for part in (arr, arr.slice(3), arr.slice(5, 20), arr.slice(9, 1), arr.slice(len(arr))):
            got = numeric_view(part)
            want = np.asarray(part.to_numpy(zero_copy_only=False))
            if want.dtype == np.bool_:
                want = want.view(np.uint8)
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)
    chunked = pa.chunked_array([pa.array([1, 2], pa.int32()), pa.array([3], pa.int32())])
    np.testing.assert_array_equal(numeric_view(chunked), [1, 2, 3])


def test_dict_of_numpy_arrays_becomes_the_same_arrow_columns():
    from fastevals._source import numpy_to_arrow

    cases = [np.arange(5.0), np.array([1.0, np.nan]), np.arange(7, dtype=np.int8), np.arange(3, dtype=np.uint64),
             np.array([True, False] * 9), np.arange(10.0)[::2], np.array([1, 2], dtype=">i4"),
             np.zeros(0), np.arange(4, dtype=np.float32), np.array(["a", "b"]), np.array(["x", "y"], dtype=object)]
    for a in cases:
        got = numpy_to_arrow(a)
        want = pa.array(a.astype(a.dtype.newbyteorder("=")) if a.dtype.kind in "iuf" else a)
        got.validate(full=True)
        assert got.type == want.type and got.null_count == 0
        assert repr(got.to_pylist()) == repr(want.to_pylist())  # NaN stays a value, as with pa.array


def test_result_tables_match_pa_table_without_pandas():
    # result tables are built by arrow_table / arrow_array (pa.array imports pandas); the same
    # types and values as pa.table, None as null, and pa.array's own path for anything else
    from fastevals._source import arrow_array, arrow_table, numpy_to_arrow

    cases = [
        {"f": [1.0, 2.5, float("nan")], "i": [1, 2, 3], "s": ["x", "é", ""], "b": [True, False, True]},
        {"f": [1, 2.5, np.float64(3)], "i": [np.int64(1), 2, 3], "b": [np.bool_(True), False, True],
         "a": np.arange(3.0), "ai": np.arange(3), "ab": np.array([True, False, True])},
        {"s": ["a", None, "c"], "f": [None, 1.0, 2.0], "i": [None, 1, None], "b": [None, None, True]},
        {"n": [None, None, None], "t": [(1, 2), (3, 4), (5, 6)]},
        {"e": [], "e2": np.zeros(0)},
    ]
    for cols in cases:
        want = pa.table(cols)
        got = arrow_table(cols)
        assert got.schema == want.schema
        assert repr(got.to_pylist()) == repr(want.to_pylist())
        for name in cols:
            got.column(name).validate(full=True)
    assert arrow_array(["a", None]).null_count == 1
    with pytest.raises(OverflowError):  # beyond int64: pa.array's own error
        arrow_array([1, 2 ** 64, 3])
    x = np.array([0.5, np.nan, 2.0])
    assert numpy_to_arrow(x, nan_is_null=True).equals(pa.array(x, from_pandas=True))
    assert numpy_to_arrow(x).null_count == 0
