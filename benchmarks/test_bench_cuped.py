"""EX1 of shared/benchmarking.md: CUPED z-test per segment, and a ratio metric.

AB2 (variant, converted, revenue, 50 segments) plus a pre-period covariate ``pre_revenue``
and ``sessions`` per user. Groups:

* EX1 CUPED per segment: ours (default Welch standard error of the adjusted values; and
  ``variance="hc1"``) against statsmodels OLS ``revenue ~ 1 + treatment + pre_revenue`` with
  HC1 looped over segments (the coefficient and its HC1 standard error asserted equal to ours
  to 1e-9) and tea-tasting's CUPED looped over segments (tea-tasting takes the covariate's
  coefficient from the pooled sample, ours and OLS from within groups: the estimates differ by
  O(1/n), so they are asserted to agree within 2% of a standard error).
* EX1 plain vs CUPED: the plain per-segment z-test on the same table (the issue's speed
  target: CUPED at most 1.5x the plain z-test at 10M rows).
* EX1 ratio: revenue / sessions per segment, ours against the delta-method formula in NumPy
  (pandas groupby sums) and tea-tasting's ratio ``Mean``.

Small sizes by default; ``FASTEVALS_BENCH_FULL=1 python -m pytest benchmarks/test_bench_cuped.py
--benchmark-enable`` for the standard 10M rows; ``python benchmarks/compare_cuped.py --full``
prints the interleaved median ratios.
"""

from __future__ import annotations

import _peers
import numpy as np
import pyarrow as pa
import pytest

import fastevals

RTOL = 1e-9
ROUNDS = 5


def ex1_table(ab2_table) -> pa.Table:
    """AB2 plus ``pre_revenue`` (correlated with revenue) and ``sessions`` (seeded)."""
    rng = np.random.default_rng(_peers.SEED + 15)
    rows = ab2_table.num_rows
    revenue = ab2_table.column("revenue").to_numpy()
    pre = 0.6 * revenue + rng.exponential(2.0, rows)
    sessions = (rng.poisson(2.0, rows) + 1).astype(np.float64)
    return ab2_table.append_column("pre_revenue", pa.array(pre)).append_column("sessions", pa.array(sessions))


@pytest.fixture(scope="module")
def ex1(ab2_table):
    return ex1_table(ab2_table)


@pytest.fixture(scope="module")
def ex1_pandas(ex1):
    return ex1.to_pandas()


def _bench(benchmark, fn, check, rounds: int = ROUNDS):
    if benchmark.disabled:
        check(benchmark.pedantic(fn, rounds=1, iterations=1))
        return
    check(fn())
    benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1)


def ours_cuped(table, variance="welch"):
    return fastevals.z_test(table, group="variant", value="revenue", control="control", by="segment",
                            covariate="pre_revenue", variance=variance).table


def statsmodels_cuped(df) -> dict:
    """statsmodels OLS with HC1 per segment: the treatment coefficient and its standard error."""
    from statsmodels.regression.linear_model import OLS

    seg, coef, se = [], [], []
    for name, sub in df.groupby("segment", observed=True, sort=True):
        X = np.column_stack([np.ones(len(sub)), (sub["variant"] == "treatment").to_numpy(float),
                             sub["pre_revenue"].to_numpy()])
        fit = OLS(sub["revenue"].to_numpy(), X).fit(cov_type="HC1")
        seg.append(name)
        coef.append(fit.params[1])
        se.append(fit.bse[1])
    return {"segment": seg, "difference": np.array(coef), "standard_error": np.array(se)}


def tea_cuped(df) -> dict:
    import tea_tasting as tt

    exp = tt.Experiment(rev=tt.Mean("revenue", covariate="pre_revenue", use_t=False))
    seg, diff, se = [], [], []
    for name, sub in df.groupby("segment", observed=True, sort=True):
        r = exp.analyze(sub, control="control")["rev"]
        seg.append(name)
        diff.append(r.effect_size)
        # tea-tasting gives the interval, not the standard error: its half-width / z
        se.append((r.effect_size_ci_upper - r.effect_size_ci_lower) / 2 / 1.959963984540054)
    return {"segment": seg, "difference": np.array(diff), "standard_error": np.array(se)}


def numpy_ratio(df) -> dict:
    """Delta-method ratio difference per segment from pandas groupby sums (ddof=1)."""
    d = df.assign(yy=df.revenue**2, yd=df.revenue * df.sessions, dd=df.sessions**2)
    s = d.groupby(["segment", "variant"], observed=True, sort=True)[["revenue", "sessions", "yy", "yd", "dd"]].sum()
    n = d.groupby(["segment", "variant"], observed=True, sort=True).size()
    y, dn = s.revenue / n, s.sessions / n
    vyy = (s.yy - n * y * y) / (n - 1)
    vyd = (s.yd - n * y * dn) / (n - 1)
    vdd = (s.dd - n * dn * dn) / (n - 1)
    r = y / dn
    var = (vyy - 2 * r * vyd + r * r * vdd) / dn**2 / n
    r, var = r.unstack(), var.unstack()
    return {"segment": list(r.index), "difference": (r.treatment - r.control).to_numpy(),
            "standard_error": np.sqrt(var.treatment + var.control).to_numpy()}


def _agree(ours: pa.Table, peer: dict, *, se_rtol=RTOL, diff_in_se=None):
    assert ours.column("segment").to_pylist() == [str(s) for s in peer["segment"]]
    d, se = ours.column("difference").to_numpy(), ours.column("standard_error").to_numpy()
    if diff_in_se is None:
        np.testing.assert_allclose(peer["difference"], d, rtol=RTOL)
    else:
        assert np.all(np.abs(peer["difference"] - d) <= diff_in_se * se)
    np.testing.assert_allclose(peer["standard_error"], se, rtol=se_rtol)


@pytest.mark.parametrize("impl", ["ours", "ours_hc1", "statsmodels_ols", "tea_tasting"])
def test_ex1_cuped(benchmark, impl, ex1, ex1_pandas):
    benchmark.group = "EX1 CUPED z-test per segment"
    benchmark.extra_info["rows"] = ex1.num_rows
    if impl == "ours":
        fn, check = (lambda: ours_cuped(ex1)), (lambda t: _agree(t, tea_cuped(ex1_pandas), se_rtol=0.02,
                                                                  diff_in_se=0.02))
    elif impl == "ours_hc1":
        fn, check = (lambda: ours_cuped(ex1, "hc1")), (lambda t: _agree(t, statsmodels_cuped(ex1_pandas)))
    elif impl == "statsmodels_ols":
        hc1 = ours_cuped(ex1, "hc1")
        fn, check = (lambda: statsmodels_cuped(ex1_pandas)), (lambda p: _agree(hc1, p))
    else:
        ours = ours_cuped(ex1)
        fn, check = (lambda: tea_cuped(ex1_pandas)), (lambda p: _agree(ours, p, se_rtol=0.02, diff_in_se=0.02))
    _bench(benchmark, fn, check)


@pytest.mark.parametrize("impl", ["plain", "cuped"])
def test_ex1_plain_vs_cuped(benchmark, impl, ex1):
    benchmark.group = "EX1 plain z-test vs CUPED (target: <= 1.5x)"
    benchmark.extra_info["rows"] = ex1.num_rows
    if impl == "plain":
        def fn():
            return fastevals.z_test(ex1, group="variant", value="revenue", control="control", by="segment").table
    else:
        def fn():
            return ours_cuped(ex1)

    def check(t):
        assert t.num_rows == 50
        assert ("variance_reduction" in t.column_names) == (impl == "cuped")

    _bench(benchmark, fn, check)


@pytest.mark.parametrize("impl", ["ours", "numpy_pandas"])
def test_ex1_ratio(benchmark, impl, ex1, ex1_pandas):
    benchmark.group = "EX1 ratio metric per segment (delta method)"
    benchmark.extra_info["rows"] = ex1.num_rows

    def ours():
        return fastevals.z_test(ex1, group="variant", value="revenue", denominator="sessions", control="control",
                                by="segment").table

    if impl == "ours":
        fn, check = ours, (lambda t: _agree(t, numpy_ratio(ex1_pandas), se_rtol=1e-8))
    else:
        mine = ours()
        # raw sums of squares in the peer lose digits: 1e-8
        fn, check = (lambda: numpy_ratio(ex1_pandas)), (lambda p: _agree(mine, p, se_rtol=1e-8))
    _bench(benchmark, fn, check)
