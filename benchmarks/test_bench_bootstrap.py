"""Benchmarks BS1-BS4: fastevals.bootstrap against scipy.stats.bootstrap on the same data.

Small sizes by default (they also run once as tests under --benchmark-disable);
FASTEVALS_BENCH_FULL=1 for the standard sizes.  The peer's answer is computed
in the same run and the intervals must agree within Monte Carlo error.
"""

import time

import pyarrow as pa
import pytest
from compare_bootstrap import WORKLOADS, agree, make_data, ours, peer, sizes

from fastevals.resampling import warmup


@pytest.fixture(scope="module", autouse=True)
def _compiled():
    warmup()


@pytest.mark.parametrize("wid", list(WORKLOADS))
def test_bench_bootstrap(benchmark, wid):
    n, B = sizes(wid)
    data = make_data(wid, n)
    table = pa.table(data)
    ours(wid, table, B)  # compile this input's signature outside the timing
    t = time.perf_counter()
    ref = peer(wid, data, B)
    t_peer = time.perf_counter() - t
    benchmark.group = f"bootstrap {wid}"
    res = benchmark.pedantic(ours, args=(wid, table, B), rounds=3, iterations=1)
    assert agree(res, ref, k=1.0), (res.confidence_interval, ref.confidence_interval, res.standard_error)
    stats = getattr(benchmark, "stats", None)
    if stats is not None and stats.stats.median:
        t_ours = stats.stats.median
        benchmark.extra_info.update({"scipy_s": t_peer, "speedup": t_peer / t_ours,
                                     "weights_per_s": n * B / t_ours})
