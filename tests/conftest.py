"""Shared fixtures.

``write_parts``: writes a table as Parquet files of uneven sizes (the Dask tests' partitions).

``client``: one real ``distributed.LocalCluster`` (2 worker processes, 1 thread
each) for every Dask test of the session, started on first use. Starting a
cluster costs seconds, so the test modules share it instead of each starting
their own.
"""

from __future__ import annotations

import numpy as np
import pytest

# the default run collects doctests (--doctest-modules, for the package's Examples); this file is
# a plugin, not a module of doctests: collecting it again as one clashes with benchmarks/conftest.py
# (two modules named `conftest`)
collect_ignore = ["conftest.py"]


def _write_parts(table, folder, k: int, seed: int) -> None:
    """``table`` as ``k`` Parquet files of uneven sizes in ``folder`` (created), in row order."""
    import pyarrow.parquet as pq

    folder.mkdir()
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.choice(np.arange(1, table.num_rows), k - 1, replace=False)) if k > 1 else []
    bounds = [0, *map(int, cuts), table.num_rows]
    for i in range(k):
        pq.write_table(table.slice(bounds[i], bounds[i + 1] - bounds[i]), folder / f"part-{i:02d}.parquet")


@pytest.fixture(scope="session")
def write_parts():
    """``write_parts(table, folder, k, seed)``: the partitions the Dask tests read."""
    return _write_parts


def _warm_worker() -> int:
    import pandas as pd
    import pyarrow as pa

    from fastevals import ABTestState

    df = pd.DataFrame({"variant": ["control", "b"] * 50, "seg": np.arange(100) % 4,
                       "converted": (np.arange(100) % 3 == 0).astype(np.int8), "revenue": np.linspace(0, 1, 100)})
    st = ABTestState(group="variant", outcome="converted", value="revenue", by="seg")
    return st.update(pa.Table.from_pandas(df)).n_read


@pytest.fixture(scope="session")
def client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                       dashboard_address=":0")
    cl = distributed.Client(cluster)
    try:
        # both workers import fastevals and load the A/B kernels at once, not one per test
        cl.run(_warm_worker)
        yield cl
    finally:
        cl.close()
        cluster.close()
