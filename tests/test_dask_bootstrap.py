"""The bootstrap and bandit updates on a real Dask cluster (the session's ``client``
fixture: a 2-process LocalCluster): equal to the in-process answers on 1, 3 and 17
partitions, because a row's weight is keyed by its global index (or its cluster id)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

dd = pytest.importorskip("dask.dataframe")
pytest.importorskip("distributed")

import fastevals  # noqa: E402
from fastevals import metrics as M  # noqa: E402

N_ROWS = 20_000
PARTITIONS = (1, 3, 17)
B = 200


@pytest.fixture(scope="module")
def table() -> pa.Table:
    rng = np.random.default_rng(20261129)
    y = rng.integers(0, 2, N_ROWS)
    x = rng.exponential(3.0, N_ROWS)
    x_nan = x.copy()
    x_nan[rng.random(N_ROWS) < 0.01] = np.nan
    return pa.table({
        "x": x, "x_nan": x_nan, "den": rng.uniform(0.5, 2.0, N_ROWS), "y": y,
        "score": np.round(rng.normal(size=N_ROWS) + 0.7 * y, 2),
        "pred": np.where(rng.random(N_ROWS) < 0.8, y, 1 - y),
        "arm": rng.choice(["control", "new"], N_ROWS), "seg": rng.choice(["a", "b", "c"], N_ROWS),
        "user": rng.integers(0, 2_000, N_ROWS), "bandit_arm": rng.integers(0, 4, N_ROWS),
        "reward": (rng.random(N_ROWS) < 0.3).astype(np.int8), "country": rng.choice(["DE", "FR"], N_ROWS),
    })


@pytest.fixture(scope="module")
def folders(table, tmp_path_factory, write_parts) -> dict:
    root = tmp_path_factory.mktemp("bootstrap_logs")
    out = {}
    for k in PARTITIONS:
        write_parts(table, root / f"p{k}", k, seed=k)
        out[k] = root / f"p{k}"
    return out


def _same(got, want):
    got = [got] if hasattr(got, "estimate") else list(got)
    want = [want] if hasattr(want, "estimate") else list(want)
    assert [(r.metric, r.segment, r.group) for r in got] == [(r.metric, r.segment, r.group) for r in want]
    for g, w in zip(got, want):
        # rtol, with an atol for differences near zero (what cancels there is the means' rounding)
        scale = 1e-12 * np.max(np.abs(w.bootstrap_distribution))
        np.testing.assert_allclose(g.bootstrap_distribution, w.bootstrap_distribution, rtol=1e-12, atol=scale)
        np.testing.assert_allclose(g.estimate, w.estimate, rtol=1e-12)
        np.testing.assert_allclose(tuple(g.confidence_interval), tuple(w.confidence_interval), rtol=1e-12,
                                   atol=scale)
        assert g.n == w.n


CASES = {
    "mean": dict(metric=M.mean("x")),
    "ratio_by_seg": dict(metric=[M.ratio("x", "den"), M.std("x")], by="seg"),
    "accuracy_groups": dict(metric=M.accuracy("y", "pred"), group="arm", control="control", comparison="both"),
    "auc": dict(metric=M.roc_auc("y", "score")),
    "cluster": dict(metric=M.mean("x"), cluster="user"),
}


@pytest.mark.parametrize("k", PARTITIONS)
@pytest.mark.parametrize("case", list(CASES))
def test_partitions_give_the_in_process_intervals(client, table, folders, k, case):
    kw = dict(CASES[case], n_resamples=B, seed=7, progress=False)
    ref = fastevals.bootstrap(table, **kw)
    got = fastevals.bootstrap(dd.read_parquet(folders[k]), **kw)
    _same(got, ref)


BCA_CASES = {
    "mean_groups": dict(metric=[M.mean("x"), M.ratio("x", "den")], group="arm", control="control",
                        comparison="both"),
    "std_by_seg": dict(metric=M.std("x"), by="seg"),
    "cluster": dict(metric=M.mean("x"), cluster="user"),
    "auc_and_accuracy": dict(metric=[M.roc_auc("y", "score"), M.accuracy("y", "pred")]),
}


@pytest.mark.parametrize("case", list(BCA_CASES))
def test_bca_on_dask_equals_in_process(client, table, folders, case):
    kw = dict(BCA_CASES[case], method="bca", n_resamples=B, seed=9, progress=False)
    ref = fastevals.bootstrap(table, **kw)
    got = fastevals.bootstrap(dd.read_parquet(folders[17]), **kw)
    _same(got, ref)
    for g, w in zip([got] if hasattr(got, "estimate") else got, [ref] if hasattr(ref, "estimate") else ref):
        np.testing.assert_allclose(g.acceleration, w.acceleration, rtol=1e-9)


def test_engine_dask_with_filter_and_dropped_nulls(client, table, folders):
    kw = dict(metric=M.mean("x_nan"), n_resamples=B, seed=3, nulls="drop", filter=pc.field("country") == "DE",
              progress=False)
    got = fastevals.bootstrap(str(folders[17] / "*.parquet"), engine="dask", **kw)
    ref = fastevals.bootstrap(table, **kw)
    _same(got, ref)
    assert got.n < N_ROWS / 2


def test_bootstrap_errors_on_dask(client, folders):
    ddf = dd.read_parquet(folders[3])
    with pytest.raises(ValueError, match="combines a sorted metric"):
        fastevals.bootstrap(ddf, M.roc_auc("y", "score") - M.mean("y"), method="bca", progress=False)
    with pytest.raises(ValueError, match="unknown column 'nope'"):
        fastevals.bootstrap(ddf, M.mean("nope"), progress=False)
    with pytest.raises(ValueError, match="empty input"):
        fastevals.bootstrap(ddf, M.mean("x"), filter=pc.field("country") == "XX", progress=False)


@pytest.mark.parametrize("k", PARTITIONS)
def test_bandit_update_on_dask_equals_in_process(client, table, folders, k):
    from fastevals._fold import fold

    def fresh():
        return fastevals.UCB1(4, arm="bandit_arm", reward="reward")

    got = fold(fresh(), dd.read_parquet(folders[k]))
    ref = fresh().update(table)
    np.testing.assert_array_equal(got.state.pulls, ref.state.pulls)
    np.testing.assert_allclose(got.state.reward_sums, ref.state.reward_sums, rtol=1e-12)
    # merged into a policy that already has plays: adds to them (a new state; neither side changes)
    on_dask = fold(fresh(), str(folders[k] / "*.parquet"), engine="dask")
    twice = ref.merge(on_dask)
    np.testing.assert_array_equal(twice.state.pulls, 2 * ref.state.pulls)
    np.testing.assert_array_equal(on_dask.state.pulls, ref.state.pulls)


def test_bandit_engine_errors(client, folders):
    from fastevals._fold import fold

    played = fastevals.UCB1(2, arm="bandit_arm", reward="reward").update(np.array([0, 1]), np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="fresh state"):
        fold(played, str(folders[1]), engine="dask")
    with pytest.raises(ValueError, match="`engine`"):
        fold(fastevals.UCB1(2, arm="bandit_arm", reward="reward"), str(folders[1]), engine="spark")


def test_cli_bootstrap_on_the_cluster(client, table, folders, capsys):
    import json

    from fastevals import cli

    glob = str(folders[3] / "*.parquet")
    argv = ["bootstrap", glob, "-m", "mean(x)", "-m", "ratio(x, den)", "--group", "arm", "--control", "control",
            "--comparison", "relative", "-B", "100", "--seed", "4", "--json"]
    assert cli.main(argv + ["--scheduler", client.scheduler.address]) == 0
    rows = json.loads(capsys.readouterr().out)
    ref = fastevals.bootstrap(table, [M.mean("x"), M.ratio("x", "den")], group="arm", control="control",
                              comparison="relative", n_resamples=100, seed=4, progress=False)
    assert [r["metric"] for r in rows] == [r.metric for r in ref]
    for row, r in zip(rows, ref):
        ci = row["confidence_interval"]
        np.testing.assert_allclose([ci["low"], ci["high"]], tuple(r.confidence_interval), rtol=1e-12)
    assert any(r["comparison"] == "relative" for r in rows)
