"""Regression adjustment (CUPED), ratio metrics and pre-aggregated data in the A/B z-test.

References: statsmodels OLS ``y ~ 1 + treatment + covariates`` (coefficient, HC1 standard error),
the delta-method formula written out in NumPy, fastevals' own cluster bootstrap, DuckDB aggregates
of a Parquet file; coverage by seeded simulation judged with a binomial test; the mergeable-state
invariants (merge == concatenation, streaming == in memory, 1 == N threads, Dask == in process).
"""

import json
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.regression.linear_model import OLS
from statsmodels.stats.multitest import multipletests

import fastevals
from fastevals import _config, _cuped, metrics
from fastevals._kernels import cells

RTOL = 1e-10


def make_data(seed, n, *, groups=("control", "treatment"), segments=0, effect=0.5, offset=0.0):
    """Users: a pre-period revenue and sessions, an experiment-period revenue and sessions."""
    rng = np.random.default_rng(seed)
    g = rng.choice(np.array(groups), n)
    treat = (g != groups[0]).astype(float)
    pre = rng.gamma(2.0, 5.0, n)
    pre_sessions = rng.poisson(3, n) + 1.0
    sessions = rng.poisson(0.5 * pre_sessions + 1) + 1.0
    revenue = 0.8 * pre + 0.5 * sessions + rng.normal(0, 4, n) + effect * treat + offset
    data = {"variant": g, "pre": pre + offset, "pre_sessions": pre_sessions, "pred": pre + rng.normal(0, 3, n),
            "sessions": sessions, "revenue": revenue}
    if segments:
        data["seg"] = rng.choice(np.array([f"s{k}" for k in range(segments)]), n)
    return data


def ols(data, rows, covariates, treatment):
    """statsmodels OLS y ~ 1 + treatment + covariates on ``rows``: (coef, HC1 se)."""
    y = data["revenue"][rows]
    X = np.column_stack([np.ones(rows.sum()), (data["variant"][rows] == treatment).astype(float)]
                        + [data[c][rows] for c in covariates])
    fit = OLS(y, X).fit(cov_type="HC1")
    return fit.params[1], fit.bse[1]


def welch_adjusted_twin(data, rows, covariates, control, treatment):
    """Slow twin of the default standard error: Welch on y - theta'x with the pooled within-group theta."""
    y = data["revenue"][rows]
    g = data["variant"][rows]
    X = np.column_stack([data[c][rows] for c in covariates])
    Xc, yc = X.copy(), y.copy()
    for lab in (control, treatment):
        m = g == lab
        Xc[m] -= X[m].mean(axis=0)
        yc[m] -= y[m].mean()
    theta = np.linalg.lstsq(Xc, yc, rcond=None)[0]
    adj = y - X @ theta
    a, b = adj[g == control], adj[g == treatment]
    return np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size), theta


def delta_twin(y, d):
    """Ratio of sums and its delta-method variance (ddof=1), written out."""
    n = y.size
    r = y.sum() / d.sum()
    var = (np.var(y, ddof=1) - 2 * r * np.cov(y, d, ddof=1)[0, 1] + r**2 * np.var(d, ddof=1)) / d.mean() ** 2 / n
    return r, var


# ------------------------------------------------------------------------------------------------
# regression adjustment against statsmodels OLS


@pytest.mark.parametrize("covariates", [["pre"], ["pre", "pred"], ["pre", "pred", "pre_sessions"]])
def test_cuped_equals_statsmodels_ols(covariates):
    data = make_data(1, 3000, offset=1e4)  # a large offset: moments must be centered, not raw sums
    rows = np.ones(3000, dtype=bool)
    coef, hc1 = ols(data, rows, covariates, "treatment")
    welch, theta = welch_adjusted_twin(data, rows, covariates, "control", "treatment")
    res = fastevals.z_test(data, group="variant", value="revenue", covariate=covariates)
    np.testing.assert_allclose(res.difference, coef, rtol=RTOL)
    np.testing.assert_allclose(res.standard_error, welch, rtol=RTOL)
    np.testing.assert_allclose(res.theta, theta, rtol=1e-8)
    assert not hasattr(res, "std_error")  # one name: standard_error
    hc = fastevals.z_test(data, group="variant", value="revenue", covariate=covariates, variance="hc1")
    np.testing.assert_allclose(hc.difference, coef, rtol=RTOL)
    np.testing.assert_allclose(hc.standard_error, hc1, rtol=RTOL)
    assert hc.variance == "hc1" and res.variance == "welch"
    z = (coef / hc1)
    np.testing.assert_allclose(hc.statistic, z, rtol=RTOL)
    np.testing.assert_allclose(hc.pvalue, 2 * stats.norm.sf(abs(z)), rtol=1e-8)


def test_hc1_without_covariates_equals_statsmodels():
    data = make_data(2, 2000)
    coef, hc1 = ols(data, np.ones(2000, dtype=bool), [], "treatment")
    res = fastevals.z_test(data, group="variant", value="revenue", variance="hc1")
    np.testing.assert_allclose([res.difference, res.standard_error], [coef, hc1], rtol=RTOL)


def test_every_segment_and_arm_equals_ols_per_segment_with_holm():
    data = make_data(3, 6000, groups=("control", "b", "c"), segments=4)
    cov = ["pre", "pred"]
    tab = fastevals.z_test(data, group="variant", value="revenue", covariate=cov, by="seg", variance="hc1").table
    assert tab.num_rows == 4 * 2
    for row in tab.to_pylist():
        rows = (data["seg"] == row["seg"]) & np.isin(data["variant"], ["control", row["treatment"]])
        coef, hc1 = ols(data, rows, cov, row["treatment"])
        np.testing.assert_allclose([row["difference"], row["standard_error"]], [coef, hc1], rtol=RTOL)
    p = tab.column("pvalue").to_numpy()
    np.testing.assert_allclose(tab.column("pvalue_adjusted").to_numpy(), multipletests(p, method="holm")[1],
                               rtol=1e-12)
    welch = fastevals.z_test(data, group="variant", value="revenue", covariate=cov, by="seg").table
    for row in welch.to_pylist():
        rows = (data["seg"] == row["seg"]) & np.isin(data["variant"], ["control", row["treatment"]])
        se, _ = welch_adjusted_twin(data, rows, cov, "control", row["treatment"])
        np.testing.assert_allclose(row["standard_error"], se, rtol=RTOL)


def test_variance_reduction_and_extra_sample_size():
    data = make_data(4, 5000)
    plain = fastevals.z_test(data, group="variant", value="revenue")
    res = fastevals.z_test(data, group="variant", value="revenue", covariate="pre")
    vr = 1 - res.standard_error**2 / plain.standard_error**2
    np.testing.assert_allclose(res.variance_reduction, vr, rtol=1e-12)
    np.testing.assert_allclose(res.standard_error_unadjusted, plain.standard_error, rtol=1e-12)
    assert 0.5 < res.variance_reduction < 0.95  # revenue = 0.8 pre + noise: most variance explained
    n = res.n_control + res.n_treatment
    # a plain test with n + extra rows (same split) reaches the adjusted standard error
    np.testing.assert_allclose(plain.standard_error * np.sqrt(n / (n + res.extra_sample_size)),
                               res.standard_error, rtol=1e-12)
    assert plain.variance_reduction == 0.0
    # the adjusted means differ by the adjusted difference, and are centered on the pooled covariate mean
    np.testing.assert_allclose(res.adjusted_mean_treatment - res.adjusted_mean_control, res.difference, rtol=1e-10)


# ------------------------------------------------------------------------------------------------
# ratio metrics


def test_ratio_equals_delta_method_formula():
    data = make_data(5, 4000)
    res = fastevals.z_test(data, group="variant", value="revenue", denominator="sessions")
    c = data["variant"] == "control"
    rc, vc = delta_twin(data["revenue"][c], data["sessions"][c])
    rt, vt = delta_twin(data["revenue"][~c], data["sessions"][~c])
    assert res.mean_control == pytest.approx(rc, rel=1e-14) and res.mean_treatment == pytest.approx(rt, rel=1e-14)
    np.testing.assert_allclose(res.difference, rt - rc, rtol=1e-13)
    np.testing.assert_allclose(res.standard_error, np.sqrt(vc + vt), rtol=RTOL)
    rel_se = np.sqrt(vt / rc**2 + rt**2 * vc / rc**4)
    lo, hi = res.relative_difference_ci
    np.testing.assert_allclose(hi - lo, 2 * stats.norm.ppf(0.975) * rel_se, rtol=1e-9)


def test_ratio_with_covariates_equals_linearized_twin():
    data = make_data(6, 4000)
    cov = ["pre", "pre_sessions"]
    res = fastevals.z_test(data, group="variant", value="revenue", denominator="sessions", covariate=cov)
    y, d, g = data["revenue"], data["sessions"], data["variant"]
    X = np.column_stack([data[c] for c in cov])
    L = np.empty_like(y)
    Xc = X.copy()
    est = {}
    for lab in ("control", "treatment"):
        m = g == lab
        r = y[m].sum() / d[m].sum()
        est[lab] = r
        L[m] = (y[m] - r * d[m]) / d[m].mean()
        Xc[m] -= X[m].mean(axis=0)
    theta = np.linalg.lstsq(Xc, L, rcond=None)[0]
    m = g == "treatment"
    diff = est["treatment"] - est["control"] - theta @ (X[m].mean(axis=0) - X[~m].mean(axis=0))
    adj = L - Xc @ theta
    se = np.sqrt(adj[m].var(ddof=1) / m.sum() + adj[~m].var(ddof=1) / (~m).sum())
    np.testing.assert_allclose(res.difference, diff, rtol=RTOL)
    np.testing.assert_allclose(res.standard_error, se, rtol=RTOL)
    assert res.variance_reduction > 0.3


def test_ratio_se_within_monte_carlo_error_of_cluster_bootstrap():
    # sessions as rows, users as clusters: the cluster bootstrap of sum(revenue) / sessions;
    # ours works on the users' rows (sums per user) with the delta method
    rng = np.random.default_rng(7)
    users = 3000
    g = rng.choice(np.array(["control", "treatment"]), users)
    k = rng.poisson(2, users) + 1
    uid = np.repeat(np.arange(users), k)
    level = rng.gamma(2.0, 2.0, users)[uid]
    rev = rng.exponential(1.0, uid.size) * level
    sessions = {"user": uid, "variant": g[uid], "revenue": rev, "one": np.ones(uid.size)}
    per_user = {"variant": g, "revenue": np.bincount(uid, weights=rev), "sessions": k.astype(float)}
    res = fastevals.z_test(per_user, group="variant", value="revenue", denominator="sessions")
    B = 2000
    boot = fastevals.bootstrap(sessions, metrics.ratio("revenue", "one"), group="variant", control="control",
                               cluster="user", n_resamples=B, seed=11, progress=False)
    row = [r for r in boot.table.to_pylist() if r["comparison"] == "difference"][0]
    np.testing.assert_allclose(row["estimate"], res.difference, rtol=1e-12)
    # the bootstrap standard error's relative Monte Carlo error is about 1 / sqrt(2 B) (1.6%)
    assert abs(row["standard_error"] / res.standard_error - 1) < 5 / np.sqrt(2 * B)


def test_coverage_of_ratio_and_cuped_intervals_by_simulation():
    reps, n = 400, 600

    def make(r):
        rng = np.random.default_rng(1000 + r)
        g = np.where(np.arange(n) < n // 2, "control", "treatment")
        pre = rng.gamma(2.0, 5.0, n)
        sessions = rng.poisson(1.5, n) + 1.0
        revenue = sessions * (0.8 * pre + rng.normal(0, 4, n)) / 2.5 + 0.5 * sessions
        return {"variant": g, "pre": pre, "sessions": sessions, "revenue": revenue}

    # A/A (both arms drawn alike): the true difference is 0; each 95% interval should contain it 95% of
    # the time
    specs = {"ratio": dict(denominator="sessions"), "ratio+cuped": dict(denominator="sessions", covariate="pre"),
             "cuped": dict(covariate="pre"), "cuped hc1": dict(covariate="pre", variance="hc1")}
    hits = dict.fromkeys(specs, 0)
    for r in range(reps):
        d = make(r)
        for name, kw in specs.items():
            lo, hi = fastevals.z_test(d, group="variant", value="revenue", **kw).confidence_interval
            hits[name] += lo <= 0 <= hi
    for name, h in hits.items():
        assert stats.binomtest(h, reps, 0.95).pvalue > 0.001, (name, h)


# ------------------------------------------------------------------------------------------------
# pre-aggregated data: DuckDB over Parquet


def _duckdb_sql(path, centered):
    second = ("regr_sxx(revenue, revenue) AS comoment_revenue_revenue, regr_sxy(sessions, revenue) AS "
              "comoment_revenue_sessions, regr_sxy(pre, revenue) AS comoment_revenue_pre, "
              "regr_sxx(sessions, sessions) AS comoment_sessions_sessions, regr_sxy(pre, sessions) AS "
              "comoment_sessions_pre, regr_sxx(pre, pre) AS comoment_pre_pre") if centered else (
              "sum(revenue * revenue) AS sum_revenue_revenue, sum(revenue * sessions) AS sum_revenue_sessions, "
              "sum(revenue * pre) AS sum_revenue_pre, sum(sessions * sessions) AS sum_sessions_sessions, "
              "sum(sessions * pre) AS sum_sessions_pre, sum(pre * pre) AS sum_pre_pre")
    return (f"SELECT seg, variant, count(*) AS n, sum(revenue) AS sum_revenue, sum(sessions) AS sum_sessions, "
            f"sum(pre) AS sum_pre, {second} FROM read_parquet('{path}') GROUP BY seg, variant")


@pytest.mark.parametrize("centered", [False, True])
def test_from_aggregates_of_duckdb_equals_row_level(tmp_path, centered):
    duckdb = pytest.importorskip("duckdb")
    data = make_data(8, 8000, segments=3)
    path = tmp_path / "log.parquet"
    pq.write_table(pa.table(data), path)
    agg = duckdb.sql(_duckdb_sql(path, centered)).arrow()
    if hasattr(agg, "read_all"):
        agg = agg.read_all()
    for kw in (dict(covariate="pre"), dict(denominator="sessions"), dict(denominator="sessions", covariate="pre"),
               dict()):
        st = fastevals.ABTestState.from_aggregates(agg, group="variant", value="revenue", by="seg", **kw)
        got = st.z_test().table
        want = fastevals.z_test(str(path), group="variant", value="revenue", by="seg", **kw).table
        assert got.column("n_control").to_pylist() == want.column("n_control").to_pylist()
        for col in ("difference", "standard_error", "statistic", "pvalue_adjusted", "mean_control"):
            np.testing.assert_allclose(got.column(col).to_numpy(), want.column(col).to_numpy(), rtol=RTOL,
                                       err_msg=f"{kw} {col}")
        assert st.n_read == 8000
    with pytest.raises(ValueError, match="sum_pred"):
        fastevals.ABTestState.from_aggregates(agg, group="variant", value="revenue", by="seg", covariate="pred")
    with pytest.raises(ValueError, match="no column"):
        fastevals.ABTestState.from_aggregates(agg.drop_columns(["n"]), group="variant", value="revenue", by="seg")


# ------------------------------------------------------------------------------------------------
# the mergeable state


def _state(**kw):
    spec = dict(group="variant", value="revenue", by="seg", covariate=["pre", "pred"])
    spec.update(kw)
    return fastevals.ABTestState(**spec)


def _same_moments(a, b, rtol=1e-11):
    sa, ga, _ = a._sorted()
    sb, gb, _ = b._sorted()
    np.testing.assert_array_equal(a.cell_n[np.ix_(sa, ga)], b.cell_n[np.ix_(sb, gb)])
    ma, mb = a.mom[np.ix_(sa, ga)], b.mom[np.ix_(sb, gb)]
    scale = np.abs(mb).max(axis=(0, 1), keepdims=True) + 1e-300
    np.testing.assert_allclose(ma / scale, mb / scale, rtol=0, atol=rtol)
    np.testing.assert_allclose(a.mu[np.ix_(sa, ga)], b.mu[np.ix_(sb, gb)], rtol=1e-13)


@pytest.mark.parametrize("kw", [dict(), dict(variance="hc1"), dict(denominator="sessions", covariate="pre")])
def test_merge_equals_concatenation_and_streaming(kw):
    data = make_data(9, 3000, segments=3)
    t = pa.table(data)
    whole = _state(**kw).update(t)
    parts = [_state(**kw).update(t.slice(a, b)) for a, b in ((0, 700), (700, 1500), (2200, 800))]
    merged = parts[0].merge(parts[1]).merge(parts[2])
    swapped = parts[2].merge(parts[0].merge(parts[1]))
    streamed = _state(**kw, batch_size=257).update(t)
    for other in (merged, swapped, streamed):
        _same_moments(other, whole)
        ra, rb = other.z_test(), whole.z_test()
        np.testing.assert_allclose(ra.column("difference"), rb.column("difference"), rtol=1e-10)
        np.testing.assert_allclose(ra.column("standard_error"), rb.column("standard_error"), rtol=1e-10)
    back = fastevals.ABTestState.from_bytes(whole.to_bytes())
    assert back == whole and back.moment_degree == whole.moment_degree
    np.testing.assert_array_equal(back.mom, whole.mom)
    with pytest.raises(ValueError, match="different options"):
        whole.merge(_state(covariate="pre"))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), cuts=st.lists(st.integers(1, 599), min_size=1, max_size=4, unique=True),
       hc1=st.booleans())
def test_merge_of_random_splits_equals_whole(seed, cuts, hc1):
    t = pa.table(make_data(seed, 600, segments=2))
    kw = dict(variance="hc1") if hc1 else dict(denominator="sessions")
    bounds = [0, *sorted(cuts), 600]
    parts = [_state(**kw).update(t.slice(a, b - a)) for a, b in zip(bounds, bounds[1:])]
    merged = parts[-1]
    for p in parts[-2::-1]:  # right to left: another association than the concatenation's
        merged = p.merge(merged)
    _same_moments(merged, _state(**kw).update(t))


def _moment_twin(data, cols, degree):
    """Central co-moment sums of each (seg, variant) cell, by plain NumPy."""
    out = {}
    nv = len(cols)
    for key in sorted({(s, g) for s, g in zip(data["seg"], data["variant"])}):
        m = (data["seg"] == key[0]) & (data["variant"] == key[1])
        W = np.column_stack([data[c][m] for c in cols])
        D = W - W.mean(axis=0)
        out[key] = np.array([np.prod(D ** np.array(a), axis=1).sum() for a in _cuped.monomials(nv, degree)])
    return out


@pytest.mark.parametrize("degree", [2, 4])
def test_moment_kernel_equals_slow_twin_with_drift_and_offsets(degree):
    data = make_data(10, 5000, segments=2, offset=1e6)
    data["revenue"] = data["revenue"] + np.linspace(0, 50, 5000)  # drift: the first rows' shift is off
    cols = ["revenue", "pre", "pred"]
    st = _state(variance="hc1" if degree == 4 else "welch", batch_size=2000).update(data)
    twin = _moment_twin(data, cols, degree)
    mono = np.array(_cuped.monomials(len(cols), degree))
    for key, want in twin.items():
        s, g = st.segments.code(key[0]), st.groups.code(key[1])
        got = st.mom[s, g]
        # each co-moment against its natural size n * prod(sd_j ** a_j) (a covariance can be ~0)
        sd = np.sqrt(want[[list(map(tuple, mono)).index(tuple(2 * np.eye(3, dtype=int)[j])) for j in range(3)]]
                     / want[0])
        scale = want[0] * np.prod(sd ** mono, axis=1)
        # first-degree central sums are 0 by construction (the twin's carry its mean's rounding)
        assert np.all(got[mono.sum(axis=1) == 1] == 0)
        keep = mono.sum(axis=1) != 1
        # offset / sd ~ 1e5: ~5 of the 16 digits go to the level (in the twin as in ours)
        assert np.all(np.abs(got - want)[keep] <= 1e-9 * scale[keep]), np.abs(got - want) / scale


def test_parallel_kernel_equals_serial_bitwise(monkeypatch):
    rows = 300_000
    data = make_data(11, rows, segments=5)
    seg = np.unique(data["seg"], return_inverse=True)[1].astype(np.int8)
    grp = (data["variant"] == "treatment").astype(np.int8)
    X = np.stack([data["pre"], data["pred"]])
    K = np.zeros((10, 3))
    parent, var = _cuped.kernel_tables(3, 2)
    args = (seg, 0, grp, 0, 2, data["revenue"], X, K, parent, var, 10, 1 << 14)
    serial = cells.fold_moments_serial(*args)
    threads = _config.get_num_threads()
    try:
        par_n = cells.fold_moments_parallel(*args)
        _config.set_num_threads(1)
        par_1 = cells.fold_moments_parallel(*args)
    finally:
        _config.set_num_threads(threads)
    np.testing.assert_array_equal(serial, par_n)
    np.testing.assert_array_equal(serial, par_1)
    # the one-covariate fast loop equals the general loop
    parent2, var2 = _cuped.kernel_tables(2, 2)
    fast = cells.fold_moments_serial(seg, 0, grp, 0, 2, data["revenue"], X[:1], K[:, :2], parent2, var2, 10,
                                     1 << 14)
    general = cells.fold_moments_serial(seg, 0, grp, 0, 2, data["revenue"], X[:1], K[:, :2],
                                        np.append(parent2, 0), np.append(var2, 0), 10, 1 << 14)
    np.testing.assert_array_equal(fast.reshape(-1, 10 * 4, 6), general.reshape(-1, 10 * 4, 7)[:, :, :6])


def test_parquet_path_and_abtest_report(tmp_path):
    data = make_data(12, 4000, segments=2)
    data["converted"] = (data["revenue"] > 10).astype(np.int8)
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table(data), path, row_group_size=999)
    kw = dict(group="variant", value="revenue", covariate="pre", denominator="sessions")
    from_path = fastevals.z_test(str(path), **kw)
    in_memory = fastevals.z_test(data, **kw)
    np.testing.assert_allclose([from_path.difference, from_path.standard_error],
                               [in_memory.difference, in_memory.standard_error], rtol=1e-12)
    rep = fastevals.abtest(str(path), outcome="converted", **kw)
    assert rep.z_test.difference == pytest.approx(in_memory.difference, rel=1e-12)
    assert rep.g_test.dof == 1 and rep.n == 4000


def test_dask_equals_in_process(client, tmp_path, write_parts):
    dd = pytest.importorskip("dask.dataframe")
    data = make_data(13, 5000, segments=3)
    t = pa.table(data)
    write_parts(t, tmp_path / "parts", 5, 0)
    ddf = dd.read_parquet(tmp_path / "parts")
    for kw in (dict(covariate=["pre", "pred"], variance="hc1"), dict(denominator="sessions", covariate="pre")):
        got = fastevals.z_test(ddf, group="variant", value="revenue", by="seg", **kw).table
        want = fastevals.z_test(t, group="variant", value="revenue", by="seg", **kw).table
        assert got.column("n_control").to_pylist() == want.column("n_control").to_pylist()
        for col in ("difference", "standard_error", "variance_reduction", "pvalue"):
            np.testing.assert_allclose(got.column(col).to_numpy(), want.column(col).to_numpy(), rtol=1e-10)


def test_cli_covariate_and_denominator(tmp_path, capsys):
    from fastevals import cli

    data = make_data(14, 3000, segments=3)
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table(data), path)
    argv = ["abtest", str(path), "--value", "revenue", "--covariate", "pre", "--covariate", "pred",
            "--denominator", "sessions"]
    assert cli.main(argv + ["--json"]) == 0
    got = json.loads(capsys.readouterr().out)["z_test"]
    want = fastevals.z_test(data, group="variant", value="revenue", covariate=["pre", "pred"],
                            denominator="sessions")
    assert got["difference"] == pytest.approx(want.difference, rel=1e-12)
    assert got["variance_reduction"] == pytest.approx(want.variance_reduction, rel=1e-12)
    assert got["covariates"] == ["pre", "pred"] and got["denominator"] == "sessions"
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert "variance reduction" in text and "ratio metric" in text
    assert cli.main(["abtest", str(path), "--value", "revenue", "--covariate", "pre", "--by", "seg",
                     "--variance", "hc1"]) == 0
    text = capsys.readouterr().out
    assert "variance_reduction" in text and text.count("treatment") >= 3
    assert cli.main(["abtest", str(path), "--value", "revenue", "--covariate", "nope"]) == 2
    assert "nope" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# bad input and undefined statistics


def test_bad_input_is_a_clear_error():
    data = make_data(15, 500)
    kw = dict(group="variant", value="revenue")
    with pytest.raises(ValueError, match="nope"):
        fastevals.z_test(data, covariate="nope", **kw)
    with pytest.raises((TypeError, ValueError), match="pre"):
        fastevals.z_test({**data, "pre": data["pre"].astype(str)}, covariate="pre", **kw)
    bad = data["pre"].copy()
    bad[7] = np.nan
    with pytest.raises(ValueError, match=r"column 'pre' \(given as `covariate`\) has 1 NaN or infinite"):
        fastevals.z_test({**data, "pre": bad}, covariate="pre", **kw)
    dropped = fastevals.z_test({**data, "pre": bad}, covariate="pre", nulls="drop", **kw)
    assert dropped.n_control + dropped.n_treatment == 499 and dropped.n_dropped == 1
    with pytest.raises(ValueError, match="kind='mean'"):
        fastevals.z_test(data, covariate="pre", kind="proportion", **kw)
    with pytest.raises(ValueError, match="ratio metric"):
        fastevals.z_test(data, denominator="sessions", variance="hc1", **kw)
    with pytest.raises(ValueError, match="variance"):
        fastevals.z_test(data, covariate="pre", variance="hc3", **kw)
    with pytest.raises(ValueError, match="fourth co-moments"):
        _state(by=None).update(data).z_test(variance="hc1")
    with pytest.raises(ValueError, match="used twice"):
        fastevals.z_test(data, covariate="revenue", **kw)
    with pytest.raises(ValueError, match="give `value`"):
        fastevals.ABTestState(group="variant", outcome="x", covariate="pre")


def test_undefined_statistics_say_why():
    data = make_data(16, 1000)
    const = {**data, "pre": np.full(1000, 3.0)}
    with pytest.warns(RuntimeWarning, match="no variation"):
        res = fastevals.z_test(const, group="variant", value="revenue", covariate="pre")
    plain = fastevals.z_test(data, group="variant", value="revenue")
    np.testing.assert_allclose([res.difference, res.standard_error], [plain.difference, plain.standard_error],
                               rtol=1e-10)
    assert "no variation" in res.note
    zero = {**data, "sessions": np.where(data["variant"] == "control", 0.0, data["sessions"])}
    with pytest.warns(RuntimeWarning, match="denominator sums to zero"):
        res = fastevals.z_test(zero, group="variant", value="revenue", denominator="sessions")
    assert np.isnan(res.difference)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tab = fastevals.z_test({**zero, "seg": np.where(np.arange(1000) < 500, "a", "b")}, group="variant",
                               value="revenue", denominator="sessions", by="seg").table
    assert all("denominator" in n for n in tab.column("note").to_pylist())


@pytest.mark.large
def test_large_coverage_and_segments_against_ols():
    # 2,000 A/A repetitions per method (the default test runs 400), and 20 segments x 3 arms of
    # 200k rows against statsmodels
    reps, n = 2000, 400
    hits = {"ratio+cuped": 0, "cuped hc1": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastevals.SampleRatioMismatchWarning)  # random splits: 1 in 1,000
        for r in range(reps):
            d = make_data(50_000 + r, n, effect=0.0)
            lo, hi = fastevals.z_test(d, group="variant", value="revenue", denominator="sessions",
                                      covariate=["pre", "pre_sessions"]).confidence_interval
            hits["ratio+cuped"] += lo <= 0 <= hi
            lo, hi = fastevals.z_test(d, group="variant", value="revenue", covariate="pre",
                                      variance="hc1").confidence_interval
            hits["cuped hc1"] += lo <= 0 <= hi
    for name, h in hits.items():
        assert stats.binomtest(h, reps, 0.95).pvalue > 0.001, (name, h)
    data = make_data(17, 600_000, groups=("control", "b", "c"), segments=20)
    tab = fastevals.z_test(data, group="variant", value="revenue", covariate=["pre", "pred"], by="seg",
                           variance="hc1").table
    for row in tab.to_pylist():
        rows = (data["seg"] == row["seg"]) & np.isin(data["variant"], ["control", row["treatment"]])
        coef, hc1 = ols(data, rows, ["pre", "pred"], row["treatment"])
        np.testing.assert_allclose([row["difference"], row["standard_error"]], [coef, hc1], rtol=RTOL)
