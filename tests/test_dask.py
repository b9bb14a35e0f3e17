"""fastevals on a real Dask cluster: a state per partition, tree-merged, equal to in-process.

One ``distributed.LocalCluster`` (2 worker processes, 1 thread each) serves the
whole module; Parquet partitions are written by the fixtures. The test that
kills a worker runs last.
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from scipy import stats

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

import fastevals  # noqa: E402
from fastevals import ABTestState, _dask  # noqa: E402
from fastevals._cli import dask as _cli_dask  # noqa: E402
from fastevals._fold import fold  # noqa: E402

N_ROWS = 60_000
PARTITIONS = (1, 3, 17)
SPEC = dict(group="variant", outcome="converted", value="revenue", by="seg")


# ------------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def table() -> pa.Table:
    rng = np.random.default_rng(20261128)
    variant = rng.choice(["control", "b", "c"], N_ROWS)
    # a real effect in one segment and arm, so the tests see non-trivial statistics
    seg = rng.integers(0, 4, N_ROWS)
    p = np.where((variant == "c") & (seg == 2), 0.16, 0.1)
    converted = (rng.random(N_ROWS) < p).astype(np.int8)
    revenue = rng.exponential(5.0, N_ROWS) * (1 + 0.05 * (variant == "b"))
    noisy = revenue.copy()
    noisy[rng.random(N_ROWS) < 0.01] = np.nan
    null_mask = rng.random(N_ROWS) < 0.005
    country = rng.choice(["DE", "FR", "US"], N_ROWS)
    return pa.table({
        "variant": variant, "seg": seg, "converted": converted, "revenue": revenue,
        "revenue_nan": pa.array(noisy, mask=null_mask), "country": country,
    })


@pytest.fixture(scope="module")
def folders(table, tmp_path_factory, write_parts) -> dict:
    root = tmp_path_factory.mktemp("logs")
    out = {}
    for k in PARTITIONS:
        write_parts(table, root / f"p{k}", k, seed=k)
        out[k] = root / f"p{k}"
    return out


# ------------------------------------------------------------------------------------------------
# slow, obvious twins


def _canonical(st: ABTestState) -> dict:
    """State arrays with segments / groups / outcomes in sorted label order."""
    def order(index):
        return sorted(range(len(index.labels)), key=lambda i: index.labels[i])

    so, go, oo = order(st.segments), order(st.groups), order(st.outcomes)
    return dict(
        labels=([st.segments.labels[i] for i in so], [st.groups.labels[i] for i in go],
                [st.outcomes.labels[i] for i in oo]),
        counts=st.counts[np.ix_(so, go, oo)], n=st.cell_n[np.ix_(so, go)],
        mean=st.cell_mean[np.ix_(so, go)], m2=st.cell_m2[np.ix_(so, go)],
        rows=(st.n_read, st.n_dropped),
    )


def _assert_same_state(got: ABTestState, want: ABTestState) -> None:
    g, w = _canonical(got), _canonical(want)
    assert g["labels"] == w["labels"]
    assert g["rows"] == w["rows"]
    np.testing.assert_array_equal(g["counts"], w["counts"])  # counts: exactly
    np.testing.assert_array_equal(g["n"], w["n"])
    np.testing.assert_allclose(g["mean"], w["mean"], rtol=1e-12, atol=0)  # moments: to 1e-12
    np.testing.assert_allclose(g["m2"], w["m2"], rtol=1e-12, atol=0)


def _assert_same_tables(got, want, exact=()) -> None:
    assert got.table.column_names == want.table.column_names
    for name in got.table.column_names:
        a, b = got.table.column(name).to_pylist(), want.table.column(name).to_pylist()
        if name in exact or not isinstance(a[0], float):
            assert a == b, name
        else:
            # atol: a derived value near zero (a lift's interval bound, -1.6e-4) is a difference of
            # O(1) numbers and carries their absolute rounding (2e-16), not a relative one
            np.testing.assert_allclose(np.array(a, float), np.array(b, float), rtol=1e-12, atol=1e-14,
                                       err_msg=name)


def _in_process(data, **options) -> ABTestState:
    return ABTestState(**SPEC, **options).update(data)


# ------------------------------------------------------------------------------------------------
# detection


def test_is_dask_collection(table):
    df = table.to_pandas()
    assert _dask.is_dask_collection(dd.from_pandas(df, npartitions=2))
    for data in (table, df, {"a": [1, 2]}, "logs/*.parquet", None):
        assert not _dask.is_dask_collection(data)


def test_detection_does_not_import_dask():
    code = ("import sys, pyarrow as pa, fastevals._dask as d; "
            "assert not d.is_dask_collection(pa.table({'a': [1]})); "
            "assert 'dask' not in sys.modules, 'dask was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# ------------------------------------------------------------------------------------------------
# the cluster gives the in-process answer


@pytest.mark.parametrize("k", PARTITIONS)
def test_partitions_equal_in_process(client, table, folders, k):
    ddf = dd.read_parquet(folders[k])
    assert ddf.npartitions == k
    st = fold(ABTestState(**SPEC), ddf)
    assert (st.n_read, st.n_dropped) == (N_ROWS, 0)
    ref = _in_process(table)
    _assert_same_state(st, ref)
    _assert_same_tables(st.g_test(), ref.g_test(), exact=("n", "n[b]", "n[c]", "n[control]"))
    _assert_same_tables(st.z_test(), ref.z_test(), exact=("n_control", "n_treatment"))


def test_engine_dask_reads_parquet_with_filter_and_nulls(client, table, folders):
    glob = str(folders[17] / "*.parquet")
    spec = dict(group="variant", outcome="converted", value="revenue_nan", by="seg")
    kw = dict(nulls="drop", filter=pc.field("country") != "FR")
    st = fold(ABTestState(**spec, **kw), glob, engine="dask")
    ref = fold(ABTestState(**spec, **kw), glob, engine="arrow")
    assert st.n_dropped == ref.n_dropped > 0
    assert st.n == ref.n
    _assert_same_state(st, ref)


def test_against_pandas_and_scipy(client, table, folders):
    st = fold(ABTestState(group="variant", outcome="converted", value="revenue"), dd.read_parquet(folders[17]))
    df = table.to_pandas()
    observed = df.groupby(["variant", "converted"]).size().unstack().sort_index()
    res = st.g_test()
    assert list(res.groups) == list(observed.index)
    np.testing.assert_array_equal(res.observed, observed.to_numpy())
    chi2, p, dof, _ = stats.chi2_contingency(observed.to_numpy(), correction=False,
                                             lambda_="log-likelihood")
    np.testing.assert_allclose([res.statistic, res.pvalue], [chi2, p], rtol=1e-10)
    c = _canonical(st)
    moments = df.groupby("variant")["revenue"].agg(["count", "mean", "var"]).sort_index()
    np.testing.assert_array_equal(c["n"][0], moments["count"].to_numpy())
    np.testing.assert_allclose(c["mean"][0], moments["mean"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(c["m2"][0] / (c["n"][0] - 1), moments["var"].to_numpy(), rtol=1e-10)


# dask's Parquet reader calls reset_index(inplace=True), deprecated by pandas 3.1; with the
# synchronous scheduler that runs in this process
@pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.reset_index")
def test_merge_tree_shape_and_scheduler_do_not_matter(client, folders):
    ddf = dd.read_parquet(folders[17])
    make = functools.partial(ABTestState, **SPEC)
    cols = ["variant", "seg", "converted", "revenue"]
    wide = _dask.fold_on_dask(ddf, make, cols)
    pairwise = _dask.fold_on_dask(ddf, make, cols, split_every=2)
    local = _dask.fold_on_dask(ddf, make, cols, scheduler="sync")
    _assert_same_state(pairwise, wide)
    _assert_same_state(local, wide)


class SumState:
    """A minimal mergeable state (sum and count of one column) whose merge works in place."""

    def __init__(self, column="revenue"):
        self.column, self.total, self.count = column, 0.0, 0

    def update(self, data, **_):
        values = data.column(self.column).to_numpy()
        self.total += float(values.sum())
        self.count += values.size

    def merge(self, other):
        self.total += other.total
        self.count += other.count


class RowKeyedState:
    """A state whose rows carry weights keyed by their global row index (like the bootstrap's)."""

    def __init__(self):
        self.weighted, self.rows = 0, 0

    def update(self, data, *, row_offset=0):
        idx = np.arange(row_offset, row_offset + data.num_rows, dtype=np.int64)
        weight = (idx * 2654435761) % 7  # any function of the row's global index
        self.weighted += int(np.dot(weight, data.column("converted").to_numpy().astype(np.int64)))
        self.rows += data.num_rows
        return self

    def merge(self, other):
        out = RowKeyedState()
        out.weighted, out.rows = self.weighted + other.weighted, self.rows + other.rows
        return out


def test_row_offsets_make_row_keyed_states_partition_free(client, table, folders):
    keep = pc.field("country") != "FR"
    want = RowKeyedState().update(table.filter(keep), row_offset=0)
    for k in (3, 17):
        got = _dask.fold_on_dask(dd.read_parquet(folders[k]), RowKeyedState, ["converted"], filter=keep,
                                 offset_arg="row_offset")
        assert (got.weighted, got.rows) == (want.weighted, want.rows)
    # without offsets every partition restarts at row 0: the keys, hence the answer, change
    naive = _dask.fold_on_dask(dd.read_parquet(folders[17]), RowKeyedState, ["converted"], filter=keep)
    assert naive.rows == want.rows and naive.weighted != want.weighted


def test_fold_on_dask_any_state(client, table, folders):
    st = _dask.fold_on_dask(dd.read_parquet(folders[3]), SumState, ["revenue"])
    revenue = table.column("revenue").to_numpy()
    assert st.count == N_ROWS
    np.testing.assert_allclose(st.total, revenue.sum(), rtol=1e-12)


# ------------------------------------------------------------------------------------------------
# errors


def test_errors_are_raised_before_or_from_the_cluster(client, table, folders):
    ddf = dd.read_parquet(folders[3])
    with pytest.raises(ValueError, match="unknown column 'nope'"):
        fold(ABTestState(group="nope", outcome="converted"), ddf)
    with pytest.raises(TypeError, match="engine='dask' reads Parquet"):
        fold(ABTestState(**SPEC), {"variant": ["a"]}, engine="dask")
    with pytest.raises(ValueError, match="engine='arrow'"):
        fold(ABTestState(**SPEC), ddf, engine="arrow")
    with pytest.raises(ValueError, match="`engine` must be one of"):
        fold(ABTestState(**SPEC), ddf, engine="spark")
    with pytest.raises(TypeError, match="dask.dataframe.DataFrame"):
        _dask.fold_on_dask(ddf["revenue"], SumState, None)
    with pytest.raises(TypeError, match="`filter` must be a pyarrow.compute.Expression"):
        ABTestState(**SPEC, filter="country == 'DE'")
    used = _in_process(table)
    with pytest.raises(ValueError, match="fresh state"):
        fold(used, ddf)
    # a column of the wrong type is found on a worker; the error reaches the caller unchanged
    with pytest.raises(TypeError, match="column 'revenue' .* has type double"):
        fold(ABTestState(group="revenue", outcome="converted"), ddf)
    empty = fold(ABTestState(**SPEC, filter=pc.field("country") == "XX"), ddf)
    with pytest.raises(ValueError, match="empty input"):
        empty.finalize()


def test_in_process_inputs_pass_through(table):
    st = ABTestState(**SPEC)
    out = fold(st, table)
    assert out is st and st.n_read == N_ROWS
    _assert_same_state(out, _in_process(table))


def test_public_functions_take_a_dask_dataframe(client, table, folders):
    ddf = dd.read_parquet(folders[17])
    got = fastevals.abtest(ddf, **SPEC)
    want = fastevals.abtest(table, **SPEC)
    _assert_same_tables(got.g_test, want.g_test, exact=("n",))
    _assert_same_tables(got.z_test, want.z_test, exact=("n_control", "n_treatment"))
    assert str(got) == str(want)  # the one renderer: the same report on Dask and in process
    # a 0/1 column as both outcome and value, and nulls dropped the same way on Dask
    kw = dict(group="variant", outcome="converted", value="converted", nulls="drop")
    got, want = fastevals.abtest(ddf, **kw), fastevals.abtest(table, **kw)
    assert got.g_test.statistic == pytest.approx(want.g_test.statistic, rel=1e-12)
    np.testing.assert_allclose(got.z_test.column("difference"), want.z_test.column("difference"), rtol=1e-12,
                               atol=1e-14)
    assert got.z_test.control == "control" and got.z_test.control_source == "the group named 'control'"
    g = fastevals.g_test(ddf, group="variant", outcome="converted")
    assert g.statistic == pytest.approx(fastevals.g_test(table, group="variant", outcome="converted").statistic,
                                        rel=1e-12)


# ------------------------------------------------------------------------------------------------
# command-line options


def test_cli_options(client):
    parser = argparse.ArgumentParser()
    _cli_dask.add_dask_options(parser)
    plain = parser.parse_args([])
    assert _cli_dask.dask_engine(plain) is None
    with _cli_dask.dask_client(plain) as c:
        assert c is None
    with pytest.raises(SystemExit):
        parser.parse_args(["--scheduler", "tcp://x:1", "--dask-workers", "2"])
    with pytest.raises(SystemExit):
        parser.parse_args(["--dask-workers", "0"])
    remote = parser.parse_args(["--scheduler", client.scheduler.address])
    assert _cli_dask.dask_engine(remote) == "dask"
    with _cli_dask.dask_client(remote) as c:
        assert c.scheduler_info()["id"] == client.scheduler_info()["id"]
    with pytest.raises(SystemExit, match="cannot reach"):
        with _cli_dask.dask_client(parser.parse_args(["--scheduler", "tcp://127.0.0.1:9"]),
                                  timeout="1s"):
            pass


def test_cli_local_cluster():
    parser = argparse.ArgumentParser()
    _cli_dask.add_dask_options(parser)
    args = parser.parse_args(["--dask-workers", "1"])
    assert args.dask_workers == 1
    with _cli_dask.dask_client(args) as c:
        assert len(c.scheduler_info()["workers"]) == 1
        assert distributed.default_client() is c
    assert c.status == "closed"


# ------------------------------------------------------------------------------------------------
# a worker dies in the middle of the computation (runs last: the cluster restarts a worker)


def _die_once(part, marker: str, driver_pid: int):
    """Kill this worker process the first time any partition gets here."""
    if os.getpid() == driver_pid or len(part) == 0:
        return part
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return part
    os.close(fd)
    os._exit(1)


def test_worker_killed_mid_computation(client, table, folders, tmp_path):
    marker = str(tmp_path / "killed")
    before = set(client.scheduler_info()["workers"])
    ddf = dd.read_parquet(folders[17])
    ddf = ddf.map_partitions(_die_once, marker, os.getpid(), meta=ddf._meta)
    st = fold(ABTestState(**SPEC), ddf)
    assert os.path.exists(marker), "no worker was killed"
    assert st.n_read == N_ROWS
    _assert_same_state(st, _in_process(table))
    client.wait_for_workers(2, timeout=60)
    after = set(client.scheduler_info()["workers"])
    assert after != before  # a new worker process took the dead one's place
