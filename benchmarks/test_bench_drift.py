"""DR1 benchmark: a reference x 20 numeric + 10 categorical columns against current rows, every test
and distance, against scipy's ``ks_2samp`` (+ ``wasserstein_distance``) looped over the numeric
columns and ``chi2_contingency`` over the categorical ones; Evidently's data drift report when it
is installed (it is not in the test extra).

Default sizes are small so that the file also runs as a test (``--benchmark-disable``);
``FASTEVALS_BENCH_FULL=1`` uses the standard workload: 10M reference rows, 1M current rows.
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

import fastevals

FULL = os.environ.get("FASTEVALS_BENCH_FULL", "").strip().lower() in ("1", "true", "yes", "on")
N_REF = 10_000_000 if FULL else 100_000
N_CUR = 1_000_000 if FULL else 20_000
N_NUMERIC = 20
N_CATEGORICAL = 10
SEED = 20_240_601


def dr1_table(n: int, shifted: bool, seed: int = SEED) -> pa.Table:
    """DR1 data: x00..x19 float64 (normal, lognormal, uniform...), c0..c9 dictionary strings (5-50
    levels). The current set (``shifted``) moves 3 numeric and 2 categorical columns."""
    rng = np.random.default_rng([seed, int(shifted)])
    cols = {}
    for i in range(N_NUMERIC):
        shift = 0.1 if shifted and i in (0, 7, 13) else 0.0
        kind = i % 4
        if kind == 0:
            v = rng.normal(shift, 1.0, n)
        elif kind == 1:
            v = rng.lognormal(shift, 1.0, n)
        elif kind == 2:
            v = rng.uniform(shift, 1.0 + shift, n)
        else:
            v = np.round(rng.gamma(2.0 + shift, 3.0, n), 1)  # ties
        cols[f"x{i:02d}"] = v
    for j in range(N_CATEGORICAL):
        levels = 5 + 5 * j
        w = 1.0 / np.arange(1, levels + 1)
        if shifted and j in (2, 5):
            w = w[::-1]
        codes = rng.choice(levels, n, p=w / w.sum()).astype(np.int32)
        cols[f"c{j}"] = pa.DictionaryArray.from_arrays(pa.array(codes), pa.array([f"v{k}" for k in range(levels)]))
    return pa.table(cols)


def numeric_columns():
    return [f"x{i:02d}" for i in range(N_NUMERIC)]


def categorical_columns():
    return [f"c{j}" for j in range(N_CATEGORICAL)]


def scipy_loop(ref: pa.Table, cur: pa.Table, wasserstein: bool = True) -> dict:
    """The peer: scipy per column (KS + Wasserstein on the raw values, G-test of the counts)."""
    out = {}
    for c in numeric_columns():
        a, b = ref.column(c).to_numpy(), cur.column(c).to_numpy()
        ks = stats.ks_2samp(a, b)
        w = stats.wasserstein_distance(a, b) if wasserstein else None
        out[c] = (float(ks.statistic), float(ks.pvalue), w)
    for c in categorical_columns():
        ra = ref.column(c).combine_chunks()
        ca = cur.column(c).combine_chunks()
        k = len(ra.dictionary)
        t = np.stack([np.bincount(ra.indices.to_numpy(), minlength=k), np.bincount(ca.indices.to_numpy(),
                                                                                     minlength=k)])
        t = t[:, t.sum(axis=0) > 0]
        g, p, _, _ = stats.chi2_contingency(t, correction=False, lambda_="log-likelihood")
        out[c] = (float(g), float(p), None)
    return out


def ours_profile_mode(ref: pa.Table, cur: pa.Table):
    """Reference read once into a profile, then compared (what a monitoring job runs)."""
    return fastevals.drift(fastevals.profile(ref), cur)


def ours_exact_mode(ref: pa.Table, cur: pa.Table):
    return fastevals.drift(ref, cur)


def assert_agree(result, peer: dict, exact: bool) -> None:
    rows = {r["column"]: r for r in result.table.to_pylist()}
    for c, (stat, p, w) in peer.items():
        r = rows[c]
        if c.startswith("x"):
            if exact:
                assert r["statistic"] == pytest.approx(stat, abs=1e-10), c
                assert r["pvalue"] == pytest.approx(p, rel=1e-9, abs=1e-300), c
                if w is not None:
                    assert r["wasserstein"] == pytest.approx(w, rel=1e-9), c
            else:
                assert r["statistic"] - 1e-12 <= stat <= r["statistic"] + r["ks_error_bound"] + 1e-12, c
                if w is not None:
                    assert abs(r["wasserstein"] - w) <= r["wasserstein_error_bound"] + 1e-12, c
        else:
            assert r["statistic"] == pytest.approx(stat, rel=1e-9), c
            assert r["pvalue"] == pytest.approx(p, rel=1e-6, abs=1e-300), c


@pytest.fixture(scope="module")
def dr1():
    return dr1_table(N_REF, False), dr1_table(N_CUR, True)


@pytest.fixture(scope="module")
def dr1_peer(dr1):
    return scipy_loop(*dr1)


@pytest.mark.benchmark(group="DR1-profile")
def test_dr1_ours_profile_mode(benchmark, dr1, dr1_peer):
    assert_agree(ours_profile_mode(*dr1), dr1_peer, exact=False)
    res = benchmark(ours_profile_mode, *dr1)
    assert set(res.drifted) >= {"c2", "c5"}


@pytest.mark.benchmark(group="DR1-exact")
def test_dr1_ours_exact_mode(benchmark, dr1, dr1_peer):
    assert_agree(ours_exact_mode(*dr1), dr1_peer, exact=True)
    benchmark(ours_exact_mode, *dr1)


@pytest.mark.benchmark(group="DR1-exact")
def test_dr1_scipy_loop(benchmark, dr1, dr1_peer):
    out = benchmark(scipy_loop, *dr1)
    assert out == dr1_peer


@pytest.mark.benchmark(group="DR1-profile")
def test_dr1_scipy_ks_loop_no_wasserstein(benchmark, dr1, dr1_peer):
    benchmark(scipy_loop, *dr1, wasserstein=False)


@pytest.mark.benchmark(group="DR1-evidently")
def test_dr1_evidently(benchmark, dr1):
    pytest.importorskip("evidently")
    from evidently import Report  # pragma: no cover - not installed in the test extra
    from evidently.presets import DataDriftPreset

    ref, cur = (t.to_pandas() for t in dr1)
    benchmark(lambda: Report([DataDriftPreset()]).run(cur, ref))
