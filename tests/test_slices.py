"""fastevals.slices / SlicesState / sliced_metrics against brute-force enumeration, statsmodels,
scipy, sliceline and fastevals.bootstrap; planted slices and the false discovery rate."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.stats as st

import fastevals
from fastevals import SlicesState, metrics, sliced_metrics, slices
from fastevals._slices.state import bin_label

EDGES = [0.0, 0.25, 0.5, 0.75, 1.0]


def _log(n, seed, *, planted=(("c1", "a"),), base=0.1, bad=0.35, loss=False):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "c1": rng.choice(list("abcd"), n),
        "c2": rng.integers(0, 3, n).astype(np.int64),
        "c3": rng.random(n) < 0.4,
        "x": rng.random(n),
    })
    p = np.full(n, base)
    for cond in planted:
        mask = np.ones(n, dtype=bool)
        for c, v in zip(cond[0::2], cond[1::2]):
            mask &= (df[c] == v).to_numpy()
        p[mask] = bad
    if loss:
        df["loss"] = rng.exponential(p * 10)
    else:
        df["err"] = (rng.random(n) < p).astype(np.int8)
    return df


def _brute(df, cols, metric_col, max_order, min_size, binary):
    """Every slice by pandas boolean masks: size, means, and the scipy / Welch p-value."""
    work = df.copy()
    work["x"] = [bin_label(EDGES, k) for k in np.searchsorted(EDGES[1:-1], df["x"], side="right")]
    v = work[metric_col].to_numpy(dtype=float)
    out = {}
    for k in range(1, max_order + 1):
        for cm in itertools.combinations(cols, k):
            for vals, _ in work.groupby(list(cm)):
                vals = vals if isinstance(vals, tuple) else (vals,)
                mask = np.ones(len(work), dtype=bool)
                for c, val in zip(cm, vals):
                    mask &= (work[c] == val).to_numpy()
                n1, n2 = mask.sum(), (~mask).sum()
                if n1 < min_size or n2 < min_size:
                    continue
                a, b = v[mask], v[~mask]
                if binary:
                    e1, e2 = a.sum(), b.sum()
                    table = np.array([[e1, n1 - e1], [e2, n2 - e2]])
                    if table.sum(axis=0).min() == 0:
                        p = 1.0
                    else:
                        p = st.chi2_contingency(table, correction=False, lambda_="log-likelihood").pvalue
                else:
                    se = np.sqrt(a.var(ddof=1) / n1 + b.var(ddof=1) / n2)
                    p = 2 * st.norm.sf(abs(a.mean() - b.mean()) / se)
                key = (tuple(cm), tuple(str(x) for x in vals))
                out[key] = (int(n1), a.mean(), b.mean(), p)
    return out


def _tested(res):
    t = res.tested.to_pylist()
    return {(tuple(r["columns"]), tuple(r["values"])): r for r in t}


@pytest.mark.parametrize("max_order", [2, 3])
def test_every_slice_equals_brute_force_error_rate(max_order):
    df = _log(3000, 1, planted=(("c1", "a", "c2", 1),))
    cols = ["c1", "c2", "c3", "x"]
    res = slices(df, error="err", columns=cols, max_order=max_order, min_size=20, edges={"x": EDGES})
    ref = _brute(df, cols, "err", max_order, 20, True)
    got = _tested(res)
    assert set(got) == set(ref) and res.n_tested == len(ref)
    for key, (n1, m1, m2, p) in ref.items():
        r = got[key]
        assert r["size"] == n1
        assert r["metric_inside"] == pytest.approx(m1, rel=1e-12)
        assert r["metric_outside"] == pytest.approx(m2, rel=1e-12)
        assert r["pvalue"] == pytest.approx(p, rel=1e-9, abs=1e-300)
    # adjusted p-values: statsmodels' multipletests over all slices tested
    from statsmodels.stats.multitest import multipletests

    t = res.tested
    p = np.array(t.column("pvalue").to_pylist())
    np.testing.assert_allclose(t.column("pvalue_adjusted").to_numpy(), multipletests(p, method="fdr_bh")[1],
                               rtol=1e-12)
    holm = slices(df, error="err", columns=cols, max_order=max_order, min_size=20, edges={"x": EDGES},
                  adjust="holm").tested
    np.testing.assert_allclose(holm.column("pvalue_adjusted").to_numpy(),
                               multipletests(holm.column("pvalue").to_numpy(), method="holm")[1], rtol=1e-12)


def test_every_slice_equals_brute_force_mean_loss():
    df = _log(2000, 2, loss=True)
    cols = ["c1", "c2", "x"]
    res = slices(df, loss="loss", columns=cols, min_size=10, edges={"x": EDGES})
    ref = _brute(df, cols, "loss", 2, 10, False)
    got = _tested(res)
    assert set(got) == set(ref)
    for key, (n1, m1, m2, p) in ref.items():
        r = got[key]
        assert r["size"] == n1
        assert r["metric_inside"] == pytest.approx(m1, rel=1e-10)
        assert r["metric_outside"] == pytest.approx(m2, rel=1e-10)
        assert r["pvalue"] == pytest.approx(p, rel=1e-7, abs=1e-300)


def test_score_is_sliceline_formula_and_interval_is_wald():
    df = _log(2000, 3)
    res = slices(df, error="err", columns=["c1", "c2"], score_alpha=0.7, confidence=0.9)
    ebar = df["err"].mean()
    for r in res.tested.to_pylist():
        s = r["size"]
        assert r["score"] == pytest.approx(0.7 * (r["metric_inside"] / ebar - 1) - 0.3 * (2000 / s - 1), rel=1e-12)
        se = np.sqrt(r["metric_inside"] * (1 - r["metric_inside"]) / s
                     + r["metric_outside"] * (1 - r["metric_outside"]) / (2000 - s))
        assert r["high"] - r["difference"] == pytest.approx(st.norm.ppf(0.95) * se, rel=1e-9)


def test_planted_slice_found_and_parent_rule():
    # one 1-column bad slice: reported; its 2-column refinements add nothing and are left out
    df = _log(20_000, 4, planted=(("c1", "a"),))
    res = slices(df, error="err", columns=["c1", "c2", "c3"])
    assert res.table.column("slice")[0].as_py() == "c1=a"
    assert res.table.num_rows >= 1 and all(o == 1 for o in res.table.column("order").to_pylist())
    assert res.n_pruned >= 1  # c1=a and c2=... were significant, explained by c1=a
    # one 2-column bad slice: reported first although its parents are significant too
    df = _log(20_000, 5, planted=(("c1", "b", "c3", True),), bad=0.4)
    res = slices(df, error="err", columns=["c1", "c2", "c3"])
    assert res.table.column("slice")[0].as_py() == "c1=b and c3=True"
    # with label / prediction the same errors give the same result
    y = np.zeros(len(df), dtype=np.int64)
    df2 = df.assign(y=y, yhat=df["err"].astype(np.int64))
    res2 = slices(df2, label="y", prediction="yhat", columns=["c1", "c2", "c3"])
    assert res2.tested.equals(res.tested)


def test_planted_among_thousands_and_fdr_small():
    """Planted slices among ~2,000 tested are found; the FDR among reported slices stays under alpha."""
    fdps, found = [], 0
    reps = 12
    for rep in range(reps):
        rng = np.random.default_rng(100 + rep)
        n = 40_000
        data = {f"c{j}": rng.integers(0, 12, n).astype("U2") for j in range(6)}
        bad = (data["c0"] == "3") | ((data["c1"] == "5") & (data["c2"] == "7"))
        data["err"] = (rng.random(n) < np.where(bad, 0.25, 0.1)).astype(np.int8)
        res = slices(data, error="err", columns=[f"c{j}" for j in range(6)], alpha=0.1)
        assert res.n_tested > 1500
        truth = {"c0=3", "c1=5 and c2=7"}
        rep_slices = set(res.table.column("slice").to_pylist())
        found += truth <= rep_slices
        # a reported slice is a false discovery when it does not overlap a planted slice's rows
        false = 0
        for r in res.tested.filter(res.tested.column("significant")).to_pylist():
            cond = dict(zip(r["columns"], map(int, r["values"])))
            touches = cond.get("c0", 3) == 3 or (cond.get("c1", 5) == 5 and cond.get("c2", 7) == 7)
            false += not touches
        fdps.append(false / max(1, res.n_significant))
    assert found == reps
    assert np.mean(fdps) <= 0.1


@pytest.mark.large
def test_fdr_under_alpha_large():
    fdps = []
    for rep in range(200):
        rng = np.random.default_rng(1000 + rep)
        n = 50_000
        data = {f"c{j}": rng.integers(0, 15, n).astype("U2") for j in range(8)}
        bad = data["c0"] == "3"
        data["err"] = (rng.random(n) < np.where(bad, 0.2, 0.1)).astype(np.int8)
        res = slices(data, error="err", columns=[f"c{j}" for j in range(8)], alpha=0.05)
        sig = res.tested.filter(res.tested.column("significant")).to_pylist()
        false = sum(dict(zip(r["columns"], map(int, r["values"]))).get("c0", 3) != 3 for r in sig)
        fdps.append(false / max(1, len(sig)))
    assert np.mean(fdps) <= 0.05 + 2 * np.std(fdps) / np.sqrt(len(fdps))


def test_top_slices_agree_with_sliceline():
    sliceline = pytest.importorskip("sliceline")
    df = _log(5000, 6, planted=(("c1", "a", "c2", 1), ("c1", "d")), bad=0.5)
    cols = ["c1", "c2", "c3"]
    X = df[cols].astype(str).to_numpy()
    sf = sliceline.Slicefinder(alpha=0.95, k=3, max_l=2, min_sup=30, verbose=False)
    sf.fit(X, df["err"].to_numpy())
    theirs = []
    for row, stat in zip(sf.top_slices_, sf.top_slices_statistics_):
        theirs.append(({c: v for c, v in zip(cols, row) if v is not None}, stat["slice_score"],
                       stat["slice_size"]))
    res = slices(df, error="err", columns=cols, min_size=30, score_alpha=0.95)
    ours = {frozenset(zip(r["columns"], r["values"])): r for r in res.tested.to_pylist()}
    # every slice sliceline returns is one of ours, with the same size and score (same formula);
    # sliceline's lattice pruning skips children of weak parents, so its top-k is a subset of our ranking
    assert len(theirs) >= 2
    for cond, score, size in theirs:
        r = ours[frozenset(cond.items())]
        assert r["size"] == size
        assert r["score"] == pytest.approx(score, rel=1e-9)
    best = res.tested.sort_by([("score", "descending")]).to_pylist()[0]
    assert dict(zip(best["columns"], best["values"])) == theirs[0][0]


def test_merge_of_split_logs_streaming_and_parquet(tmp_path):
    df = _log(6000, 7)
    table = pa.Table.from_pandas(df, preserve_index=False)
    kw = dict(error="err", columns=["c1", "c2", "c3", "x"], edges={"x": EDGES}, min_size=10)
    whole = SlicesState(**kw).update(table)
    a = SlicesState(**kw).update(table.slice(0, 1000))
    b = SlicesState(**kw).update(table.slice(1000, 3000))
    c = SlicesState(**kw).update(table.slice(4000))
    merged = a.merge(b).merge(c)
    # categorical levels met in another order map to the same slices: finalized tables are equal
    assert merged.finalize().tested.equals(whole.finalize().tested)
    assert merged.n == whole.n == 6000
    streamed = SlicesState(**kw, batch_size=97).update(table)
    assert streamed == whole
    path = tmp_path / "log.parquet"
    pq.write_table(table, path, row_group_size=700)
    res = slices(str(path), **kw)
    assert res.tested.equals(whole.finalize().tested)
    # bytes round trip
    back = SlicesState.from_bytes(merged.to_bytes())
    assert back.finalize().tested.equals(whole.finalize().tested)


def test_merge_mean_loss_with_different_shifts():
    df = _log(4000, 8, loss=True)
    kw = dict(loss="loss", columns=["c1", "c2"], min_size=10)
    table = pa.Table.from_pandas(df, preserve_index=False)
    whole = SlicesState(**kw).update(table).finalize().tested
    merged = SlicesState(**kw).update(table.slice(0, 100)).merge(SlicesState(**kw).update(table.slice(100)))
    got = merged.finalize().tested
    assert got.column("slice").to_pylist() == whole.column("slice").to_pylist()
    for col in ("metric_inside", "metric_outside", "pvalue", "score"):
        np.testing.assert_allclose(got.column(col).to_numpy(), whole.column(col).to_numpy(), rtol=1e-9)


def test_quantile_bins_from_the_data_and_integer_columns():
    rng = np.random.default_rng(9)
    n = 5000
    data = {"err": (rng.random(n) < 0.1).astype(np.int8), "age": rng.uniform(18, 90, n),
            "visits": rng.integers(0, 1000, n), "plan": rng.integers(0, 3, n)}
    res = slices(data, error="err", max_order=1, min_size=5)
    got = res.tested.to_pylist()
    ages = [r for r in got if r["columns"] == ["age"]]
    edges = np.quantile(data["age"], np.linspace(0, 1, 11))
    assert len(ages) == 10
    sizes = sorted(r["size"] for r in ages)
    counts = np.bincount(np.searchsorted(edges[1:-1], data["age"], side="right"))
    assert sizes == sorted(counts.tolist())
    assert len([r for r in got if r["columns"] == ["visits"]]) == 10  # many integers: binned
    assert {r["values"][0] for r in got if r["columns"] == ["plan"]} == {"0", "1", "2"}  # few: categorical
    assert set(res.columns) == {"age", "visits", "plan"}


def test_nulls_and_bad_input():
    df = _log(500, 10)
    with pytest.raises(ValueError, match="exactly one of"):
        slices(df, error="err", loss="x")
    with pytest.raises(ValueError, match="exactly one of"):
        slices(df)
    with pytest.raises(ValueError, match="go together"):
        slices(df, label="c1")
    with pytest.raises(ValueError, match="unknown column 'nope'"):
        slices(df, error="err", columns=["nope"])
    with pytest.raises(ValueError, match=r"'x' \(given as `error`\) must hold 0/1"):
        slices(df, error="x", columns=["c1"])
    with pytest.raises(ValueError, match="must not include the metric"):
        slices(df, error="err", columns=["err", "c1"])
    with pytest.raises(ValueError, match="max_levels"):
        slices(df.assign(id=np.arange(500).astype(str)), error="err", columns=["id"])
    with pytest.raises(ValueError, match="`max_order` must be <= 3"):
        slices(df, error="err", max_order=4)
    with pytest.raises(ValueError, match="empty input"):
        slices(df.iloc[:0], error="err", columns=["c1"])
    with pytest.raises(ValueError, match="cuda"):
        slices(df, error="err", backend="cuda")
    with pytest.raises(TypeError, match="cannot be compared"):
        slices(df.assign(y=1), label="y", prediction="c1", columns=["c2"])
    t = pa.Table.from_pandas(df, preserve_index=False)
    c1 = t.column("c1").to_pylist()
    c1[3] = None
    t = t.set_column(t.schema.get_field_index("c1"), "c1", pa.array(c1))
    with pytest.raises(ValueError, match=r"column 'c1' \(given as `columns`\) has null values"):
        slices(t, error="err", columns=["c1", "c2"])
    res = slices(t, error="err", columns=["c1", "c2"], nulls="drop", min_size=5)
    assert (res.n, res.n_dropped) == (499, 1)
    # nothing to find: a note, not a bare nan
    none = slices(df.assign(err=np.zeros(500, np.int8)), error="err", columns=["c1"])
    assert none.table.num_rows == 0 and any("no errors" in n for n in none.notes)


def test_state_merge_refuses_different_edges():
    df = _log(400, 11)
    a = SlicesState(error="err", columns=["x"]).update(df.iloc[:200])
    b = SlicesState(error="err", columns=["x"]).update(df.iloc[200:])
    with pytest.raises(ValueError, match="bins of column 'x' differ"):
        a.merge(b)


def test_parallel_path_equals_serial_and_threads(monkeypatch):
    from fastevals import _config
    from fastevals._slices import state as state_mod

    df = _log(30_000, 12, loss=True)
    kw = dict(loss="loss", columns=["c1", "c2", "c3"], min_size=10)
    serial = SlicesState(**kw).update(df)
    monkeypatch.setattr(state_mod, "PARALLEL_MIN_ROWS", 1000)
    par = SlicesState(**kw).update(df)
    np.testing.assert_array_equal(par.stats[:, 0], serial.stats[:, 0])
    np.testing.assert_allclose(par.stats, serial.stats, rtol=1e-10)
    n = _config.get_num_threads()
    try:
        _config.set_num_threads(1)
        one = SlicesState(**kw).update(df)
    finally:
        _config.set_num_threads(n)
    assert one == par  # fixed parts: bit-identical on 1 or N threads


def test_dask_equals_in_process(client, tmp_path, write_parts):
    df = _log(5000, 13)
    table = pa.Table.from_pandas(df, preserve_index=False)
    write_parts(table, tmp_path / "parts", 4, 13)
    kw = dict(error="err", columns=["c1", "c2", "c3", "x"], min_size=10)
    local = slices(str(tmp_path / "parts"), **kw)
    on_dask = slices(str(tmp_path / "parts"), engine="dask", **kw)
    assert on_dask.tested.equals(local.tested)
    assert on_dask.n == 5000


def test_result_text_json_and_plot(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    df = _log(8000, 14)
    res = slices(df, error="err", columns=["c1", "c2", "c3"])
    text = str(res)
    assert "c1=a" in text and "pvalue_adjusted" in text
    d = res.to_dict()
    json.dumps(d)
    assert "tested" not in d and d["table"][0]["slice"] == "c1=a"
    ax = res.plot(path=tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 1000
    assert len(ax.get_yticklabels()) == res.table.num_rows


def test_cli(tmp_path, capsys):
    from fastevals.cli import main

    df = _log(8000, 15)
    df["y"] = 0
    df["yhat"] = df["err"].astype(np.int64)
    path = tmp_path / "log.parquet"
    df.to_parquet(path)
    assert main(["slices", str(path), "--label", "y", "--prediction", "yhat", "--columns", "c1,c2,x"]) == 0
    out = capsys.readouterr().out
    assert "c1=a" in out
    assert main(["slices", str(path), "--error", "err", "--columns", "c1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["table"][0]["slice"] == "c1=a"
    assert main(["slices", str(path), "--error", "err", "--columns", "nope"]) == 2
    assert "unknown column 'nope'" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------------
# sliced_metrics


def test_sliced_metrics_matches_bootstrap_and_flags_the_bad_segment():
    rng = np.random.default_rng(16)
    n = 4000
    seg = rng.choice(["a", "b", "c", "d"], n)
    y = rng.integers(0, 2, n)
    flip = rng.random(n) < np.where(seg == "d", 0.3, 0.1)
    pred = np.where(flip, 1 - y, y)
    loss = rng.exponential(1.0, n)
    data = {"y": y, "pred": pred, "seg": seg, "loss": loss}
    ms = [metrics.accuracy("y", "pred"), metrics.mean("loss")]
    res = sliced_metrics(data, metrics=ms, by="seg", n_resamples=400, seed=5)
    ref = fastevals.bootstrap(data, ms, by="seg", n_resamples=400, seed=5, progress=False)
    rows = {(r["metric"], r["segment"]): r for r in res.table.to_pylist()}
    for r in ref.results:
        got = rows[(r.metric, r.segment)]
        assert got["estimate"] == r.estimate
        assert (got["low"], got["high"]) == tuple(r.confidence_interval)
    df = pd.DataFrame(data)
    for s in "abcd":
        got = rows[("accuracy(y, pred)", s)]
        rest = df[df.seg != s]
        assert got["estimate_rest"] == pytest.approx((rest.y == rest.pred).mean(), rel=1e-12)
        assert got["n"] == int((df.seg == s).sum())
    assert rows[("accuracy(y, pred)", "d")]["differs"]
    assert rows[("accuracy(y, pred)", "d")]["difference"] < 0
    assert not any(rows[("mean(loss)", s)]["differs"] for s in "abcd")
    assert "differ" in str(res)
    with pytest.raises(ValueError, match="at least two"):
        sliced_metrics({"y": y, "pred": pred, "seg": np.full(n, "a")}, metrics=ms[0], by="seg", n_resamples=50)
    with pytest.raises(ValueError, match="`by` is required"):
        sliced_metrics(data, metrics=ms, by=None)


def test_sliced_metrics_flag_is_calibrated_under_the_null():
    """No segment differs: the unadjusted flag (alpha=0.1, adjust='none') fires at about 10%."""
    hits, total = 0, 0
    for rep in range(10):
        rng = np.random.default_rng(200 + rep)
        n = 2000
        data = {"x": rng.normal(size=n), "seg": rng.choice(list("abcd"), n)}
        res = sliced_metrics(data, metrics=metrics.mean("x"), by="seg", n_resamples=300, seed=rep, alpha=0.1,
                             adjust="none")
        hits += sum(res.table.column("differs").to_pylist())
        total += res.table.num_rows
    assert st.binomtest(hits, total, 0.1).pvalue > 0.001
