"""Model comparison (fastevals._compare): references, slow twins, properties, coverage."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats

import fastevals
from fastevals._compare import CompareModelsState, compare_models, demo_reviews, mcnemar
from fastevals.resampling import poisson_weights

sm = pytest.importorskip("statsmodels.api")


def _scores(n=300, k=3, seed=0, clusters=None):
    rng = np.random.default_rng(seed)
    y = rng.normal(5.0, 2.0, n)
    hard = rng.normal(0, 1, n)
    data = {"y": y}
    for j in range(k):
        data[f"m{j}"] = y + 0.8 * hard + rng.normal(0.1 * j, 1.0 + 0.2 * j, n)
    if clusters:
        data["g"] = rng.integers(0, clusters, n)
        data["item"] = np.arange(n) * 7 + 3
    return data


def _ols_const(v, groups=None):
    model = sm.OLS(v, np.ones((v.shape[0], 1)))
    fit = model.fit(cov_type="cluster", cov_kwds={"groups": groups}) if groups is not None else model.fit()
    return float(fit.bse[0])


# ------------------------------------------------------------------------------------------------
# the bootstrap sums: slow twin with poisson_weights, exactly


@pytest.mark.parametrize("keyed", ["row", "item", "cluster"])
def test_bootstrap_sums_equal_the_weight_matrix(keyed):
    d = _scores(n=700, k=7, seed=1, clusters=40)
    kw = {"item": "item"} if keyed == "item" else ({"cluster": "g"} if keyed == "cluster" else {})
    st = CompareModelsState(models=[f"m{j}" for j in range(7)], n_resamples=37, seed=11, **kw)
    st.update(d)
    if keyed == "row":
        W = poisson_weights(700, 37, seed=11)
    else:
        W = poisson_weights(n_resamples=37, seed=11, keys=d["item"] if keyed == "item" else d["g"])
    X = np.column_stack([d[f"m{j}"] for j in range(7)])
    np.testing.assert_array_equal(st.boot_weights, W.sum(axis=1))
    np.testing.assert_allclose(st.boot_sums, W.astype(float) @ X, rtol=1e-12)


def test_dropped_rows_keep_their_global_index():
    d = _scores(n=400, k=2, seed=2)
    d["m1"] = d["m1"].copy()
    d["m1"][[3, 50, 51]] = np.nan
    st = CompareModelsState(models=["m0", "m1"], n_resamples=20, seed=5, nulls="drop").update(d)
    keep = np.isfinite(d["m1"])
    W = poisson_weights(400, 20, seed=5)[:, keep].astype(float)
    X = np.column_stack([d["m0"][keep], d["m1"][keep]])
    assert st.n == 397 and st.n_dropped == 3
    np.testing.assert_allclose(st.boot_sums, W @ X, rtol=1e-12)
    with pytest.raises(ValueError, match="'m1'.*NaN"):
        compare_models(d, models=["m0", "m1"], n_resamples=0)


def test_streaming_is_bit_identical_and_merge_matches_concatenation():
    d = _scores(n=1000, k=3, seed=3, clusters=30)
    kw = dict(models=["m0", "m1", "m2"], label="y", metric="rmse", cluster="g", n_resamples=50, seed=1)
    whole = CompareModelsState(**kw).update(d)
    small = CompareModelsState(**kw, batch_size=97).update(d)
    np.testing.assert_array_equal(whole.boot_sums, small.boot_sums)
    np.testing.assert_array_equal(whole.boot_weights, small.boot_weights)
    t = pa.table(d)
    a = CompareModelsState(**kw).update(t.slice(0, 400), row_offset=0)
    b = CompareModelsState(**kw).update(t.slice(400), row_offset=400)
    m = a.merge(b)
    np.testing.assert_allclose(m.boot_sums, whole.boot_sums, rtol=1e-12)
    np.testing.assert_allclose(m.m2, whole.m2, rtol=1e-10)
    np.testing.assert_allclose(m.mean, whole.mean, rtol=1e-12)
    r1, r2 = m.finalize(), whole.finalize()
    np.testing.assert_allclose(r1.table.column("standard_error").to_numpy(),
                               r2.table.column("standard_error").to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(r1.table.column("low").to_numpy(), r2.table.column("low").to_numpy(), rtol=1e-9)
    # bytes
    back = CompareModelsState.from_bytes(m.to_bytes())
    assert back == m
    assert fastevals.state_from_bytes(m.to_bytes()) == m
    # merge with other options refuses
    with pytest.raises(ValueError, match="different options"):
        a.merge(CompareModelsState(**{**kw, "seed": 2}))


def test_protocol_example_round_trips():
    kwargs, data = CompareModelsState._example()
    st = CompareModelsState(**kwargs).update(data)
    res = st.finalize()
    assert res.n == 200 and res.n_clusters == 20
    assert CompareModelsState.from_bytes(st.to_bytes()) == st


# ------------------------------------------------------------------------------------------------
# analytic standard errors against statsmodels


def test_paired_se_equals_ols_on_the_differences():
    d = _scores(n=500, k=3, seed=4)
    res = compare_models(d, models=["m0", "m1", "m2"], n_resamples=0)
    t = res.table.to_pydict()
    for i, (a, b) in enumerate(zip(t["model_a"], t["model_b"])):
        diff = d[a] - d[b]
        assert t["estimate"][i] == pytest.approx(diff.mean(), rel=1e-12)
        assert t["standard_error"][i] == pytest.approx(_ols_const(diff), rel=1e-12)
        z = diff.mean() / _ols_const(diff)
        assert t["pvalue"][i] == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-10)
    m = res.models_table.to_pydict()
    for k, name in enumerate(m["model"]):
        assert m["standard_error"][k] == pytest.approx(_ols_const(d[name]), rel=1e-12)
    # Holm across pairs, as statsmodels
    from statsmodels.stats.multitest import multipletests

    np.testing.assert_allclose(t["pvalue_adjusted"], multipletests(t["pvalue"], method="holm")[1], rtol=1e-12)


def test_cluster_robust_se_equals_statsmodels_cr1():
    d = _scores(n=600, k=3, seed=5, clusters=45)
    res = compare_models(d, models=["m0", "m1", "m2"], cluster="g", n_resamples=0)
    t = res.table.to_pydict()
    assert res.n_clusters == 45
    for i, (a, b) in enumerate(zip(t["model_a"], t["model_b"])):
        assert t["standard_error"][i] == pytest.approx(_ols_const(d[a] - d[b], d["g"]), rel=1e-12)
    m = res.models_table.to_pydict()
    for k, name in enumerate(m["model"]):
        assert m["standard_error"][k] == pytest.approx(_ols_const(d[name], d["g"]), rel=1e-12)
    # streaming in small batches (cluster sums merged across batches) gives the same
    res2 = compare_models(d, models=["m0", "m1", "m2"], cluster="g", n_resamples=0, batch_size=50)
    np.testing.assert_allclose(res2.table.column("standard_error").to_numpy(), t["standard_error"], rtol=1e-10)


def test_rmse_delta_method_and_point_values():
    d = _scores(n=800, k=2, seed=6)
    res = compare_models(d, models=["m0", "m1"], label="y", metric="rmse", n_resamples=0)
    e0, e1 = (d["m0"] - d["y"]) ** 2, (d["m1"] - d["y"]) ** 2
    r0, r1 = np.sqrt(e0.mean()), np.sqrt(e1.mean())
    assert res.estimate == pytest.approx(r0 - r1, rel=1e-12)
    # delta method by hand: g = sqrt(m): grad 1/(2 sqrt m)
    g = np.column_stack([e0 / (2 * r0), -e1 / (2 * r1)]).sum(axis=1)
    assert res.standard_error == pytest.approx(_ols_const(g), rel=1e-10)
    ms = res.models_table.column("estimate").to_numpy()
    np.testing.assert_allclose(ms, [r0, r1], rtol=1e-12)


def test_f1_and_accuracy_points_equal_sklearn():
    skm = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 400)
    a = np.where(rng.random(400) < 0.8, y, 1 - y)
    b = np.where(rng.random(400) < 0.7, y, 1 - y)
    d = {"y": y, "a": a, "b": b}
    f1 = compare_models(d, models=["a", "b"], label="y", metric="f1", n_resamples=40, seed=3)
    np.testing.assert_allclose(f1.models_table.column("estimate").to_numpy(),
                               [skm.f1_score(y, a), skm.f1_score(y, b)], rtol=1e-12)
    # bootstrap F1 replicates: slow twin with the weight matrix
    W = poisson_weights(400, 40, seed=3).astype(float)

    def wf1(p):
        tp, pp, pos = W @ (p * y), W @ p, W @ y
        return 2 * tp / (pp + pos)

    diff = wf1(a) - wf1(b)
    lo, hi = np.quantile(diff, [0.025, 0.975])
    assert f1.confidence_interval.low == pytest.approx(lo, rel=1e-9)
    assert f1.confidence_interval.high == pytest.approx(hi, rel=1e-9)
    acc = compare_models(d, models=["a", "b"], label="y", metric="accuracy", n_resamples=0)
    assert acc.estimate == pytest.approx(skm.accuracy_score(y, a) - skm.accuracy_score(y, b), rel=1e-12)


def test_auc_points_and_bootstrap_equal_slow_twins():
    skm = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(8)
    n = 300
    y = rng.integers(0, 2, n)
    s1 = y + rng.normal(0, 1.0, n)
    s2 = np.round(y + rng.normal(0, 1.3, n), 1)  # ties
    d = {"y": y, "s1": s1, "s2": s2}
    res = compare_models(d, models=["s1", "s2"], label="y", metric="auc", n_resamples=30, seed=9)
    np.testing.assert_allclose(res.models_table.column("estimate").to_numpy(),
                               [skm.roc_auc_score(y, s1), skm.roc_auc_score(y, s2)], rtol=1e-12)
    W = poisson_weights(n, 30, seed=9)
    reps = np.array([[skm.roc_auc_score(y, s, sample_weight=w) for s in (s1, s2)] for w in W])
    lo, hi = np.quantile(reps[:, 0] - reps[:, 1], [0.025, 0.975])
    assert res.confidence_interval.low == pytest.approx(lo, rel=1e-9)
    assert res.confidence_interval.high == pytest.approx(hi, rel=1e-9)
    assert any("DeLong" in note for note in res.notes)


# ------------------------------------------------------------------------------------------------
# McNemar against statsmodels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mcnemar_equals_statsmodels(seed):
    from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

    rng = np.random.default_rng(seed)
    n = int(rng.integers(30, 400))
    y = rng.integers(0, 3, n)
    a = np.where(rng.random(n) < 0.8, y, (y + 1) % 3)
    b = np.where(rng.random(n) < 0.7, y, (y + 2) % 3)
    res = mcnemar({"y": y, "a": a, "b": b}, models=["a", "b"], label="y")
    ca, cb = a == y, b == y
    table = np.array([[np.sum(ca & cb), np.sum(ca & ~cb)], [np.sum(~ca & cb), np.sum(~ca & ~cb)]])
    assert (res.n_both, res.n_a_only, res.n_b_only, res.n_neither) == tuple(table.ravel())
    ex = sm_mcnemar(table, exact=True)
    assert res.pvalue == pytest.approx(ex.pvalue, rel=1e-12)
    assert res.statistic == ex.statistic
    ch = sm_mcnemar(table, exact=False, correction=True)
    assert res.pvalue_chi2 == pytest.approx(ch.pvalue, rel=1e-12)
    r2 = mcnemar({"y": y, "a": a, "b": b}, models=["a", "b"], label="y", method="chi2-uncorrected")
    assert r2.pvalue == pytest.approx(sm_mcnemar(table, exact=False, correction=False).pvalue, rel=1e-12)
    lo, m = min(table[0, 1], table[1, 0]), table[0, 1] + table[1, 0]
    midp = 2 * stats.binom.cdf(lo, m, 0.5) - stats.binom.pmf(lo, m, 0.5)
    assert res.pvalue_midp == pytest.approx(min(1.0, midp), rel=1e-12)
    # and through compare_models(test="mcnemar"): the same p-value on the pair
    cm = compare_models({"y": y, "a": a, "b": b}, models=["a", "b"], label="y", metric="accuracy",
                        test="mcnemar", n_resamples=0)
    assert cm.pvalue == pytest.approx(ex.pvalue, rel=1e-12)
    assert "mcnemar" in str(res).lower()


def test_mcnemar_errors():
    d = {"a": np.array([0, 1, 1]), "b": np.array([1, 1, 2])}
    with pytest.raises(ValueError, match="exactly two"):
        mcnemar(d, models=["a"])
    with pytest.raises(ValueError, match="'b'.*0/1"):
        mcnemar(d, models=["a", "b"])


# ------------------------------------------------------------------------------------------------
# against scipy's paired bootstrap; coverage


def test_percentile_interval_agrees_with_scipy_paired_bootstrap():
    d = _scores(n=400, k=2, seed=10)
    B = 4000
    res = compare_models(d, models=["m0", "m1"], n_resamples=B, seed=2)
    ref = stats.bootstrap((d["m0"], d["m1"]), lambda a, b, axis=-1: a.mean(axis) - b.mean(axis),
                          paired=True, vectorized=True, n_resamples=B, method="percentile",
                          random_state=np.random.default_rng(0))
    # Monte Carlo error of a 2.5% quantile from B replicates: sd ~ sqrt(q(1-q)/B)/f(x_q) ~ 0.06 SE
    # per method; both methods estimate the same bootstrap distribution up to O(1/n) (Poisson vs
    # multinomial weights), so 0.3 standard errors is > 3 sd of their difference.
    tol = 0.3 * res.standard_error
    assert abs(res.confidence_interval.low - ref.confidence_interval.low) < tol
    assert abs(res.confidence_interval.high - ref.confidence_interval.high) < tol
    assert res.table.column("bootstrap_se")[0].as_py() == pytest.approx(ref.standard_error, rel=0.06)


def test_paired_interval_coverage():
    # 200 datasets of 150 items, correlated models with a true difference of 0.3: count covers
    rng = np.random.default_rng(11)
    R, n, true = 200, 150, 0.3
    cover_boot = cover_an = 0
    for r in range(R):
        common = rng.normal(0, 1, n)
        a = common + rng.normal(true, 0.7, n)
        b = common + rng.normal(0.0, 0.7, n)
        res = compare_models({"a": a, "b": b}, models=["a", "b"], n_resamples=200, seed=r)
        cover_boot += true in res.confidence_interval
        an = res.table.to_pydict()
        cover_an += an["analytic_low"][0] <= true <= an["analytic_high"][0]
    for c in (cover_boot, cover_an):
        assert stats.binomtest(c, R, 0.95).pvalue > 0.001, c


def test_clustered_bootstrap_is_wider_than_row_bootstrap_when_clusters_matter():
    rng = np.random.default_rng(12)
    g = np.repeat(np.arange(40), 10)
    eff = rng.normal(0, 1, 40)[g]
    d = {"a": eff + rng.normal(0, 0.3, 400), "b": rng.normal(0, 0.3, 400), "g": g}
    clustered = compare_models(d, models=["a", "b"], cluster="g", n_resamples=400, seed=1)
    naive = compare_models(d, models=["a", "b"], n_resamples=400, seed=1)
    assert clustered.standard_error > 2 * naive.standard_error
    assert clustered.confidence_interval.width > 2 * naive.confidence_interval.width
    assert clustered.keyed_by == "cluster" and naive.keyed_by == "row"


# ------------------------------------------------------------------------------------------------
# layouts and inputs


def test_long_layout_equals_wide(tmp_path):
    d = _scores(n=200, k=3, seed=13)
    d["item"] = np.arange(200)
    wide = compare_models(d, models=["m0", "m1", "m2"], label="y", metric="mae", item="item", n_resamples=50,
                          seed=4)
    rng = np.random.default_rng(0)
    rows = [(i, f"m{j}", d[f"m{j}"][i], d["y"][i]) for i in range(200) for j in range(3)]
    rows = [rows[k] for k in rng.permutation(len(rows))]
    long = pa.table({"item": [r[0] for r in rows], "model": [r[1] for r in rows], "score": [r[2] for r in rows],
                     "y": [r[3] for r in rows]})
    res = compare_models(long, model="model", score="score", item="item", label="y", metric="mae",
                         n_resamples=50, seed=4)
    assert set(res.models) == {"m0", "m1", "m2"}
    order = [res.models.index(m) for m in wide.models]
    np.testing.assert_allclose(res.models_table.column("estimate").to_numpy()[order],
                               wide.models_table.column("estimate").to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(res.models_table.column("low").to_numpy()[order],
                               wide.models_table.column("low").to_numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="scores for 199 of the 200"):
        compare_models(long.filter(pa.compute.invert(pa.compute.and_(
            pa.compute.equal(long["item"], 5), pa.compute.equal(long["model"], "m1")))),
            model="model", score="score", item="item", n_resamples=0)


def test_parquet_input(tmp_path):
    t = demo_reviews(n=500, seed=3)
    path = tmp_path / "reviews.parquet"
    pq.write_table(t, path, row_group_size=120)
    kw = dict(models=["llama3.1_8b", "llama3.2_3b"], label="rating", metric="rmse", item="review_id",
              n_resamples=100, seed=0)
    a = compare_models(str(path), **kw)
    b = compare_models(t, **kw)
    assert a.estimate == pytest.approx(b.estimate, rel=1e-12)
    assert a.confidence_interval.low == pytest.approx(b.confidence_interval.low, rel=1e-12)


def test_errors_name_the_argument():
    d = _scores(n=50, k=2, seed=14)
    with pytest.raises(ValueError, match="unknown column 'zz'"):
        compare_models(d, models=["m0", "zz"])
    with pytest.raises(ValueError, match="label="):
        compare_models(d, models=["m0", "m1"], metric="rmse")
    with pytest.raises(ValueError, match="`metric`"):
        compare_models(d, models=["m0", "m1"], metric="bleu")
    with pytest.raises(ValueError, match="mcnemar"):
        compare_models(d, models=["m0", "m1"], test="mcnemar")
    with pytest.raises(ValueError, match="'m0'.*0/1"):
        compare_models(d, models=["m0", "m1"], metric="accuracy")
    with pytest.raises(ValueError, match="`models` is required"):
        compare_models(d)
    with pytest.raises(ValueError, match="empty input"):
        compare_models({"m0": np.zeros(0), "m1": np.zeros(0)}, models=["m0", "m1"])
    with pytest.raises(ValueError, match="backend='cuda'"):
        compare_models(d, models=["m0", "m1"], backend="cuda")
    with pytest.raises(ValueError, match="expression"):
        compare_models(d, models=["m0", "m1"], metric=fastevals.metrics.mean("m0"))
    with pytest.raises(TypeError, match="n_resamples"):
        compare_models(d, models=["m0", "m1"], n_resamples=1.5)


# ------------------------------------------------------------------------------------------------
# ranking, power, text, plot


def test_ranking_and_power():
    rng = np.random.default_rng(15)
    n = 2000
    common = rng.normal(0, 1, n)
    d = {f"m{j}": common + rng.normal(0.15 * j, 1.0, n) for j in range(4)}
    res = compare_models(d, models=list(d), n_resamples=300, seed=2)
    mt = res.models_table.to_pydict()
    assert mt["rank"] == [4, 3, 2, 1]  # higher is better for "mean"
    assert mt["p_best"][3] > 0.9 and sum(mt["p_best"]) == pytest.approx(1.0)
    assert all(lo <= r <= hi for lo, r, hi in zip(mt["rank_low"], mt["rank"], mt["rank_high"]))
    # Miller's power formulas
    t = res.table.to_pydict()
    se = np.array(t["standard_error"])
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    np.testing.assert_allclose(t["mdd"], z * se, rtol=1e-12)
    need = res.sample_size(0.1)
    np.testing.assert_allclose(need, np.ceil(n * (z * se / 0.1) ** 2))
    # the needed size detects the difference: at n = needed, mdd == 0.1
    k = 0
    assert z * se[k] * np.sqrt(n / need[k]) == pytest.approx(0.1, rel=1e-3)
    text = str(res)
    assert "p_best" in text and "model_a" in text
    with pytest.raises(ValueError, match="difference"):
        res.sample_size(0.0)


def test_seed_case_reads_in_words_and_plots(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    t = demo_reviews(n=2000, seed=0)
    res = compare_models(t, models=["llama3.1_8b", "llama3.2_3b"], label="rating", metric="rmse",
                         item="review_id", n_resamples=300, seed=0)
    r8, r3 = res.models_table.column("estimate").to_numpy()
    assert 1.4 < r8 < 1.75 and 1.5 < r3 < 1.85 and r8 < r3
    assert res.verdict().startswith("llama3.1_8b is better")
    assert "llama3.1_8b is better" in str(res)
    rouge = compare_models(t, models=["rougeL_llama3.1_8b", "rougeL_llama3.2_3b"], n_resamples=0)
    assert rouge.estimate > 0 and rouge.confidence_interval.low > 0
    ax = res.plot(path=tmp_path / "forest.png")
    assert len(ax.get_yticklabels()) == 1 and (tmp_path / "forest.png").stat().st_size > 0
    d = res.to_dict()
    assert d["table"][0]["model_a"] == "llama3.1_8b"
    import matplotlib.pyplot as plt

    plt.close("all")


# ------------------------------------------------------------------------------------------------
# Dask


def test_dask_equals_in_process(client, tmp_path, write_parts):
    pytest.importorskip("dask.dataframe")
    d = _scores(n=3000, k=3, seed=16, clusters=60)
    t = pa.table(d)
    write_parts(t, tmp_path / "parts", 4, 0)
    kw = dict(models=["m0", "m1", "m2"], label="y", metric="rmse", cluster="g", n_resamples=100, seed=5)
    local = compare_models(t, **kw)
    dist = compare_models(str(tmp_path / "parts"), engine="dask", **kw)
    for col in ("estimate", "standard_error", "low", "high", "pvalue"):
        np.testing.assert_allclose(dist.table.column(col).to_numpy(), local.table.column(col).to_numpy(),
                                   rtol=1e-9, err_msg=col)
    row = compare_models(str(tmp_path / "parts"), engine="dask", models=["m0", "m1"], n_resamples=60, seed=1)
    row_local = compare_models(t, models=["m0", "m1"], n_resamples=60, seed=1)
    assert row.confidence_interval.low == pytest.approx(row_local.confidence_interval.low, rel=1e-9)


# ------------------------------------------------------------------------------------------------
# bootstrap_models (the seed's techniques 2 and 3)


def test_bootstrap_models_weights_and_resampled_rows():
    lm = pytest.importorskip("sklearn.linear_model")
    nb = pytest.importorskip("sklearn.neighbors")
    from fastevals import bootstrap_models

    rng = np.random.default_rng(17)
    X = rng.normal(size=(150, 2))
    y = 1 + X @ np.array([2.0, -1.0]) + rng.normal(0, 1, 150)
    r = bootstrap_models(lm.LinearRegression(), X, y, n_resamples=30, seed=4)
    assert r.fit_with == "sample_weight"
    # replicate 0 by hand: weighted least squares with the engine's weights, scored out of bag
    w = poisson_weights(150, 1, seed=4)[0].astype(float)
    ref = lm.LinearRegression().fit(X, y, sample_weight=w)
    oob = w == 0
    assert r.replicates[0] == pytest.approx(np.sqrt(np.mean((ref.predict(X[oob]) - y[oob]) ** 2)), rel=1e-10)
    k = bootstrap_models(nb.KNeighborsRegressor(5), X, y, n_resamples=12, seed=4, X_eval=X[:20], y_eval=y[:20],
                         n_jobs=2)
    assert k.fit_with == "resampled rows" and k.evaluated_on.startswith("evaluation set")
    rows = np.repeat(np.arange(150), w.astype(int))
    ref = nb.KNeighborsRegressor(5).fit(X[rows], y[rows])
    assert k.replicates[0] == pytest.approx(np.sqrt(np.mean((ref.predict(X[:20]) - y[:20]) ** 2)), rel=1e-12)
    with pytest.raises(ValueError, match="y_eval"):
        bootstrap_models(lm.LinearRegression(), X, y, X_eval=X)
    with pytest.raises(ValueError, match="`y`"):
        bootstrap_models(lm.LinearRegression(), X, y[:10])


def test_bootstrap_prediction_interval_coverage():
    lm = pytest.importorskip("sklearn.linear_model")
    from fastevals import bootstrap_models

    rng = np.random.default_rng(18)
    R, n, x0 = 60, 60, np.array([[1.0]])
    f0 = 1 + 2 * 1.0
    cover_mean = cover_new = 0
    for r in range(R):
        X = rng.normal(size=(n, 1))
        y = 1 + 2 * X[:, 0] + rng.normal(0, 1, n)
        res = bootstrap_models(lm.LinearRegression(), X, y, n_resamples=60, X_predict=x0, seed=r)
        t = res.table.to_pydict()
        cover_mean += t["low"][0] <= f0 <= t["high"][0]
        new = f0 + rng.normal(0, 1)
        cover_new += t["pi_low"][0] <= new <= t["pi_high"][0]
    # percentile of refit models' predictions covers the regression function; the residual-augmented
    # interval covers a new observation (binomial tests at 0.95, lenient level: B = 60 is small)
    assert stats.binomtest(cover_mean, R, 0.95).pvalue > 0.001, cover_mean
    assert stats.binomtest(cover_new, R, 0.95).pvalue > 0.001, cover_new


# ------------------------------------------------------------------------------------------------
# CLI


def test_cli_prints_the_result_and_json(tmp_path, capsys):
    import json

    from fastevals._cli.compare import main

    path = tmp_path / "results.parquet"
    pq.write_table(demo_reviews(n=600, seed=2), path)
    argv = ["compare", str(path), "--models", "llama3.1_8b,llama3.2_3b", "--metric", "rmse", "--label", "rating",
            "--item", "review_id", "--resamples", "200"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    res = compare_models(str(path), models=["llama3.1_8b", "llama3.2_3b"], metric="rmse", label="rating",
                         item="review_id", n_resamples=200)
    assert out.strip() == str(res).strip()
    assert main([*argv, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["estimate"] == pytest.approx(res.estimate, rel=1e-12)
    assert main(["compare", str(path), "--models", "llama3.1_8b,nope"]) == 2
    assert "unknown column 'nope'" in capsys.readouterr().err


def test_undefined_statistics_say_why():
    d = {"y": np.zeros(20, dtype=np.int64), "a": np.linspace(0, 1, 20), "b": np.linspace(1, 0, 20)}
    res = compare_models(d, models=["a", "b"], label="y", metric="auc", n_resamples=10)
    assert any("one class" in n for n in res.notes)
    same = compare_models({"a": np.arange(10.0), "b": np.arange(10.0)}, models=["a", "b"], n_resamples=0)
    assert np.isnan(same.pvalue) and any("zero standard error" in n for n in same.notes)
    assert "note:" in str(same)
