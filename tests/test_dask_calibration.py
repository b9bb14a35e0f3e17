"""fastevals.calibration on a real Dask cluster equals the in-process answer.

Uses the session-wide 2-process ``LocalCluster`` of ``tests/conftest.py`` (the ``client``
fixture). Parquet partitions (1, 3 and 17 files of uneven sizes) are written by the
fixtures; counts must match exactly, sums to 1e-12 relative, and the bootstrap band too:
its weights are keyed by each row's global index, whatever the partitioning.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

dd = pytest.importorskip("dask.dataframe")
pytest.importorskip("distributed")

import fastevals.reliability as fc  # noqa: E402
from fastevals._cli.calibration import main as cli_main  # noqa: E402

N_ROWS = 6_000
PARTITIONS = (1, 3, 17)
RTOL = 1e-12
STRATEGIES = ("uniform", "quantile", "custom")
CUSTOM_EDGES = np.array([0.0, 0.05, 0.1, 0.2, 0.35, 0.6, 1.0])


@pytest.fixture(scope="module")
def table() -> pa.Table:
    rng = np.random.default_rng(20261129)
    p = rng.beta(2, 5, N_ROWS)
    p[:7] = [0.0, 1.0, 1 / 15, 2 / 15, 0.5, 0.2, 0.1]  # end points and values on uniform edges
    y = (rng.random(N_ROWS) < p).astype(np.int8)
    logits = rng.normal(size=(N_ROWS, 3)) * 1.5
    P = np.exp(logits)
    P /= P.sum(axis=1, keepdims=True)
    k = (rng.random(N_ROWS)[:, None] > np.cumsum(P, axis=1)).sum(axis=1).clip(0, 2)
    return pa.table({
        "p": p, "y": y, "seg": rng.choice(["a", "b", "c"], N_ROWS),
        "c0": P[:, 0], "c1": P[:, 1], "c2": P[:, 2], "k": k.astype(np.int64),
    })


@pytest.fixture(scope="module", autouse=True)
def warm_workers(client):
    """Both workers load the calibration kernels at once (numba's cache), not one per test."""
    client.run(fc.warmup)


@pytest.fixture(scope="module")
def folders(table, tmp_path_factory, write_parts) -> dict:
    root = tmp_path_factory.mktemp("calibration-logs")
    out = {}
    for k in PARTITIONS:
        write_parts(table, root / f"p{k}", k, seed=100 + k)
        out[k] = root / f"p{k}"
    return out


def _strategy(name):
    return CUSTOM_EDGES if name == "custom" else name


def assert_same_result(got: fc.CalibrationResult, want: fc.CalibrationResult) -> None:
    np.testing.assert_array_equal(got.edges, want.edges)  # quantile edges: exact, both ways
    assert got.n == want.n and got.n_dropped == want.n_dropped
    assert got.collapsed_bins == want.collapsed_bins
    for g, w in zip(got.curves, want.curves, strict=True):
        np.testing.assert_array_equal(g.count, w.count)  # counts: exactly
        for name in ("weight", "mean_predicted", "observed_frequency"):
            np.testing.assert_allclose(getattr(g, name), getattr(w, name), rtol=RTOL, equal_nan=True,
                                       err_msg=name)
        if w.band is None:
            assert g.band is None
        else:
            np.testing.assert_allclose(g.band.low, w.band.low, rtol=RTOL, equal_nan=True)
            np.testing.assert_allclose(g.band.high, w.band.high, rtol=RTOL, equal_nan=True)
    for name in ("ece", "rms", "mce", "debiased_l2_sq", "brier"):
        np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=RTOL, err_msg=name)
    for name, value in want.brier_decomposition.to_dict().items():
        np.testing.assert_allclose(getattr(got.brier_decomposition, name), value, rtol=RTOL, atol=1e-16,
                                   err_msg=name)
    if want.ece_ci is None:
        assert got.ece_ci is None
    else:
        np.testing.assert_allclose(got.ece_ci, want.ece_ci, rtol=RTOL)


# ------------------------------------------------------------------------------------------------
# the same answer on 1, 3 and 17 partitions


@pytest.mark.parametrize("k", PARTITIONS)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_parquet_partitions_equal_in_process(client, folders, table, k, strategy):
    kw = dict(prob="p", label="y", strategy=_strategy(strategy), n_resamples=25, seed=11)
    want = fc.calibration(table, **kw)
    got = fc.calibration(str(folders[k]), engine="dask", **kw)
    assert_same_result(got, want)
    assert got.curve.band is not None and got.ece_ci is not None
    if strategy == "quantile":
        # sklearn's quantiles: np.percentile(p, np.linspace(0, 1, n_bins + 1) * 100), bit for bit
        p = table.column("p").to_numpy()
        np.testing.assert_array_equal(got.edges, np.percentile(p, np.linspace(0, 1, 16) * 100))


def test_dask_dataframe_list_of_paths_and_engines(client, folders, table):
    want = fc.calibration(table, prob="p", label="y", strategy="quantile", n_resamples=10, seed=2)
    ddf = dd.read_parquet(str(folders[3]))
    assert_same_result(fc.calibration(ddf, prob="p", label="y", strategy="quantile", n_resamples=10, seed=2),
                       want)
    files = sorted(str(f) for f in folders[3].iterdir())
    assert_same_result(fc.calibration(files, prob="p", label="y", strategy="quantile", n_resamples=10, seed=2,
                                      engine="dask"), want)
    with pytest.raises(ValueError, match="engine='arrow'"):
        fc.calibration(ddf, prob="p", label="y", engine="arrow")
    with pytest.raises(ValueError, match="engine"):
        fc.calibration(table, prob="p", label="y", engine="spark")


def test_segments_weights_and_multiclass_on_dask(client, folders, table):
    path = str(folders[3])
    kw = dict(prob="p", label="y", by="seg", weights="c0")
    got = fc.calibration(path, engine="dask", **kw)
    want = fc.calibration(table, **kw)
    assert_same_result(got, want)
    assert set(got.segments) == set(want.segments)
    for lab, res in want.segments.items():
        assert_same_result(got.segments[lab], res)
    kw = dict(prob=["c0", "c1", "c2"], label="k", strategy="quantile", n_resamples=8, seed=4)  # top-label
    assert_same_result(fc.calibration(path, engine="dask", **kw), fc.calibration(table, **kw))


def test_nulls_and_bad_input_on_dask(client, tmp_path, table, write_parts):
    t = table.select(["p", "y"])
    p = t.column("p").to_numpy().copy()
    mask = np.zeros(len(p), dtype=bool)
    mask[::97] = True
    t = t.set_column(0, "p", pa.array(p, mask=mask))
    folder = tmp_path / "nulls"
    write_parts(t, folder, 3, seed=1)
    got = fc.calibration(str(folder), prob="p", label="y", strategy="quantile", nulls="drop", engine="dask")
    want = fc.calibration(t, prob="p", label="y", strategy="quantile", nulls="drop")
    assert got.n_dropped == want.n_dropped == int(mask.sum())
    assert_same_result(got, want)
    # with a bootstrap band: each row keeps its global index (read order) as its key, dropped or not,
    # in one process and on Dask alike, so the bands agree too
    kw = dict(prob="p", label="y", nulls="drop", n_resamples=20, seed=5)
    assert_same_result(fc.calibration(str(folder), engine="dask", **kw), fc.calibration(t, **kw))
    with pytest.raises(ValueError, match="null"):
        fc.calibration(str(folder), prob="p", label="y", engine="dask")
    bad = tmp_path / "bad"
    write_parts(pa.table({"p": np.r_[p[:50], 1.5], "y": t.column("y").to_numpy()[:51]}), bad, 2, seed=2)
    for strategy in ("uniform", "quantile"):
        with pytest.raises(ValueError, match="outside"):
            fc.calibration(str(bad), prob="p", label="y", strategy=strategy, engine="dask")
    with pytest.raises(ValueError, match="unknown column 'nope'"):
        fc.calibration(str(bad), prob="nope", label="y", engine="dask")


def test_cli_on_the_cluster(client, folders, table, capsys):
    args = ["calibration", str(folders[3]), "--prob", "p", "--label", "y", "--strategy", "quantile",
            "--resamples", "10", "--seed", "3", "--json"]
    assert cli_main([*args, "--scheduler", client.scheduler.address]) == 0
    got = json.loads(capsys.readouterr().out)
    want = fc.calibration(table, prob="p", label="y", strategy="quantile", n_resamples=10, seed=3)
    assert got["curves"][0]["count"] == want.curve.count.tolist()
    np.testing.assert_allclose(got["ece"], want.ece, rtol=RTOL)
    np.testing.assert_allclose([got["ece_ci"]["low"], got["ece_ci"]["high"]], want.ece_ci, rtol=RTOL)
