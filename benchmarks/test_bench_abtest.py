"""Benchmarks of the A/B tests (issue 2, "Speed"): AB1, AB2, AB3 of shared/benchmarking.md.

Each benchmark group times ours and the peers on the same data in the same run;
every entry first asserts that its answer agrees with ours (statistic / p-value to
rtol 1e-9), then is timed.  Under ``--benchmark-disable`` (the default in
pyproject) each runs once as a test on small data.  The standard sizes:
``FASTEVALS_BENCH_FULL=1 python -m pytest benchmarks/test_bench_abtest.py --benchmark-enable``;
the interleaved ratios of the README come from ``python benchmarks/compare_abtest.py --full``.
"""

from __future__ import annotations

import os

import _peers
import numpy as np
import pyarrow.parquet as pq
import pytest

import fastevals

RTOL = 1e-9
ROUNDS = 5
AB_ARGS = dict(group="variant", outcome="converted", value="revenue")


def _bench(benchmark, fn, check, rounds: int = ROUNDS):
    """Assert ``check(fn())``, then time ``fn`` (one warm-up round first).

    Under --benchmark-disable the one run that pytest-benchmark makes is the one checked,
    so that slow peers do not run twice in the quick test run.
    """
    if benchmark.disabled:
        check(benchmark.pedantic(fn, rounds=1, iterations=1))
        return
    check(fn())
    benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1)


def _ours_ab1(data, **kw):
    return fastevals.abtest(data, **AB_ARGS, **kw)


@pytest.fixture(scope="session")
def ab1_ours(ab1_table) -> dict:
    """Our AB1 answer, once per session (the reference every AB1 peer is held to)."""
    return _peers.ours_ab(_ours_ab1(ab1_table))


@pytest.fixture(scope="session")
def ab2_ours(ab2_table) -> dict:
    return _peers.ours_ab_segments(_ours_ab1(ab2_table, by="segment"))


# ------------------------------------------------------------------------------------------------
# AB1: 10M rows in memory, G-test + Welch z


@pytest.mark.parametrize("impl", ["ours", "numpy_floor", "numpy_scipy", "tea_tasting"])
def test_ab1(benchmark, impl, ab1_table, ab1_arrays, ab1_pandas, ab1_ours):
    benchmark.group = "AB1 in memory: G-test + Welch z"
    benchmark.extra_info["rows"] = ab1_table.num_rows
    variant, converted, revenue = ab1_arrays
    if impl == "ours":
        def fn():
            return _peers.ours_ab(_ours_ab1(ab1_table))

        def check(ours):
            _peers.assert_agree(ours, _peers.numpy_scipy_ab(*ab1_arrays), RTOL, "numpy+scipy")
    elif impl == "numpy_floor":
        def fn():
            return _peers.numpy_floor(variant, converted, revenue)

        def check(sums):
            # the floor computes no test, but its sums must be the ones our state holds
            state = fastevals.ABTestState(**AB_ARGS).update(ab1_table)
            g = state.groups.labels.index("treatment")
            n_treat, n_conv, rev_sum = sums
            assert n_treat == int(state.cell_n[:, g].sum())
            assert n_conv == int(state.counts[..., state.outcomes.labels.index(1)].sum())
            np.testing.assert_allclose(rev_sum, float((state.cell_n * state.cell_mean).sum()), rtol=RTOL)
    else:
        if impl == "numpy_scipy":
            def fn():
                return _peers.numpy_scipy_ab(variant, converted, revenue)
        else:
            experiment = _peers.tea_experiment()

            def fn():
                return _peers.tea_ab(experiment, ab1_pandas)

        def check(peer):
            _peers.assert_agree(ab1_ours, peer, RTOL, impl)
    _bench(benchmark, fn, check)


# ------------------------------------------------------------------------------------------------
# AB2: AB1 + 50 segments, every segment, both metrics, Holm-adjusted


@pytest.mark.parametrize("impl", ["ours", "ours_flat", "tea_tasting_loop", "statsmodels_loop",
                                  "numpy_bincount"])
def test_ab2(benchmark, impl, ab2_table, ab2_pandas, ab1_arrays, ab1_ours, ab2_ours, bench_sizes):
    benchmark.group = "AB2 by 50 segments"
    benchmark.extra_info["rows"] = ab2_table.num_rows
    benchmark.extra_info["segments"] = n_seg = bench_sizes["ab_segments"]
    seg = _segment_codes(ab2_table)
    if impl == "ours":
        def fn():
            return _peers.ours_ab_segments(_ours_ab1(ab2_table, by="segment"))

        def check(ours):
            assert len(ours["segment"]) == n_seg
            peer = _peers.numpy_ab_segments(*ab1_arrays, seg, n_seg)
            _peers.assert_agree(ours, peer, RTOL, "numpy bincount")
    elif impl == "ours_flat":
        # the same table without by=: the flat answer is AB1's
        def fn():
            return _peers.ours_ab(_ours_ab1(ab2_table))

        def check(flat):
            _peers.assert_agree(flat, ab1_ours, RTOL, "flat")
    else:
        if impl == "tea_tasting_loop":
            experiment = _peers.tea_experiment()

            def fn():
                return _peers.tea_ab_segments(experiment, ab2_pandas)
        elif impl == "statsmodels_loop":
            def fn():
                return _peers.statsmodels_ab_segments(ab2_pandas)
        else:
            def fn():
                return _peers.numpy_ab_segments(*ab1_arrays, seg, n_seg)

        def check(peer):
            _peers.assert_agree(ab2_ours, peer, RTOL, impl)
    _bench(benchmark, fn, check, rounds=3 if impl.endswith("_loop") else ROUNDS)


def _segment_codes(table) -> np.ndarray:
    col = table.column("segment").combine_chunks()
    assert col.dictionary.to_pylist() == sorted(col.dictionary.to_pylist())
    return col.indices.to_numpy(zero_copy_only=True)


# ------------------------------------------------------------------------------------------------
# AB3: from a Parquet file


@pytest.mark.parametrize("impl", ["ours", "pyarrow_read_table", "duckdb_sql", "polars"])
def test_ab3(benchmark, impl, ab3_parquet, ab1_table, ab1_ours):
    benchmark.group = "AB3 from Parquet"
    benchmark.extra_info["rows"] = ab1_table.num_rows
    benchmark.extra_info["file_mb"] = round(os.path.getsize(ab3_parquet) / 2**20, 1)
    if impl == "ours":
        def fn():
            return _peers.ours_ab(_ours_ab1(ab3_parquet))

        def check(ours):
            # held to the peer: NumPy + scipy on the columns pyarrow reads from the same file
            read = pq.read_table(ab3_parquet, columns=_peers.AB_COLUMNS)
            _peers.assert_agree(ours, _peers.numpy_scipy_ab(*_peers.ab_arrays(read)), RTOL,
                                "numpy+scipy on the file")
    elif impl in ("duckdb_sql", "polars"):
        # PQ1's peers: sufficient statistics in the engine, the tests in scipy
        if impl == "duckdb_sql":
            con = pytest.importorskip("duckdb").connect()

            def fn():
                return _peers.duckdb_ab(ab3_parquet, con)
        else:
            pytest.importorskip("polars")

            def fn():
                return _peers.polars_ab(ab3_parquet)

        def check(got):
            _peers.assert_agree(ab1_ours, got, RTOL, impl)
    else:
        def fn():
            return pq.read_table(ab3_parquet, columns=_peers.AB_COLUMNS)

        def check(table):
            # the peer only reads: what it reads must give our answer
            got = _peers.numpy_scipy_ab(*_peers.ab_arrays(table))
            _peers.assert_agree(ab1_ours, got, RTOL, "numpy+scipy on pyarrow's read")
    _bench(benchmark, fn, check)


def test_ab3_bounded_memory(ab3_parquet, ab1_table, ab1_ours, bench_full):
    """A file 20x larger than the batch size: peak RSS above the baseline, in a fresh process.

    At the small size only ours is measured (the numbers are allocator noise); at the full
    size pyarrow's read of the same columns too, and ours must stay well under it.
    """
    batch = ab1_table.num_rows // 20
    ours = _peers.peak_rss(*_peers.ab3_memory_snippets(ab3_parquet, batch))
    _peers.assert_agree(ours["extra"], ab1_ours, RTOL, "ours, streamed from Parquet")
    table_mb = ab1_table.nbytes / 2**20
    print(f"\nAB3 memory: ours batch_size={batch:,} peak +{ours['above_mb']:.1f} MB above baseline "
          f"({ours['method']}); columns in memory {table_mb:.1f} MB")
    if bench_full:
        peer = _peers.peak_rss(*_peers.pyarrow_memory_snippets(ab3_parquet))
        print(f"AB3 memory: pq.read_table peak +{peer['above_mb']:.1f} MB above baseline")
        # bounded: well under the table itself (pyarrow's read needs at least the whole table)
        assert ours["above_mb"] < 0.75 * peer["above_mb"], (ours, peer)


# ------------------------------------------------------------------------------------------------
# JIT: a new process with the on-disk cache warm


def test_new_process_first_call(tmp_path, ab1_table, ab1_ours):
    """This session's calls above filled the on-disk cache: a new process loads, never compiles.
    Reported next to the floor under it: numba alone, one trivial cached function."""
    r = _peers.run_python(_peers.jit_snippet(ab1_table.num_rows))
    _peers.assert_agree(r["answer"], ab1_ours, RTOL, "new process")
    _peers.run_python(_peers.numba_floor_snippet(str(tmp_path)))  # fills the floor module's cache
    floor = _peers.run_python(_peers.numba_floor_snippet(str(tmp_path)))
    print(f"\nnew process, cache warm: import fastevals {r['import_s']:.3f} s, first call "
          f"{r['first_s']:.3f} s, second call {r['second_s']:.3f} s; numba alone (import + one trivial "
          f"cached function's first call) {floor['total_s']:.3f} s")


@pytest.mark.large
def test_jit_compile_cold_cache(tmp_path, ab1_table, ab1_ours):
    """Compile time with an empty cache (NUMBA_CACHE_DIR), then a new process on that cache."""
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "numba_cache")}
    cold = _peers.run_python(_peers.jit_snippet(ab1_table.num_rows, preimport=True), env=env)
    warm = _peers.run_python(_peers.jit_snippet(ab1_table.num_rows), env=env)
    for r in (cold, warm):
        _peers.assert_agree(r["answer"], ab1_ours, RTOL, "new process")
    compile_s = cold["first_s"] - cold["second_s"]
    print(f"\ncold cache: first call {cold['first_s']:.2f} s (compile ~{compile_s:.2f} s); "
          f"warm cache, new process: first call {warm['first_s']:.3f} s")


@pytest.mark.parametrize("seed", range(3))
def test_peer_holm_is_statsmodels(seed):
    """The NumPy Holm the peers use equals statsmodels' (ties and p-values near 1 included)."""
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(seed)
    p = np.round(rng.random(50) ** 3, 2)
    np.testing.assert_allclose(_peers._holm(p), multipletests(p, method="holm")[1], rtol=1e-15)
