"""Benchmark of fastevals on Dask (issue 6, "Speed"): the A/B analysis over a Parquet dataset
split into 32 files, on a 2-worker ``distributed.LocalCluster``.

Three ways to the same answer (G-test on ``converted``, Welch z-test on ``revenue``):

* ``ours_cluster``: fastevals on the cluster, a state per partition, tree-merged
  (``engine="dask"``: the workers read the files with ``dask.dataframe.read_parquet``);
* ``ours_one_process``: fastevals in this process, streaming the same files;
* ``dask_groupby_scipy``: the analysis written with ``dask.dataframe`` (one groupby
  aggregation: count, sum, mean, var) plus ``scipy.stats.chi2_contingency`` and the
  closed-form Welch z, on the same cluster.

Every entry first asserts that its answer equals the in-process one (rtol 1e-9). Under
``--benchmark-disable`` (the default) each runs once, as a test, on 640,000 rows. The
standard size, 50 million rows in 32 files:
``FASTEVALS_BENCH_FULL=1 python -m pytest benchmarks/test_bench_dask.py --benchmark-enable``;
the interleaved ratios of the docs come from ``python benchmarks/compare_dask.py --full``.
"""

from __future__ import annotations

import os

import _peers
import numpy as np
import pyarrow.parquet as pq
import pytest

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

import fastevals  # noqa: E402
from fastevals import ABTestState, _dask  # noqa: E402

RTOL = 1e-9
FILES = 32
AB_ARGS = dict(group="variant", outcome="converted", value="revenue")
ROWS = {"full": 50_000_000, "small": 640_000}


def dataset_rows(full: bool | None = None) -> int:
    if full is None:
        full = _peers.full_size_requested()
    return ROWS["full" if full else "small"]


def write_dataset(folder: str, rows: int, files: int = FILES, seed: int = _peers.SEED) -> str:
    """AB1 rows (see ``_peers.ab_table``) in ``files`` Parquet files; file i from seed ``seed + i``.

    Files of equal size (the last takes the remainder), row groups of at most 1M rows.
    Reuses the folder when it already holds this dataset (a marker file records the size).
    """
    marker = os.path.join(folder, "_dataset.txt")
    spec = f"rows={rows} files={files} seed={seed}"
    if os.path.exists(marker) and open(marker).read() == spec:
        return folder
    os.makedirs(folder, exist_ok=True)
    per = rows // files
    for i in range(files):
        n = per if i < files - 1 else rows - per * (files - 1)
        pq.write_table(_peers.ab_table(n, seed=seed + i), os.path.join(folder, f"part-{i:03d}.parquet"),
                       row_group_size=min(n, 1 << 20))
    with open(marker, "w") as f:
        f.write(spec)
    return folder


def parquet_files(folder: str) -> list[str]:
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".parquet"))


def start_cluster(workers: int = 2):
    """A LocalCluster of ``workers`` processes with one thread each, and its Client (the default)."""
    cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       dashboard_address=":0")
    return cluster, distributed.Client(cluster)


def _answer(g, z) -> dict:
    return {"g_statistic": float(g.statistic), "g_pvalue": float(g.pvalue),
            "z_statistic": float(z.statistic), "z_pvalue": float(z.pvalue)}


def ours_cluster(files: list[str]) -> dict:
    """fastevals on the current distributed Client: a state per partition, tree-merged."""
    st, scan = _dask.update_state(ABTestState(**AB_ARGS), files, engine="dask")
    scan.check_not_empty()
    return _answer(st.g_test(), st.z_test())


def ours_one_process(files: list[str]) -> dict:
    """fastevals in this process, streaming the files batch by batch."""
    return _peers.ours_ab(fastevals.abtest(files, **AB_ARGS))


def dask_groupby_scipy(files: list[str]) -> dict:
    """The peer: one dask.dataframe groupby aggregation (tree reduction, ``split_out=1``)
    plus scipy's G-test and the closed-form Welch z."""
    from scipy.stats import chi2_contingency

    ddf = dd.read_parquet(files, columns=_peers.AB_COLUMNS)
    agg = ddf.groupby("variant", observed=True).agg(
        n=("converted", "count"), conv=("converted", "sum"),
        mean=("revenue", "mean"), var=("revenue", "var"), split_out=1,
    ).compute()
    agg = agg.loc[["control", "treatment"]]
    n = agg["n"].to_numpy(np.int64)
    conv = agg["conv"].to_numpy(np.int64)
    g = chi2_contingency(np.stack([n - conv, conv], axis=1), correction=False, lambda_="log-likelihood")
    z, pz = _peers.welch_z(n, agg["mean"].to_numpy(float), agg["var"].to_numpy(float))
    return {"g_statistic": float(g.statistic), "g_pvalue": float(g.pvalue),
            "z_statistic": float(z), "z_pvalue": float(pz)}


IMPLS = {"ours_cluster": ours_cluster, "ours_one_process": ours_one_process,
         "dask_groupby_scipy": dask_groupby_scipy}


# ------------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def dask_ab_files(tmp_path_factory) -> list[str]:
    folder = os.environ.get("FASTEVALS_BENCH_DASK_DIR") or str(tmp_path_factory.mktemp("dask_ab"))
    return parquet_files(write_dataset(folder, dataset_rows()))


@pytest.fixture(scope="module")
def dask_cluster_client():
    cluster, client = start_cluster(2)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.fixture(scope="module")
def dask_ab_reference(dask_ab_files) -> dict:
    return ours_one_process(dask_ab_files)


# ------------------------------------------------------------------------------------------------
# the benchmark


# dask's Parquet reader calls reset_index(inplace=True), deprecated by pandas 3.1 (on the workers
# it is only logged; the filter keeps a run with the synchronous scheduler quiet too)
@pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.reset_index")
@pytest.mark.parametrize("impl", list(IMPLS))
def test_dask_ab(benchmark, impl, dask_ab_files, dask_cluster_client, dask_ab_reference):
    benchmark.group = "dask-AB: 32 Parquet files, 2-worker LocalCluster"
    fn = IMPLS[impl]

    def check(answer):
        _peers.assert_agree(answer, dask_ab_reference, RTOL, impl)

    if benchmark.disabled:
        check(benchmark.pedantic(fn, args=(dask_ab_files,), rounds=1, iterations=1))
        return
    check(fn(dask_ab_files))  # also the warm-up: worker imports and kernel loading stay out
    benchmark.pedantic(fn, args=(dask_ab_files,), rounds=3 if _peers.full_size_requested() else 5,
                       iterations=1, warmup_rounds=0)
