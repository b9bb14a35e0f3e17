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
