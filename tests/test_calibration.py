"""Calibration: every fast path against a plain NumPy twin and sklearn / statsmodels /
uncertainty-calibration (Kumar et al.), plus merge, streaming and thread invariants."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss

import fastevals
import fastevals.reliability as fc
from fastevals._config import PARALLEL_MIN_ROWS, get_num_threads, set_num_threads
from fastevals._kernels import calibration as kern

RTOL = 1e-12


# ----------------------------------------------------------------------------------------------------
# slow, obviously correct twins


def twin_bins(p, edges):
    """sklearn's assignment written as a loop: count inner edges strictly below p."""
    inner = edges[1:-1]
    return np.array([sum(1 for e in inner if e < x) for x in p], dtype=np.int64)


def twin_curve(p, y, edges, w=None):
    nb = len(edges) - 1
    w = np.ones(len(p)) if w is None else np.asarray(w, dtype=float)
    b = twin_bins(p, edges)
    out = {k: np.zeros(nb) for k in ("n", "w", "sp", "sy", "sw2")}
    for i in range(len(p)):
        out["n"][b[i]] += 1
        out["w"][b[i]] += w[i]
        out["sp"][b[i]] += w[i] * p[i]
        out["sy"][b[i]] += w[i] * y[i]
        out["sw2"][b[i]] += w[i] ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        pbar = out["sp"] / out["w"]
        ybar = out["sy"] / out["w"]
    return b, out, pbar, ybar


def twin_scalars(p, y, edges, w=None):
    """ECE as netcal defines it (sum_b n_b / N |acc_b - conf_b|), RMS, MCE, debiased L2^2 (Kumar
    et al.), Brier and the Stephenson et al. decomposition, from per-row sums."""
    w1 = np.ones(len(p)) if w is None else np.asarray(w, dtype=float)
    b, out, pbar, ybar = twin_curve(p, y, edges, w)
    W = w1.sum()
    ne = out["n"] > 0
    gap = np.where(ne, ybar - pbar, 0.0)
    frac = out["w"] / W
    neff = out["n"] if w is None else np.where(ne, out["w"] ** 2 / np.where(ne, out["sw2"], 1), 0)
    yb = np.where(ne, ybar, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.where(out["n"] >= 2, yb * (1 - yb) / (neff - 1), 0.0)
    ybar_all = np.sum(w1 * y) / W
    wbv = sum(w1[i] * (p[i] - pbar[b[i]]) ** 2 for i in range(len(p))) / W
    wbc = 2 * sum(w1[i] * (p[i] - pbar[b[i]]) * (y[i] - ybar[b[i]]) for i in range(len(p))) / W
    return {
        "ece": np.sum(frac * np.abs(gap)),
        "rms": np.sqrt(np.sum(frac * gap**2)),
        "mce": np.max(np.abs(gap[ne])),
        "debiased_l2_sq": np.sum(np.where(out["n"] >= 2, frac * (gap**2 - corr), 0.0)),
        "brier": np.sum(w1 * (p - y) ** 2) / W,
        "reliability": np.sum(frac * gap**2),
        "resolution": np.sum(frac * np.where(ne, (yb - ybar_all) ** 2, 0.0)),
        "uncertainty": ybar_all * (1 - ybar_all),
        "within_bin_variance": wbv,
        "within_bin_covariance": wbc,
    }


def make_binary(n, seed, grid=False):
    rng = np.random.default_rng(seed)
    if grid:
        # values on uniform and quantile edges, 0 and 1 included: exercises the tie rules
        p = rng.integers(0, 31, n) / 30.0
    else:
        p = rng.beta(2, 5, n)
    y = (rng.random(n) < np.clip(p * 1.2, 0, 1)).astype(np.int8)
    return p, y


def curve_of(p, y, **kw):
    return fc.calibration({"p": p, "y": y}, prob="p", label="y", **kw)


# ----------------------------------------------------------------------------------------------------
# bins and curves


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
@pytest.mark.parametrize("grid", [False, True])
@pytest.mark.parametrize("n_bins", [1, 5, 15])
def test_curve_matches_sklearn_and_twin(strategy, grid, n_bins):
    p, y = make_binary(3000, seed=n_bins, grid=grid)
    res = curve_of(p, y, n_bins=n_bins, strategy=strategy)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=n_bins, strategy=strategy)
    ours_true, ours_pred = res.curve.sklearn_curve()
    np.testing.assert_allclose(ours_true, prob_true, rtol=RTOL, atol=1e-15)
    np.testing.assert_allclose(ours_pred, prob_pred, rtol=RTOL, atol=1e-15)
    b, out, pbar, ybar = twin_curve(p, y, res.edges)
    np.testing.assert_array_equal(res.curve.count, out["n"])
    np.testing.assert_allclose(res.curve.observed_frequency, ybar, rtol=RTOL, equal_nan=True)
    np.testing.assert_allclose(res.curve.mean_predicted, pbar, rtol=RTOL, equal_nan=True)
    # sklearn's own assignment, as its source does it
    np.testing.assert_array_equal(b, np.searchsorted(res.edges[1:-1], p))


@pytest.mark.parametrize("n", [2, 3, 7, 1000, 4099])
@pytest.mark.parametrize("ties", [False, True])
def test_quantile_edges_bit_identical_to_percentile(n, ties):
    rng = np.random.default_rng(n)
    p = rng.integers(0, 5, n) / 4.0 if ties else rng.random(n) ** 3
    y = (np.arange(n) % 2).astype(np.int8)
    res = curve_of(p, y, n_bins=15, strategy="quantile")
    expected = np.percentile(p, np.linspace(0, 1, 16) * 100)
    np.testing.assert_array_equal(res.edges, expected)
    if ties and n > 10:
        # tied scores collapse bins: reported, not merged (a zero-width bin [e, e] still holds the
        # values equal to e when it is the first of a run of equal edges, as in sklearn)
        assert res.collapsed_bins == tuple(np.flatnonzero(np.diff(expected) == 0))
        assert len(res.curve.count) == 15
        np.testing.assert_array_equal(res.curve.count, np.bincount(np.searchsorted(expected[1:-1], p),
                                                                   minlength=15))


@pytest.mark.parametrize("n_bins", [3, 7, 10, 15, 100])
def test_values_within_ulps_of_edges(n_bins):
    # the uniform fast path guesses int(p * n_bins); values a few ulps around every edge must
    # still land where np.searchsorted(edges[1:-1], p) puts them
    edges = np.linspace(0, 1, n_bins + 1)
    near = [edges, np.nextafter(edges, 2), np.nextafter(edges, -1),
            np.nextafter(np.nextafter(edges, 2), 2), np.arange(n_bins + 1) / n_bins]
    p = np.clip(np.concatenate(near), 0, 1)
    y = (np.arange(len(p)) % 2).astype(np.int8)
    res = curve_of(p, y, n_bins=n_bins)
    np.testing.assert_array_equal(res.curve.count,
                                  np.bincount(np.searchsorted(edges[1:-1], p), minlength=n_bins))
    custom = curve_of(p, y, strategy=edges + np.r_[0, np.full(n_bins - 1, 1e-12), 0])  # the lookup path
    shifted = edges + np.r_[0, np.full(n_bins - 1, 1e-12), 0]
    np.testing.assert_array_equal(custom.curve.count,
                                  np.bincount(np.searchsorted(shifted[1:-1], p), minlength=n_bins))


@pytest.mark.parametrize("kind", ["uniform", "quantile-ties", "custom"])
def test_row_loop_binning_equals_searchsorted(kind):
    # the kernels bin by a lookup table (or int(p * n)) and search only where a table cell holds an
    # edge; values on, and one ulp either side of, every edge must land where searchsorted puts them
    rng = np.random.default_rng(3)
    if kind == "uniform":
        edges = np.linspace(0, 1, 16)
    elif kind == "quantile-ties":
        edges = np.percentile(np.r_[np.zeros(400), rng.random(200) ** 3, np.ones(50)], np.linspace(0, 100, 13))
    else:
        edges = np.array([0.0, 1e-9, 0.25, 0.25 + 2**-40, 0.5, 0.9999, 1.0])
    inner = edges[1:-1]
    near = np.concatenate([inner, np.nextafter(inner, 0), np.nextafter(inner, 1)])
    p = np.concatenate([near, rng.random(3000), [0.0, 1.0, 2**-11, 1 - 2**-11]])
    p = np.clip(p, 0, 1)
    y = (rng.random(len(p)) < 0.5).astype(np.uint8)
    n_bins = len(edges) - 1
    uniform = kind == "uniform"
    shift = kern.uniform_shift(n_bins) if uniform else (edges[:-1] + edges[1:]) / 2
    cnt, _, bad_p, bad_y = kern.fold_bins_serial(p, y, -1, np.empty(0), np.empty(0, np.int64), n_bins,
                                                 np.ascontiguousarray(inner), kern.bin_lookup(inner), uniform,
                                                 shift, n_bins, 1000)
    assert bad_p == 0 and bad_y == 0
    np.testing.assert_array_equal(cnt, np.bincount(np.searchsorted(inner, p, side="left"), minlength=n_bins))
    p_bad = np.array([0.5, -0.0, -1e-300, 1 + 1e-16, np.nan, np.inf, -np.inf])
    _, _, bad_p, _ = kern.fold_bins_serial(p_bad, np.zeros(len(p_bad), np.uint8), -1, np.empty(0),
                                           np.empty(0, np.int64), n_bins, np.ascontiguousarray(inner),
                                           kern.bin_lookup(inner), uniform, shift, n_bins, 1000)
    assert bad_p == 4  # -0.0 is in [0, 1]; 1 + 1e-16 rounds to 1.0


def test_custom_edges_and_values_outside_end_edges():
    p, y = make_binary(2000, seed=4)
    edges = np.array([0.1, 0.2, 0.35, 0.6])
    res = curve_of(p, y, strategy=edges)
    b, out, pbar, ybar = twin_curve(p, y, edges)
    np.testing.assert_array_equal(res.curve.count, out["n"])
    np.testing.assert_allclose(res.curve.observed_frequency, ybar, rtol=RTOL)


# ----------------------------------------------------------------------------------------------------
# scalars


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_scalars_match_twin(weighted, strategy):
    p, y = make_binary(1500, seed=7)
    rng = np.random.default_rng(8)
    w = rng.exponential(size=len(p)) if weighted else None
    data = {"p": p, "y": y} | ({"w": w} if weighted else {})
    res = fc.calibration(data, prob="p", label="y", weights="w" if weighted else None, strategy=strategy)
    tw = twin_scalars(p, y, res.edges, w)
    d = res.brier_decomposition
    for k in ("ece", "rms", "mce", "debiased_l2_sq"):
        np.testing.assert_allclose(getattr(res, k), tw[k], rtol=1e-10, err_msg=k)
    parts_names = ("brier", "reliability", "resolution", "uncertainty", "within_bin_variance",
                   "within_bin_covariance")
    for k in parts_names:
        np.testing.assert_allclose(getattr(d, k), tw[k], rtol=1e-10, atol=1e-15, err_msg=k)
    # the parts add up to the Brier score, which is sklearn's
    parts = d.reliability - d.resolution + d.uncertainty + d.within_bin_variance - d.within_bin_covariance
    np.testing.assert_allclose(parts, d.brier, rtol=RTOL)
    np.testing.assert_allclose(d.brier, brier_score_loss(y, p, sample_weight=w), rtol=RTOL)


def test_debiased_l2_matches_kumar_package():
    cu = pytest.importorskip("calibration.utils")  # pip package uncertainty-calibration
    p, y = make_binary(4000, seed=11)
    for strategy in ("uniform", "quantile"):
        res = curve_of(p, y, strategy=strategy)
        binned = cu.bin(list(zip(p, y, strict=True)), list(res.edges[1:]))
        np.testing.assert_allclose(res.debiased_l2_sq, cu.unbiased_square_ce(binned), rtol=1e-10)
        np.testing.assert_allclose(res.curve.debiased_l2, cu.unbiased_l2_ce(binned), rtol=1e-10)
        plugin = cu.plugin_ce(binned, power=1)
        np.testing.assert_allclose(res.ece, plugin, rtol=1e-10)


def test_wilson_interval_matches_statsmodels():
    from statsmodels.stats.proportion import proportion_confint

    p, y = make_binary(2500, seed=12)
    res = curve_of(p, y, confidence=0.9)
    c = res.curve
    keep = c.count > 0
    successes = np.round(c.observed_frequency[keep] * c.count[keep])
    lo, hi = proportion_confint(successes, c.count[keep], alpha=0.1, method="wilson")
    np.testing.assert_allclose(c.observed_frequency_ci.low[keep], lo, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(c.observed_frequency_ci.high[keep], hi, rtol=1e-10, atol=1e-14)


# ----------------------------------------------------------------------------------------------------
# states: merge, serialization, streaming, threads


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.lists(st.integers(1, 400), min_size=1, max_size=5), st.booleans())
def test_shards_merged_equal_one_shot(seed, sizes, weighted):
    rng = np.random.default_rng(seed)
    n = sum(sizes)
    p = rng.random(n)
    y = rng.integers(0, 2, n).astype(np.int8)
    g = rng.integers(0, 3, n)
    w = rng.random(n) + 0.1
    table = pa.table({"p": p, "y": y, "g": g, "w": w})
    edges = np.linspace(0, 1, 8)
    kw = dict(prob="p", label="y", by="g", weights="w" if weighted else None, n_resamples=3, seed=5,
              strategy=edges)
    one = fc.CalibrationState(**kw).update(table).finalize()
    states = []
    start = 0
    for s in sizes:
        states.append(fc.CalibrationState(**kw).update(table.slice(start, s), row_offset=start))
        start += s
    merged = states[-1]
    for s in reversed(states[:-1]):  # merge in another order: segments meet in another order too
        merged = merged.merge(s)
    merged = fc.CalibrationState.from_bytes(merged.to_bytes())
    res = merged.finalize()
    for k in ("ece", "rms", "mce", "debiased_l2_sq", "brier"):
        np.testing.assert_allclose(getattr(res, k), getattr(one, k), rtol=1e-11, atol=1e-15, err_msg=k)
    np.testing.assert_allclose(res.ece_ci, one.ece_ci, rtol=1e-11)
    for lab, seg in one.segments.items():
        np.testing.assert_array_equal(res.segments[lab].curve.count, seg.curve.count)
        np.testing.assert_allclose(res.segments[lab].brier_decomposition.within_bin_covariance,
                                   seg.brier_decomposition.within_bin_covariance, rtol=1e-9, atol=1e-15)


def test_parquet_streaming_equals_in_memory(tmp_path):
    p, y = make_binary(20_000, seed=13)
    table = pa.table({"p": p, "y": y.astype(np.int8)})
    path = tmp_path / "log.parquet"
    pq.write_table(table, path, row_group_size=3_000)
    for strategy in ("uniform", "quantile"):
        mem = fc.calibration(table, prob="p", label="y", strategy=strategy)
        disk = fc.calibration(str(path), prob="p", label="y", strategy=strategy, batch_size=1_700)
        np.testing.assert_array_equal(disk.edges, mem.edges)
        np.testing.assert_array_equal(disk.curve.count, mem.curve.count)
        np.testing.assert_allclose(disk.ece, mem.ece, rtol=1e-12)
        np.testing.assert_allclose(disk.brier_decomposition.within_bin_variance,
                                   mem.brier_decomposition.within_bin_variance, rtol=1e-10)


def test_one_shot_reader():
    p, y = make_binary(500, seed=14)
    table = pa.table({"p": p, "y": y})
    res = fc.calibration(pa.RecordBatchReader.from_batches(table.schema, table.to_batches()),
                         prob="p", label="y")
    assert res.n == 500
    with pytest.raises(ValueError, match="read only once"):
        fc.calibration(pa.RecordBatchReader.from_batches(table.schema, table.to_batches()),
                       prob="p", label="y", strategy="quantile")


def test_parallel_kernel_same_on_one_and_many_threads():
    n = PARALLEL_MIN_ROWS + 12_345
    p, y = make_binary(n, seed=15)
    table = pa.table({"p": p, "y": y})
    before = get_num_threads()
    try:
        set_num_threads(1)
        one = fc.calibration(table, prob="p", label="y", strategy="quantile")
        set_num_threads(before)
        many = fc.calibration(table, prob="p", label="y", strategy="quantile")
    finally:
        set_num_threads(before)
    np.testing.assert_array_equal(one.curve.count, many.curve.count)
    assert one.ece == many.ece and one.brier == many.brier
    np.testing.assert_array_equal(one.edges, np.percentile(p, np.linspace(0, 1, 16) * 100))
    prob_true, prob_pred = calibration_curve(y, p, n_bins=15, strategy="quantile")
    np.testing.assert_allclose(many.curve.sklearn_curve()[1], prob_pred, rtol=RTOL)


# ----------------------------------------------------------------------------------------------------
# multiclass


def make_multiclass(n, k, seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * 1.5
    P = np.exp(logits)
    P /= P.sum(axis=1, keepdims=True)
    u = rng.random(n)[:, None]
    y = (u > np.cumsum(P, axis=1)).sum(axis=1).clip(0, k - 1).astype(np.int64)
    cols = {f"c{j}": P[:, j] for j in range(k)}
    table = pa.table({"P": pa.FixedSizeListArray.from_arrays(pa.array(P.ravel()), k), "y": y, **cols})
    return P, y, table


def test_top_label_matches_twin_and_kumar():
    P, y, table = make_multiclass(3000, 4, seed=16)
    res = fc.calibration(table, prob="P", label="y")
    res_cols = fc.calibration(table, prob=["c0", "c1", "c2", "c3"], label="y")
    conf = P.max(axis=1)
    correct = (P.argmax(axis=1) == y).astype(np.int64)
    tw = twin_scalars(conf, correct, res.edges)
    np.testing.assert_allclose(res.ece, tw["ece"], rtol=1e-10)
    assert res.ece == res_cols.ece
    prob_true, prob_pred = calibration_curve(correct, conf, n_bins=15)
    np.testing.assert_allclose(res.curve.sklearn_curve()[0], prob_true, rtol=RTOL)
    cu = pytest.importorskip("calibration.utils")
    ref = cu.unbiased_square_ce(cu.bin(list(zip(conf, correct, strict=True)), list(res.edges[1:])))
    np.testing.assert_allclose(res.debiased_l2_sq, ref, rtol=1e-10)


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_classwise_matches_per_class_binary(strategy):
    P, y, table = make_multiclass(2000, 3, seed=17)
    res = fc.calibration(table, prob="P", label="y", multiclass="classwise", strategy=strategy)
    eces = []
    for j, curve in enumerate(res.curves):
        yj = (y == j).astype(np.int64)
        prob_true, prob_pred = calibration_curve(yj, P[:, j], n_bins=15, strategy=strategy)
        np.testing.assert_allclose(curve.sklearn_curve()[0], prob_true, rtol=RTOL)
        np.testing.assert_allclose(curve.sklearn_curve()[1], prob_pred, rtol=RTOL, atol=1e-15)
        eces.append(twin_scalars(P[:, j], yj, curve.edges)["ece"])
    np.testing.assert_allclose(res.ece, np.mean(eces), rtol=1e-10)
    # the multiclass Brier score: sum over classes of the one-vs-rest squared errors
    onehot = np.eye(3)[y]
    np.testing.assert_allclose(res.brier, np.mean(np.sum((P - onehot) ** 2, axis=1)), rtol=1e-12)


def test_multiclass_checks():
    P, y, table = make_multiclass(300, 3, seed=18)
    bad = P.copy()
    bad[5] *= 1.1
    t = pa.table({"a": bad[:, 0], "b": bad[:, 1], "c": bad[:, 2], "y": y})
    with pytest.raises(ValueError, match="sum to 1.*check_rows=False"):
        fc.calibration(t, prob=["a", "b", "c"], label="y")
    ok = fc.calibration(t, prob=["a", "b", "c"], label="y", check_rows=False)
    assert ok.n == 300
    t2 = table.set_column(table.schema.get_field_index("y"), "y", pa.array(np.where(y == 0, 3, y)))
    with pytest.raises(ValueError, match="class indices 0..2"):
        fc.calibration(t2, prob="P", label="y")
    one = pa.table({"P": pa.FixedSizeListArray.from_arrays(pa.array(np.ones(4)), 1), "y": np.zeros(4, int)})
    with pytest.raises(ValueError, match="at least 2 classes"):
        fc.calibration(one, prob="P", label="y")



def twin_multiclass_flags(P, y, tol=fc.ROW_SUM_TOL):
    """The three multiclass counts as plain NumPy: rows with a probability outside [0, 1] or NaN,
    labels outside the classes, rows whose sequential sum is off by more than tol."""
    k = P.shape[1]
    bad_p = int(np.sum(~np.all((P >= 0) & (P <= 1), axis=1)))
    bad_y = int(np.sum((y < 0) | (y >= k)))
    sums = np.zeros(len(P))
    with np.errstate(invalid="ignore"):  # inf - inf
        for j in range(k):  # in class order, like the kernel
            sums = sums + P[:, j]
    return bad_p, bad_y, int(np.sum(np.abs(sums - 1.0) > tol))


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("segmented", [False, True])
@pytest.mark.parametrize("uniform", [True, False])
def test_top_label_fused_fold_equals_materialized(weighted, segmented, uniform):
    # the fused kernel (max/argmax, checks and binning in one pass) against materialized
    # confidences folded by the binary kernel: same counts and flags, same sums
    P, y, _ = make_multiclass(5000, 5, seed=40)
    rng = np.random.default_rng(41)
    P[7] = [np.nan, 0.5, 0.5, 0.0, 0.0]
    P[8] = [1.5, -0.5, 0.0, 0.0, 0.0]
    P[9] = [-1e-300, 0.2, 0.3, 0.5, 0.0]
    P[10] = [np.inf, -np.inf, 0.0, 0.0, 0.0]
    P[11] = [0.25, 0.25, 0.25, 0.25, 0.25]
    P[12] = [0.0, 0.4, 0.4, 0.2, 0.0]  # tied max: the first one wins
    P[13] = [-0.0, 0.0, 1.0, 0.0, 0.0]
    y = y.copy()
    y[20] = 5
    y[21] = -1
    w = rng.random(len(y)) if weighted else np.empty(0)
    seg = rng.integers(0, 3, len(y)) if segmented else np.empty(0, np.int64)
    n_bins = 10
    edges = np.linspace(0, 1, n_bins + 1) if uniform else np.r_[0, np.sort(rng.random(n_bins - 1)), 1]
    inner = np.ascontiguousarray(edges[1:-1])
    shift = kern.uniform_shift(n_bins) if uniform else (edges[:-1] + edges[1:]) / 2
    n_cells = n_bins * (3 if segmented else 1)
    args = (n_bins, inner, kern.bin_lookup(inner), uniform, shift, n_cells, 1000)
    conf, correct, flags = kern.top_label_serial(P, y, 5, fc.ROW_SUM_TOL, True, 1000)
    assert tuple(flags) == twin_multiclass_flags(P, y)
    np.testing.assert_array_equal(conf[14:], P[14:].max(axis=1))
    np.testing.assert_array_equal(correct[14:], P[14:].argmax(axis=1) == y[14:])
    assert correct[12] == (y[12] == 1)
    cnt, st, _, _ = kern.fold_bins_serial(conf, correct, -1, w, seg, *args)
    for fold in (kern.fold_top_label_serial, kern.fold_top_label_parallel):
        cnt_f, st_f, flags_f = fold(P, y, 5, fc.ROW_SUM_TOL, True, w, seg, *args)
        np.testing.assert_array_equal(flags_f, flags)
        np.testing.assert_array_equal(cnt_f, cnt)
        np.testing.assert_array_equal(st_f, st)
    _, _, flags_nc = kern.fold_top_label_serial(P, y, 5, fc.ROW_SUM_TOL, False, w, seg, *args)
    assert tuple(flags_nc) == twin_multiclass_flags(P, y)[:2] + (0,)


def test_top_label_public_paths_agree_and_report_bad_rows():
    P, y, table = make_multiclass(4000, 4, seed=42)
    w = np.random.default_rng(43).random(len(y))
    table = table.append_column("w", pa.array(w))
    # fused on the CPU; with n_resamples the confidences are materialized for the bootstrap
    fused = fc.calibration(table, prob="P", label="y", weights="w")
    boot = fc.calibration(table, prob="P", label="y", weights="w", n_resamples=3, seed=1)
    np.testing.assert_array_equal(fused.curve.count, boot.curve.count)
    np.testing.assert_allclose(fused.ece, boot.ece, rtol=1e-12)
    np.testing.assert_allclose(fused.brier, boot.brier, rtol=1e-12)
    conf = P.max(axis=1)
    correct = (P.argmax(axis=1) == y).astype(np.int64)
    tw = twin_scalars(conf, correct, fused.edges, w)
    np.testing.assert_allclose(fused.ece, tw["ece"], rtol=1e-10)
    np.testing.assert_allclose(fused.brier, tw["brier"], rtol=1e-10)
    bad = P.copy()
    bad[3, 1] = np.nan
    bad[9, 0] = 1.25
    bad[11, 2] = -0.5
    bt = table.set_column(0, "P", pa.FixedSizeListArray.from_arrays(pa.array(bad.ravel()), 4))
    for kw in ({}, {"n_resamples": 2}, {"strategy": "quantile"}):
        with pytest.raises(ValueError, match=r"3 row\(s\) with a probability outside \[0, 1\] or NaN"):
            fc.calibration(bt, prob="P", label="y", **kw)


def test_top_label_same_on_one_and_many_threads():
    P, y, table = make_multiclass(PARALLEL_MIN_ROWS + 4321, 3, seed=44)
    before = get_num_threads()
    try:
        set_num_threads(1)
        one = fc.calibration(table, prob="P", label="y")
        set_num_threads(before)
        many = fc.calibration(table, prob="P", label="y")
    finally:
        set_num_threads(before)
    np.testing.assert_array_equal(one.curve.count, many.curve.count)
    assert one.ece == many.ece and one.brier == many.brier
    prob_true, prob_pred = calibration_curve(P.argmax(axis=1) == y, P.max(axis=1), n_bins=15)
    np.testing.assert_allclose(many.curve.sklearn_curve()[0], prob_true, rtol=RTOL)
    np.testing.assert_allclose(many.curve.sklearn_curve()[1], prob_pred, rtol=RTOL)


# ----------------------------------------------------------------------------------------------------
# segments and bootstrap


def test_by_segments_equal_filtered_runs():
    p, y = make_binary(3000, seed=19)
    g = np.array(["a", "b", "c"])[np.random.default_rng(20).integers(0, 3, len(p))]
    res = fc.calibration({"p": p, "y": y, "g": g}, prob="p", label="y", by="g")
    whole = curve_of(p, y)
    np.testing.assert_allclose(res.ece, whole.ece, rtol=1e-12)
    for lab in "abc":
        m = g == lab
        sub = curve_of(p[m], y[m])
        np.testing.assert_array_equal(res.segments[lab].curve.count, sub.curve.count)
        np.testing.assert_allclose(res.segments[lab].ece, sub.ece, rtol=1e-12)
    assert res.to_arrow().num_rows == 3 * 15


def test_bootstrap_matches_twin_and_batching():
    p, y = make_binary(1200, seed=21)
    table = pa.table({"p": p, "y": y})
    res = fc.calibration(table, prob="p", label="y", n_resamples=40, seed=9, confidence=0.8)
    res_b = fc.calibration(table, prob="p", label="y", n_resamples=40, seed=9, confidence=0.8, batch_size=77)
    np.testing.assert_allclose(res_b.ece_ci, res.ece_ci, rtol=1e-12)
    # the band's weights are the bootstrap engine's: the same matrix fastevals.poisson_weights gives
    w = fastevals.poisson_weights(len(p), 40, 9).astype(float)
    b = twin_bins(p, res.edges)
    reps = []
    for r in range(40):
        sw = np.bincount(b, weights=w[r], minlength=15)
        sp = np.bincount(b, weights=w[r] * p, minlength=15)
        sy = np.bincount(b, weights=w[r] * y, minlength=15)
        reps.append(np.abs(sy - sp).sum() / sw.sum())
    np.testing.assert_allclose(res.ece_ci, np.percentile(reps, [10, 90]), rtol=1e-10)
    keep = res.curve.count > 0
    assert np.all(res.curve.band.low[keep] <= res.curve.band.high[keep])
    assert np.all(np.isnan(res.curve.band.low[~keep]))


def test_bootstrap_band_covers_true_frequency():
    # 60 seeded datasets with known calibration: the 90% band of a bin covers its true rate in
    # about 90% of them (binomial test, loose: the percentile bootstrap is approximate)
    rng = np.random.default_rng(22)
    edges = np.array([0.0, 0.5, 1.0])
    hits = 0
    trials = 60
    for t in range(trials):
        p = rng.uniform(0.2, 0.3, 400)
        y = (rng.random(400) < 0.25).astype(np.int8)
        res = curve_of(p, y, strategy=edges, n_resamples=200, seed=t, confidence=0.9)
        lo, hi = res.curve.band.low[0], res.curve.band.high[0]
        hits += lo <= 0.25 <= hi
    assert stats.binomtest(hits, trials, 0.9).pvalue > 1e-3


# ----------------------------------------------------------------------------------------------------
# errors, output


def test_bad_inputs():
    p, y = make_binary(100, seed=23)
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        curve_of(np.where(np.arange(100) == 3, 1.5, p), y)
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        curve_of(np.where(np.arange(100) == 3, -0.1, p), y, strategy="quantile")
    with pytest.raises(ValueError, match="NaN"):
        curve_of(np.where(np.arange(100) == 3, np.nan, p), y)
    with pytest.raises(ValueError, match="other than 0 and 1"):
        curve_of(p, np.where(np.arange(100) == 3, 2, y))
    with pytest.raises(ValueError, match="strictly increasing"):
        curve_of(p, y, strategy=[0.0, 0.5, 0.5, 1.0])
    with pytest.raises(ValueError, match="`strategy` must be one of"):
        curve_of(p, y, strategy="kmeans")
    with pytest.raises(ValueError, match="unknown column 'q'"):
        fc.calibration({"p": p, "y": y}, prob="q", label="y")
    with pytest.raises(ValueError, match="weights"):
        fc.calibration({"p": p, "y": y, "w": -np.ones(100)}, prob="p", label="y", weights="w")
    # a single class is a legitimate input: ECE and Brier are defined (checked against NumPy)
    one = curve_of(p, np.zeros(100, dtype=np.int8))
    assert one.brier == pytest.approx(np.mean(p**2), rel=1e-12)
    edges = np.linspace(0, 1, 11)
    b = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, 9)
    ece = sum(abs(p[b == k].sum()) for k in range(10)) / 100
    assert one.ece == pytest.approx(ece, rel=1e-12)
    dropped = curve_of(np.where(np.arange(100) < 4, np.nan, p), y, nulls="drop")
    assert dropped.n == 96 and dropped.n_dropped == 4


def test_to_dict_to_arrow_and_bool_labels():
    p, y = make_binary(500, seed=24)
    res = fc.calibration({"p": p, "y": y.astype(bool)}, prob="p", label="y", n_bins=5)
    assert res.ece == curve_of(p, y, n_bins=5).ece
    d = json.loads(json.dumps(res.to_dict()))
    assert d["curves"][0]["count"] == res.curve.count.tolist()
    t = res.to_arrow()
    assert t.num_rows == 5 and t.column("count").to_pylist() == res.curve.count.tolist()


def test_plot_writes_png(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p, y = make_binary(800, seed=25)
    res = curve_of(p, y, n_resamples=20, seed=1)
    path = tmp_path / "rel.png"
    ax = res.plot(path=path)
    plt.close(ax.figure)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fig, ax = plt.subplots()
    assert res.plot(ax=ax, kind="bars") is ax
    plt.close(fig)


def test_cli(tmp_path, capsys):
    from fastevals._cli.calibration import main

    p, y = make_binary(2000, seed=26)
    path = tmp_path / "log.parquet"
    pq.write_table(pa.table({"p": p, "y": y}), path)
    out_png = tmp_path / "out.png"
    rc = main(["calibration", str(path), "--prob", "p", "--label", "y", "--bins", "10",
               "--strategy", "quantile", "--plot", str(out_png)])
    assert rc == 0
    text = capsys.readouterr().out
    expected = curve_of(p, y, n_bins=10, strategy="quantile")
    assert f"{expected.ece:.6f}" in text and out_png.exists()
    rc = main(["calibration", str(path), "--prob", "p", "--label", "y", "--json"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(d["ece"], curve_of(p, y).ece, rtol=1e-12)
    assert main(["calibration", str(path), "--prob", "nope", "--label", "y"]) == 2


# ----------------------------------------------------------------------------------------------------
# the protocol: the state, one fold engine, the result's vocabulary and text


def test_state_defaults_options_and_bytes():
    p, y = make_binary(3000, seed=31)
    data = {"p": p, "y": y}
    st_ = fc.CalibrationState(prob="p", label="y")  # uniform 15 bins, no edges needed
    assert st_.n_bins == 15 and st_.strategy == "uniform"
    res = st_.update(data).finalize()  # finalize takes no arguments: confidence etc. are options
    ref = fc.calibration(data, prob="p", label="y")
    assert res.ece == ref.ece and res.n == 3000 and res.n_dropped == 0
    np.testing.assert_array_equal(res.edges, np.linspace(0, 1, 16))
    back = fc.CalibrationState.from_bytes(st_.to_bytes())
    assert back == st_ and back.finalize().ece == res.ece
    assert fastevals.state_from_bytes(st_.to_bytes()) == st_
    assert not hasattr(st_, "to_dict") and not hasattr(fc.CalibrationState, "from_dict")
    with pytest.raises(ValueError, match=r"strategy='quantile'.*fastevals.calibration"):
        fc.CalibrationState(prob="p", label="y", strategy="quantile")
    # quantile edges from calibration(), passed on: the same state calibration() folds
    q = fc.calibration(data, prob="p", label="y", strategy="quantile")
    st_q = fc.CalibrationState(prob="p", label="y", strategy="quantile", quantile_edges=q.edges).update(data)
    assert st_q.finalize().ece == q.ece
    with pytest.raises(ValueError, match="different options"):
        st_.merge(st_q)
    with pytest.raises(TypeError, match="cannot merge"):
        st_.merge(fastevals.UCB1(2))
    with pytest.raises(ValueError, match="empty input"):
        fc.CalibrationState(prob="p", label="y").finalize()


def test_merge_returns_a_new_state_and_never_mutates():
    p, y = make_binary(2000, seed=32)
    g = np.random.default_rng(1).integers(0, 4, 2000)
    table = pa.table({"p": p, "y": y, "g": g})
    kw = dict(prob="p", label="y", by="g", n_resamples=5, seed=3)
    a = fc.CalibrationState(**kw).update(table.slice(0, 700))
    b = fc.CalibrationState(**kw).update(table.slice(700), row_offset=700)
    a0, b0 = a.to_bytes(), b.to_bytes()
    m = a.merge(b)
    assert m is not a and a.to_bytes() == a0 and b.to_bytes() == b0
    whole = fc.calibration(table, **kw)
    got = m.finalize()
    np.testing.assert_allclose(got.ece_ci, whole.ece_ci, rtol=1e-12)
    assert got.n == whole.n == 2000
    # an empty state is the identity of merge
    assert fc.CalibrationState(**kw).merge(m).finalize().ece == pytest.approx(got.ece, rel=1e-15)


def test_nulls_drop_counts_over_batches_and_row_groups(tmp_path):
    """n_dropped adds up over every batch and row group (only the last batch's count would fail)."""
    p, y = make_binary(1000, seed=33)
    bad = np.zeros(1000, dtype=bool)
    bad[[5, 150, 151, 420, 777, 998]] = True
    p_nan = np.where(bad, np.nan, p)
    p_nan[420] = np.inf
    table = pa.table({"p": p_nan, "y": y})
    path = tmp_path / "nulls.parquet"
    pq.write_table(table, path, row_group_size=100)
    ref = curve_of(p[~bad], y[~bad])
    for data, bs in ((table, 64), (str(path), 37), (str(path), None)):
        res = fc.calibration(data, prob="p", label="y", nulls="drop", batch_size=bs)
        assert (res.n, res.n_dropped) == (994, 6)
        np.testing.assert_array_equal(res.curve.count, ref.curve.count)
        assert res.ece == pytest.approx(ref.ece, rel=1e-12)
    with pytest.raises(ValueError, match=r"outside \[0, 1\] or NaN.*nulls='drop' \(CLI: --nulls drop\)"):
        fc.calibration(table, prob="p", label="y")
    with pytest.raises(ValueError, match=r"outside \[0, 1\] or NaN.*nulls='drop'"):
        fc.calibration(table, prob="p", label="y", strategy="quantile")
    with pytest.raises(TypeError, match=r"column 'p' \(given as `prob`\) has type string"):
        fc.calibration(pa.table({"p": ["a"], "y": [1]}), prob="p", label="y")


def test_bootstrap_band_is_each_bins_observed_frequency_under_poisson_weights():
    """Each bin's band, rebuilt from fastevals.poisson_weights (the observed frequency per replicate,
    not the mean prediction), at rtol 1e-10; with dropped rows the weights keep the global row index."""
    p, y = make_binary(900, seed=34)
    p = np.clip(p + 0.1 * (np.random.default_rng(2).random(900) - 0.5), 0, 1)  # prediction != frequency
    nan_rows = np.array([3, 100, 101, 640])
    p_in = p.copy()
    p_in[nan_rows] = np.nan
    for nulls, data_p in (("raise", p), ("drop", p_in)):
        res = fc.calibration({"p": data_p, "y": y}, prob="p", label="y", n_bins=6, n_resamples=60, seed=4,
                             confidence=0.8, nulls=nulls)
        w = fastevals.poisson_weights(900, 60, 4).astype(float)
        keep = np.isfinite(data_p)
        b = twin_bins(p, res.edges)
        lo, hi = np.full(6, np.nan), np.full(6, np.nan)
        for k in range(6):
            m = (b == k) & keep
            sw = w[:, m].sum(axis=1)
            freq = (w[:, m] * y[m]).sum(axis=1)[sw > 0] / sw[sw > 0]
            if m.any():
                lo[k], hi[k] = np.percentile(freq, [10, 90])
        np.testing.assert_allclose(res.curve.band.low, lo, rtol=1e-10, equal_nan=True)
        np.testing.assert_allclose(res.curve.band.high, hi, rtol=1e-10, equal_nan=True)
        assert res.curve.band.confidence == 0.8 and res.ece_ci.method == "percentile"


def test_result_vocabulary_text_and_conversions(tmp_path):
    p, y = make_binary(3000, seed=35)
    g = np.random.default_rng(3).integers(0, 14, 3000)
    res = fc.calibration({"p": p, "y": y, "g": g}, prob="p", label="y", by="g", n_bins=5, n_resamples=10, seed=1)
    t = res.to_arrow()
    assert t.num_rows == 14 * 5
    assert {"segment", "bin", "low", "high", "band_low", "band_high"} <= set(t.column_names)
    assert "ci_low" not in t.column_names
    assert isinstance(res.ece_ci, fastevals.ConfidenceInterval) and res.ece_ci.confidence == 0.95
    ci = res.curve.observed_frequency_ci
    assert isinstance(ci, fastevals.ConfidenceInterval) and ci.method == "wilson" and ci.low.shape == (5,)
    text = str(res)
    assert f"{res.ece:.6f}" in text and "segment ECE (14 segments, worst first)" in text
    assert "... 4 more segment(s)" in text and len(text.splitlines()) < 60
    assert len(repr(res)) < 600 and "<array" not in repr(res).split("brier_decomposition")[0]
    d = json.loads(json.dumps(res.to_dict(), default=str))
    assert d["n_dropped"] == 0 and d["ece_ci"]["confidence"] == 0.95
    assert res.to_pandas().shape[0] == 70
    assert str(res.curve).startswith("reliability curve") and res.curve.to_arrow().num_rows == 5


def test_progress_option_and_one_shot_stream_for_quantile():
    p, y = make_binary(500, seed=36)
    table = pa.table({"p": p, "y": y})
    assert curve_of(p, y, progress=False).ece == curve_of(p, y).ece
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    with pytest.raises(ValueError, match="can be read only once"):
        fc.calibration(reader, prob="p", label="y", strategy="quantile")
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    assert fc.calibration(reader, prob="p", label="y").ece == curve_of(p, y).ece
    with pytest.raises(ValueError, match="`backend` must be one of"):
        curve_of(p, y, backend="tpu")


def test_filter_on_a_column_not_read_for_every_input_kind(tmp_path):
    import pyarrow.compute as pc

    pd = pytest.importorskip("pandas")
    p, y = make_binary(2000, seed=37)
    g = np.random.default_rng(4).integers(0, 3, 2000)
    ref = curve_of(p[g == 1], y[g == 1])
    path = tmp_path / "g.parquet"
    pq.write_table(pa.table({"p": p, "y": y, "g": g}), path, row_group_size=500)
    for data in ({"p": p, "y": y, "g": g}, pa.table({"p": p, "y": y, "g": g}),
                 pd.DataFrame({"p": p, "y": y, "g": g}), str(path)):
        res = fc.calibration(data, prob="p", label="y", filter=pc.field("g") == 1, strategy="quantile")
        q = curve_of(p[g == 1], y[g == 1], strategy="quantile")
        assert res.n == int((g == 1).sum()) and res.ece == pytest.approx(q.ece, rel=1e-12)
        np.testing.assert_array_equal(res.edges, q.edges)
        st_ = fc.CalibrationState(prob="p", label="y", filter=pc.field("g") == 1).update(data)
        assert st_.finalize().ece == pytest.approx(ref.ece, rel=1e-12)
