"""The command line: demo, abtest (text and JSON), errors, and a cheap import."""

import json
import os
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
from scipy import stats

import fastevals
from fastevals import cli
from fastevals.demo import make_experiment, write_experiment


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    path = tmp_path_factory.mktemp("demo") / "experiment.parquet"
    write_experiment(str(path), 60_000, row_group_size=10_000)
    return str(path)


def test_demo_writes_a_log_and_analyses_it(tmp_path, capsys):
    out = tmp_path / "d" / "log.parquet"
    assert cli.main(["demo", "--rows", "40000", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "G-test: variant x converted" in text and "z-test (mean) on revenue" in text
    assert "G-test: variant x converted by device" in text
    table = pq.read_table(out)
    assert table.num_rows == 40_000
    assert set(table.column_names) == {"user_id", "variant", "country", "device", "converted", "revenue"}
    assert [p.name for p in out.parent.iterdir()] == ["log.parquet"]  # no temporary file left


def test_abtest_json_equals_library(log, capsys):
    assert cli.main(["abtest", log, "--outcome", "converted", "--value", "revenue", "--control", "control",
                     "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    ref = fastevals.abtest(log, group="variant", outcome="converted", value="revenue", control="control")
    assert got["g_test"]["statistic"] == pytest.approx(ref.g_test.statistic, rel=1e-12)
    assert got["z_test"]["pvalue"] == pytest.approx(ref.z_test.pvalue, rel=1e-12)
    assert got["n"] == 60_000 and got["n_dropped"] == 0
    # and both against scipy on the raw columns
    t = pq.read_table(log)
    v = np.asarray(t.column("variant").to_pylist())
    y = t.column("converted").to_numpy()
    obs = np.array([[np.sum((v == g) & (y == k)) for k in (0, 1)] for g in ("control", "treatment")])
    ref_g = stats.chi2_contingency(obs, correction=False, lambda_="log-likelihood")
    # G is small here (near-equal rates): scipy's O ln(O/E) keeps ~8 digits of it, ours all of them
    assert got["g_test"]["statistic"] == pytest.approx(ref_g.statistic, rel=1e-6)
    from test_contract import _g_reference

    assert got["g_test"]["statistic"] == pytest.approx(_g_reference(obs.tolist()), rel=1e-12)


def test_abtest_by_and_where(log, capsys):
    assert cli.main(["abtest", log, "--outcome", "converted", "--by", "device", "--where", "country=US"]) == 0
    text = capsys.readouterr().out
    assert "by device" in text and "android" in text
    assert cli.main(["abtest", log, "--value", "revenue", "--by", "country", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert len(got["z_test"]["table"]) == 10


@pytest.mark.parametrize(
    "argv, pattern",
    [
        (["--outcome", "nope"], "unknown column 'nope'"),
        (["--value", "country"], "column 'country' .* has type"),
        ([], "give --outcome"),
        (["--outcome", "converted", "--where", "country"], "COLUMN=VALUE"),
        (["--outcome", "converted", "--where", "zz=1"], "unknown column 'zz'"),
    ],
)
def test_abtest_errors_are_one_clear_line(log, capsys, argv, pattern):
    assert cli.main(["abtest", log] + argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastevals abtest: error:")
    import re

    assert re.search(pattern, err)
    assert "Traceback" not in err


def test_missing_file_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["abtest", str(tmp_path / "nope.parquet"), "--outcome", "converted"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_make_experiment_is_seeded():
    a, b = make_experiment(1000, seed=1), make_experiment(1000, seed=1)
    assert a.equals(b)
    assert not a.equals(make_experiment(1000, seed=2))


def test_import_is_cheap_and_compiles_nothing():
    code = (
        "import sys, time; t = time.perf_counter(); import fastevals; dt = time.perf_counter() - t; "
        "print(dt, 'numba' in sys.modules, 'numba.cuda' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONWARNINGS": "error"}).stdout.split()
    assert float(out[0]) < 0.5
    assert out[1] == "False" and out[2] == "False"


def test_in_memory_tables_do_not_import_pyarrow_dataset():
    # pyarrow.dataset costs 0.1-0.2 s to import: only files, datasets, filters and streams need it
    code = (
        "import sys, numpy as np, fastevals; "
        "fastevals.g_test({'g': np.array([0, 1] * 50), 'y': np.arange(100) % 3 == 0}, group='g', outcome='y'); "
        "print('pyarrow.dataset' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[-1] == "False"


def test_package_warmup_compiles_every_analysis():
    fastevals.warmup(parallel=False)
    from fastevals._kernels import bandits, bootstrap, calibration, cells

    for module in (cells, bandits, bootstrap, calibration):
        compiled = [f for f in vars(module).values() if getattr(f, "signatures", None)]
        assert compiled, module.__name__


def test_calibration_and_bandit_print_the_results_renderer_and_one_error_prefix(tmp_path, capsys):
    """calibration and bandit replay/simulate print str(result) (the one renderer); errors read
    `fastevals <command>: error: ...` with the CLI flag in the hint."""
    import pyarrow as pa

    rng = np.random.default_rng(5)
    p = rng.random(3000)
    path = tmp_path / "preds.parquet"
    pq.write_table(pa.table({"p": np.where(np.arange(3000) == 7, np.nan, p), "y": (rng.random(3000) < p),
                             "arm": rng.integers(0, 3, 3000), "reward": rng.random(3000) < 0.3}), path)
    assert cli.main(["calibration", str(path), "--prob", "p", "--label", "y", "--nulls", "drop"]) == 0
    out = capsys.readouterr().out
    res = fastevals.calibration(str(path), prob="p", label="y", nulls="drop")
    assert out.strip() == str(res).strip() and res.n_dropped == 1
    assert cli.main(["calibration", str(path), "--prob", "p", "--label", "y"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastevals calibration: error: ") and "--nulls drop" in err
    assert cli.main(["bandit", "replay", str(path), "--update-every", "3"]) == 0
    out = capsys.readouterr().out
    assert out.strip() == str(fastevals.replay(str(path), "ucb1", seed=0, update_every=3)).strip()
    assert cli.main(["bandit", "replay", str(path), "--arm", "nope"]) == 2
    assert capsys.readouterr().err.startswith("fastevals bandit: error: unknown column 'nope'")
    assert cli.main(["bandit", "simulate", "--means", "0.2,0.5", "--steps", "50", "--runs", "10",
                     "--confidence", "0.9", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["final_regret_ci"]["confidence"] == 0.9 and d["band"] == 0.9
