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
    # two independent bootstraps' 2.5% / 97.5% endpoints differ by Monte Carlo error alone: each has a
    # standard deviation of about sqrt(p (1 - p) / B) / phi(z_p) = 2.67 / sqrt(B) standard errors, their
    # difference sqrt(2) times that; 4 of those standard deviations (not a fixed k = 1)
    k = 4 * 2.67 * (2 / B) ** 0.5
    assert agree(res, ref, k=k), (k, res.confidence_interval, ref.confidence_interval, res.standard_error)
    stats = getattr(benchmark, "stats", None)
    if stats is not None and stats.stats.median:
        t_ours = stats.stats.median
        benchmark.extra_info.update({"scipy_s": t_peer, "speedup": t_peer / t_ours,
                                     "weights_per_s": n * B / t_ours})


def test_compare_and_report_round_trip(tmp_path):
    """compare_bootstrap's JSON row (scipy at the full B, interleaved) becomes the README's table."""
    import _peers
    import report
    from compare_bootstrap import fastest_batch, measure

    row = measure("BS1", repeats=1, batch=20, log=lambda *_: None)
    assert row["agree"] and row["peer_B"] == row["B"] and len(row["peer_s"]) == len(row["ours_s"]) == 1
    n, B = sizes("BS1")
    best, probe = fastest_batch("BS1", make_data("BS1", n), n, B, probe_seconds=0.0)
    assert best in probe and probe[best] == min(v for k, v in probe.items() if k != "bca_predicted_s")
    run = {"kind": "compare_bootstrap", "sizes": "small", "environment": _peers.environment(), "rows": [row],
           "warmup_s": 0.1, "load_average_end": [0.0, 0.0, 0.0]}
    kind, md = report.render(run)
    assert kind == "bootstrap"
    assert f"| BS1 | percentile CI of a mean | {n:,} | {B:,} |" in md and "(batch=20)" in md
    assert _peers.git_state() in md
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- report:bootstrap -->\nstale figures\n<!-- /report:bootstrap -->\nrest\n")
    assert report.update_file(str(readme), {kind: md, "abtest": "not marked"}) == ["bootstrap"]
    text = readme.read_text()
    assert "stale figures" not in text and md in text and text.startswith("intro\n") and text.endswith("rest\n")
