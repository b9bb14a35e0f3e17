"""Shared fixtures.

``client``: one real ``distributed.LocalCluster`` (2 worker processes, 1 thread
each) for every Dask test of the session, started on first use. Starting a
cluster costs seconds, so the test modules share it instead of each starting
their own.
"""

from __future__ import annotations

import numpy as np
import pytest


def _warm_worker() -> int:
    import pandas as pd
    import pyarrow as pa

    from fastevals import ABTestState

    df = pd.DataFrame({"variant": ["control", "b"] * 50, "seg": np.arange(100) % 4,
                       "converted": (np.arange(100) % 3 == 0).astype(np.int8), "revenue": np.linspace(0, 1, 100)})
    st = ABTestState(group="variant", outcome="converted", value="revenue", by="seg")
    return st.update(pa.Table.from_pandas(df)).rows_read


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
