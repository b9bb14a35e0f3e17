"""G-test and z-test against scipy / statsmodels, slow twins, and the
mergeable-state invariants."""

import itertools
import math
import warnings

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

import fastevals
from fastevals import _config
from fastevals._kernels import cells, patefield

RTOL = 1e-10


def rows_from_counts(table, groups=None, outcomes=None):
    """Expand an R x C count table into rows (group, outcome)."""
    table = np.asarray(table)
    r, c = table.shape
    groups = groups or [f"g{i}" for i in range(r)]
    outcomes = outcomes or list(range(c))
    g = np.repeat(np.repeat(np.arange(r), c), table.ravel())
    o = np.repeat(np.tile(np.arange(c), r), table.ravel())
    return {"group": np.array(groups)[g], "outcome": np.array(outcomes)[o]}


# --------------------------------------------------------------------------------------------
# G-test


def random_tables():
    rng = np.random.default_rng(42)
    for r, c in [(2, 2), (2, 3), (3, 2), (4, 5), (7, 3), (20, 20)]:
        for scale in (3, 50, 10_000):
            t = rng.poisson(scale, size=(r, c)).astype(np.int64) + 1
            if scale == 3:
                t[0, -1] = 0  # a zero cell (rows and columns stay non-empty)
            yield t
    yield np.array([[10**12, 3 * 10**11], [2 * 10**12 + 7, 5 * 10**11]])  # huge counts
    yield np.array([[1, 0], [0, 1]])  # tiny


@pytest.mark.parametrize("table", list(random_tables()), ids=lambda t: f"{t.shape}-{t.max()}")
def test_g_test_counts_equals_scipy(table):
    ref = stats.chi2_contingency(table, correction=False, lambda_="log-likelihood")
    res = fastevals.g_test_counts(table)
    np.testing.assert_allclose(res.statistic, ref.statistic, rtol=RTOL)
    np.testing.assert_allclose(res.pvalue, ref.pvalue, rtol=RTOL, atol=1e-300)
    assert res.dof == ref.dof
    np.testing.assert_allclose(res.expected_freq, ref.expected_freq, rtol=RTOL)
    stat, p, dof, expected = res  # unpacks like scipy's result
    assert (stat, p, dof) == (res.statistic, res.pvalue, res.dof)


@pytest.mark.parametrize("table", [t for t in random_tables() if t.size < 40 and t.sum() < 10**6][:6],
                         ids=lambda t: f"{t.shape}-{t.max()}")
def test_g_test_on_rows_equals_scipy(table):
    data = rows_from_counts(table)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastevals.SampleRatioMismatchWarning)
        res = fastevals.g_test(data, group="group", outcome="outcome")
    ref = stats.chi2_contingency(table, correction=False, lambda_="log-likelihood")
    np.testing.assert_array_equal(res.observed, table)
    np.testing.assert_allclose(res.statistic, ref.statistic, rtol=RTOL)
    np.testing.assert_allclose(res.pvalue, ref.pvalue, rtol=RTOL)


def test_yates_equals_scipy():
    rng = np.random.default_rng(1)
    for _ in range(20):
        t = rng.integers(1, 60, size=(2, 2))
        ref = stats.chi2_contingency(t, correction=True, lambda_="log-likelihood")
        res = fastevals.g_test_counts(t, correction="yates")
        np.testing.assert_allclose(res.statistic, ref.statistic, rtol=RTOL)
        np.testing.assert_allclose(res.pvalue, ref.pvalue, rtol=RTOL)
    with pytest.raises(ValueError, match="2 x 2 tables only"):
        fastevals.g_test_counts(np.ones((2, 3)), correction="yates")


def williams_slow(t):
    """Williams' correction written out from Sokal & Rohlf (Biometry, box 17.2)."""
    t = np.asarray(t, dtype=float)
    a, b = t.shape
    n = t.sum()
    g = 0.0
    for i in range(a):
        for j in range(b):
            e = t[i].sum() * t[:, j].sum() / n
            if t[i, j] > 0:
                g += t[i, j] * math.log(t[i, j] / e)
    g *= 2
    sum_inv_rows = sum(1.0 / t[i].sum() for i in range(a))
    sum_inv_cols = sum(1.0 / t[:, j].sum() for j in range(b))
    q = 1 + (n * sum_inv_rows - 1) * (n * sum_inv_cols - 1) / (6 * n * (a - 1) * (b - 1))
    return g / q


def test_williams_equals_slow_twin():
    rng = np.random.default_rng(2)
    for shape in [(2, 2), (3, 4), (5, 2)]:
        t = rng.integers(1, 40, size=shape)
        res = fastevals.g_test_counts(t, correction="williams")
        np.testing.assert_allclose(res.statistic, williams_slow(t), rtol=1e-12)
        assert res.statistic < fastevals.g_test_counts(t).statistic  # q > 1 shrinks G


def test_stack_equals_loop():
    rng = np.random.default_rng(3)
    stack = rng.integers(0, 100, size=(4, 6, 3, 4))
    stack[1, 2, 0, :] = 0  # one degenerate table
    with pytest.warns(RuntimeWarning, match="1 table"):
        res = fastevals.g_test_counts(stack)
    assert res.statistic.shape == (4, 6)
    for i, j in itertools.product(range(4), range(6)):
        if (i, j) == (1, 2):
            assert np.isnan(res.statistic[i, j]) and np.isnan(res.pvalue[i, j])
            continue
        ref = stats.chi2_contingency(stack[i, j], correction=False, lambda_="log-likelihood")
        np.testing.assert_allclose(res.statistic[i, j], ref.statistic, rtol=RTOL)
        np.testing.assert_allclose(res.pvalue[i, j], ref.pvalue, rtol=RTOL)


@pytest.mark.parametrize(
    "observed, pattern",
    [
        ([[1, 2], [0, 0]], "all-zero rows"),
        ([[1, -2], [3, 4]], "non-negative"),
        ([[1, np.nan], [3, 4]], "finite"),
        ([1, 2, 3], "at least 2 dimensions"),
        ([[1, 2, 3]], "at least 2 x 2"),
    ],
)
def test_g_test_counts_bad_input(observed, pattern):
    with pytest.raises(ValueError, match=pattern):
        fastevals.g_test_counts(observed)


def test_g_test_argument_errors():
    data = rows_from_counts([[10, 20], [15, 12]])
    with pytest.raises(ValueError, match="`correction` must be one of"):
        fastevals.g_test(data, group="group", outcome="outcome", correction="bonferroni")
    with pytest.raises(ValueError, match="`monte_carlo` must be >= 1"):
        fastevals.g_test(data, group="group", outcome="outcome", monte_carlo=0)
    with pytest.raises(TypeError, match="`seed` must be"):
        fastevals.g_test(data, group="group", outcome="outcome", monte_carlo=10, seed="x")
    one_level = {"group": np.array(["a", "b"] * 10), "outcome": np.zeros(20, dtype=np.int64)}
    with pytest.raises(ValueError, match="column 'outcome' has a single level"):
        fastevals.g_test(one_level, group="group", outcome="outcome")


# --------------------------------------------------------------------------------------------
# Monte Carlo (Patefield)


def test_random_tables_keep_margins_and_cell_is_hypergeometric():
    rows = np.array([7, 5, 4], dtype=np.int64)
    cols = np.array([6, 10], dtype=np.int64)
    tables = patefield.random_tables(rows, cols, 40_000, 7)
    np.testing.assert_array_equal(tables.sum(axis=2), np.broadcast_to(rows, (40_000, 3)))
    np.testing.assert_array_equal(tables.sum(axis=1), np.broadcast_to(cols, (40_000, 2)))
    # the first cell is hypergeometric: 7 draws from 16 units of which 6 are in column 0
    x = tables[:, 0, 0]
    support = np.arange(0, 7)
    observed = np.array([(x == k).sum() for k in support])
    expected = stats.hypergeom(16, 6, 7).pmf(support) * x.size
    keep = expected > 5
    chi = stats.chisquare(observed[keep], expected[keep] * observed[keep].sum() / expected[keep].sum())
    assert chi.pvalue > 1e-3


def test_monte_carlo_pvalue_matches_exact_enumeration():
    """On a small table, the exact conditional p-value of G is computable by enumerating every table
    with the margins (weighted by its multivariate hypergeometric probability)."""
    obs = np.array([[3, 1, 4], [0, 5, 2]])
    rows, cols = obs.sum(1), obs.sum(0)
    n = obs.sum()

    def g_of(t):
        e = np.outer(t.sum(1), t.sum(0)) / n
        with np.errstate(divide="ignore", invalid="ignore"):
            return 2 * np.nansum(np.where(t > 0, t * np.log(t / e), 0.0))

    g_obs = g_of(obs)
    exact = 0.0
    log_denominator = math.lgamma(n + 1) - sum(math.lgamma(r + 1) for r in rows) - sum(
        math.lgamma(c + 1) for c in cols)
    for a in range(min(rows[0], cols[0]) + 1):
        for b in range(min(rows[0] - a, cols[1]) + 1):
            c = rows[0] - a - b
            if c > cols[2]:
                continue
            t = np.array([[a, b, c], [cols[0] - a, cols[1] - b, cols[2] - c]])
            if (t < 0).any():
                continue
            logp = -(sum(math.lgamma(x + 1) for x in t.ravel()) + log_denominator)
            if g_of(t) >= g_obs - 1e-7 * g_obs:
                exact += math.exp(logp)
    n_mc = 20_000
    res = fastevals.g_test_counts(obs, monte_carlo=n_mc, seed=11)
    hits = round(res.pvalue_mc * (n_mc + 1) - 1)
    assert stats.binomtest(hits, n_mc, exact).pvalue > 1e-3
    assert res.small_counts and "read pvalue_mc" in res.note


def test_monte_carlo_reproducible_and_thread_independent():
    obs = np.array([[30, 12, 9], [25, 20, 14]])
    a = fastevals.g_test_counts(obs, monte_carlo=5000, seed=3).pvalue_mc
    b = fastevals.g_test_counts(obs, monte_carlo=5000, seed=3).pvalue_mc
    c = fastevals.g_test_counts(obs, monte_carlo=5000, seed=4).pvalue_mc
    before = _config.get_num_threads()
    try:
        _config.set_num_threads(1)
        d = fastevals.g_test_counts(obs, monte_carlo=5000, seed=3).pvalue_mc
    finally:
        _config.set_num_threads(before)
    assert a == b == d
    assert a != c
    # with large counts the chi-square approximation is good: the two p-values agree within
    # Monte Carlo error
    big = np.array([[3000, 1210, 905], [2500, 1050, 760]])
    p = fastevals.g_test_counts(big).pvalue
    p_mc = fastevals.g_test_counts(big, monte_carlo=5000, seed=3).pvalue_mc
    assert abs(p_mc - p) < 4 * math.sqrt(p * (1 - p) / 5000) + 0.005


def test_sliced_g_test_monte_carlo_and_small_flags():
    rng = np.random.default_rng(9)
    n = 4000
    data = {"v": rng.choice(["a", "b"], n), "y": rng.random(n) < 0.02, "seg": rng.choice(["x", "y"], n)}
    res = fastevals.g_test(data, group="v", outcome="y", by="seg", monte_carlo=999, seed=5)
    tab = res.table.to_pydict()
    assert tab["seg"] == ["x", "y"]
    assert all(tab["small_counts"])  # fewer than 100 conversions per group
    assert all(0 < p <= 1 for p in tab["pvalue_mc"])


# --------------------------------------------------------------------------------------------
# z-tests


def two_groups(n_c=3000, n_t=2500, seed=0, shift=0.3):
    rng = np.random.default_rng(seed)
    c = rng.exponential(5.0, n_c)
    t = rng.exponential(5.0, n_t) + shift
    data = {"variant": np.r_[np.full(n_c, "ctl"), np.full(n_t, "new")], "revenue": np.r_[c, t]}
    return data, c, t


@pytest.mark.parametrize("alternative, sm_alt", [("two-sided", "two-sided"), ("larger", "larger"),
                                                  ("smaller", "smaller")])
@pytest.mark.parametrize("margin", [0.0, 0.2, -0.5])
def test_z_mean_equals_statsmodels(alternative, sm_alt, margin):
    data, c, t = two_groups()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastevals.SampleRatioMismatchWarning)
        res = fastevals.z_test(data, group="variant", value="revenue", control="ctl",
                               alternative=alternative, margin=margin, confidence=0.9)
    cm = CompareMeans(DescrStatsW(t), DescrStatsW(c))
    z, p = cm.ztest_ind(alternative=sm_alt, usevar="unequal", value=margin)
    low, high = cm.zconfint_diff(alpha=0.1, alternative=sm_alt, usevar="unequal")
    np.testing.assert_allclose(res.statistic, z, rtol=RTOL)
    np.testing.assert_allclose(res.pvalue, p, rtol=RTOL)
    np.testing.assert_allclose(res.confidence_interval, (low, high), rtol=RTOL)
    np.testing.assert_allclose(res.difference, t.mean() - c.mean(), rtol=RTOL)
    assert (res.control, res.treatment, res.n_control, res.n_treatment) == ("ctl", "new", 3000, 2500)


def test_relative_difference_delta_method():
    data, c, t = two_groups()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastevals.SampleRatioMismatchWarning)
        res = fastevals.z_test(data, group="variant", value="revenue", control="ctl")
    mc, mt = c.mean(), t.mean()
    vc, vt = c.var(ddof=1) / c.size, t.var(ddof=1) / t.size
    se = math.sqrt(vt / mc**2 + mt**2 * vc / mc**4)
    z = stats.norm.ppf(0.975)
    np.testing.assert_allclose(res.relative_difference, mt / mc - 1, rtol=1e-12)
    np.testing.assert_allclose(res.relative_difference_ci,
                               (mt / mc - 1 - z * se, mt / mc - 1 + z * se), rtol=1e-12)


@pytest.mark.parametrize("alternative", ["two-sided", "larger", "smaller"])
def test_z_proportion_equals_statsmodels(alternative):
    rng = np.random.default_rng(4)
    yc = rng.random(5000) < 0.10
    yt = rng.random(5000) < 0.115
    data = {"variant": np.repeat(["a", "b"], 5000), "converted": np.r_[yc, yt]}
    res = fastevals.z_test(data, group="variant", value="converted", control="a", kind="proportion",
                           alternative=alternative)
    z, p = proportions_ztest([yt.sum(), yc.sum()], [5000, 5000], alternative=alternative)
    np.testing.assert_allclose(res.statistic, z, rtol=RTOL)
    np.testing.assert_allclose(res.pvalue, p, rtol=RTOL)
    if alternative == "two-sided":
        low, high = confint_proportions_2indep(yt.sum(), 5000, yc.sum(), 5000, method="wald", compare="diff")
        np.testing.assert_allclose(res.confidence_interval, (low, high), rtol=RTOL)


def test_proportion_needs_binary_values():
    data, _, _ = two_groups(1000, 1000)
    with pytest.raises(ValueError, match="kind='proportion' needs 0/1 values"):
        fastevals.z_test(data, group="variant", value="revenue", kind="proportion")
    frac = {"variant": np.repeat(["a", "b"], 100), "p": np.full(200, 0.5)}
    with pytest.raises(ValueError, match=r"has other values \(such as 0.5\)"):
        fastevals.z_test(frac, group="variant", value="p", kind="proportion")
    # one stray value late in a streamed column, and values whose sum of squares equals their sum
    late = np.r_[np.zeros(990), np.ones(9), 2.0]
    with pytest.raises(ValueError, match=r"such as 2.0"):
        fastevals.z_test({"variant": np.tile(["a", "b"], 500), "p": late}, group="variant", value="p",
                         kind="proportion", batch_size=100)
    tricky = np.tile([1.5, 0.5, 0.5, 0.5], 50)  # sum x^2 == sum x, yet not 0/1
    with pytest.raises(ValueError, match="such as 1.5"):
        fastevals.z_test({"variant": np.repeat(["a", "b"], 100), "p": tricky}, group="variant", value="p",
                         kind="proportion")


def test_control_choice_and_errors():
    data, _, _ = two_groups(1000, 1000)
    with pytest.raises(ValueError, match=r"`control`='zzz' is not a group of column 'variant'"):
        fastevals.z_test(data, group="variant", value="revenue", control="zzz")
    res = fastevals.z_test(data, group="variant", value="revenue")  # no "control" label: first sorted
    assert res.control == "ctl"
    with pytest.raises(ValueError, match="`alternative` must be one of"):
        fastevals.z_test(data, group="variant", value="revenue", alternative="greater")
    with pytest.raises(ValueError, match="`confidence` must be in"):
        fastevals.z_test(data, group="variant", value="revenue", confidence=95)


def test_integer_control_given_as_text():
    data = {"arm": np.repeat([1, 2, 3], 300), "v": np.random.default_rng(0).random(900)}
    res = fastevals.z_test(data, group="arm", value="v", control="2")
    assert res.column("control").tolist() == [2, 2] and res.column("treatment").tolist() == [1, 3]


# --------------------------------------------------------------------------------------------
# sliced analyses


def test_sliced_z_equals_per_segment_runs_and_multipletests():
    rng = np.random.default_rng(6)
    n = 30_000
    seg = rng.choice(["DE", "FR", "US", "JP"], n)
    variant = rng.choice(["control", "t1", "t2"], n)
    value = rng.normal(1.0, 2.0, n) + (variant == "t1") * 0.05 * (seg == "US")
    data = {"variant": variant, "value": value, "seg": seg}
    res = fastevals.z_test(data, group="variant", value="value", by="seg", adjust="holm")
    tab = res.table.to_pydict()
    assert len(res) == 8
    for k in range(len(res)):
        s, t = tab["seg"][k], tab["treatment"][k]
        c_vals = value[(seg == s) & (variant == "control")]
        t_vals = value[(seg == s) & (variant == t)]
        z, p = CompareMeans(DescrStatsW(t_vals), DescrStatsW(c_vals)).ztest_ind(usevar="unequal")
        np.testing.assert_allclose(tab["statistic"][k], z, rtol=RTOL)
        np.testing.assert_allclose(tab["pvalue"][k], p, rtol=RTOL)
    np.testing.assert_allclose(tab["pvalue_adjusted"], multipletests(tab["pvalue"], method="holm")[1], rtol=1e-12)
    bh = fastevals.z_test(data, group="variant", value="value", by="seg", adjust="bh").table
    np.testing.assert_allclose(bh.column("pvalue_adjusted").to_numpy(),
                               multipletests(tab["pvalue"], method="fdr_bh")[1], rtol=1e-12)


def test_sliced_g_equals_per_segment_scipy_and_two_by_columns():
    rng = np.random.default_rng(7)
    n = 20_000
    data = {"v": rng.choice(["a", "b"], n), "y": rng.choice(["no", "yes", "maybe"], n, p=[0.6, 0.3, 0.1]),
            "country": rng.choice(["DE", "FR"], n), "device": rng.choice(["ios", "web"], n)}
    res = fastevals.g_test(data, group="v", outcome="y", by=["country", "device"])
    tab = res.table.to_pydict()
    assert list(zip(tab["country"], tab["device"])) == [("DE", "ios"), ("DE", "web"), ("FR", "ios"),
                                                        ("FR", "web")]
    for k in range(4):
        m = (data["country"] == tab["country"][k]) & (data["device"] == tab["device"][k])
        table = np.array([[np.sum(m & (data["v"] == g) & (data["y"] == o)) for o in ("maybe", "no", "yes")]
                          for g in ("a", "b")])
        ref = stats.chi2_contingency(table, correction=False, lambda_="log-likelihood")
        np.testing.assert_allclose(tab["statistic"][k], ref.statistic, rtol=RTOL)
    np.testing.assert_allclose(tab["pvalue_adjusted"], multipletests(tab["pvalue"], method="holm")[1],
                               rtol=1e-12)


def test_segment_missing_a_group_gets_nan_and_note():
    data = {"v": np.array(["a", "b", "a", "b", "a", "a"] * 50), "y": np.arange(300) % 2,
            "seg": np.array(["x", "x", "x", "x", "only_a", "only_a"] * 50)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastevals.SampleRatioMismatchWarning)
        res = fastevals.z_test(data, group="v", value="y", by="seg", control="a")
    tab = res.table.to_pydict()
    k = tab["seg"].index("only_a")
    assert math.isnan(tab["pvalue"][k]) and "fewer than two rows" in tab["note"][k]


# --------------------------------------------------------------------------------------------
# SRM


def test_srm_warns_loudly_and_respects_expected_split():
    data = {"v": np.r_[np.full(5200, "a"), np.full(4800, "b")], "y": np.arange(10_000) % 2}
    with pytest.warns(fastevals.SampleRatioMismatchWarning, match="SAMPLE RATIO MISMATCH"):
        res = fastevals.g_test(data, group="v", outcome="y")
    assert res.srm.mismatch
    ref = stats.chisquare([5200, 4800])
    np.testing.assert_allclose(res.srm.pvalue, ref.pvalue, rtol=1e-12)
    ok = fastevals.g_test(data, group="v", outcome="y", expected_split={"a": 0.52, "b": 0.48})
    assert not ok.srm.mismatch
    with pytest.raises(ValueError, match="no share for group"):
        fastevals.g_test(data, group="v", outcome="y", expected_split={"a": 1.0})


# --------------------------------------------------------------------------------------------
# kernel: slow twin, serial == parallel, 1 thread == N threads, precision


def cells_slow(seg, grp, out, val, n_seg, n_grp, n_out):
    cnt = np.zeros((n_seg, n_grp, n_out), dtype=np.int64)
    n = np.zeros((n_seg, n_grp), dtype=np.int64)
    mean = np.zeros((n_seg, n_grp))
    m2 = np.zeros((n_seg, n_grp))
    for s in range(n_seg):
        for g in range(n_grp):
            m = (seg == s) & (grp == g)
            n[s, g] = m.sum()
            for o in range(n_out):
                cnt[s, g, o] = np.sum(m & (out == o))
            if n[s, g]:
                mean[s, g] = val[m].mean()
                m2[s, g] = ((val[m] - val[m].mean()) ** 2).sum()
    return cnt, n, mean, m2


@pytest.mark.parametrize("n_out", [2, 3, 0], ids=["binary", "three-level", "no-outcome"])
@pytest.mark.parametrize("n_seg", [5, 0], ids=["segments", "flat"])
def test_cell_kernel_equals_slow_twin_serial_and_parallel(n_out, n_seg):
    # every loop of the general kernel: with / without segments, binary / wider / no outcome
    rng = np.random.default_rng(10)
    rows = 250_000
    seg = rng.integers(0, max(n_seg, 1), rows).astype(np.int32)
    grp = (rng.integers(0, 3, rows) + 4).astype(np.int32)
    out = (rng.integers(0, max(n_out, 1), rows) + 1).astype(np.int8)
    val = rng.normal(3.0, 1.0, rows)
    slow = cells_slow(seg, grp - 4, out - 1, val, max(n_seg, 1), 3, max(n_out, 1))
    s_arg = seg if n_seg else np.empty(0, np.int32)
    o_arg = out if n_out else np.empty(0, np.int8)
    n_cells = 3 * max(n_seg, 1)
    args = (s_arg, 0, grp, 4, 3, o_arg, 1, max(n_out, 1), val, n_cells, 1 << 12)
    for kernel in (cells.fold_cells_serial, cells.fold_cells_parallel):
        cnt, n, mean, m2 = kernel(*args)
        if n_out:
            np.testing.assert_array_equal(cnt.reshape(slow[0].shape), slow[0])
        np.testing.assert_array_equal(n.reshape(slow[1].shape), slow[1])
        np.testing.assert_allclose(mean.reshape(slow[2].shape), slow[2], rtol=1e-12)
        np.testing.assert_allclose(m2.reshape(slow[3].shape), slow[3], rtol=1e-10)
    a = cells.fold_cells_serial(*args)
    b = cells.fold_cells_parallel(*args)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)  # same chunking: bit-identical


def test_two_group_kernel_equals_three_group_kernel_and_exact_sums():
    # two groups without segments against the same rows with a third, empty group (a wider
    # table): counts must be equal, moments equal to ~1e-13, and both equal to exact
    # (math.fsum) sums, with levels of 1e9 + noise next to small negative values
    import math

    rng = np.random.default_rng(13)
    empty32 = np.empty(0, np.int32)
    for rows, chunk in [(1, 7), (5, 3), (1_003, 64), (100_003, 1 << 12)]:
        for off in (0, 5):
            grp = (rng.integers(0, 2, rows) + off).astype(np.int32)
            out = (rng.random(rows) < 0.3).astype(np.int8)
            val = np.where(rng.random(rows) < 0.5, -rng.exponential(3, rows), 1e9 + rng.normal(0, 1e-3, rows))
            val[rng.random(rows) < 0.2] = 0.0
            for o, n_out in ((out, 2), (np.empty(0, np.int8), 1)):
                two = cells.fold_cells_serial(empty32, 0, grp, off, 2, o, 0, n_out, val, 2, chunk)
                three = cells.fold_cells_serial(empty32, 0, grp, off, 3, o, 0, n_out, val, 3, chunk)
                np.testing.assert_array_equal(two[0], three[0][:2 * n_out])
                np.testing.assert_array_equal(two[1], three[1][:2])
                np.testing.assert_allclose(two[2], three[2][:2], rtol=1e-13)
                np.testing.assert_allclose(two[3], three[3][:2], rtol=1e-9, atol=1e-12)
                for k in range(2):
                    x = val[grp - off == k]
                    if x.size:
                        mu = math.fsum(x) / x.size
                        assert two[2][k] == pytest.approx(mu, rel=1e-14)
                        assert two[3][k] == pytest.approx(math.fsum((x - mu) ** 2), rel=1e-9, abs=1e-12)
                par = cells.fold_cells_parallel(empty32, 0, grp, off, 2, o, 0, n_out, val, 2, chunk)
                for a, b in zip(two, par):
                    np.testing.assert_array_equal(a, b)


def test_segmented_kernel_one_pass_and_second_pass_equal_exact_sums():
    # The general kernel sums x - K and (x - K)**2 in one pass, K a cell's mean over the call's
    # first SHIFT_ROWS rows; a chunk where K is far from a cell's mean (level drift, a cell absent
    # from those rows) makes a second, two-pass sweep. Both must give fsum-exact moments.
    import math

    rng = np.random.default_rng(21)
    rows, chunk = 3 * cells.SHIFT_ROWS + 5_001, 1 << 12
    seg = rng.integers(0, 3, rows).astype(np.int8)
    grp = rng.integers(0, 2, rows).astype(np.int8)
    out = (rng.random(rows) < 0.2).astype(np.int8)
    val = rng.lognormal(1.0, 1.0, rows)  # cells (0, *): stationary, one pass
    drift = (seg == 1) & (np.arange(rows) >= cells.SHIFT_ROWS)
    # (levels of 1e6 / 3e5 against a spread of 1e-3 / 1e-2: at 1e9 the float64 means of the chunks,
    # merged, would limit any method to ~1e-7)
    val[drift] = 1e6 + rng.normal(0, 1e-3, drift.sum())  # cells (1, *): level jumps after the first rows
    val[seg == 2] = 7.25  # cells (2, *): constant, M2 exactly 0
    late = np.arange(rows) >= 2 * cells.SHIFT_ROWS
    seg[late & (rng.random(rows) < 0.1)] = 3  # segment 3: never among the first rows
    val[seg == 3] = -3e5 + rng.normal(0, 1e-2, (seg == 3).sum())
    # without the second pass, the drifted cells' shifted sums would lose every digit of M2
    x = val[(seg == 1) & (grp == 0)][-2000:]
    k = val[(seg == 1) & (grp == 0) & (np.arange(rows) < cells.SHIFT_ROWS)].mean()
    naive = np.sum((x - k) ** 2) - np.sum(x - k) ** 2 / x.size
    exact = math.fsum((x - math.fsum(x) / x.size) ** 2)
    assert abs(naive - exact) > 0.5 * exact
    res = [kern(seg, 0, grp, 0, 2, out, 0, 2, val, 8, chunk)
           for kern in (cells.fold_cells_serial, cells.fold_cells_parallel)]
    for a, b in zip(*res):
        np.testing.assert_array_equal(a, b)  # the shifts come before the chunks: any thread count
    cnt, n, mean, m2 = res[0]
    for c in range(8):
        m = (seg == c // 2) & (grp == c % 2)
        x = val[m]
        assert n[c] == x.size > 0
        assert cnt[2 * c + 1] == np.sum(out[m] == 1)
        mu = math.fsum(x) / x.size
        assert mean[c] == pytest.approx(mu, rel=1e-14)
        assert m2[c] == pytest.approx(math.fsum((x - mu) ** 2), rel=1e-9, abs=1e-12)
    assert m2[4] == 0.0 and m2[5] == 0.0 and mean[4] == 7.25


def test_two_group_kernel_rejects_nan_and_inf():
    for bad in (np.nan, np.inf):
        x = np.arange(20.0)
        x[7] = bad
        with pytest.raises(ValueError, match=r"column 'x' \(given as `value`\) has 1 NaN or infinite"):
            fastevals.abtest({"v": np.repeat(["a", "b"], 10), "o": np.arange(20) % 2 == 0, "x": x},
                             group="v", outcome="o", value="x")


def test_one_thread_equals_n_threads_bitwise():
    rng = np.random.default_rng(11)
    rows = _config.PARALLEL_MIN_ROWS + 12_345
    data = pa.table({"v": pa.array(rng.choice(["a", "b"], rows)).dictionary_encode(),
                     "o": (rng.random(rows) < 0.1).astype(np.int8), "x": rng.lognormal(0, 2, rows)})
    before = _config.get_num_threads()
    try:
        _config.set_num_threads(1)
        one = fastevals.ABTestState(group="v", outcome="o", value="x")
        one.update(data)
        _config.set_num_threads(before)
        many = fastevals.ABTestState(group="v", outcome="o", value="x")
        many.update(data)
    finally:
        _config.set_num_threads(before)
    assert one.to_bytes() == many.to_bytes()


def test_moments_are_accurate_with_a_large_offset():
    rng = np.random.default_rng(12)
    x = 1e9 + rng.normal(0, 1e-3, 50_000)  # naive sums of squares lose every digit here
    data = {"v": np.repeat(["a", "b"], 25_000), "x": x}
    st = fastevals.ABTestState(group="v", value="x", batch_size=7_000)
    st.update(data)
    for k, g in enumerate(st.groups.labels):
        part = x[data["v"] == g]
        np.testing.assert_allclose(st.cell_m2[0, k] / (part.size - 1), part.var(ddof=1), rtol=1e-6)


# --------------------------------------------------------------------------------------------
# mergeable state properties


def make_data(seed, n):
    rng = np.random.default_rng(seed)
    return pa.table({
        "v": rng.choice(["a", "b", "c"], n),
        "o": rng.integers(0, 3, n),
        "x": rng.normal(0, 10, n),
        "s": rng.choice(["p", "q"], n),
    })


def fresh():
    return fastevals.ABTestState(group="v", outcome="o", value="x", by="s")


def equivalent(a, b):
    ra, rb = a.g_test().table, b.g_test().table
    np.testing.assert_allclose(ra.column("statistic").to_numpy(), rb.column("statistic").to_numpy(), rtol=1e-12)
    za, zb = a.z_test().table, b.z_test().table
    assert za.column("n_treatment").to_pylist() == zb.column("n_treatment").to_pylist()
    # z is a difference of means over its standard error: near z = 0 the merge order's last-bit
    # differences in the means are all that is left, hence the small absolute tolerance
    np.testing.assert_allclose(za.column("statistic").to_numpy(), zb.column("statistic").to_numpy(), rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_allclose(za.column("standard_error").to_numpy(), zb.column("standard_error").to_numpy(),
                               rtol=1e-12)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n1=st.integers(1, 300), n2=st.integers(1, 300), n3=st.integers(1, 300))
def test_merge_equals_update_on_concatenation(seed, n1, n2, n3):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastevals.SampleRatioMismatchWarning)
        t = make_data(seed, n1 + n2 + n3)
        parts = [t.slice(0, n1), t.slice(n1, n2), t.slice(n1 + n2)]
        states = []
        for p in parts:
            s = fresh()
            s.update(p)
            states.append(s)
        whole = fresh()
        whole.update(t)
        a, b, c = states
        left = a.merge(b).merge(c)
        right = a.merge(b.merge(c))
        swapped = c.merge(a).merge(b)
        if len(whole.groups) < 2 or len(whole.outcomes) < 2:
            return
        for merged in (left, right, swapped):
            equivalent(merged, whole)
            np.testing.assert_array_equal(merged.counts[np.ix_(*merged._sorted())],
                                          whole.counts[np.ix_(*whole._sorted())])


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), batch=st.integers(1, 500))
def test_streaming_equals_in_memory(seed, batch):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastevals.SampleRatioMismatchWarning)
        t = make_data(seed, 1500)
        one = fresh()
        one.update(t)
        streamed = fastevals.ABTestState(group="v", outcome="o", value="x", by="s", batch_size=batch)
        streamed.update(t)
        equivalent(one, streamed)


def test_bytes_round_trip_is_lossless():
    s = fresh()
    s.update(make_data(1, 1000))
    back = fastevals.ABTestState.from_bytes(s.to_bytes())
    assert back == s
    np.testing.assert_array_equal(back.cell_mean, s.cell_mean)
    with pytest.raises(ValueError, match="different options"):
        s.merge(fastevals.ABTestState(group="v", outcome="o"))


def test_abtest_one_pass_matches_separate_tests():
    rng = np.random.default_rng(13)
    n = 20_000
    data = {"variant": rng.choice(["control", "new"], n), "converted": rng.random(n) < 0.1,
            "revenue": rng.exponential(5, n)}
    rep = fastevals.abtest(data, group="variant", outcome="converted", value="revenue")
    g = fastevals.g_test(data, group="variant", outcome="converted")
    z = fastevals.z_test(data, group="variant", value="revenue")
    assert rep.g_test.statistic == g.statistic
    assert rep.z_test.statistic == z.statistic and rep.z_test.control == "control"
    d = rep.to_dict()
    assert d["g_test"]["dof"] == 1 and d["n"] == n


def test_segment_g_tests_vectorized_equal_one_table_at_a_time():
    # the by= path tests every segment at once; the twin drops each table's empty rows and
    # columns and tests it alone (that path is itself checked against scipy above)
    from fastevals import ab_tests as ab

    rng = np.random.default_rng(11)
    for trial in range(100):
        S, G, O = rng.integers(1, 6), rng.integers(1, 5), rng.integers(1, 5)
        c = rng.integers(0, 30, (S, G, O)) * (rng.random((S, G, O)) < 0.8)
        if trial % 7 == 0:
            c = c * 10**9
        if trial % 5 == 0 and G > 1:
            c[0, 0, :] = 0
        vec = ab._g_segments_plain(c)
        for k in range(S):
            obs = c[k]
            kr, kc = obs.sum(1) > 0, obs.sum(0) > 0
            if kr.sum() < 2 or kc.sum() < 2:
                assert np.isnan(vec["statistic"][k]) and np.isnan(vec["pvalue"][k]) and vec["dof"][k] == 0
                assert vec["small_counts"][k] and vec["note"][k] == "fewer than two groups or outcome levels"
                continue
            ref = ab._g_single(obs[np.ix_(kr, kc)], None, None, 0)
            np.testing.assert_allclose([vec["statistic"][k], vec["pvalue"][k]], [ref["statistic"], ref["pvalue"]],
                                       rtol=1e-12)
            assert (vec["dof"][k], vec["small_counts"][k], vec["note"][k]) == (ref["dof"], ref["small_counts"],
                                                                              ref["note"])
