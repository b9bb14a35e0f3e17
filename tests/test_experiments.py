"""Sequential tests, group sequential boundaries, the peeking simulation, power and sample size.

References: gsDesign's published boundaries and scipy's multivariate normal CDF (boundaries);
independent NumPy/pandas re-implementations of each sequential formula; a NumPy twin of the
simulation kernel with the same counter-based draws; statsmodels' NormalIndPower (power).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import optimize, stats

import fastevals
from fastevals._experiments.peeking import peeking_boundaries

# ----------------------------------------------------------------------------------------------------
# group sequential boundaries


def test_obrien_fleming_bounds_reproduce_gsdesign():
    """gsDesign, 5 equal looks, two-sided 0.05 (alpha/2 a side), sfLDOF: 4.877 3.357 2.680 2.290 2.031."""
    b = fastevals.group_sequential_bounds(5, 0.05, "obrien_fleming")
    np.testing.assert_allclose(b.upper, [4.877, 3.357, 2.680, 2.290, 2.031], atol=5e-4)
    np.testing.assert_allclose(b.lower, -b.upper)
    assert b.alpha_spent[-1] == pytest.approx(0.05, rel=1e-12)
    assert b.table.column_names == ["look", "information", "upper", "lower", "alpha_spent", "nominal_pvalue"]


def test_pocock_bounds_reproduce_gsdesign():
    """gsDesign sfLDPocock, 5 equal looks, two-sided 0.05: 2.438 2.427 2.410 2.397 2.386."""
    b = fastevals.group_sequential_bounds(5, 0.05, "pocock")
    np.testing.assert_allclose(b.upper, [2.438, 2.427, 2.410, 2.397, 2.386], atol=5e-4)
    # first look in closed form: P(Z >= b1) = 0.025 log(1 + (e - 1) / 5)
    a1 = 0.025 * math.log1p((math.e - 1) / 5)
    assert b.upper[0] == pytest.approx(stats.norm.isf(a1), abs=1e-9)


@pytest.mark.parametrize("spending", ["obrien_fleming", "pocock"])
@pytest.mark.parametrize("sides", [1, 2])
def test_bounds_against_multivariate_normal_cdf(spending, sides):
    """Independent check: Z_k has corr sqrt(t_i / t_j); P(no crossing by look j) = 1 - spent(t_j)."""
    t = np.array([0.3, 0.55, 1.0])
    b = fastevals.group_sequential_bounds(information=t, alpha=0.05, spending=spending, sides=sides)
    a = 0.025 if sides == 2 else 0.05
    if spending == "obrien_fleming":
        spent = 2 * stats.norm.sf(stats.norm.isf(a / 2) / np.sqrt(t))
    else:
        spent = a * np.log(1 + (math.e - 1) * t)
    np.testing.assert_allclose(b.alpha_spent, sides * spent, rtol=1e-12)
    corr = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    for j in range(1, 4):
        mvn = stats.multivariate_normal(mean=np.zeros(j), cov=corr[:j, :j], abseps=1e-8, releps=1e-8)
        lower = -b.upper[:j] if sides == 2 else np.full(j, -np.inf)
        p_cont = mvn.cdf(b.upper[:j], lower_limit=lower) if j > 1 else \
            stats.norm.cdf(b.upper[0]) - stats.norm.cdf(lower[0])
        assert 1 - p_cont == pytest.approx(sides * spent[j - 1], abs=2e-6)


def test_bounds_monte_carlo_five_looks():
    """Brute force: simulated Brownian paths cross the Pocock boundaries with probability 0.05."""
    rng = np.random.default_rng(3)
    t = np.array([0.1, 0.35, 0.5, 0.8, 1.0])
    b = fastevals.group_sequential_bounds(information=t, spending="pocock")
    inc = rng.standard_normal((400_000, 5)) * np.sqrt(np.diff(np.concatenate([[0], t])))
    z = np.cumsum(inc, axis=1) / np.sqrt(t)
    crossed = (np.abs(z) >= b.upper).any(axis=1)
    assert crossed.mean() == pytest.approx(0.05, abs=4 * math.sqrt(0.05 * 0.95 / 400_000))


def test_bounds_errors():
    with pytest.raises(ValueError, match="strictly increasing fractions"):
        fastevals.group_sequential_bounds(information=[0.5, 0.4, 1.0])
    with pytest.raises(ValueError, match="strictly increasing fractions"):
        fastevals.group_sequential_bounds(information=[0.5, 1.2])
    with pytest.raises(ValueError, match="`spending` must be one of"):
        fastevals.group_sequential_bounds(3, spending="haybittle")
    with pytest.raises(ValueError, match="`alpha` must be in"):
        fastevals.group_sequential_bounds(3, alpha=1.5)
    with pytest.raises(ValueError, match="3 values for k=4"):
        fastevals.group_sequential_bounds(4, information=[0.2, 0.5, 1.0])
    with pytest.raises(ValueError, match="`sides` must be 1 or 2"):
        fastevals.group_sequential_bounds(3, sides=3)


# ----------------------------------------------------------------------------------------------------
# sequential_test: the formulas against independent NumPy implementations


def _log(seed=0, n=6_000, days=8, effect=0.0, binary=False, groups=("a", "b")):
    rng = np.random.default_rng(seed)
    day = np.sort(rng.integers(0, days, n))
    variant = np.array(groups)[rng.integers(0, len(groups), n)]
    if binary:
        p = 0.2 + effect * (variant == groups[-1])
        y = (rng.random(n) < p).astype(np.int8)
        return {"day": day, "variant": variant, "converted": y}
    y = rng.gamma(2.0, 5.0, n) + effect * (variant == groups[-1])
    return {"day": day, "variant": variant, "revenue": y}


def _reference_looks(data, metric, binary):
    """Cumulative per-look moments the slow way: filter the rows, np.mean / np.var."""
    out = []
    for d in np.unique(data["day"]):
        keep = data["day"] <= d
        yc = data[metric][keep & (data["variant"] == "a")].astype(float)
        yt = data[metric][keep & (data["variant"] == "b")].astype(float)
        ddof = 0 if binary else 1
        var = np.var(yc, ddof=ddof) / yc.size + np.var(yt, ddof=ddof) / yt.size
        out.append((d, yc.size, yt.size, yt.mean() - yc.mean(), var))
    return out


@pytest.mark.parametrize("binary", [False, True])
def test_msprt_against_its_definition(binary):
    data = _log(1, binary=binary, effect=0.03 if binary else 0.6)
    metric = "converted" if binary else "revenue"
    res = fastevals.sequential_test(data, group="variant", **{"outcome" if binary else "value": metric},
                                    control="a", method="msprt", alpha=0.05)
    t = res.table.to_pydict()
    p_run, lo_run, hi_run = 1.0, -np.inf, np.inf
    for k, (d, nc, nt, est, var) in enumerate(_reference_looks(data, metric, binary)):
        tau2 = 0.01 * var / (1 / nc + 1 / nt)
        # the mixture likelihood ratio, integrated numerically over theta ~ N(0, tau2)
        lr = math.sqrt(var / (var + tau2)) * math.exp(est**2 * tau2 / (2 * var * (var + tau2)))
        if k == 0:
            from scipy import integrate

            def joint(th, est=est, var=var, tau2=tau2):
                return stats.norm.pdf(est, th, math.sqrt(var)) * stats.norm.pdf(th, 0, math.sqrt(tau2))

            quad = integrate.quad(joint, -20 * math.sqrt(tau2), 20 * math.sqrt(tau2), limit=200)[0]
            assert lr == pytest.approx(quad / stats.norm.pdf(est, 0, math.sqrt(var)), rel=1e-7)
        p_run = min(p_run, 1 / lr)
        # interval: the thetas the mixture test does not reject, found by root finding

        def g(theta0, est=est, var=var, tau2=tau2):
            return 0.5 * math.log(var / (var + tau2)) + (est - theta0) ** 2 * tau2 / (2 * var * (var + tau2)) \
                - math.log(1 / 0.05)
        half = optimize.brentq(lambda h, g=g, est=est: g(est - h), 0, 100 * math.sqrt(var + tau2))
        lo_run, hi_run = max(lo_run, est - half), min(hi_run, est + half)
        assert t["time"][k] == d and t["n_control"][k] == nc and t["n_treatment"][k] == nt
        assert t["estimate"][k] == pytest.approx(est, rel=1e-10, abs=1e-13)
        assert t["standard_error"][k] == pytest.approx(math.sqrt(var), rel=1e-10)
        assert t["pvalue"][k] == pytest.approx(min(1.0, p_run), rel=1e-9)
        assert t["low"][k] == pytest.approx(lo_run, rel=1e-8, abs=1e-12)
        assert t["high"][k] == pytest.approx(hi_run, rel=1e-8, abs=1e-12)
        assert t["reject"][k] == (p_run <= 0.05)
    first = next((k for k, r in enumerate(t["reject"]) if r), None)
    assert res.stopped_look == (None if first is None else first + 1)


def test_confidence_sequence_against_the_published_formula():
    """Waudby-Smith et al. (2023) / GrowthBook's half-width, written out independently."""
    data = _log(2, effect=0.8)
    alpha, tuning = 0.05, 3000.0
    res = fastevals.sequential_test(data, group="variant", value="revenue", control="a",
                                    method="confidence_sequence", alpha=alpha, tuning=tuning)
    t = res.table.to_pydict()
    rho = math.sqrt((-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning)
    lo_run, hi_run = -np.inf, np.inf
    for k, (_, nc, nt, est, var) in enumerate(_reference_looks(data, "revenue", False)):
        n = nc + nt
        s2 = n * var
        half = math.sqrt(s2) * math.sqrt(2 * (n * rho**2 + 1) * math.log(math.sqrt(n * rho**2 + 1) / alpha)) / (n * rho)
        lo_run, hi_run = max(lo_run, est - half), min(hi_run, est + half)
        assert t["low"][k] == pytest.approx(lo_run, rel=1e-9)
        assert t["high"][k] == pytest.approx(hi_run, rel=1e-9)
        assert t["boundary"][k] == pytest.approx(half / math.sqrt(var), rel=1e-9)
        # p <= alpha exactly when 0 is outside this look's interval (or was before)
        assert t["reject"][k] == (lo_run > 0 or hi_run < 0)


def test_group_sequential_uses_bounds_at_observed_information():
    data = _log(3, effect=0.7)
    max_n = 8_000
    res = fastevals.sequential_test(data, group="variant", value="revenue", control="a",
                                    method="group_sequential", max_n=max_n, spending="pocock")
    ref = _reference_looks(data, "revenue", False)
    frac = np.array([(nc + nt) / max_n for _, nc, nt, _, _ in ref])
    b = fastevals.group_sequential_bounds(information=frac, spending="pocock").upper
    t = res.table.to_pydict()
    np.testing.assert_allclose(t["boundary"], b, rtol=1e-12)
    z = np.array([est / math.sqrt(var) for *_, est, var in ref])
    np.testing.assert_allclose(t["z"], z, rtol=1e-10)
    np.testing.assert_allclose(t["pvalue"], 2 * stats.norm.sf(np.abs(z)), rtol=1e-9)
    np.testing.assert_array_equal(t["reject"], np.logical_or.accumulate(np.abs(z) >= b))
    se = np.sqrt([v for *_, v in ref])
    np.testing.assert_allclose(t["low"], [e for *_, e, _ in ref] - b * se, rtol=1e-9)


# ----------------------------------------------------------------------------------------------------
# the state: merge, streaming, daily updates, bytes, Parquet, Dask


def _same_table(r1, r2):
    a, b = r1.table.to_pydict(), r2.table.to_pydict()
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k][0], float):
            np.testing.assert_allclose(np.array(a[k], dtype=float), np.array(b[k], dtype=float), rtol=1e-10,
                                       atol=1e-13)
        else:
            assert a[k] == b[k], k


def test_merge_streaming_daily_updates_and_bytes_agree(tmp_path):
    data = _log(4, n=5_000, effect=0.5)
    table = pa.table(data)
    kw = dict(group="variant", value="revenue", control="a", method="msprt")
    whole = fastevals.sequential_test(table, **kw)
    # streaming in small batches
    _same_table(fastevals.sequential_test(table, batch_size=333, **kw), whole)
    # merge of two shards (rows shuffled between them)
    rng = np.random.default_rng(0)
    mask = rng.random(table.num_rows) < 0.4
    a = fastevals.SequentialState(**kw).update(table.filter(pa.array(mask)))
    b = fastevals.SequentialState(**kw).update(table.filter(pa.array(~mask)))
    _same_table(a.merge(b).finalize(), whole)
    _same_table(b.merge(a).finalize(), whole)
    # a daily job: yesterday's state from bytes, today's rows folded in
    st = fastevals.SequentialState(**kw)
    for d in np.unique(data["day"]):
        st = fastevals.SequentialState.from_bytes(st.to_bytes())
        st.update(table.filter(pa.array(data["day"] == d)))
    _same_table(st.finalize(), whole)
    # Parquet input
    path = tmp_path / "log.parquet"
    pq.write_table(table, path, row_group_size=700)
    _same_table(fastevals.sequential_test(str(path), **kw), whole)


def test_time_column_types():
    data = _log(5, n=2_000, days=4)
    base = fastevals.sequential_test(data, group="variant", value="revenue", control="a")
    dates = np.datetime64("2026-01-01") + data["day"].astype("timedelta64[D]")
    tdates = pa.table({"day": pa.array(dates, pa.date32()), "variant": data["variant"], "revenue": data["revenue"]})
    as_dates = fastevals.sequential_test(tdates, group="variant", value="revenue", control="a")
    np.testing.assert_allclose(as_dates.table.column("pvalue").to_numpy(), base.table.column("pvalue").to_numpy())
    assert as_dates.table.column("time").type == pa.date32()
    # bytes keep dates; merge of date states
    st = fastevals.SequentialState(group="variant", value="revenue", control="a").update(tdates)
    back = fastevals.SequentialState.from_bytes(st.to_bytes())
    assert back == st
    strs = {**data, "day": np.array([f"2026-01-0{d + 1}" for d in data["day"]])}
    as_str = fastevals.sequential_test(strs, group="variant", value="revenue", control="a")
    np.testing.assert_allclose(as_str.table.column("z").to_numpy(), base.table.column("z").to_numpy())
    with pytest.raises(TypeError, match=r"column 'day' \(given as `time`\) has type double"):
        fastevals.sequential_test({**data, "day": data["day"] + 0.5}, group="variant", value="revenue")


def test_dask_equals_in_process(client, tmp_path, write_parts):
    import pyarrow.parquet  # noqa: F401

    table = pa.table(_log(6, n=4_000, effect=0.4))
    write_parts(table, tmp_path / "parts", 4, 1)
    kw = dict(group="variant", value="revenue", control="a", method="confidence_sequence")
    local = fastevals.sequential_test(table, **kw)
    on_dask = fastevals.sequential_test(str(tmp_path / "parts"), engine="dask", **kw)
    _same_table(on_dask, local)
    assert on_dask.n == local.n == 4_000


def test_errors_are_clear():
    data = _log(7, n=600)
    kw = dict(group="variant", value="revenue")
    with pytest.raises(ValueError, match="unknown column 'revenu'"):
        fastevals.sequential_test(data, group="variant", value="revenu")
    with pytest.raises(ValueError, match="control 'z' is not a value of column 'variant'"):
        fastevals.sequential_test(data, control="z", **kw)
    with pytest.raises(ValueError, match="compares two groups"):
        fastevals.sequential_test(_log(7, n=600, groups=("a", "b", "c")), control="a", **kw)
    with pytest.raises(ValueError, match="fewer than two groups"):
        fastevals.sequential_test({k: v[data["variant"] == "a"] for k, v in data.items()}, **kw)
    with pytest.raises(ValueError, match="must hold 0/1 values"):
        fastevals.sequential_test(data, group="variant", outcome="revenue")
    with pytest.raises(ValueError, match="one of the two"):
        fastevals.sequential_test(data, group="variant")
    bad = {**data, "revenue": np.where(np.arange(600) == 5, np.nan, data["revenue"])}
    with pytest.raises(ValueError, match="NaN or infinite"):
        fastevals.sequential_test(bad, **kw)
    assert fastevals.sequential_test(bad, nulls="drop", control="a", **kw).n_dropped == 1
    with pytest.raises(ValueError, match="empty input"):
        fastevals.sequential_test({k: v[:0] for k, v in data.items()}, **kw)
    with pytest.raises(ValueError, match="`method` must be one of"):
        fastevals.sequential_test(data, method="bayes", **kw)
    with pytest.raises(ValueError, match="`tau2` must be a positive number"):
        fastevals.sequential_test(data, tau2=-1.0, **kw)
    with pytest.raises(ValueError, match="backend='cuda' is not available"):
        fastevals.sequential_test(data, backend="cuda", **kw)


def test_control_none_and_undefined_looks_are_explained():
    data = _log(8, n=400, days=3)
    # day 0 has a single treatment row: that look has no test
    keep = ~((data["day"] == 0) & (data["variant"] == "b"))
    keep[np.flatnonzero((data["day"] == 0) & (data["variant"] == "b"))[:1]] = True
    data = {k: v[keep] for k, v in data.items()}
    res = fastevals.sequential_test(data, group="variant", value="revenue")
    assert res.control == "a"
    assert any("control=None" in n for n in res.notes)
    assert any("look(s) 1: fewer than 2 rows" in n for n in res.notes)
    assert res.table.column("pvalue")[0].as_py() is None and res.table.column("reject")[0].as_py() is False
    text = str(res)
    assert "Sequential test" in text and "note:" in text


def test_sequential_false_positive_rate_by_simulation():
    """A/A logs with 10 daily looks: the mSPRT and the confidence sequence reject at most alpha of the time,
    the naive repeated z-test more."""
    rng = np.random.default_rng(9)
    reps, n = 300, 1_000
    rejects = {"msprt": 0, "confidence_sequence": 0, "naive": 0}
    for _ in range(reps):
        data = {"day": np.repeat(np.arange(10), n // 10), "variant": np.array(["a", "b"] * (n // 2)),
                "revenue": rng.normal(0, 1, n)}
        for m in ("msprt", "confidence_sequence"):
            rejects[m] += fastevals.sequential_test(data, group="variant", value="revenue", control="a",
                                                    method=m).reject
        ref = _reference_looks(data, "revenue", False)
        rejects["naive"] += any(abs(est) / math.sqrt(v) >= 1.959964 for *_, est, v in ref)
    for m in ("msprt", "confidence_sequence"):
        assert stats.binomtest(rejects[m], reps, 0.05, alternative="greater").pvalue > 1e-3, rejects
    assert stats.binomtest(rejects["naive"], reps, 0.05, alternative="greater").pvalue < 1e-3, rejects


# ----------------------------------------------------------------------------------------------------
# simulate_peeking: kernel == NumPy twin, rates


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix64_np(z):
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _peeking_twin(seed, n_exp, n_looks, n_per, effect, bounds):
    """The simulation in plain NumPy: the same counter-based draws, cumulative sums, boundaries."""
    key = _mix64_np(np.array([seed], dtype=np.uint64))[0]
    pairs = (n_looks + 1) // 2
    c = (np.arange(n_exp, dtype=np.uint64)[:, None] * np.uint64(pairs) + np.arange(pairs, dtype=np.uint64))
    with np.errstate(over="ignore"):
        a = _mix64_np(key + (np.uint64(2) * c + np.uint64(1)) * _GOLDEN)
        b = _mix64_np(key + (np.uint64(2) * c + np.uint64(2)) * _GOLDEN)
    u1 = ((a >> np.uint64(11)).astype(np.float64) + 1.0) * 2.0**-53
    u2 = (b >> np.uint64(11)).astype(np.float64) * 2.0**-53
    r = np.sqrt(-2 * np.log(u1))
    draws = np.empty((n_exp, 2 * pairs))
    draws[:, 0::2], draws[:, 1::2] = r * np.cos(2 * np.pi * u2), r * np.sin(2 * np.pi * u2)
    d = np.cumsum(np.sqrt(2.0 * n_per) * draws[:, :n_looks] + n_per * effect, axis=1)
    z = d / np.sqrt(2.0 * n_per * np.arange(1, n_looks + 1))
    stop = np.full((n_exp, bounds.shape[0]), -1)
    for m in range(bounds.shape[0]):
        hit = np.abs(z) >= bounds[m]
        stop[:, m] = np.where(hit.any(axis=1), hit.argmax(axis=1), -1)
    return stop, z[:, -1], draws[:, :n_looks]


def test_peeking_kernel_equals_numpy_twin_on_any_thread_count():
    from fastevals._config import get_num_threads, set_num_threads
    from fastevals._kernels import experiments as kern

    methods = ("naive", "msprt", "confidence_sequence", "group_sequential")
    bounds = np.ascontiguousarray(peeking_boundaries(methods, 30, 40, 0.05, None, 5000.0, "obrien_fleming"))
    key = kern.simulation_key(11)
    stop_s, z_s = kern.peeking_serial(key, 3_000, 29, 40, 0.05, bounds[:, :29].copy())
    ref_stop, ref_z, draws = _peeking_twin(11, 3_000, 29, 40, 0.05, bounds[:, :29])
    np.testing.assert_allclose(z_s, ref_z, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(stop_s, ref_stop)
    # draws are standard normal and uncorrelated between the two halves of a pair (KS, correlation)
    assert stats.kstest(draws.ravel(), "norm").pvalue > 1e-3
    assert stats.kstest(ref_z, "norm", args=(0.05 * math.sqrt(40 * 29 / 2), 1)).pvalue > 1e-3
    assert abs(np.corrcoef(draws[:, 0], draws[:, 1])[0, 1]) < 4 / math.sqrt(3_000)
    stop_s, z_s = kern.peeking_serial(key, 3_000, 30, 40, 0.05, bounds)
    before = get_num_threads()
    try:
        for threads in {1, before}:
            set_num_threads(threads)
            stop_p, z_p = kern.peeking_parallel(key, 3_000, 30, 40, 0.05, bounds)
            np.testing.assert_array_equal(stop_p, stop_s)
            np.testing.assert_array_equal(z_p, z_s)
    finally:
        set_num_threads(before)


def test_peeking_false_positive_rates():
    r = fastevals.simulate_peeking(4_000, 50, 100, seed=5)
    n = r.n_experiments
    naive = round(r.rate("naive") * n)
    assert stats.binomtest(naive, n, 0.05, alternative="greater").pvalue < 1e-10  # far above alpha
    assert r.rate("naive") > 0.2
    for m in ("msprt", "confidence_sequence", "group_sequential"):
        k = round(r.rate(m) * n)
        assert stats.binomtest(k, n, 0.05, alternative="greater").pvalue > 1e-3, (m, k)
    # group sequential spends exactly alpha: not far below it either
    k = round(r.rate("group_sequential") * n)
    assert stats.binomtest(k, n, 0.05).pvalue > 1e-3
    assert r.table.column("method").to_pylist() == list(r.methods)
    for row in r.table.to_pylist():  # Clopper-Pearson from the beta quantiles == scipy's exact interval
        ci = stats.binomtest(row["rejections"], n).proportion_ci(method="exact")
        assert (row["low"], row["high"]) == pytest.approx((ci.low, ci.high), rel=1e-9, abs=1e-14)
    assert r.rejection_curve.shape == (4, 50) and np.all(np.diff(r.rejection_curve, axis=1) >= 0)


def test_peeking_with_an_effect_has_power_and_is_reproducible():
    a = fastevals.simulate_peeking(1_000, 20, 200, effect=0.2, seed=2, methods=("msprt", "group_sequential"))
    b = fastevals.simulate_peeking(1_000, 20, 200, effect=0.2, seed=2, methods=("msprt", "group_sequential"))
    np.testing.assert_array_equal(a.rejection_curve, b.rejection_curve)
    assert a.rate("group_sequential") > 0.9 and a.rate("msprt") > 0.5
    with pytest.raises(ValueError, match="`methods` must be one of"):
        fastevals.simulate_peeking(10, 5, 5, methods=("bayes",))
    with pytest.raises(ValueError, match="`n_looks` must be >= 1"):
        fastevals.simulate_peeking(10, 0, 5)


# ----------------------------------------------------------------------------------------------------
# power and sample size


@pytest.mark.parametrize("alternative", ["two-sided", "larger", "smaller"])
@pytest.mark.parametrize("ratio", [1.0, 2.5])
def test_power_equals_statsmodels(alternative, ratio):
    from statsmodels.stats.power import NormalIndPower, zt_ind_solve_power

    sign = -1.0 if alternative == "smaller" else 1.0
    for d, n in [(0.2, 150), (0.5, 40.5), (0.05, 3000)]:
        ours = fastevals.power(n, effect=sign * d * 3.0, sd=3.0, ratio=ratio, alternative=alternative).power
        ref = NormalIndPower().power(sign * d, nobs1=n, alpha=0.05, ratio=ratio, alternative=alternative)
        assert ours == pytest.approx(ref, rel=1e-8)
        ss = fastevals.sample_size(effect=sign * d, variance=1.0, power=0.8, ratio=ratio, alternative=alternative)
        ref_n = zt_ind_solve_power(sign * d, nobs1=None, alpha=0.05, power=0.8, ratio=ratio,
                                   alternative=alternative)
        assert ss.n_exact == pytest.approx(ref_n, rel=1e-8)
        assert ss.n_per_group == math.ceil(ss.n_exact) and ss.power >= 0.8
        assert ss.n_treatment == math.ceil(ratio * ss.n_exact - 1e-9 * ss.n_exact)


def test_power_variance_reduction_design_effect_margin():
    base = fastevals.sample_size(effect=0.1, sd=1.0)
    cuped = fastevals.sample_size(effect=0.1, sd=1.0, variance_reduction=0.36)
    assert cuped.n_exact == pytest.approx(base.n_exact * 0.64, rel=1e-10)
    clustered = fastevals.sample_size(effect=0.1, sd=1.0, design_effect=1.9)
    assert clustered.n_exact == pytest.approx(base.n_exact * 1.9, rel=1e-10)
    # ratio metric: its delta-method variance is all that matters
    ratio_metric = fastevals.sample_size(effect=0.1, variance=1.0, metric="ratio")
    assert ratio_metric.n_exact == pytest.approx(base.n_exact, rel=1e-12)
    # non-inferiority: H0 difference <= -0.05, true difference 0: one-sided closed form
    ni = fastevals.sample_size(effect=0.0, sd=1.0, margin=-0.05, alternative="larger", power=0.9)
    closed = 2 * (stats.norm.isf(0.05) + stats.norm.isf(0.1)) ** 2 / 0.05**2
    assert ni.n_exact == pytest.approx(closed, rel=1e-9)
    with pytest.raises(ValueError, match="not above the margin"):
        fastevals.power(100, effect=-0.1, sd=1.0, alternative="larger")
    with pytest.raises(ValueError, match="`lift` with relative=True needs `baseline`"):
        fastevals.sample_size(lift=0.1, relative=True, sd=1.0)
    with pytest.raises(ValueError, match="needs `sd` or `variance`"):
        fastevals.sample_size(effect=0.1)
    with pytest.raises(ValueError, match="must be a rate in"):
        fastevals.sample_size(baseline=0.95, lift=0.1, metric="proportion")
    with pytest.raises(ValueError, match="`variance_reduction` must be <"):
        fastevals.sample_size(effect=0.1, sd=1.0, variance_reduction=1.0)


def test_readme_question_one_percent_relative_lift_from_ten_percent():
    """Users per arm to see a 1% relative lift in conversion from 10%: the textbook pooled formula."""
    res = fastevals.sample_size(baseline=0.10, lift=0.01, relative=True, metric="proportion")
    p1, p2 = 0.10, 0.101
    pbar = (p1 + p2) / 2
    za, zb = stats.norm.isf(0.025), stats.norm.isf(0.2)
    n = (za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) ** 2 / (p2 - p1) ** 2
    # the textbook formula leaves out the far tail (power 1e-6 here), so it asks 3.5 more users
    assert res.n_exact == pytest.approx(n, rel=5e-6) and res.n_exact < n
    se0 = math.sqrt(2 * pbar * (1 - pbar) / res.n_exact)
    se1 = math.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / res.n_exact)
    both_tails = stats.norm.cdf((0.001 - za * se0) / se1) + stats.norm.cdf((-0.001 - za * se0) / se1)
    assert both_tails == pytest.approx(0.8, rel=1e-10)
    assert res.n_per_group == 1_419_069 and res.n_total == 2 * 1_419_069
    unpooled = fastevals.sample_size(baseline=0.10, lift=0.01, relative=True, metric="proportion", pooled=False)
    assert unpooled.n_exact == pytest.approx((za + zb) ** 2 * (p1 * (1 - p1) + p2 * (1 - p2)) / 0.001**2, rel=5e-6)


def test_proportion_power_by_simulation():
    """At the computed size the pooled z-test of two rates rejects with the promised power (binomial check)."""
    rng = np.random.default_rng(12)
    ss = fastevals.sample_size(baseline=0.3, lift=0.05, metric="proportion", ratio=1.5)
    nc, nt = ss.n_per_group, ss.n_treatment
    reps = 4_000
    xc = rng.binomial(nc, 0.3, reps)
    xt = rng.binomial(nt, 0.35, reps)
    pc, pt = xc / nc, xt / nt
    pool = (xc + xt) / (nc + nt)
    z = (pt - pc) / np.sqrt(pool * (1 - pool) * (1 / nc + 1 / nt))
    hits = int((np.abs(z) >= stats.norm.isf(0.025)).sum())
    assert stats.binomtest(hits, reps, ss.power).pvalue > 1e-3, (hits / reps, ss.power)


# ----------------------------------------------------------------------------------------------------
# results and the CLI


def test_results_render_and_plot(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = [fastevals.power(100, effect=0.3, sd=1.0), fastevals.sample_size(effect=0.3, sd=1.0, ratio=2.0),
               fastevals.group_sequential_bounds(4), fastevals.simulate_peeking(200, 10, 10, seed=1),
               fastevals.sequential_test(_log(10, n=800), group="variant", value="revenue", control="a")]
    for r in results:
        text = str(r)
        assert text.splitlines()[0] == r._title()
        json.dumps(r.to_dict(), default=str)
        assert r.to_arrow().num_rows >= 1
        ax = r.plot(path=tmp_path / f"{type(r).__name__}.png")
        assert (tmp_path / f"{type(r).__name__}.png").stat().st_size > 1000
        plt.close(ax.figure)
    assert "n per group: 131 control, 262 treatment" in str(results[1])


def test_cli_power_and_sequential(tmp_path, capsys):
    from fastevals.cli import main

    assert main(["power", "--baseline", "0.10", "--lift", "0.01", "--relative"]) == 0
    assert "n per group: 1,419,069" in capsys.readouterr().out
    assert main(["power", "--effect", "0.2", "--sd", "1", "--n", "400", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["power"] == pytest.approx(fastevals.power(400, effect=0.2, sd=1.0).power, rel=1e-12)
    path = tmp_path / "log.parquet"
    data = _log(11, n=3_000, effect=0.8)
    pq.write_table(pa.table(data), path)
    assert main(["sequential", str(path), "--group", "variant", "--value", "revenue", "--control", "a",
                 "--time", "day", "--method", "msprt"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Sequential test (mixture SPRT") and "boundary" in text
    assert main(["sequential", str(path), "--group", "variant", "--value", "revenue", "--control", "a",
                 "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    ref = fastevals.sequential_test(pa.table(data), group="variant", value="revenue", control="a")
    assert [r["pvalue"] for r in got["table"]] == pytest.approx(ref.table.column("pvalue").to_pylist(), rel=1e-12)
    assert main(["sequential", str(path), "--group", "variant", "--value", "nope"]) == 2
    assert "unknown column 'nope'" in capsys.readouterr().err
    assert main(["power", "--effect", "0.1"]) == 2
    # the one CLI error path: the prefix, and the hint in flags
    assert "fastevals power: error: --metric mean needs `--sd` or `--variance`" in capsys.readouterr().err
