"""Distribution shift: profile, drift (exact and profile mode), concept drift, adversarial validation.

References: scipy.stats.ks_2samp / wasserstein_distance / chi2_contingency,
scipy.spatial.distance.jensenshannon, sklearn.metrics.roc_auc_score, and slow NumPy twins.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

import fastevals
from fastevals._drift import _math
from fastevals._drift.state import Profile, pilot_edges
from fastevals._kernels import drift as kernels

TOL = 1e-10


def _data(rng, n, shift=0.0, cats=("a", "b", "c"), p=None):
    return {
        "x": rng.normal(shift, 1.0, n),
        "e": rng.exponential(1.0 + shift, n),
        "k": rng.integers(0, 6, n),
        "c": rng.choice(list(cats), n, p=p),
    }


# ----------------------------------------------------------------------------------------------------
# exact mode against scipy


@pytest.mark.parametrize("n_ref,n_cur", [(300, 200), (500, 500), (20_000, 3_000)])
def test_exact_mode_matches_scipy(n_ref, n_cur):
    rng = np.random.default_rng(n_ref)
    ref, cur = _data(rng, n_ref), _data(rng, n_cur, shift=0.1)
    res = fastevals.drift(ref, cur, adjust=None)
    t = {r["column"]: r for r in res.table.to_pylist()}
    assert res.mode == "exact"
    for c in ("x", "e", "k"):  # k: integers with many ties
        ks = stats.ks_2samp(ref[c], cur[c])
        assert t[c]["test"] == "ks"
        assert t[c]["statistic"] == pytest.approx(float(ks.statistic), abs=TOL)
        assert t[c]["pvalue"] == pytest.approx(float(ks.pvalue), rel=TOL, abs=1e-300)
        assert t[c]["wasserstein"] == pytest.approx(stats.wasserstein_distance(ref[c], cur[c]), rel=TOL, abs=TOL)
        assert t[c]["pvalue_adjusted"] == t[c]["pvalue"]
        assert t[c]["mean_reference"] == pytest.approx(ref[c].mean(), rel=1e-12)
    # categorical: G-test of the 2 x L table
    labels = sorted(set(ref["c"]) | set(cur["c"]))
    table = np.array([[np.sum(ref["c"] == v) for v in labels], [np.sum(cur["c"] == v) for v in labels]])
    g, p, _, _ = stats.chi2_contingency(table, correction=False, lambda_="log-likelihood")
    assert t["c"]["test"] == "g"
    assert t["c"]["statistic"] == pytest.approx(g, rel=TOL)
    assert t["c"]["pvalue"] == pytest.approx(p, rel=1e-9)


def test_chi2_option_matches_scipy():
    rng = np.random.default_rng(3)
    ref, cur = _data(rng, 800), _data(rng, 500, p=[0.5, 0.3, 0.2])
    res = fastevals.drift(ref, cur, columns=["c"], categorical_test="chi2")
    labels = sorted(set(ref["c"]))
    table = np.array([[np.sum(ref["c"] == v) for v in labels], [np.sum(cur["c"] == v) for v in labels]])
    chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
    row = res.table.to_pylist()[0]
    assert row["test"] == "chi2"
    assert row["statistic"] == pytest.approx(chi2, rel=TOL)
    assert row["pvalue"] == pytest.approx(p, rel=1e-9)


def _slow_coarse_counts(ref_vals, cur_vals, edges, n_groups):
    """Slow twin: fine bins by searchsorted, grouped into reference-quantile groups."""
    edges = np.asarray(edges)
    k = edges.size - 1

    def fine(v):
        b = np.searchsorted(edges, v, side="right")
        b = np.where(v > edges[-1], k + 1, np.minimum(b, k))
        return np.bincount(b, minlength=k + 2)

    cr, cc = fine(ref_vals), fine(cur_vals)
    n = cr.sum()
    before = np.concatenate([[0], np.cumsum(cr)[:-1]])
    groups = np.minimum(((before + cr / 2) / n * n_groups).astype(int), n_groups - 1)
    _, ids = np.unique(groups, return_inverse=True)
    return cr, cc, np.bincount(ids, weights=cr), np.bincount(ids, weights=cc, minlength=ids.max() + 1)


def test_distances_match_scipy_and_slow_twin():
    rng = np.random.default_rng(5)
    ref, cur = _data(rng, 5000), _data(rng, 3000, shift=0.3, p=[0.2, 0.5, 0.3])
    res = fastevals.drift(ref, cur, n_bins=200, distance_bins=10)
    t = {r["column"]: r for r in res.table.to_pylist()}
    prof = fastevals.profile(ref, n_bins=200)
    for c in ("x", "e"):
        cr, _, gr, gc = _slow_coarse_counts(ref[c], cur[c], prof.edges[c], 10)
        np.testing.assert_array_equal(prof.counts(c)[0], cr)
        p, q = gr / gr.sum(), gc / gc.sum()
        assert t[c]["jensen_shannon"] == pytest.approx(jensenshannon(p, q, base=2), rel=TOL)
        assert t[c]["hellinger"] == pytest.approx(np.sqrt(1 - np.sum(np.sqrt(p * q))), rel=TOL)
        pe, qe = np.where(p > 0, p, 1e-4), np.where(q > 0, q, 1e-4)
        assert t[c]["psi"] == pytest.approx(np.sum((qe - pe) * np.log(qe / pe)), rel=TOL)
    labels = ["a", "b", "c"]
    p = np.array([np.mean(ref["c"] == v) for v in labels])
    q = np.array([np.mean(cur["c"] == v) for v in labels])
    assert t["c"]["jensen_shannon"] == pytest.approx(jensenshannon(p, q, base=2), rel=TOL)
    assert t["c"]["wasserstein"] is None


def test_kernel_binning_and_threads():
    import numba

    kernels.warmup()  # every kernel compiles (or loads from the cache) on tiny inputs
    rng = np.random.default_rng(11)
    v = np.concatenate([rng.normal(size=200_000), [-50.0, 50.0]])
    seg = rng.integers(0, 3, v.size).astype(np.int64)
    edges = np.asarray(pilot_edges(v[:5000], 64))
    v[:10] = edges[:10]  # values exactly on edges
    k = edges.size - 1
    lut, scale = kernels.bin_lookup(edges)
    slow = np.zeros((3, k + 2), dtype=np.int64)
    b = np.searchsorted(edges, v, side="right")
    b = np.where(v > edges[-1], k + 1, np.minimum(b, k))
    np.add.at(slow, (seg, b), 1)
    shift = 0.3
    results = []
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        numba.set_num_threads(threads)
        counts, mom = np.zeros((3, k + 2), dtype=np.int64), kernels.empty_moments(3)
        kernels.bin_values_parallel(v, seg, True, edges, lut, scale, shift, counts, mom)
        results.append((counts, mom))
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    counts_s, mom_s = np.zeros((3, k + 2), dtype=np.int64), kernels.empty_moments(3)
    kernels.bin_values_serial(v, seg, True, edges, lut, scale, shift, counts_s, mom_s)
    counts_1, mom_1 = np.zeros((1, k + 2), dtype=np.int64), kernels.empty_moments(1)
    kernels.bin_values_parallel(v, seg[:0], False, edges, lut, scale, shift, counts_1, mom_1)
    np.testing.assert_array_equal(counts_1[0], slow.sum(axis=0))
    d = v - shift
    np.testing.assert_allclose(mom_1[0], [v.size, d.sum(), (d * d).sum(), v.min(), v.max()], rtol=1e-10)
    for counts, mom in [*results, (counts_s, mom_s)]:
        np.testing.assert_array_equal(counts, slow)
        for s in range(3):
            x = v[seg == s] - shift
            np.testing.assert_allclose(mom[s], [x.size, x.sum(), (x * x).sum(), x.min() + shift, x.max() + shift],
                                       rtol=1e-10)
    np.testing.assert_array_equal(results[0][1], results[1][1])  # same bits on 1 or N threads


# ----------------------------------------------------------------------------------------------------
# profile mode: stated bounds against exact mode


@pytest.mark.parametrize("seed", range(4))
def test_profile_mode_within_stated_bounds(seed):
    rng = np.random.default_rng(100 + seed)
    shift = [0.0, 0.05, 0.3, 1.0][seed]
    ref, cur = _data(rng, 30_000), _data(rng, 4_000, shift=shift)
    prof = fastevals.profile(ref, n_bins=300, pilot_rows=5_000)
    binned = {r["column"]: r for r in fastevals.drift(prof, cur).table.to_pylist()}
    exact = {r["column"]: r for r in fastevals.drift(ref, cur, n_bins=300, pilot_rows=5_000).table.to_pylist()}
    cur_prof = Profile(edges=prof.edges, types=prof.types).update(cur)
    for c in ("x", "e", "k"):
        d, bound = binned[c]["statistic"], binned[c]["ks_error_bound"]
        assert d - 1e-12 <= exact[c]["statistic"] <= d + bound + 1e-12
        cr, cc = prof.counts(c)[0], cur_prof.counts(c)[0]
        max_mass = max((cr / cr.sum()).max(), (cc / cc.sum()).max())
        assert bound <= max_mass + 1e-12  # the documented bound
        w, werr = binned[c]["wasserstein"], binned[c]["wasserstein_error_bound"]
        assert abs(w - exact[c]["wasserstein"]) <= werr + 1e-12
        # the distances do not depend on the mode
        for k in ("psi", "jensen_shannon", "hellinger"):
            assert binned[c][k] == pytest.approx(exact[c][k], rel=1e-12)
    assert binned["x"]["ks_error_bound"] < 0.01  # continuous data: about 1 / n_bins
    assert binned["c"]["statistic"] == exact["c"]["statistic"]


# ----------------------------------------------------------------------------------------------------
# state properties


def _table(d):
    return pa.table({k: pa.array(v) for k, v in d.items()})


def test_merge_streaming_bytes_parquet(tmp_path):
    rng = np.random.default_rng(21)
    data = _table({**_data(rng, 6000), "g": rng.choice(["u", "v"], 6000)})
    kw = dict(by="g", n_bins=50, keep_values=True)
    whole = fastevals.profile(data, **kw)
    a = Profile(**{**kw, "edges": whole.edges, "types": whole.types}).update(data.slice(0, 2500))
    b = Profile(**{**kw, "edges": whole.edges, "types": whole.types}).update(data.slice(2500))
    merged = a.merge(b)
    _assert_same(merged, whole)
    _assert_same(b.merge(a), whole, order_free=True)
    streamed = fastevals.profile(data, batch_size=700, **kw)
    _assert_same(streamed, whole)
    back = Profile.from_bytes(whole.to_bytes())
    assert back == whole
    assert fastevals.state_from_bytes(whole.to_bytes()) == whole
    path = tmp_path / "ref.parquet"
    pq.write_table(data, path, row_group_size=1000)
    _assert_same(fastevals.profile(str(path), **kw), whole)
    with pytest.raises(ValueError, match="different options"):
        a.merge(Profile(**{**kw, "n_bins": 20}).update(data.slice(0, 100)))


def _assert_same(x, y, order_free=False):
    assert x.n == y.n and x.types == y.types and x.edges == y.edges
    if order_free:
        assert sorted(x.segments) == sorted(y.segments)
        return
    assert x.segments == y.segments
    for c, t in x.types.items():
        np.testing.assert_array_equal(x.counts(c), y.counts(c))
        if t == "numeric":
            np.testing.assert_allclose(x.moments(c), y.moments(c), rtol=1e-9)
            np.testing.assert_array_equal(x.values(c)[1], y.values(c)[1])
        else:
            assert x.categories(c) == y.categories(c)


def test_by_segments_equal_per_segment_runs():
    rng = np.random.default_rng(31)
    ref = {**_data(rng, 4000), "g": rng.integers(0, 3, 4000)}
    cur = {**_data(rng, 3000, shift=0.2), "g": rng.integers(0, 3, 3000)}
    res = fastevals.drift(ref, cur, by="g", adjust=None, categorical=None)
    rows = res.table.to_pylist()
    assert {r["segment"] for r in rows} == {"0", "1", "2"}
    for r in rows:
        s = int(r["segment"])
        if r["column"] in ("x", "e"):
            a = ref[r["column"]][ref["g"] == s]
            b = cur[r["column"]][cur["g"] == s]
            ks = stats.ks_2samp(a, b)
            assert r["statistic"] == pytest.approx(float(ks.statistic), abs=TOL)
            assert r["pvalue"] == pytest.approx(float(ks.pvalue), rel=TOL)
            assert r["wasserstein"] == pytest.approx(stats.wasserstein_distance(a, b), rel=TOL)
    full = fastevals.drift(ref, cur, by="g")
    p = np.array([r["pvalue"] for r in full.table.to_pylist()])
    np.testing.assert_allclose(full.table.column("pvalue_adjusted").to_numpy(), _holm(p), rtol=1e-12)


def _holm(p):
    m = p.size
    order = np.argsort(p)
    adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adj, 1)
    return out


def test_concept_drift_error_rate_and_auc():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(41)

    def make(n, noise):
        y = rng.integers(0, 2, n)
        p = np.round(np.clip(0.5 + (y - 0.5) * 0.4 + rng.normal(0, noise, n), 0, 1), 2)
        return {"x": rng.normal(size=n), "y": y, "p": p}

    ref, cur = make(4000, 0.2), make(3000, 0.4)
    res = fastevals.drift(ref, cur, label="y", prediction="p", confidence=0.9)
    t = {r["column"]: r for r in res.table.to_pylist()}
    assert t["y"]["type"] == "label" and t["y"]["test"] == "g"
    perf = {r["metric"]: r for r in res.performance.to_pylist()}
    e_r = np.mean((ref["p"] >= 0.5) != ref["y"])
    e_c = np.mean((cur["p"] >= 0.5) != cur["y"])
    assert perf["error_rate"]["reference"] == pytest.approx(e_r, abs=1e-15)
    assert perf["error_rate"]["current"] == pytest.approx(e_c, abs=1e-15)
    se = math.sqrt(e_r * (1 - e_r) / 4000 + e_c * (1 - e_c) / 3000)
    assert perf["error_rate"]["standard_error"] == pytest.approx(se, rel=1e-12)
    z = stats.norm.ppf(0.95)
    assert perf["error_rate"]["low"] == pytest.approx(e_c - e_r - z * se, rel=1e-9)
    # scores on 0.01 steps: every score is its own fine bin, so the binned AUC is exact
    assert perf["auc"]["reference"] == pytest.approx(roc_auc_score(ref["y"], ref["p"]), abs=1e-12)
    # current scores the reference's pilot never saw share fine bins: off by at most half the tied mass
    cur_prof = Profile(label="y", prediction="p", edges=res_edges(ref), types={"x": "numeric", "y": "label",
                                                                              "p": "numeric"}).update(cur)
    sc = cur_prof.score_counts()[0]
    bound = 0.5 * np.sum(sc[0] * sc[1]) / (sc[0].sum() * sc[1].sum())
    assert abs(perf["auc"]["current"] - roc_auc_score(cur["y"], cur["p"])) <= bound
    assert perf["auc"]["difference"] < 0 and perf["auc"]["pvalue"] < 1e-6


def res_edges(ref):
    return fastevals.profile(ref, label="y", prediction="p").edges


def test_class_prediction_error_rate():
    rng = np.random.default_rng(43)
    y = rng.choice(["cat", "dog"], 1000)
    pred = np.where(rng.random(1000) < 0.8, y, "dog")
    y2 = rng.choice(["cat", "dog"], 800)
    pred2 = np.where(rng.random(800) < 0.6, y2, "cat")
    res = fastevals.drift({"y": y, "yhat": pred}, {"y": y2, "yhat": pred2}, label="y", prediction="yhat")
    perf = res.performance.to_pylist()
    assert [r["metric"] for r in perf] == ["error_rate"]
    assert perf[0]["reference"] == pytest.approx(np.mean(y != pred))
    assert perf[0]["current"] == pytest.approx(np.mean(y2 != pred2))


# ----------------------------------------------------------------------------------------------------
# statistical behaviour


def _rejections(rng, reps, n, shift, p_cur=None):
    hits = {"x": 0, "k": 0, "c": 0}
    for _ in range(reps):
        ref, cur = _data(rng, n), _data(rng, n, shift=shift, p=p_cur)
        res = fastevals.drift(ref, cur, columns=["x", "k", "c"], adjust=None, psi_threshold=0)
        for r in res.table.to_pylist():
            hits[r["column"]] += bool(r["drift"])
    return hits


def test_no_shift_false_positive_rate_at_most_alpha():
    rng = np.random.default_rng(51)
    reps = 150
    for col, k in _rejections(rng, reps, 200, 0.0).items():
        # not significantly above alpha = 0.05
        assert stats.binomtest(k, reps, 0.05, alternative="greater").pvalue > 0.01, (col, k)


def test_planted_shift_power():
    rng = np.random.default_rng(52)
    reps = 40
    hits = _rejections(rng, reps, 400, 0.4, p_cur=[0.5, 0.3, 0.2])
    assert hits["x"] >= 0.9 * reps and hits["c"] >= 0.9 * reps
    # the default flag (test and PSI >= 0.2) on a large shift
    ref, cur = _data(rng, 2000), _data(rng, 2000, shift=1.0)
    assert "x" in fastevals.drift(ref, cur).drifted


@pytest.mark.large
def test_false_positive_rate_large():
    rng = np.random.default_rng(53)
    reps = 1000
    for col, k in _rejections(rng, reps, 1000, 0.0).items():
        assert stats.binomtest(k, reps, 0.05, alternative="greater").pvalue > 0.01, (col, k)


# ----------------------------------------------------------------------------------------------------
# adversarial validation


def _delong_slow(scores, y):
    pos, neg = scores[y == 1], scores[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return psi.mean(), math.sqrt(v10.var(ddof=1) / pos.size + v01.var(ddof=1) / neg.size)


def test_delong_matches_slow_twin():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(61)
    y = rng.integers(0, 2, 400)
    s = np.round(rng.normal(y * 0.7, 1.0), 1)  # ties
    auc, se = _math.delong(s, y)
    auc2, se2 = _delong_slow(s, y)
    assert auc == pytest.approx(auc2, rel=1e-12) and se == pytest.approx(se2, rel=1e-10)
    assert auc == pytest.approx(roc_auc_score(y, s), rel=1e-12)


def test_adversarial_validation_shift_and_no_shift():
    rng = np.random.default_rng(71)
    n = 800
    train = {"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(["u", "v"], n),
             "y": rng.integers(0, 2, n)}
    test = {"a": rng.normal(size=400), "b": rng.normal(1.0, 1.0, 400), "c": rng.choice(["u", "v"], 400),
            "y": rng.integers(0, 2, 400)}
    res = fastevals.adversarial_validation(train, test, features=["a", "b", "c"], label="y", n_splits=3, seed=1)
    assert res.confidence_interval.low > 0.6
    assert res.table.column("feature")[0].as_py() == "b"
    assert res.n_train == n and res.n_test == 400 and res.n == 400 + 400
    drop, val = set(res.validation_rows.tolist()), set(res.drop_rows.tolist())
    assert not drop & val and 0 < len(res.validation_rows) < 400
    # the proposed validation rows look like test rows: higher b than the training set
    assert train["b"][res.validation_rows].mean() > train["b"].mean() + 0.3
    assert train["b"][res.drop_rows].mean() < train["b"].mean()
    again = fastevals.adversarial_validation(train, test, features=["a", "b", "c"], label="y", n_splits=3, seed=1)
    assert again.estimate == res.estimate  # seeded
    same = {"a": train["a"][:400], "b": train["b"][:400], "c": train["c"][:400], "y": train["y"][:400]}
    rest = {k: v[400:] for k, v in train.items()}
    from sklearn.linear_model import LogisticRegression

    null = fastevals.adversarial_validation(rest, same, features=["a", "b"], model=LogisticRegression(), seed=2,
                                            n_splits=3)
    assert 0.5 in null.confidence_interval
    assert "AUC" in str(null)


def test_adversarial_validation_parquet_and_dictionary(tmp_path):
    rng = np.random.default_rng(72)
    train = pa.table({"a": rng.normal(size=300),
                      "c": pa.array(rng.choice(["u", "v", "w"], 300)).dictionary_encode()})
    pq.write_table(pa.table({"a": rng.normal(size=200), "c": rng.choice(["u", "v", "w"], 200, p=[0.8, 0.1, 0.1])}),
                   tmp_path / "test.parquet")
    res = fastevals.adversarial_validation(train, str(tmp_path / "test.parquet"), features=["a", "c"], n_splits=3,
                                           seed=3)
    assert res.table.column("feature")[0].as_py() == "c"
    with pytest.raises(ValueError, match="unknown column 'zz'"):
        fastevals.adversarial_validation(train, str(tmp_path / "test.parquet"), features=["zz"])
    with pytest.raises(ValueError, match="too few rows"):
        fastevals.adversarial_validation(train.slice(0, 4), str(tmp_path / "test.parquet"), features=["a"])


# ----------------------------------------------------------------------------------------------------
# errors, text, plots, CLI


def test_errors_are_clear():
    rng = np.random.default_rng(81)
    ref, cur = _data(rng, 100), _data(rng, 100)
    with pytest.raises(ValueError, match="unknown column 'nope'"):
        fastevals.drift(ref, cur, columns=["nope"])
    with pytest.raises(ValueError, match="`alpha`"):
        fastevals.drift(ref, cur, alpha=2)
    with pytest.raises(ValueError, match="needs `label`"):
        fastevals.drift(ref, cur, prediction="x")
    bad = dict(cur, x=np.where(np.arange(100) == 3, np.nan, cur["x"]))
    with pytest.raises(ValueError, match="column 'x'.*NaN"):
        fastevals.drift(ref, bad)
    res = fastevals.drift(ref, bad, nulls="drop")
    assert res.n == 99 and res.n_dropped == 1
    with pytest.raises(ValueError, match="empty input"):
        fastevals.drift(ref, {k: v[:0] for k, v in cur.items()})
    with pytest.raises(TypeError, match="categorical"):
        fastevals.profile(ref, categorical=["x"])
    prof = fastevals.profile(ref)
    with pytest.raises(ValueError, match="stored profile"):
        fastevals.drift(prof, cur, by="c")
    with pytest.raises(ValueError, match="backend='cuda'"):
        fastevals.drift(ref, cur, backend="cuda")
    one = fastevals.drift({"c": np.array(["a"] * 5)}, {"c": np.array(["a"] * 5)})
    assert any("single category" in n for n in one.notes)
    assert one.table.column("pvalue")[0].as_py() is None and one.table.column("drift")[0].as_py() is False


def test_text_json_plots(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    rng = np.random.default_rng(91)
    res = fastevals.drift(_data(rng, 1000), _data(rng, 1000, shift=1.0))
    text = str(res)
    assert "drifting columns: x, e" in text and "jensen_shannon" in text
    assert json.loads(json.dumps(res.to_dict()))["table"][0]["column"] == "x"
    assert res.plot(path=tmp_path / "s.png") is not None
    assert res.plot_column("x", path=tmp_path / "x.png") is not None
    with pytest.raises(ValueError, match="no distribution"):
        res.plot_column("zz")
    assert (tmp_path / "s.png").stat().st_size > 0


def test_cli_profile_then_drift(tmp_path, capsys):
    from fastevals.cli import main

    rng = np.random.default_rng(101)
    pq.write_table(_table(_data(rng, 3000)), tmp_path / "train.parquet")
    pq.write_table(_table(_data(rng, 1000, shift=1.0)), tmp_path / "prod.parquet")
    out = tmp_path / "ref.profile"
    assert main(["profile", str(tmp_path / "train.parquet"), "--out", str(out), "--bins", "100"]) == 0
    assert Profile.from_bytes(out.read_bytes()).n == 3000
    capsys.readouterr()
    assert main(["drift", str(out), str(tmp_path / "prod.parquet")]) == 0
    text = capsys.readouterr().out
    assert "profile mode" in text and "drifting columns: x" in text
    assert main(["drift", str(tmp_path / "train.parquet"), str(tmp_path / "prod.parquet"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mode"] == "exact"
    # an error leaves no partial file behind
    bad = tmp_path / "bad.profile"
    assert main(["profile", str(tmp_path / "train.parquet"), "--out", str(bad), "--columns", "nope"]) == 2
    assert not bad.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".profile-")] == []


def test_example_protocol_roundtrip():
    kwargs, data = Profile._example()
    st = Profile(**kwargs).update(data)
    assert Profile.from_bytes(st.to_bytes()) == st
    half = Profile(**kwargs).update({k: v[:150] for k, v in data.items()})
    rest = Profile(**kwargs).update({k: v[150:] for k, v in data.items()})
    merged = half.merge(rest)
    assert merged == st  # bit for bit: the example's sums are exact
    assert rest.merge(half).n == st.n
    assert "Profile of 400 rows" in str(st.finalize())


# ----------------------------------------------------------------------------------------------------
# Dask


def test_dask_equals_in_process(client, tmp_path, write_parts):
    dd = pytest.importorskip("dask.dataframe")
    rng = np.random.default_rng(111)
    ref = _table({**_data(rng, 6000), "g": rng.choice(["u", "v"], 6000)})
    cur = _table({**_data(rng, 3000, shift=0.2), "g": rng.choice(["u", "v"], 3000)})
    write_parts(ref, tmp_path / "ref", 3, 1)
    write_parts(cur, tmp_path / "cur", 3, 2)
    local = fastevals.profile(str(tmp_path / "ref"), by="g", n_bins=100)
    on_dask = fastevals.profile(str(tmp_path / "ref"), by="g", n_bins=100, engine="dask")
    from_ddf = fastevals.profile(dd.read_parquet(str(tmp_path / "ref")), by="g", n_bins=100)
    for st in (on_dask, from_ddf):
        assert st.edges == local.edges and st.types == local.types
        assert sorted(st.segments) == sorted(local.segments)
        order = [st.segments.index(s) for s in local.segments]
        for c in ("x", "k", "c"):
            got = st.counts(c)[order]
            if c == "c":  # categories in the order met
                got = got[:, [st.categories(c).index(v) for v in local.categories(c)]]
            np.testing.assert_array_equal(got, local.counts(c))
    r1 = fastevals.drift(local, str(tmp_path / "cur"))
    r2 = fastevals.drift(local, dd.read_parquet(str(tmp_path / "cur")))
    for a, b in zip(r1.table.to_pylist(), r2.table.to_pylist()):
        for k, v in a.items():
            assert b[k] == (pytest.approx(v, rel=1e-12) if isinstance(v, float) else v)


def test_state_fixes_layout_from_first_input():
    rng = np.random.default_rng(121)
    data = _data(rng, 3000)
    direct = Profile(columns=["x", "c"], n_bins=40).update(data)
    via = fastevals.profile(data, columns=["x", "c"], n_bins=40)
    assert direct.types == via.types == {"x": "numeric", "c": "categorical"}
    assert direct == via
    with pytest.raises(TypeError, match="column 'c'"):
        fastevals.drift(via, {"x": data["x"], "c": rng.normal(size=3000)})


def test_scipy_exact_failure_becomes_a_note():
    import warnings

    rng = np.random.default_rng(114)
    a, b = rng.integers(0, 6, 1000), rng.integers(0, 6, 1000)  # scipy's exact path fails here and warns
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ks = stats.ks_2samp(a, b)
    res = fastevals.drift({"k": a}, {"k": b})
    assert res.table.column("pvalue")[0].as_py() == pytest.approx(float(ks.pvalue), rel=TOL)
    assert any("asymptotic p-value is used" in n for n in res.notes)


def _scored(rng, n, noise):
    y = rng.integers(0, 2, n)
    p = np.round(np.clip(0.5 + (y - 0.5) * 0.4 + rng.normal(0, noise, n), 0, 1), 2)
    return {"y": y, "p": p}


def test_bootstrap_intervals_of_performance():
    rng = np.random.default_rng(131)
    ref, cur = _scored(rng, 5000, 0.25), _scored(rng, 4000, 0.3)
    kw = dict(label="y", prediction="p", n_resamples=2000)
    boot = fastevals.drift(ref, cur, seed=7, **kw).performance.to_pylist()
    again = fastevals.drift(ref, cur, seed=7, **kw).performance.to_pylist()
    normal = fastevals.drift(ref, cur, label="y", prediction="p").performance.to_pylist()
    assert boot == again  # seeded
    for b, nm in zip(boot, normal):
        assert b["method"] == "bootstrap" and nm["method"] == "normal"
        assert b["difference"] == nm["difference"]
        # large samples: the bootstrap agrees with the analytic standard error and interval
        assert b["standard_error"] == pytest.approx(nm["standard_error"], rel=0.1)
        assert b["low"] == pytest.approx(nm["low"], abs=0.3 * nm["standard_error"])
        assert b["high"] == pytest.approx(nm["high"], abs=0.3 * nm["standard_error"])


def test_bootstrap_interval_coverage():
    rng = np.random.default_rng(132)
    reps, covered = 120, 0
    for i in range(reps):
        ref, cur = _scored(rng, 400, 0.3), _scored(rng, 300, 0.3)  # the same model and data: no change
        perf = fastevals.drift(ref, cur, columns=["y"], label="y", prediction="p", n_resamples=300,
                               seed=i).performance.to_pylist()
        covered += perf[0]["low"] <= 0.0 <= perf[0]["high"]
    # coverage of the 95% interval not significantly below 95%
    assert stats.binomtest(covered, reps, 0.95, alternative="less").pvalue > 0.01, covered
