"""The error contract, API and CLI alike: one error prefix, hints in CLI syntax, one-line warnings,
``--plot`` checked before computing, bounded Monte Carlo work, readable numbers and summaries."""

from __future__ import annotations

import json
import math
import re
import sys
import time
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats

import fastevals
from fastevals import cli
from fastevals._protocol import ConfidenceInterval
from fastevals.ab_tests import MAX_MONTE_CARLO_CELLS, MAX_MONTE_CARLO_TOTAL
from fastevals.results import SRMResult, ZTestResult


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    rng = np.random.default_rng(140)
    n = 4000
    revenue = rng.exponential(5.0, n)
    revenue[17] = np.nan
    table = pa.table({
        "variant": rng.choice(["a", "b"], n),
        "click": (rng.random(n) < 0.2).astype(np.int8),
        "click_f": (rng.random(n) < 0.2).astype(np.float64),
        "revenue": revenue,
        "device": rng.choice(["ios", "web"], n),
    })
    path = tmp_path_factory.mktemp("contract") / "log.parquet"
    pq.write_table(table, path, row_group_size=1000)
    return str(path), table


def _run(capsys, argv):
    code = cli.main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


# ------------------------------------------------------------------------------------------------
# one error prefix, hints in CLI syntax


def test_errors_have_one_prefix_and_cli_flags_in_hints(log, capsys):
    path, _ = log
    code, out, err = _run(capsys, ["abtest", path, "--value", "revenue"])
    assert code == 2 and out == ""
    assert err.startswith("fastevals abtest: error: column 'revenue' (given as `--value`) has 1 NaN")
    assert "pass --nulls drop" in err and "nulls=" not in err and "(CLI:" not in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    # the option that the message names does what it says
    code, out, _ = _run(capsys, ["abtest", path, "--value", "revenue", "--nulls", "drop"])
    assert code == 0 and "dropped (nulls, NaN, inf): 1" in out
    # kind='proportion' hint -> --kind
    code, _, err = _run(capsys, ["abtest", path, "--value", "revenue", "--kind", "proportion", "--nulls", "drop"])
    assert code == 2 and "use --kind mean" in err and "kind='mean'" not in err


def test_plugin_subcommands_share_the_prefix(log, capsys):
    path, _ = log
    code, _, err = _run(capsys, ["calibration", path, "--prob", "nope", "--label", "click"])
    assert code == 2 and err.startswith("fastevals calibration: error: unknown column 'nope'")
    code, _, err = _run(capsys, ["calibration", path, "--prob", "click_f", "--label", "click", "--bins", "0"])
    assert code == 2 and err.startswith("fastevals calibration: error: ") and "Traceback" not in err


def test_cli_hints_translation():
    flags = {"--nulls", "--monte-carlo", "--kind"}
    assert cli.cli_hints("pass nulls='drop' to leave them out", flags) == "pass --nulls drop to leave them out"
    assert cli.cli_hints("use monte_carlo=N, or kind=\"mean\"", flags) == "use --monte-carlo N, or --kind mean"
    # names without such a flag, and argument descriptions, are left alone
    assert cli.cli_hints("pass seed=3; `control`='x' is not a group", flags) == \
        "pass seed=3; `control`='x' is not a group"


# ------------------------------------------------------------------------------------------------
# warnings: one line, no Python source


def test_warnings_print_as_one_line(tmp_path, capsys):
    # a covariate with no variation in a group: the z-test warns (RuntimeWarning) and reports
    rng = np.random.default_rng(3)
    n = 600
    path = tmp_path / "w.parquet"
    pq.write_table(pa.table({"variant": np.repeat(["a", "b"], n // 2), "y": rng.normal(size=n),
                             "pre": np.zeros(n)}), path)
    code, out, err = _run(capsys, ["abtest", str(path), "--value", "y", "--covariate", "pre"])
    assert code == 0
    lines = [x for x in err.splitlines() if x]
    assert lines and all(x.startswith("fastevals: warning: ") for x in lines), err
    assert "warnings.warn" not in err and ".py:" not in err
    assert "no variation" in out  # and the report's note says it too


# ------------------------------------------------------------------------------------------------
# --plot without matplotlib fails before computing


def test_plot_without_matplotlib_fails_first(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)  # import fails as if not installed
    missing = str(tmp_path / "not-there.parquet")  # computing would fail on this first
    for argv in (["abtest", missing, "--outcome", "click", "--plot", "x.png"],
                 ["calibration", missing, "--prob", "p", "--label", "y", "--plot", "x.png"]):
        code, _, err = _run(capsys, argv)
        assert code == 2
        assert re.match(rf"fastevals {argv[0]}: error: --plot needs matplotlib.*pip install 'fastevals\[plot\]'",
                        err), err


def test_abtest_plot_is_written(log, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path, _ = log
    png = tmp_path / "ab.png"
    code, out, _ = _run(capsys, ["abtest", path, "--value", "revenue", "--nulls", "drop", "--by", "device",
                                 "--plot", str(png)])
    assert code == 0 and png.stat().st_size > 1000 and f"wrote {png}" in out


# ------------------------------------------------------------------------------------------------
# one 0/1 column as both outcome and value


@pytest.mark.parametrize("column", ["click", "click_f"])
def test_outcome_and_value_may_be_the_same_column(log, capsys, column):
    _, table = log
    rep = fastevals.abtest(table, group="variant", outcome=column, value=column, control="a")
    g = fastevals.g_test(table.set_column(1, "click", table.column(column).cast(pa.int8())), group="variant",
                         outcome="click")
    z = fastevals.z_test(table, group="variant", value=column, control="a")
    assert rep.g_test.statistic == pytest.approx(g.statistic, rel=1e-14) and rep.z_test.statistic == z.statistic
    # and against scipy / a hand-computed difference of rates
    v = np.asarray(table.column("variant").to_pylist())
    y = table.column(column).to_numpy()
    obs = np.array([[np.sum((v == grp) & (y == k)) for k in (0, 1)] for grp in ("a", "b")])
    ref = stats.chi2_contingency(obs, correction=False, lambda_="log-likelihood")
    assert rep.g_test.statistic == pytest.approx(ref.statistic, rel=1e-9)
    assert rep.z_test.difference == pytest.approx(y[v == "b"].mean() - y[v == "a"].mean(), rel=1e-12)
    assert rep.n == table.num_rows
    path, _ = log
    code, out, _ = _run(capsys, ["abtest", path, "--outcome", column, "--value", column, "--json"])
    assert code == 0
    got = json.loads(out)
    assert got["g_test"]["statistic"] == pytest.approx(g.statistic, rel=1e-12)
    assert got["z_test"]["difference"] == pytest.approx(z.difference, rel=1e-12)


def test_other_columns_used_twice_are_still_refused():
    with pytest.raises(ValueError, match="used twice"):
        fastevals.ABTestState(group="variant", outcome="click", by="click")


# ------------------------------------------------------------------------------------------------
# the control the z-test picked, in words


def test_z_test_says_which_control_it_picked(log, capsys):
    _, table = log
    res = fastevals.z_test(table, group="variant", value="click")
    assert res.control == "a" and res.control_source == "the first group in sorted order"
    assert "no control given: the control is 'a', the first group in sorted order" in str(res)
    given = fastevals.z_test(table, group="variant", value="click", control="b")
    assert given.control_source == "given" and "no control given" not in str(given)
    named = fastevals.z_test({"variant": np.repeat(["treat", "control"], 50), "y": np.arange(100.0)},
                             group="variant", value="y")
    assert named.control == "control" and named.control_source == "the group named 'control'"
    sliced = fastevals.z_test(table, group="variant", value="click", by="device")
    assert sliced.control == "a" and "the first group in sorted order" in str(sliced)
    path, _ = log
    code, out, _ = _run(capsys, ["abtest", path, "--value", "click"])
    assert code == 0 and "note: no control given: the control is 'a', the first group in sorted order" in out


# ------------------------------------------------------------------------------------------------
# a sample-ratio mismatch over many groups is summarized


def test_srm_over_80_groups_is_summarized():
    rng = np.random.default_rng(80)
    sizes = rng.integers(900, 1100, 80)
    sizes[[7, 33]] = [2000, 300]
    groups = np.repeat([f"g{i:02d}" for i in range(80)], sizes)
    data = {"variant": groups, "y": rng.random(groups.size) < 0.5}
    with pytest.warns(fastevals.SampleRatioMismatchWarning) as record:
        rep = fastevals.abtest(data, group="variant", outcome="y")
    message = str(record[0].message)
    assert len(message) < 600
    assert "80 groups" in message and "and 75 more groups" in message
    assert message.index("g07=2,000") < message.index("g33=300")  # the worst first
    assert rep.srm.mismatch and rep.srm.pvalue == pytest.approx(
        stats.chisquare(np.bincount(np.unique(groups, return_inverse=True)[1])).pvalue, rel=1e-9)
    text = str(rep)
    assert max(len(line) for line in text.splitlines()) < 600
    few = SRMResult(1.0, 0.5, ("a", "b"), (5, 5), (0.5, 0.5), 0.001).message()
    assert "group sizes (a=5, b=5) fit the expected split (a=0.5, b=0.5)" in few


# ------------------------------------------------------------------------------------------------
# Monte Carlo: huge tables get another route, huge N is refused up front


def test_monte_carlo_on_huge_tables_returns_fast_with_a_note():
    fastevals.g_test_counts([[5, 6], [7, 8]], monte_carlo=10, seed=0)  # compiled
    n = 10**12
    t0 = time.perf_counter()
    with pytest.warns(RuntimeWarning, match="chi-square p-value is exact enough"):
        res = fastevals.g_test_counts([[n, 2 * n], [n + n // 10**6, 2 * n]], monte_carlo=200, seed=1)
    assert time.perf_counter() - t0 < 1.0
    assert res.pvalue_mc is None and res.n_monte_carlo == 0
    assert "not computed" in res.note and f"{MAX_MONTE_CARLO_TOTAL:.0e}" in res.note
    from test_contract import _g_reference

    table = [[n, 2 * n], [n + n // 10**6, 2 * n]]
    assert res.statistic == pytest.approx(_g_reference(table), rel=1e-9)  # the G-test itself, to 1e-9
    assert 0 < res.pvalue < 1
    # at the limit and below it, the Monte Carlo p-value is computed as before
    small = fastevals.g_test_counts([[300, 600], [310, 600]], monte_carlo=200, seed=1)
    assert small.pvalue_mc is not None and small.n_monte_carlo == 200
    # stacks: the huge tables get NaN and one warning
    with pytest.warns(RuntimeWarning, match="1 table"):
        stack = fastevals.g_test_counts([[[n, 2 * n], [n, 2 * n + 5]], [[30, 60], [31, 60]]], monte_carlo=50, seed=2)
    assert math.isnan(stack.pvalue_mc[0]) and 0 < stack.pvalue_mc[1] <= 1


def test_monte_carlo_beyond_the_limit_is_refused_up_front(log, capsys):
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=r"monte_carlo=1000000000 would draw .*over the limit of 1e\+09 cells"):
        fastevals.g_test_counts([[5, 6], [7, 8]], monte_carlo=10**9)
    with pytest.raises(ValueError, match=r"pass at most monte_carlo=111111111"):
        fastevals.g_test_counts(np.ones((3, 3)), monte_carlo=2 * 10**8)
    with pytest.raises(ValueError, match="monte_carlo"):
        fastevals.ABTestState(group="variant", outcome="click", monte_carlo=10**9)
    assert time.perf_counter() - t0 < 1.0
    assert MAX_MONTE_CARLO_CELLS // 4 == 250_000_000
    path, _ = log
    code, _, err = _run(capsys, ["abtest", path, "--outcome", "click", "--monte-carlo", "1000000000"])
    assert code == 2
    assert err.startswith("fastevals abtest: error: --monte-carlo 1000000000 would draw")
    assert "pass at most --monte-carlo 250000000" in err


# ------------------------------------------------------------------------------------------------
# numbers


def test_tiny_negative_bounds_never_print_as_negative_zero():
    ci = ConfidenceInterval(-3e-18, 0.2, confidence=0.95, method="wald")
    res = ZTestResult(statistic=1.0, pvalue=0.3, difference=0.1, confidence_interval=ci, relative_difference=-0.0,
                      relative_difference_ci=ConfidenceInterval(-1e-19, 0.1), standard_error=0.05, control="a",
                      treatment="b", mean_control=1.0, mean_treatment=1.1, n_control=10, n_treatment=10,
                      kind="mean", alternative="two-sided", margin=-0.0, confidence=0.95)
    text = str(res)
    assert "-0.0000" not in text and "-0.000%" not in text, text
    assert not re.search(r"(?<![\w.])-0(?![.\de])", text), text
    assert "-3.00000e-18" in text and "relative = 0.000%  [0.000%, +10.000%]" in text
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert repr(res).startswith("ZTestResult(statistic=1, pvalue=0.3")


def test_every_plugin_subcommand_reports_errors_with_the_one_prefix(tmp_path, capsys):
    """The plugins print no error lines of their own: cli.main (and a plugin's own main) report
    them, prefixed with the command and with hints in flags."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fastevals import cli

    path = tmp_path / "log.parquet"
    pq.write_table(pa.table({"y": [0, 1] * 20, "p": [0.2, 0.7] * 20, "g": ["a", "b"] * 20}), path)
    calls = {
        "compare": ["compare", str(path), "--models", "p,nope"],
        "fairness": ["fairness", str(path), "--label", "nope", "--prediction", "y", "--sensitive", "g"],
        "slices": ["slices", str(path), "--label", "y", "--prediction", "nope"],
        "drift": ["drift", str(path), str(path), "--columns", "nope"],
        "sequential": ["sequential", str(path), "--group", "g", "--value", "nope"],
        "power": ["power", "--effect", "0.1"],
    }
    for command, argv in calls.items():
        assert cli.main(argv) == 2, command
        err = capsys.readouterr().err
        assert err.startswith(f"fastevals {command}: error: "), (command, err)
        assert err.count("\n") == 1, (command, err)
