"""The error contract and precision fixes of the protocol issue, one test each."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from scipy import stats

from fastevals import _stats


def _g_reference(table) -> float:
    """G of a 2-D table at 50 significant digits."""
    with mpmath.workdps(50):
        O = [[mpmath.mpf(float(x)) for x in row] for row in table]
        rows = [sum(r) for r in O]
        cols = [sum(O[i][j] for i in range(len(O))) for j in range(len(O[0]))]
        n = sum(rows)
        g = 2 * sum(O[i][j] * mpmath.log(O[i][j] * n / (rows[i] * cols[j]))
                    for i in range(len(O)) for j in range(len(O[0])) if O[i][j] > 0)
        return float(g)


@pytest.mark.parametrize("table", [
    [[1e12, 2e12], [1e12 + 1e6, 2e12]],
    [[1e9, 2e9], [1e9 + 1e3, 2e9]],
    [[7e11, 3e11, 5e11], [7e11 + 12345, 3e11 - 999, 5e11 + 17]],
    [[123456789012, 98765432109], [123456789000, 98765432199]],
])
def test_g_statistic_keeps_its_digits_for_huge_close_counts(table):
    obs = np.array(table, dtype=np.float64)
    g = float(_stats.g_statistic(obs, _stats.expected_counts(obs)))
    ref = _g_reference(table)
    assert g == pytest.approx(ref, rel=1e-12)
    # scipy loses most digits here; we must not be worse than it
    scipy_g = stats.chi2_contingency(obs, lambda_="log-likelihood", correction=False)[0]
    assert abs(g - ref) <= abs(scipy_g - ref)


def test_g_statistic_equals_scipy_on_ordinary_tables():
    rng = np.random.default_rng(3)
    for _ in range(50):
        r, c = rng.integers(2, 5, size=2)
        obs = rng.integers(0, 60, size=(r, c)).astype(np.float64)
        obs[obs.sum(axis=1) == 0, 0] = 1
        obs[0, obs.sum(axis=0) == 0] = 1
        g = float(_stats.g_statistic(obs, _stats.expected_counts(obs)))
        ref = stats.chi2_contingency(obs, lambda_="log-likelihood", correction=False)[0]
        assert g == pytest.approx(ref, rel=1e-12, abs=1e-12)
        assert g == pytest.approx(_g_reference(obs.tolist()), rel=1e-12, abs=1e-12)


def test_g_statistic_with_an_expectation_of_other_margins():
    """A goodness-of-fit style expectation (not the table's own margins) takes the general path."""
    obs = np.array([[10.0, 20.0], [30.0, 5.0]])
    expected = np.full((2, 2), 16.25)
    assert float(_stats.g_statistic(obs, expected)) == pytest.approx(2 * np.sum(obs * np.log(obs / 16.25)),
                                                                       rel=1e-13)
    obs0 = np.array([[0.0, 20.0], [30.0, 15.0]])
    e0 = np.full((2, 2), 16.25)
    assert float(_stats.g_statistic(obs0, e0)) == pytest.approx(
        2 * np.sum(obs0[obs0 > 0] * np.log(obs0[obs0 > 0] / 16.25)), rel=1e-13)


# ----------------------------------------------------------------------------------------------------
# bootstrap: say why an interval is missing; refuse what cannot run


def test_bootstrap_reports_undefined_replicates():
    import fastevals
    from fastevals import metrics
    from fastevals.resampling import DegenerateBootstrapWarning

    rng = np.random.default_rng(0)
    y = np.zeros(100, np.int8)
    y[7] = 1
    data = {"y": y, "s": rng.random(100)}
    with pytest.warns(DegenerateBootstrapWarning, match=r"of 2,000 replicates .* were undefined"):
        res = fastevals.bootstrap(data, metrics.roc_auc("y", "s"), seed=1, progress=False)
    # a replicate is undefined exactly when it draws the one positive zero times: P = e^-1
    w = fastevals.poisson_weights(100, 2000, seed=1)
    assert res.n_invalid == int((w[:, 7] == 0).sum())
    assert stats.binomtest(res.n_invalid, 2000, np.exp(-1)).pvalue > 1e-3
    with pytest.warns(DegenerateBootstrapWarning, match="undefined on the data"):
        one = fastevals.bootstrap({"y": np.zeros(50, np.int8), "s": rng.random(50)}, metrics.roc_auc("y", "s"),
                                  seed=1, progress=False)
    assert np.isnan(one.confidence_interval.low)
    with pytest.warns(DegenerateBootstrapWarning, match="BCa interval is undefined"):
        fastevals.bootstrap({"x": np.ones(50)}, metrics.mean("x"), method="bca", seed=1, progress=False)
    with pytest.warns(DegenerateBootstrapWarning, match="denominator that sums to 0"):
        fastevals.bootstrap({"a": np.ones(50), "b": np.zeros(50)}, metrics.ratio("a", "b"), seed=1,
                            progress=False)


def test_bootstrap_interval_knows_its_level_and_method():
    import fastevals
    from fastevals import metrics

    res = fastevals.bootstrap({"x": np.arange(100.0)}, metrics.mean("x"), confidence=0.9, seed=1, progress=False)
    assert res.confidence_interval.confidence == 0.9 and res.confidence_interval.method == "percentile"


def test_bootstrap_single_group_with_control_is_an_error():
    import fastevals
    from fastevals import metrics

    with pytest.raises(ValueError, match="single level .*at least two groups"):
        fastevals.bootstrap({"g": np.array(["a"] * 50), "x": np.arange(50.0)}, metrics.mean("x"), group="g",
                            control="a", seed=1, progress=False)


def test_bootstrap_refuses_replicates_it_cannot_hold():
    import fastevals
    from fastevals import metrics

    with pytest.raises(ValueError, match=r"`n_resamples`=1,000,000,000 would hold about .* GiB.*limit"):
        fastevals.bootstrap({"x": np.arange(10.0)}, metrics.mean("x"), n_resamples=10**9, progress=False)


# ----------------------------------------------------------------------------------------------------
# replay: binary rewards get intervals that are not degenerate at 0


def test_replay_with_no_rewards_gives_a_wilson_interval_not_zero_width():
    from statsmodels.stats.proportion import proportion_confint

    import fastevals

    rng = np.random.default_rng(0)
    n = 2000
    log = {"arm": rng.integers(0, 3, n), "reward": np.zeros(n), "p": np.full(n, 1 / 3)}
    res = fastevals.replay(log, "ucb1", seed=1, propensity="p")
    assert res.estimate == 0.0
    low, high = res.confidence_interval
    ref = proportion_confint(0, res.n_kept, alpha=0.05, method="wilson")
    assert low == 0.0 and high == pytest.approx(ref[1], rel=1e-12) and high > 0
    assert res.snips_ci.high > 0 and res.ips_ci.high > 0
    # uniform propensities: every weight is 3, so n_eff = n_kept and SNIPS' interval is the replay's
    assert res.snips_ci.high == pytest.approx(high, rel=1e-12)
    # some rewards: the Wilson interval of the kept events' proportion
    log["reward"] = (rng.random(n) < 0.3).astype(float)
    res = fastevals.replay(log, "ucb1", seed=1)
    k = int(round(res.estimate * res.n_kept))
    ref = proportion_confint(k, res.n_kept, alpha=0.05, method="wilson")
    np.testing.assert_allclose(tuple(res.confidence_interval), ref, rtol=1e-12)


# ----------------------------------------------------------------------------------------------------
# checks that a planted bug would not get past


def test_monte_carlo_pvalue_counts_the_observed_table():
    """(1 + hits) / (N + 1): the most extreme 2x2 table is reached by a draw with probability
    2 / C(20, 10) ~ 1e-5, so with this seed no draw reaches it and the p-value is 1 / (N + 1), not 0."""
    import fastevals

    for n_mc in (99, 999):
        res = fastevals.g_test_counts([[10, 0], [0, 10]], monte_carlo=n_mc, seed=3)
        assert res.pvalue_mc == pytest.approx(1.0 / (n_mc + 1), rel=1e-15)
    # an ordinary table: hits = p (N + 1) - 1 is a whole number, binomial around the exact p-value
    res = fastevals.g_test_counts([[6, 4], [3, 7]], monte_carlo=999, seed=3)
    hits = res.pvalue_mc * 1000 - 1
    assert hits == pytest.approx(round(hits), abs=1e-9)
    obs = np.array([[6, 4], [3, 7]], float)
    g_obs = float(_stats.g_statistic(obs, _stats.expected_counts(obs)))
    exact = 0.0
    for k in range(0, 11):  # every table with the same margins: top-left cell k
        t = np.array([[k, 10 - k], [9 - k, 1 + k]], float)
        if t.min() < 0:
            continue
        if float(_stats.g_statistic(t, _stats.expected_counts(t))) >= g_obs - 1e-9:
            exact += stats.hypergeom.pmf(k, 20, 9, 10)
    assert stats.binomtest(int(round(hits)), 999, exact).pvalue > 1e-3


def test_simulated_regret_standard_error_is_the_spread_of_the_mean():
    """regret_standard_error is std / sqrt(n_runs): across independent simulations the final mean regret spreads
    by about that much (a std / n_runs bug is 20x too small and fails)."""
    import fastevals

    finals, ses = [], []
    for seed in range(40):
        sim = fastevals.simulate("ucb1", [0.2, 0.3, 0.5], n_steps=300, n_runs=400, seed=seed)
        finals.append(sim.final_regret)
        ses.append(sim.regret_standard_error[-1])
        z = stats.norm.ppf(0.975)
        assert sim.final_regret_ci.low == pytest.approx(sim.final_regret - z * sim.regret_standard_error[-1])
    ratio = np.std(finals, ddof=1) / np.mean(ses)
    # the sample std of 40 draws is within +-35% of the truth with probability > 0.99
    assert 0.65 < ratio < 1.35, ratio


# ----------------------------------------------------------------------------------------------------
# unreadable Parquet files are named, not left to pyarrow's ArrowInvalid


def test_corrupt_or_truncated_parquet_names_the_file(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    import fastevals

    rng = np.random.default_rng(0)
    good = tmp_path / "good.parquet"
    pq.write_table(pa.table({"variant": rng.choice(["a", "b"], 50_000), "converted": rng.integers(0, 2, 50_000)}),
                   good, compression="none")
    raw = good.read_bytes()
    truncated = tmp_path / "truncated.parquet"
    truncated.write_bytes(raw[: len(raw) // 2])
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not a parquet file " * 20)
    pages = tmp_path / "pages.parquet"  # the footer reads, the data pages do not
    damaged = bytearray(raw)
    for i in range(100, len(raw) - 2000):
        damaged[i] = (damaged[i] * 7 + 13) % 256
    pages.write_bytes(bytes(damaged))
    for data, bad in ((str(truncated), truncated), (str(garbage), garbage), ([str(good), str(garbage)], garbage),
                      (str(pages), pages)):
        with pytest.raises(ValueError, match=rf"'{bad}' is not a readable Parquet file"):
            fastevals.g_test(data, group="variant", outcome="converted")
    from fastevals import cli

    assert cli.main(["abtest", str(truncated), "--outcome", "converted"]) == 2
