"""fastevals.fairness and fastevals.robustness: references, twins, properties, coverage."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats

import fastevals
from fastevals import FairnessState, fairness, robustness
from fastevals._fairness.robustness import perturb
from fastevals._kernels import fairness as kf
from fastevals.resampling import poisson_weights

DISPARITIES = ("demographic_parity_difference", "demographic_parity_ratio", "equal_opportunity_difference",
               "equalized_odds_difference")
RATES = ("selection_rate", "true_positive_rate", "false_positive_rate", "precision", "accuracy")


def make_data(n=6000, seed=0, groups=("a", "b", "c"), extra=False):
    rng = np.random.default_rng(seed)
    g = rng.choice(np.array(groups), n)
    y = rng.integers(0, 2, n)
    shift = np.select([g == groups[0], g == groups[1]], [0.0, 0.08], 0.15)
    score = np.clip(rng.uniform(0, 0.6, n) + 0.35 * y + shift, 0, 1)
    data = {"y": y, "yhat": (score >= 0.5).astype(np.int8), "score": score, "g": g}
    if extra:
        data["age"] = rng.choice(np.array(["young", "old"]), n)
        data["region"] = rng.integers(0, 3, n)
    return data


# ------------------------------------------------------------------------------------------------
# slow twins


def twin_confusion(y, yhat, g, labels):
    """(G, 2, 2) counts by plain loops over groups."""
    out = np.zeros((len(labels), 2, 2), dtype=np.int64)
    for i, lab in enumerate(labels):
        m = g == lab
        for a in (0, 1):
            for b in (0, 1):
                out[i, a, b] = np.count_nonzero(m & (y == a) & (yhat == b))
    return out


def twin_disparities(conf):
    """Disparities of (G, 2, 2) counts (or weighted counts) with plain Python."""
    sel, tpr, fpr = [], [], []
    for c in conf:
        tn, fp, fn, tp = c[0, 0], c[0, 1], c[1, 0], c[1, 1]
        sel.append((tp + fp) / (tn + fp + fn + tp))
        if tp + fn > 0:
            tpr.append(tp / (tp + fn))
        if fp + tn > 0:
            fpr.append(fp / (fp + tn))
    eo = max(tpr) - min(tpr)
    return {"demographic_parity_difference": max(sel) - min(sel),
            "demographic_parity_ratio": min(sel) / max(sel),
            "equal_opportunity_difference": eo,
            "equalized_odds_difference": max(eo, max(fpr) - min(fpr))}


# ------------------------------------------------------------------------------------------------
# point estimates against fairlearn


def test_point_estimates_equal_fairlearn():
    fl = pytest.importorskip("fairlearn.metrics")
    from sklearn.metrics import accuracy_score, precision_score

    d = make_data()
    res = fairness(d, label="y", prediction="yhat", sensitive="g", n_resamples=0)
    mf = fl.MetricFrame(metrics={"selection_rate": fl.selection_rate, "true_positive_rate": fl.true_positive_rate,
                                 "false_positive_rate": fl.false_positive_rate, "precision": precision_score,
                                 "accuracy": accuracy_score},
                        y_true=d["y"], y_pred=d["yhat"], sensitive_features=d["g"])
    table = res.groups.to_pandas().set_index("g")
    for rate in RATES:
        np.testing.assert_allclose(table[rate].to_numpy(), mf.by_group[rate].loc[table.index].to_numpy(),
                                   rtol=0, atol=1e-12)
    np.testing.assert_array_equal(table["n"].to_numpy(), [np.count_nonzero(d["g"] == k) for k in table.index])
    kw = {"y_true": d["y"], "y_pred": d["yhat"], "sensitive_features": d["g"]}
    assert res.demographic_parity_difference == pytest.approx(fl.demographic_parity_difference(**kw), abs=1e-12)
    assert res.demographic_parity_ratio == pytest.approx(fl.demographic_parity_ratio(**kw), abs=1e-12)
    assert res.equalized_odds_difference == pytest.approx(fl.equalized_odds_difference(**kw), abs=1e-12)
    # equal_opportunity_difference is in newer fairlearn; the TPR difference is the same thing
    eo = getattr(fl, "equal_opportunity_difference", None) or fl.true_positive_rate_difference
    assert res.equal_opportunity_difference == pytest.approx(eo(**kw), abs=1e-12)
    assert res.demographic_parity_difference > 0.05  # the data has a real disparity: not a vacuous check


def test_intersection_of_sensitive_columns_equals_fairlearn():
    fl = pytest.importorskip("fairlearn.metrics")
    pd = pytest.importorskip("pandas")
    d = make_data(extra=True)
    res = fairness(d, label="y", score="score", threshold=0.5, sensitive=["g", "age"], n_resamples=0)
    sf = pd.DataFrame({"g": d["g"], "age": d["age"]})
    kw = {"y_true": d["y"], "y_pred": (d["score"] >= 0.5).astype(int), "sensitive_features": sf}
    assert res.groups.num_rows == 6
    assert res.demographic_parity_difference == pytest.approx(fl.demographic_parity_difference(**kw), abs=1e-12)
    assert res.equalized_odds_difference == pytest.approx(fl.equalized_odds_difference(**kw), abs=1e-12)
    mf = fl.MetricFrame(metrics=fl.true_positive_rate, sensitive_features=sf, y_true=kw["y_true"],
                        y_pred=kw["y_pred"])
    t = res.groups.to_pandas().set_index(["g", "age"])
    np.testing.assert_allclose(t["true_positive_rate"].to_numpy(), mf.by_group.loc[t.index].to_numpy(), atol=1e-12)


def test_pvalues_equal_scipy_g_tests_and_wilson_equals_statsmodels():
    sm = pytest.importorskip("statsmodels.stats.proportion")
    d = make_data()
    res = fairness(d, label="y", prediction="yhat", sensitive="g", n_resamples=0)
    labels = res.groups.column("g").to_pylist()
    conf = twin_confusion(d["y"], d["yhat"], d["g"], labels)

    def g_test(t):
        return stats.chi2_contingency(t, correction=False, lambda_="log-likelihood")

    assert res.demographic_parity_difference_pvalue == pytest.approx(g_test(conf.sum(axis=1)).pvalue, rel=1e-9)
    assert res.equal_opportunity_difference_pvalue == pytest.approx(g_test(conf[:, 1]).pvalue, rel=1e-9)
    g0, g1 = g_test(conf[:, 0]), g_test(conf[:, 1])
    p_odds = stats.chi2.sf(g0.statistic + g1.statistic, g0.dof + g1.dof)
    assert res.equalized_odds_difference_pvalue == pytest.approx(p_odds, rel=1e-9)
    tp, fn = conf[:, 1, 1], conf[:, 1, 0]
    lo, hi = sm.proportion_confint(tp, tp + fn, alpha=0.05, method="wilson")
    np.testing.assert_allclose(res.groups.column("true_positive_rate_low").to_numpy(), lo, rtol=1e-10)
    np.testing.assert_allclose(res.groups.column("true_positive_rate_high").to_numpy(), hi, rtol=1e-10)


# ------------------------------------------------------------------------------------------------
# the bootstrap replicates against the slow NumPy twin


def _cell_twin(st, d, B, seed, keep=None):
    """The replicates drawn cell by cell from the documented scheme: Poisson(count) keyed by
    (seed, replicate, blake2b of the cell's labels)."""
    import hashlib

    from fastevals._kernels import poisson as kp

    keep = np.ones(len(d["y"]), bool) if keep is None else keep
    labels = sorted(set(d["g"][keep].tolist()))
    out = np.zeros((B, len(labels), 2, 2), np.int64)
    for gi, lab in enumerate(labels):
        for y in (0, 1):
            for k in (0, 1):
                n = int(np.sum(keep & (d["g"] == lab) & (d["y"] == y) & (d["yhat"] == k)))
                key = int.from_bytes(hashlib.blake2b(repr((None, lab, y, k)).encode(), digest_size=8).digest(),
                                     "little")
                out[:, gi, y, k] = kp.poisson_cell_counts_serial(np.uint64(seed), 0, B,
                                                                 np.array([key], np.uint64),
                                                                 np.array([float(n)]))[:, 0]
    return out


def test_replicate_counts_equal_the_per_cell_twin():
    d = make_data(n=3000, seed=2)
    B, seed = 64, 17
    st = FairnessState(label="y", prediction="yhat", sensitive="g", n_resamples=B, seed=seed).update(d)
    assert list(st.groups.labels) == sorted(set(d["g"].tolist()))
    twin = _cell_twin(st, d, B, seed).reshape(B, -1)
    np.testing.assert_array_equal(st.rep.reshape(B, -1), twin)
    # and the interval is the percentile interval of the twin's per-replicate disparities
    res = st.finalize()
    reps = [twin_disparities(twin[b].reshape(-1, 2, 2)) for b in range(B)]
    for name in DISPARITIES:
        lo, hi = np.quantile([r[name] for r in reps], [0.025, 0.975])
        ci = getattr(res, f"{name}_ci")
        assert (ci.low, ci.high) == pytest.approx((lo, hi), abs=1e-12)
        assert ci.low < getattr(res, name) < ci.high


def test_per_cell_draws_have_the_distribution_of_per_row_weights():
    """The shortcut is exact in distribution: a cell's replicate count (one Poisson(n) draw) and the
    sum of its rows' Poisson(1) weights (the per-row bootstrap) have the same law; cells independent."""
    d = make_data(n=400, seed=8)
    B = 4000
    st = FairnessState(label="y", prediction="yhat", sensitive="g", n_resamples=B, seed=3).update(d)
    W = poisson_weights(400, B, seed=99).astype(np.int64)
    labels = st.groups.labels
    gi = np.array([labels.index(x) for x in d["g"]])
    cell = (gi * 2 + d["y"]) * 2 + d["yhat"]
    per_row = np.stack([np.bincount(cell, weights=W[b], minlength=len(labels) * 4) for b in range(B)])
    per_cell = st.rep.reshape(B, -1)
    big = np.argsort(st.own.reshape(-1))[-3:]  # the three largest cells
    for c in big:
        a, b = per_cell[:, c], per_row[:, c]
        assert stats.ks_2samp(a, b).pvalue > 1e-3
        n = st.own.reshape(-1)[c]
        assert abs(a.mean() - n) < 5 * np.sqrt(n / B) and abs(a.var() / n - 1) < 0.15
    r = np.corrcoef(per_cell[:, big[-1]], per_cell[:, big[-2]])[0, 1]
    assert abs(r) < 4 / np.sqrt(B)


def test_replicates_do_not_depend_on_batches_or_row_order():
    d = make_data(n=5000, seed=14)
    kw = dict(label="y", prediction="yhat", sensitive="g", n_resamples=100, seed=6)
    whole = FairnessState(**kw).update(d)
    small = FairnessState(**kw, batch_size=333).update(d)
    perm = np.random.default_rng(1).permutation(5000)
    shuffled = FairnessState(**kw).update({k: v[perm] for k, v in d.items()})
    assert whole == small == shuffled
    np.testing.assert_array_equal(whole.rep, shuffled.rep)


def test_nulls_drop_leaves_the_rows_out():
    d = make_data(n=2000, seed=4)
    g = pa.array(d["g"], mask=np.arange(2000) % 7 == 3)
    table = pa.table({"y": d["y"], "yhat": d["yhat"], "g": g})
    with pytest.raises(ValueError, match=r"column 'g' \(given as `sensitive`\) has null values"):
        fairness(table, label="y", prediction="yhat", sensitive="g", n_resamples=10, seed=1)
    st = FairnessState(label="y", prediction="yhat", sensitive="g", n_resamples=16, seed=5, nulls="drop",
                       batch_size=300).update(table)
    keep = np.arange(2000) % 7 != 3
    assert st.n_dropped == int((~keep).sum())
    np.testing.assert_array_equal(st.rep.reshape(16, -1), _cell_twin(st, d, 16, 5, keep).reshape(16, -1))


# ------------------------------------------------------------------------------------------------
# properties: merge, streaming, Parquet, Dask, sweep


def test_merge_equals_concatenation_and_streaming_equals_in_memory(tmp_path):
    d = make_data(n=5000, seed=5, extra=True)
    kw = dict(label="y", score="score", sensitive="g", by="age", thresholds=[0.3, 0.6], n_resamples=30, seed=3)
    whole = FairnessState(**kw).update(d)
    # parts in a different order of first appearance of groups
    a = FairnessState(**kw).update({k: v[2000:] for k, v in d.items()}, row_offset=2000)
    b = FairnessState(**kw).update({k: v[:2000] for k, v in d.items()})
    assert a.merge(b) == whole
    assert b.merge(a) == whole
    streamed = FairnessState(**kw, batch_size=333).update(d)
    assert streamed == whole
    assert FairnessState.from_bytes(whole.to_bytes()) == whole
    path = tmp_path / "log.parquet"
    pq.write_table(pa.table(d), path, row_group_size=700)
    res_file = fairness(str(path), **kw)
    res_mem = fairness(d, **kw)
    assert res_file.to_dict() == res_mem.to_dict()


def test_dask_equals_in_process(client, write_parts, tmp_path):
    dd = pytest.importorskip("dask.dataframe")
    d = make_data(n=4000, seed=6)
    table = pa.table(d)
    write_parts(table, tmp_path / "parts", 4, 1)
    kw = dict(label="y", prediction="yhat", sensitive="g", n_resamples=40, seed=8)
    local = fairness(table, **kw)
    on_dask = fairness(dd.read_parquet(str(tmp_path / "parts")), **kw)
    assert on_dask.to_dict() == local.to_dict()
    via_engine = fairness(str(tmp_path / "parts"), engine="dask", **kw)
    assert via_engine.to_dict() == local.to_dict()


def test_threshold_sweep_equals_one_run_per_threshold():
    d = make_data(n=4000, seed=7)
    cuts = [0.2, 0.4, 0.6, 0.8]
    B = 2000
    res = fairness(d, label="y", score="score", thresholds=cuts, threshold=0.5, sensitive="g", n_resamples=B,
                   seed=2)
    curve = res.curve.to_pandas().set_index("threshold")
    assert list(curve.index) == [0.2, 0.4, 0.5, 0.6, 0.8]
    for t in curve.index:
        one = fairness({**d, "pred": (d["score"] >= t).astype(np.int8)}, label="y", prediction="pred",
                       sensitive="g", n_resamples=B, seed=5)
        for name in DISPARITIES:
            assert curve.loc[t, name] == pytest.approx(getattr(one, name), abs=1e-12)
            # the sweep draws per score bin, the single run per prediction cell: the same law (sums of
            # independent Poisson draws), different numbers; B = 2,000 puts the ends within 15% of the width
            low, high = getattr(one, f"{name}_ci")
            tol = 0.15 * (high - low) + 1e-12
            assert abs(curve.loc[t, f"{name}_low"] - low) < tol and abs(curve.loc[t, f"{name}_high"] - high) < tol
    assert res.demographic_parity_difference == pytest.approx(curve.loc[0.5, "demographic_parity_difference"])


def test_by_segments_estimates_equal_runs_on_each_segment():
    d = make_data(n=5000, seed=8, extra=True)
    res = fairness(d, label="y", prediction="yhat", sensitive="g", by="age", n_resamples=20, seed=1)
    disp = res.disparities.to_pandas()
    for seg in ("old", "young"):
        m = d["age"] == seg
        one = fairness({k: v[m] for k, v in d.items()}, label="y", prediction="yhat", sensitive="g", n_resamples=0)
        rows = disp[disp["age"] == seg].set_index("metric")
        for name in DISPARITIES:
            assert rows.loc[name, "estimate"] == pytest.approx(getattr(one, name), abs=1e-12)
            assert rows.loc[name, "pvalue"] == pytest.approx(getattr(one, f"{name}_pvalue"), rel=1e-12)
    whole = fairness(d, label="y", prediction="yhat", sensitive="g", n_resamples=0)
    assert res.demographic_parity_difference == pytest.approx(whole.demographic_parity_difference, abs=1e-15)


# ------------------------------------------------------------------------------------------------
# coverage


def test_disparity_interval_coverage():
    """95% intervals of the DP and EO differences cover the true values at the nominal rate."""
    reps, n, hits_dp, hits_eo, hits_odds = 300, 1500, 0, 0, 0
    p_sel = {0: (0.2, 0.5), 1: (0.35, 0.6), 2: (0.3, 0.75)}  # group: (P(yhat=1|y=0), P(yhat=1|y=1))
    true_tpr = [p_sel[k][1] for k in range(3)]
    true_sel = [0.5 * (p_sel[k][0] + p_sel[k][1]) for k in range(3)]
    true_fpr = [p_sel[k][0] for k in range(3)]
    true_odds = max(max(true_tpr) - min(true_tpr), max(true_fpr) - min(true_fpr))
    for r in range(reps):
        rng = np.random.default_rng(1000 + r)
        g = rng.integers(0, 3, n)
        y = rng.integers(0, 2, n)
        p = np.array([p_sel[k] for k in range(3)])[g, y]
        yhat = (rng.uniform(size=n) < p).astype(np.int8)
        res = fairness({"y": y, "yhat": yhat, "g": g}, label="y", prediction="yhat", sensitive="g",
                       n_resamples=300, seed=r)
        hits_dp += (max(true_sel) - min(true_sel)) in res.demographic_parity_difference_ci
        hits_eo += (max(true_tpr) - min(true_tpr)) in res.equal_opportunity_difference_ci
        hits_odds += true_odds in res.equalized_odds_difference_ci
    for hits in (hits_dp, hits_eo, hits_odds):
        assert stats.binomtest(hits, reps, 0.95).pvalue > 0.001, (hits_dp, hits_eo, hits_odds)


# ------------------------------------------------------------------------------------------------
# errors and undefined statistics


def test_bad_input_errors_are_clear():
    d = make_data(n=200)
    with pytest.raises(ValueError, match="unknown column 'nope'"):
        fairness(d, label="nope", prediction="yhat", sensitive="g")
    with pytest.raises(ValueError, match=r"column 'score' \(given as `prediction`\) must hold 0/1"):
        fairness(d, label="y", prediction="score", sensitive="g")
    with pytest.raises(ValueError, match="exactly one of `prediction`"):
        fairness(d, label="y", prediction="yhat", score="score", sensitive="g")
    with pytest.raises(ValueError, match="needs a `score` column"):
        fairness(d, label="y", prediction="yhat", thresholds=[0.5], sensitive="g")
    with pytest.raises(ValueError, match="at least two groups"):
        fairness({**d, "g": np.array(["a"] * 200)}, label="y", prediction="yhat", sensitive="g")
    with pytest.raises(ValueError, match="used twice"):
        fairness(d, label="y", prediction="yhat", sensitive="y")
    with pytest.raises(ValueError, match="empty input"):
        fairness({k: v[:0] for k, v in d.items()}, label="y", prediction="yhat", sensitive="g")
    with pytest.raises(ValueError, match="`n_resamples` must be >= 0"):
        fairness(d, label="y", prediction="yhat", sensitive="g", n_resamples=-1)
    with pytest.raises(ValueError, match="backend='cuda' is not available"):
        fairness(d, label="y", prediction="yhat", sensitive="g", backend="cuda")
    with pytest.raises(TypeError, match=r"column 'g' \(given as `sensitive`\)"):
        fairness({**d, "g": np.arange(200.0)}, label="y", prediction="yhat", sensitive="g")


def test_undefined_rates_are_explained():
    d = make_data(n=600, seed=9)
    y = d["y"].copy()
    y[d["g"] == "c"] = 0  # group c has no positives: its TPR is undefined
    res = fairness({**d, "y": y}, label="y", prediction="yhat", sensitive="g", n_resamples=20, seed=1)
    assert any("no rows with label 1 ('c')" in n for n in res.notes)
    t = res.groups.to_pandas().set_index("g")
    assert np.isnan(t.loc["c", "true_positive_rate"])
    tpr = t["true_positive_rate"].dropna()
    assert res.equal_opportunity_difference == pytest.approx(tpr.max() - tpr.min(), abs=1e-12)
    assert "note:" in str(res)


# ------------------------------------------------------------------------------------------------
# result, plot, CLI


def test_result_text_dict_and_plots(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    d = make_data(n=1500, seed=10)
    res = fairness(d, label="y", score="score", thresholds=[0.3, 0.7], sensitive="g", n_resamples=30, seed=4)
    text = str(res)
    assert "demographic parity difference" in text and "equalized odds difference" in text
    assert "selection_rate" in text and "tpr" in text
    assert res.to_arrow().num_rows == 3
    json.dumps(res.to_dict())
    ax = res.plot(path=tmp_path / "bars.png")
    assert len(ax.patches) == 4 and (tmp_path / "bars.png").stat().st_size > 0
    ax2 = res.plot_curve(path=tmp_path / "curve.png")
    assert len(ax2.lines) == 3
    import matplotlib.pyplot as plt

    plt.close("all")


def test_cli_prints_the_result_and_json(tmp_path, capsys):
    from fastevals._cli.fairness import main

    d = make_data(n=1000, seed=11)
    path = tmp_path / "log.parquet"
    pq.write_table(pa.table(d), path)
    assert main(["fairness", str(path), "--label", "y", "--prediction", "yhat", "--sensitive", "g",
                 "--resamples", "50", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    expected = fairness(str(path), label="y", prediction="yhat", sensitive="g", n_resamples=50, seed=3)
    assert out.strip() == str(expected).strip()
    assert main(["fairness", str(path), "--label", "y", "--prediction", "yhat", "--sensitive", "g",
                 "--resamples", "20", "--seed", "3", "--json"]) == 0
    parsed = json.loads(capsys.readouterr().out)
    assert parsed["n"] == 1000 and len(parsed["table"]) == 3
    assert main(["fairness", str(path), "--label", "nope", "--prediction", "yhat", "--sensitive", "g"]) == 2
    assert "unknown column 'nope'" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# robustness


def _mix(z):
    z = np.asarray(z, dtype=np.uint64)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def twin_perturb(X, delta, P, method, seed, first=0):
    """The perturbation scheme in plain NumPy (the docstring of fastevals._kernels.fairness)."""
    out = []
    for r, x in enumerate(X):
        for p in range(P):
            k = _mix(_mix(_mix(np.array([seed], np.uint64))) + np.array([first + r + 1], np.uint64) * GOLDEN)
            key = _mix(k + np.array([p + 1], np.uint64) * GOLDEN)
            if method == "zero":
                words = _mix(key + (np.arange(len(x), dtype=np.uint64) + np.uint64(1)) * GOLDEN)
                xp = x.copy()
                d2 = 0.0
                for f in np.argsort(words, kind="mergesort"):
                    c = x[f] * x[f]
                    if d2 + c <= delta * delta:
                        xp[f] = 0.0
                        d2 += c
            else:
                j = np.arange(2 * len(x), dtype=np.uint64)
                u = (_mix(key + (j + np.uint64(1)) * GOLDEN) >> np.uint64(11)).astype(np.float64) * 2.0**-53
                z = np.sqrt(-2.0 * np.log(1.0 - u[0::2])) * np.cos(2.0 * np.pi * u[1::2])
                xp = x + z * (delta / np.sqrt((z * z).sum()))
            out.append(xp)
    return np.array(out)


def test_perturbations_equal_numpy_twin():
    rng = np.random.default_rng(12)
    X = rng.normal(size=(25, 9)) * rng.uniform(0.1, 5, 9)
    for delta in (0.0, 0.5, 3.0, 100.0):
        zp = perturb(X, delta=delta, n_perturbations=7, method="zero", seed=42, first_example=5)
        np.testing.assert_array_equal(zp, twin_perturb(X, delta, 7, "zero", 42, first=5))
        assert np.all(np.linalg.norm(zp - np.repeat(X, 7, axis=0), axis=1) <= delta * (1 + 1e-12))
        gp = perturb(X, delta=delta, n_perturbations=7, method="gaussian", seed=42, first_example=5)
        np.testing.assert_allclose(gp, twin_perturb(X, delta, 7, "gaussian", 42, first=5), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(np.linalg.norm(gp - np.repeat(X, 7, axis=0), axis=1), delta, atol=1e-9)
    # everything zeroed at a delta beyond the row's norm; nothing at zero
    assert np.all(perturb(X, delta=1e6, n_perturbations=2, seed=1) == 0)
    np.testing.assert_array_equal(perturb(X, delta=0.0, n_perturbations=2, seed=1), np.repeat(X, 2, axis=0))
    # parallel == serial twin (large input)
    big = rng.normal(size=(6000, 30))
    out_p = np.empty((6000 * 3, 30))
    out_s = np.empty((6000 * 3, 30))
    kf.perturb_parallel(big, 0, 3, np.uint64(5), 0, 2.0, out_p)
    kf.perturb_serial(big, 0, 3, np.uint64(5), 0, 2.0, out_s)
    np.testing.assert_array_equal(out_p, out_s)


@pytest.fixture(scope="module")
def cancer_models():
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_breast_cancer(return_X_y=True)
    lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, y)
    dt = DecisionTreeClassifier(max_depth=4, random_state=0).fit(X, y)
    return X, {"logreg": lambda a: lr.predict_proba(a)[:, 1], "tree": lambda a: dt.predict_proba(a)[:, 1]}


def test_robustness_equals_plain_twin_on_breast_cancer(cancer_models):
    X, models = cancer_models
    deltas, eps, P = [0.05, 1.0, 50.0], 0.1, 8
    res = robustness(models, X, deltas=deltas, epsilon=eps, n_perturbations=P, seed=3, tolerance=0.1,
                     batch_size=500)
    t = res.table.to_pandas().set_index(["model", "delta"])
    nonrob = {}
    for name, f in models.items():
        base = f(X)
        robust_flags = []
        for delta in deltas:
            xp = twin_perturb(X, delta, P, "zero", 3)
            mv = np.abs(f(xp) - np.repeat(base, P)).reshape(len(X), P)
            share = float(np.mean(mv.max(axis=1) > eps))
            nonrob[name, delta] = mv.max(axis=1) > eps
            row = t.loc[(name, delta)]
            assert row["nonrobust_share"] == pytest.approx(share, abs=1e-15)
            assert row["mean_movement"] == pytest.approx(mv.mean(), rel=1e-12)
            assert row["max_movement"] == pytest.approx(mv.max(), rel=1e-12)
            assert row["perturbation_share"] == pytest.approx(np.mean(mv > eps), abs=1e-15)
            k = int(nonrob[name, delta].sum())
            lo, hi = stats.binomtest(k, len(X)).proportion_ci(0.95, method="wilson")
            assert (row["low"], row["high"]) == pytest.approx((lo, hi), abs=1e-12)
            robust_flags.append(share <= 0.1)
        prefix = [d for d, _ in zip(deltas, np.cumprod(robust_flags)) if _]
        assert res.largest_robust_delta[name] == (prefix[-1] if prefix else None)
    # the paired difference: Agresti-Min interval, McNemar exact p
    cmp = res.comparisons.to_pandas().set_index("delta")
    a, b = nonrob["logreg", 1.0], nonrob["tree", 1.0]
    n10, n01, n = int(np.sum(a & ~b)), int(np.sum(~a & b)), len(a)
    p10, p01 = (n10 + 0.5) / (n + 2), (n01 + 0.5) / (n + 2)
    se = np.sqrt((p10 + p01 - (p10 - p01) ** 2) / (n + 2))
    z = stats.norm.ppf(0.975)
    assert cmp.loc[1.0, "difference"] == pytest.approx((n10 - n01) / n, abs=1e-15)
    assert (cmp.loc[1.0, "low"], cmp.loc[1.0, "high"]) == pytest.approx((p10 - p01 - z * se, p10 - p01 + z * se),
                                                                        abs=1e-12)
    assert cmp.loc[1.0, "pvalue"] == pytest.approx(stats.binomtest(n10, n10 + n01).pvalue, rel=1e-12)


def test_robustness_accepts_tables_and_gives_the_same_answer():
    pd = pytest.importorskip("pandas")
    pl = pytest.importorskip("polars")
    rng = np.random.default_rng(13)
    X = rng.normal(size=(120, 4))
    names = ["a", "b", "c", "d"]
    w = np.array([1.0, -2.0, 0.5, 0.0])

    def lin(a):
        if isinstance(a, pa.Table):
            a = np.column_stack([a.column(c).to_numpy() for c in names])
        elif hasattr(a, "to_numpy"):
            a = a.to_numpy()
        return a @ w

    kw = dict(deltas=[0.1, 0.5, 2.0], epsilon=0.3, n_perturbations=10, seed=5, method="gaussian")
    ref = robustness(lin, X, **kw)
    for table in (pd.DataFrame(X, columns=names), pl.DataFrame(X, schema=names, orient="row"),
                  pa.table({c: X[:, k] for k, c in enumerate(names)})):
        got = robustness(lin, table, **kw).table
        # the same perturbations; the model's matmul may round differently on another memory layout
        for c in ("nonrobust_share", "low", "high", "perturbation_share", "robust"):
            assert got.column(c).to_pylist() == ref.table.column(c).to_pylist()
        for c in ("mean_movement", "max_movement", "mean_distance"):
            np.testing.assert_allclose(got.column(c).to_numpy(), ref.table.column(c).to_numpy(), rtol=1e-12)
    assert ref.table.column("nonrobust_share").to_pylist()[0] == 0.0
    assert ref.table.column("nonrobust_share").to_pylist()[-1] > 0.5
    assert "Robustness to gaussian perturbations" in str(ref)


def test_robustness_errors():
    X = np.ones((5, 3))
    with pytest.raises(TypeError, match="`predict` must be a callable"):
        robustness(3, X, deltas=[1.0], epsilon=0.1)
    with pytest.raises(ValueError, match="`deltas` must be a non-empty"):
        robustness(lambda a: a[:, 0], X, deltas=[-1.0], epsilon=0.1)
    with pytest.raises(ValueError, match="returned 1 prediction"):
        robustness(lambda a: a[:1, 0], X, deltas=[1.0], epsilon=0.1)
    with pytest.raises(ValueError, match="NaN or infinite feature"):
        robustness(lambda a: a[:, 0], np.full((2, 2), np.nan), deltas=[1.0], epsilon=0.1)
    with pytest.raises(ValueError, match="`method` must be one of"):
        robustness(lambda a: a[:, 0], X, deltas=[1.0], epsilon=0.1, method="swap")


def test_public_names_resolve():
    assert fastevals.FairnessResult.__name__ == "FairnessResult"
    assert fastevals.RobustnessResult.__name__ == "RobustnessResult"


@pytest.mark.large
def test_fa1_full_size_point_estimates_and_replicate_totals():
    """FA1 at full size (10M rows, 8 groups, B = 1,000): exact counts, sane replicates."""
    rng = np.random.default_rng(15)
    n = 10_000_000
    g = rng.integers(0, 8, n).astype(np.int8)
    y = (rng.random(n) < 0.4).astype(np.int8)
    yhat = (rng.random(n) < 0.25 + 0.3 * y + 0.02 * g).astype(np.int8)
    st = FairnessState(label="y", prediction="yhat", sensitive="g", n_resamples=1000, seed=2)
    st.update({"y": y, "yhat": yhat, "g": g})
    cell = (g.astype(np.int64) * 2 + y) * 2 + yhat
    np.testing.assert_array_equal(st.own.reshape(-1), np.bincount(cell, minlength=32))
    totals = st.rep.reshape(1000, -1).sum(axis=1)  # a sum of independent Poisson draws: Poisson(n)
    assert abs(totals.mean() - n) < 5 * np.sqrt(n / 1000)
    assert stats.kstest((totals - n) / np.sqrt(n), "norm").pvalue > 0.001
