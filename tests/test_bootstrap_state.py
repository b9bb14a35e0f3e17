"""BootstrapState: update / merge / finalize, equal to the one-pass bootstrap, and the
relative group comparison against a slow twin."""

import pickle

import numpy as np
import pyarrow as pa
import pytest

from fastevals import BootstrapState, bootstrap
from fastevals import metrics as M
from fastevals.resampling import poisson_weights

RTOL = 1e-12


def make_data(n=600, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    score = np.round(rng.normal(size=n) + 0.8 * y, 1)
    return {
        "x": rng.exponential(size=n) + 5.0,
        "den": rng.uniform(0.5, 2.0, n),
        "y": y,
        "score": score,
        "pa": np.where(rng.random(n) < 0.8, y, 1 - y),
        "seg": rng.choice(["a", "b", "c"], n),
        "arm": rng.choice(["control", "t1", "t2"], n),
        "user": rng.integers(0, 80, n),
    }


def _slices(d, cuts):
    bounds = [0, *cuts, len(d["x"])]
    return [({k: v[a:b] for k, v in d.items()}, a) for a, b in zip(bounds[:-1], bounds[1:])]


def _shards(metric, d, cuts, order=None, **kw):
    """States of consecutive slices (each told its row offset), merged in ``order``."""
    parts = [BootstrapState(metric, n_resamples=200, seed=5, **kw).update(sl, row_offset=off)
             for sl, off in _slices(d, cuts)]
    order = range(len(parts)) if order is None else order
    out = None
    for i in order:
        out = parts[i] if out is None else out.merge(parts[i])
    return out


def _same(got, want, exact=False):
    got = list(got) if not hasattr(got, "estimate") else [got]
    want = list(want) if not hasattr(want, "estimate") else [want]
    assert len(got) == len(want)
    key = lambda r: (r.metric, str(r.segment), str(r.group))  # noqa: E731
    for g, w in zip(sorted(got, key=key), sorted(want, key=key)):
        assert key(g) == key(w)
        if exact:
            np.testing.assert_array_equal(g.bootstrap_distribution, w.bootstrap_distribution)
        else:
            # differences near zero: an atol on the scale of the distribution (the means' rounding)
            np.testing.assert_allclose(g.bootstrap_distribution, w.bootstrap_distribution, rtol=RTOL,
                                       atol=RTOL * np.max(np.abs(w.bootstrap_distribution)))
        np.testing.assert_allclose(g.estimate, w.estimate, rtol=RTOL)
        assert g.n == w.n


@pytest.mark.parametrize("metric", [
    M.mean("x"), M.ratio("x", "den"), M.std("x"), M.accuracy("y", "pa"),
    M.roc_auc("y", "score"), M.median("x"), M.mean("x") - M.std("x"),
], ids=lambda m: m.name)
def test_shards_merged_in_any_order_equal_one_pass(metric):
    d = make_data()
    one = bootstrap(d, metric, n_resamples=200, seed=5, progress=False)
    _same(_shards(metric, d, [100, 101, 450]).finalize(), one)
    # merge is commutative and associative: a different tree gives the same answer
    _same(_shards(metric, d, [100, 101, 450], order=[3, 1, 0, 2]).finalize(), one)


def test_groups_and_segments_first_seen_in_later_shards():
    d = make_data()
    d["arm"][:300] = "control"  # the treatments appear only in the later shards
    m = [M.mean("x"), M.proportion("y")]
    one = bootstrap(d, m, by="seg", group="arm", control="control", n_resamples=200, seed=5, progress=False)
    st = _shards(m, d, [150, 300, 420], by="seg", group="arm")
    _same(st.finalize(control="control"), one)


def test_cluster_keys_need_no_offsets():
    d = make_data()
    one = bootstrap(d, M.mean("x"), cluster="user", n_resamples=200, seed=5, progress=False)
    parts = [BootstrapState(M.mean("x"), n_resamples=200, seed=5, cluster="user").update(sl)
             for sl, _ in _slices(d, [200, 333])]
    _same(parts[2].merge(parts[0]).merge(parts[1]).finalize(), one)


def test_sequential_updates_continue_the_row_numbering():
    d = make_data()
    st = BootstrapState(M.mean("x"), n_resamples=200, seed=5)
    for sl, _ in _slices(d, [250, 251]):
        st.update(sl)
    _same(st.finalize(), bootstrap(d, M.mean("x"), n_resamples=200, seed=5, progress=False))
    assert st.n == 600


def test_finalize_matches_a_slow_twin_and_methods():
    d = make_data(300, seed=3)
    st = BootstrapState(M.mean("x"), n_resamples=150, seed=9).update(pa.table(d))
    W = poisson_weights(300, 150, seed=9).astype(float)
    twin = W @ d["x"] / W.sum(1)
    for method in ("percentile", "basic"):
        r = st.finalize(method=method, confidence=0.9)
        np.testing.assert_allclose(r.bootstrap_distribution, twin, rtol=RTOL)
        lo, hi = np.percentile(twin, [5, 95])
        want = (lo, hi) if method == "percentile" else (2 * d["x"].mean() - hi, 2 * d["x"].mean() - lo)
        np.testing.assert_allclose(tuple(r.confidence_interval), want, rtol=RTOL)


def test_pickle_round_trip_and_update_is_atomic():
    d = make_data()
    st = BootstrapState(M.mean("x"), n_resamples=100, seed=1).update(d)
    back = pickle.loads(pickle.dumps(st))
    _same(back.finalize(), st.finalize(), exact=True)
    bad = dict(d)
    bad["x"] = d["x"].copy()
    bad["x"][-1] = np.nan
    with pytest.raises(ValueError, match="'x'"):
        st.update(bad)
    _same(st.finalize(), back.finalize(), exact=True)


def test_merge_errors_are_clear():
    d = make_data()
    a = BootstrapState(M.mean("x"), n_resamples=100, seed=1).update(d)
    b = BootstrapState(M.mean("x"), n_resamples=100, seed=1).update(d)
    with pytest.raises(ValueError, match="overlapping rows .*row_offset"):
        a.merge(b)
    with pytest.raises(ValueError, match="different settings"):
        a.merge(BootstrapState(M.mean("x"), n_resamples=100, seed=2))
    with pytest.raises(TypeError, match="BootstrapState"):
        a.merge({"x": 1})
    with pytest.raises(ValueError, match="holds no rows"):
        BootstrapState(M.mean("x"), n_resamples=100, seed=1).finalize()
    with pytest.raises(ValueError, match="`method` must be one of"):
        a.finalize(method="bias-corrected")
    # BCa reads the data again: the state's own input, as bootstrap() does
    _same(a.finalize(method="bca"), bootstrap(d, M.mean("x"), n_resamples=100, seed=1, method="bca",
                                              progress=False), exact=True)
    # a merged state has no single input to read again
    half = BootstrapState(M.mean("x"), n_resamples=100, seed=1).update({"x": d["x"][:300]})
    rest = BootstrapState(M.mean("x"), n_resamples=100, seed=1).update({"x": d["x"][300:]}, row_offset=300)
    with pytest.raises(ValueError, match="no input to read again"):
        half.merge(rest).finalize(method="bca")
    # AUC needs every row: a lone shard that does not start at row 0 says so
    auc = BootstrapState(M.roc_auc("y", "score"), n_resamples=50, seed=1).update(d, row_offset=10)
    with pytest.raises(ValueError, match="need every row"):
        auc.finalize()


def test_relative_group_comparison_equals_twin():
    d = make_data(900, seed=4)
    B = 300
    res = bootstrap(d, M.mean("x"), group="arm", control="control", comparison="both", n_resamples=B, seed=2,
                    progress=False)
    rows = {(r.group, r.comparison): r for r in res}
    W = poisson_weights(900, B, seed=2).astype(float)
    theta = {}
    for g in ("control", "t1", "t2"):
        s = d["arm"] == g
        theta[g] = W[:, s] @ d["x"][s] / W[:, s].sum(1)
    for g in ("t1", "t2"):
        rel = rows[((g, "control"), "relative")]
        # compared as ratios: "- 1" cancels digits near zero
        np.testing.assert_allclose(rel.bootstrap_distribution + 1, theta[g] / theta["control"], rtol=RTOL)
        est = d["x"][d["arm"] == g].mean() / d["x"][d["arm"] == "control"].mean() - 1
        np.testing.assert_allclose(rel.estimate + 1, est + 1, rtol=RTOL)
        diff = rows[((g, "control"), "difference")]
        # a difference near zero: the tolerance is relative to the means, not to the difference
        np.testing.assert_allclose(diff.bootstrap_distribution, theta[g] - theta["control"], rtol=0,
                                   atol=RTOL * np.abs(theta[g]).max())
    only_rel = bootstrap(d, M.mean("x"), group="arm", control="control", comparison="relative", n_resamples=B,
                         seed=2, progress=False)
    assert {r.comparison for r in only_rel} == {None, "relative"}
    assert "comparison" in only_rel.table.column_names
    with pytest.raises(ValueError, match="`comparison`"):
        bootstrap(d, M.mean("x"), group="arm", control="control", comparison="ratio", progress=False)


def test_relative_bca_acceleration_against_jackknife_of_the_ratio():
    # the treatment part is exact; the control part is the delta-method linearization,
    # which the exact jackknife of the ratio approaches for samples this large
    d = make_data(2000, seed=6)
    res = bootstrap(d, M.mean("x"), group="arm", control="control", comparison="relative", method="bca",
                    n_resamples=200, seed=1, progress=False)
    rel = [r for r in res if r.comparison == "relative"][0]
    t, c = rel.group
    xt, xc = d["x"][d["arm"] == t], d["x"][d["arm"] == c]
    nums, dens = 0.0, 0.0
    for j, x in enumerate((xt, xc)):
        n = len(x)
        loo = (x.sum() - x) / (n - 1)
        theta = loo / xc.mean() - 1 if j == 0 else xt.mean() / loo - 1
        U = (n - 1) * (theta.mean() - theta)
        nums += np.sum(U**3) / n**3
        dens += np.sum(U**2) / n**2
    np.testing.assert_allclose(rel.acceleration, nums / dens**1.5 / 6, rtol=1e-2)


@pytest.mark.parametrize("metric, stat", [
    (M.mean("x"), lambda d, w: np.sum(w * d["x"]) / np.sum(w)),
    (M.ratio("x", "den"), lambda d, w: np.sum(w * d["x"]) / np.sum(w * d["den"])),
    (M.std("x"), lambda d, w: np.sqrt(np.sum(w * (d["x"] - np.sum(w * d["x"]) / np.sum(w)) ** 2) / np.sum(w))),
], ids=["mean", "ratio", "std"])
def test_cluster_bca_acceleration_is_the_leave_one_cluster_out_jackknife(metric, stat):
    d = make_data(700, seed=8)
    res = bootstrap(pa.table(d), metric, cluster="user", method="bca", n_resamples=300, seed=4, batch_size=200,
                    progress=False)
    units = np.unique(d["user"])
    jack = np.array([stat(d, (d["user"] != u).astype(float)) for u in units])
    dd = jack.mean() - jack
    np.testing.assert_allclose(res.acceleration, np.sum(dd**3) / (6 * np.sum(dd**2) ** 1.5), rtol=1e-9)
    # the interval is scipy's BCa formula on this distribution and acceleration
    dist = res.bootstrap_distribution
    from scipy import special
    z0 = special.ndtri(np.mean(dist < res.estimate))
    a = res.acceleration
    za = special.ndtri([0.025, 0.975])
    q = special.ndtr(z0 + (z0 + za) / (1 - a * (z0 + za)))
    np.testing.assert_allclose(tuple(res.confidence_interval), np.percentile(dist, q * 100), rtol=1e-12)


def test_cluster_bca_groups_use_units_within_each_group():
    d = make_data(900, seed=9)
    d["user"] = d["user"] + 1000 * (d["arm"] == "t1")  # users nested in arms
    res = bootstrap(d, M.mean("x"), group="arm", control="control", cluster="user", method="bca",
                    n_resamples=100, seed=2, progress=False)
    diff = [r for r in res if r.group == ("t1", "control")][0]
    nums = dens = 0.0
    for sign, g in ((1.0, "t1"), (-1.0, "control")):
        s = d["arm"] == g
        x, u = d["x"][s], d["user"][s]
        units = np.unique(u)
        jack = np.array([x[u != k].mean() for k in units]) * sign
        n = units.size
        U = (n - 1) * (jack.mean() - jack)
        nums += np.sum(U**3) / n**3
        dens += np.sum(U**2) / n**2
    np.testing.assert_allclose(diff.acceleration, nums / dens**1.5 / 6, rtol=1e-9)
