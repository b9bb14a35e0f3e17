"""SL1 benchmark: fastevals.slices (every 1- and 2-column slice, tested) against a pandas groupby loop
and the ``sliceline`` package.

SL1: 10M rows x 10 categorical columns (dictionary-encoded, 5 to 20 levels) and a 0/1 error column
with two planted bad slices. Default sizes are small so that the file also runs as a test
(``--benchmark-disable``); ``FASTEVALS_BENCH_FULL=1`` uses 10M rows. sliceline runs on the same rows
as ours (``SL1_SLICELINE_ROWS`` caps it where it cannot finish at full size: the cap is printed).
"""

from __future__ import annotations

import itertools
import os

import numpy as np
import pyarrow as pa
import pytest

import fastevals

FULL = os.environ.get("FASTEVALS_BENCH_FULL") == "1"
N_ROWS = 10_000_000 if FULL else 600_000  # small: above PARALLEL_MIN_ROWS, the parallel kernel runs
N_COLS = 10
MIN_SIZE = 30
#: sliceline took ~130 s on 600k rows here: its group runs on its own (smaller) size, ours on the same rows
SLICELINE_ROWS = int(os.environ.get("SL1_SLICELINE_ROWS", 200_000 if FULL else 20_000))


def sl1_table(n: int = N_ROWS, seed: int = 20_240_601) -> pa.Table:
    """SL1: columns c0..c9 (dictionary<int8, string>, 5..20 levels) and err (int8)."""
    rng = np.random.default_rng(seed)
    cols = {}
    codes = []
    for j in range(N_COLS):
        levels = 5 + (15 * j) // (N_COLS - 1)
        c = rng.integers(0, levels, n, dtype=np.int8)
        codes.append(c)
        cols[f"c{j}"] = pa.DictionaryArray.from_arrays(pa.array(c), pa.array([f"v{k}" for k in range(levels)]))
    bad = (codes[0] == 1) | ((codes[3] == 2) & (codes[7] == 4))
    cols["err"] = pa.array((rng.random(n) < np.where(bad, 0.2, 0.1)).astype(np.int8))
    return pa.table(cols)


def ours(table):
    return fastevals.slices(table, error="err", columns=[f"c{j}" for j in range(N_COLS)], min_size=MIN_SIZE,
                            progress=False)


def pandas_loop(df):
    """Every 1- and 2-column slice by groupby, G-test per slice vectorized in NumPy (the same math)."""
    n = len(df)
    e_all = float(df["err"].sum())
    names = [f"c{j}" for j in range(N_COLS)]
    sizes, errors = [], []
    for k in (1, 2):
        for cm in itertools.combinations(names, k):
            g = df.groupby(list(cm), observed=True)["err"].agg(["size", "sum"])
            sizes.append(g["size"].to_numpy())
            errors.append(g["sum"].to_numpy())
    n1 = np.concatenate(sizes).astype(float)
    e1 = np.concatenate(errors).astype(float)
    keep = (n1 >= MIN_SIZE) & (n - n1 >= MIN_SIZE)
    n1, e1 = n1[keep], e1[keep]
    from fastevals._slices._math import g_test_2x2

    p = g_test_2x2(e1, n1, e_all - e1, n - n1)
    return n1, p


def sliceline_top(df, rows):
    from sliceline import Slicefinder

    X = df[[f"c{j}" for j in range(N_COLS)]].iloc[:rows].astype(str).to_numpy()
    sf = Slicefinder(alpha=0.95, k=5, max_l=2, min_sup=MIN_SIZE, verbose=False)
    sf.fit(X, df["err"].to_numpy()[:rows])
    return sf


@pytest.fixture(scope="module")
def sl1():
    table = sl1_table()
    return table, table.to_pandas()


def test_sl1_ours(benchmark, sl1):
    table, df = sl1
    res = ours(table)
    n1, p = pandas_loop(df)
    assert res.n_tested == n1.size
    np.testing.assert_array_equal(np.sort(res.tested.column("size").to_numpy()), np.sort(n1))
    np.testing.assert_allclose(np.sort(res.tested.column("pvalue").to_numpy()), np.sort(p), rtol=1e-9,
                               atol=1e-300)
    top = set(res.table.column("slice").to_pylist())
    assert {"c0=v1", "c3=v2 and c7=v4"} <= top
    benchmark.group = "SL1"
    benchmark.name = "test_sl1[ours]"
    benchmark.pedantic(ours, args=(table,), rounds=3, iterations=1, warmup_rounds=1)


def test_sl1_pandas_groupby(benchmark, sl1):
    _, df = sl1
    benchmark.group = "SL1"
    benchmark.pedantic(pandas_loop, args=(df,), rounds=3, iterations=1, warmup_rounds=0)


@pytest.mark.parametrize("who", ["ours", "sliceline"])
def test_sl1_sliceline(benchmark, sl1, who):
    pytest.importorskip("sliceline")
    table, df = sl1
    rows = min(SLICELINE_ROWS, N_ROWS)
    if who == "ours":
        benchmark.group = f"SL1 at {rows:,} rows (sliceline's size)"
        benchmark.name = "test_sl1_sliceline[ours]"
        benchmark.pedantic(ours, args=(table.slice(0, rows),), rounds=3, iterations=1, warmup_rounds=1)
        return
    sf = sliceline_top(df, rows)
    res = ours(table.slice(0, rows))
    ours_scores = {frozenset(zip(r["columns"], r["values"])): r["score"] for r in res.tested.to_pylist()}
    for row, stat in zip(sf.top_slices_, sf.top_slices_statistics_):
        cond = frozenset((f"c{j}", v) for j, v in enumerate(row) if v is not None)
        assert ours_scores[cond] == pytest.approx(stat["slice_score"], rel=1e-9)
    benchmark.group = f"SL1 at {rows:,} rows (sliceline's size)"
    benchmark.pedantic(sliceline_top, args=(df, rows), rounds=1, iterations=1, warmup_rounds=0)
