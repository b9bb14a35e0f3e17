"""Shared, seeded data for the standard benchmark workloads (shared/benchmarking.md).

Sizes: small by default, so that ``python -m pytest benchmarks`` runs every benchmark
once as a quick test; ``FASTEVALS_BENCH_FULL=1`` gives the standard sizes (AB: 10M
rows, BS1: N=1e6, ...).  Every fixture is session-scoped and built on first use only.
The data builders themselves live in ``_peers.py`` so that the ``compare_*.py`` scripts
use the very same data.

When benchmarks are enabled (``--benchmark-enable``), the terminal summary also prints,
per benchmark group, each entry's median time relative to the group's ``ours`` entry.
"""

from __future__ import annotations

import _peers
import pytest

# ------------------------------------------------------------------------------------------------
# sizes


@pytest.fixture(scope="session")
def bench_full() -> bool:
    """True when the standard (full) workload sizes were requested."""
    return _peers.full_size_requested()


@pytest.fixture(scope="session")
def bench_sizes(bench_full) -> dict:
    """Rows / replicates / bins of every workload at the requested size (see ``_peers.sizes``)."""
    return _peers.sizes(bench_full)


# ------------------------------------------------------------------------------------------------
# A/B testing: AB1, AB2, AB3


@pytest.fixture(scope="session")
def ab2_table(bench_sizes):
    """AB2: pyarrow Table variant (dictionary), converted (int8), revenue (float64), segment (50 levels)."""
    return _peers.ab_table(bench_sizes["ab_rows"], bench_sizes["ab_segments"])


@pytest.fixture(scope="session")
def ab1_table(ab2_table):
    """AB1: the AB2 table without its segment column (the same rows)."""
    return ab2_table.select(_peers.AB_COLUMNS)


@pytest.fixture(scope="session")
def ab1_arrays(ab1_table):
    """AB1 as NumPy views: (variant codes int8 with 1 = treatment, converted int8, revenue float64)."""
    return _peers.ab_arrays(ab1_table)


@pytest.fixture(scope="session")
def ab2_pandas(ab2_table):
    """AB2 as a pandas DataFrame (variant and segment are Categorical)."""
    return ab2_table.to_pandas()


@pytest.fixture(scope="session")
def ab1_pandas(ab2_pandas):
    """AB1 as a pandas DataFrame."""
    return ab2_pandas[_peers.AB_COLUMNS]


@pytest.fixture(scope="session")
def ab3_parquet(ab1_table, bench_sizes, tmp_path_factory) -> str:
    """AB3: AB1 written to a Parquet file with row groups of 1M rows (a tenth of the rows at the small size)."""
    path = tmp_path_factory.mktemp("ab3") / "ab1.parquet"
    return _peers.write_parquet(ab1_table, str(path), bench_sizes["ab_row_group"])


# ------------------------------------------------------------------------------------------------
# bootstrap: BS1-BS4


@pytest.fixture(scope="session")
def bs1_values(bench_sizes):
    """BS1: N float64 values (lognormal); B is ``bench_sizes["bs1_b"]``."""
    return _peers.bs_values(bench_sizes["bs1_n"])


@pytest.fixture(scope="session")
def bs2_values(bench_sizes):
    """BS2: N float64 values (lognormal, the first N of the BS1 stream); B is ``bench_sizes["bs2_b"]``."""
    return _peers.bs_values(bench_sizes["bs2_n"])


@pytest.fixture(scope="session")
def bs3_scored(bench_sizes):
    """BS3: (label int8, score float64) rows; B is ``bench_sizes["bs3_b"]``."""
    return _peers.bs_scored(bench_sizes["bs3_n"])


@pytest.fixture(scope="session")
def bs4_paired(bench_sizes):
    """BS4: (y, pred_a, pred_b) int8 for a paired accuracy difference; B is ``bench_sizes["bs4_b"]``."""
    return _peers.bs_paired(bench_sizes["bs4_n"])


# ------------------------------------------------------------------------------------------------
# calibration: CA1, CA2


@pytest.fixture(scope="session")
def ca1_binary(bench_sizes):
    """CA1: (p ~ Beta(2, 5) float64, y int8); bins: ``bench_sizes["ca_bins"]``."""
    return _peers.ca_binary(bench_sizes["ca1_n"])


@pytest.fixture(scope="session")
def ca2_multiclass(bench_sizes):
    """CA2: (probs float64 (N, 10), labels int32)."""
    return _peers.ca_multiclass(bench_sizes["ca2_n"], bench_sizes["ca2_k"])


# ------------------------------------------------------------------------------------------------
# bandits: BA1-BA3


@pytest.fixture(scope="session")
def ba_arm_means(bench_sizes):
    """BA1-BA3: the Bernoulli means of the arms (10 arms, 0.05 to 0.15)."""
    return _peers.ba_arm_means(bench_sizes["ba_arms"])


@pytest.fixture(scope="session")
def ba1_log(bench_sizes):
    """BA1 / BA2: a logged (arm int32, reward int8) stream."""
    return _peers.ba_log(bench_sizes["ba1_n"], bench_sizes["ba_arms"])


# ------------------------------------------------------------------------------------------------
# the run's provenance in --benchmark-json (read by benchmarks/report.py)


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-benchmark: no error where it is not installed
def pytest_benchmark_update_json(config, benchmarks, output_json):
    """Date, commit (with local changes), load average, CPUs and library versions of the run."""
    output_json["fastevals_environment"] = _peers.environment()


# ------------------------------------------------------------------------------------------------
# ratios in the terminal summary


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    session = getattr(config, "_benchmarksession", None)  # pytest-benchmark's session object
    if session is None or getattr(session, "disabled", True) or not getattr(session, "benchmarks", None):
        return
    groups: dict = {}
    for bench in session.benchmarks:
        if getattr(bench, "has_error", False) or bench.stats is None:
            continue
        groups.setdefault(bench.group, []).append(bench)
    lines = []
    for group, benches in sorted(groups.items(), key=lambda kv: str(kv[0])):
        ours = [b for b in benches if "[ours" in b.name]
        if not ours:
            continue
        ref = ours[0]
        for b in benches:
            if b is ref:
                continue
            ratio = b.stats.median / ref.stats.median
            lines.append(f"{group}: {b.name} median / {ref.name} median = {ratio:.2f}")
    if lines:
        terminalreporter.write_sep("-", "median time relative to ours (> 1: ours is faster)")
        for line in lines:
            terminalreporter.write_line(line)
