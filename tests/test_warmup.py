"""``fastevals warmup``: runs the analyses' warmups, times each, says where numba's cache is; a
warm cache makes a new process compile nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types

import pytest

from fastevals import cli
from fastevals._cli import warmup as cw


@pytest.fixture
def tiny_analyses(monkeypatch):
    """Two stand-in analyses (one whose warmup fails) instead of the real ones: the CLI's
    plumbing without minutes of compiling."""
    calls = []
    ok = types.ModuleType("fastevals_fake_ok")
    ok.warmup = lambda parallel=True: calls.append("ok")
    broken = types.ModuleType("fastevals_fake_broken")

    def fail(parallel=True):
        calls.append("broken")
        raise RuntimeError("kernel exploded")

    broken.warmup = fail
    nowarm = types.ModuleType("fastevals_fake_nowarm")  # an analysis without warmup(): skipped
    for m in (ok, broken, nowarm):
        monkeypatch.setitem(sys.modules, m.__name__, m)
    monkeypatch.setattr(cw, "ANALYSES", (("broken", broken.__name__), ("ok", ok.__name__),
                                         ("nowarm", nowarm.__name__), ("absent", "fastevals_not_installed")))
    return calls


def test_warmup_cli_times_each_analysis(tiny_analyses, capsys):
    assert cli.main(["warmup", "--only", "ok"]) == 0
    out = capsys.readouterr().out
    assert tiny_analyses == ["ok"]  # --only: nothing else ran, fastevals.warmup() not called either
    lines = out.splitlines()
    row = next(line for line in lines if line.strip().startswith("ok"))
    assert float(row.split()[1]) >= 0.0 and row.split()[2] == "0"  # seconds, 0 functions compiled
    assert "loaded from the cache" in row
    assert any(line.startswith("numba cache: ") for line in lines)


def test_warmup_cli_reports_a_failure_and_goes_on(tiny_analyses, capsys):
    assert cli.main(["warmup", "--only", "broken,ok,nowarm,absent", "--json"]) == 1
    got = json.loads(capsys.readouterr().out)
    rows = {r["analysis"]: r for r in got["analyses"]}
    assert tiny_analyses == ["broken", "ok"]  # the failure did not stop the next analysis
    assert rows["broken"]["error"] == "RuntimeError: kernel exploded"
    assert rows["ok"]["error"] is None and rows["ok"]["compiled"] == 0
    assert rows["nowarm"]["error"] == "has no warmup()" and rows["nowarm"]["seconds"] is None
    assert rows["absent"]["error"] == "not installed"
    assert got["total_seconds"] >= 0 and got["cache"] and got["threads"] >= 1


def test_warmup_cli_unknown_analysis(tiny_analyses, capsys):
    assert cli.main(["warmup", "--only", "nope"]) == 2
    assert "unknown analysis 'nope'" in capsys.readouterr().err
    assert tiny_analyses == []


def test_cache_location_names_numba_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    assert cw.cache_location() == f"{tmp_path} (NUMBA_CACHE_DIR)"
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    assert "NUMBA_CACHE_DIR" in cw.cache_location()  # says how to choose the folder


_TINY_MODULE = """
import numpy as np
from fastevals._config import serial_kernel


@serial_kernel
def total(x):
    s = 0.0
    for v in x:
        s += v
    return s


def warmup(parallel=True):
    total(np.ones(3))
"""

_RUN_TINY = """
import sys
from fastevals import cli
from fastevals._cli import warmup as cw
cw.ANALYSES = (("tiny", "fastevals_tiny_analysis"),)
sys.exit(cli.main(["warmup", "--only", "tiny", "--json"]))
"""


def _warmup_in_new_process(env, code=None, args=()):
    cmd = [sys.executable, "-c", code] if code else [sys.executable, "-m", "fastevals.cli", "warmup", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return json.loads(out.stdout)


def test_warm_cache_means_nothing_compiles_in_a_new_process(tmp_path):
    """The container-image story: warm once into NUMBA_CACHE_DIR, a new process compiles nothing
    (shown on a one-kernel stand-in analysis; the real ones are in the large test below)."""
    (tmp_path / "mod").mkdir()
    (tmp_path / "mod" / "fastevals_tiny_analysis.py").write_text(_TINY_MODULE)
    cache = tmp_path / "cache"
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache),
               PYTHONPATH=os.pathsep.join([str(tmp_path / "mod"), os.environ.get("PYTHONPATH", "")]))
    cold = _warmup_in_new_process(env, _RUN_TINY)
    assert cold["cache"] == f"{cache} (NUMBA_CACHE_DIR)"
    assert cold["analyses"][0]["analysis"] == "tiny" and cold["analyses"][0]["compiled"] == 1
    assert any(name.endswith(".nbi") for _, _, files in os.walk(cache) for name in files)
    warm = _warmup_in_new_process(env, _RUN_TINY)
    assert warm["analyses"][0]["compiled"] == 0  # loaded from the cache


@pytest.mark.large
def test_full_warmup_in_a_fresh_cache(tmp_path):
    """Every analysis, from an empty cache (minutes on a small machine)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    cold = {r["analysis"]: r for r in _warmup_in_new_process(env, args=["--json"])["analyses"]}
    for name in ("abtest", "bootstrap", "calibration", "bandits"):
        assert cold[name]["error"] is None and cold[name]["compiled"] >= 1
    assert cold["fastevals.warmup()"]["compiled"] == 0  # everything it needs was warmed above
    warm = _warmup_in_new_process(env, args=["--json"])["analyses"]
    assert all(r["compiled"] == 0 for r in warm if r["seconds"] is not None)


def test_compile_times_table_and_report(tmp_path):
    """benchmarks/compile_times.py's rows print as a table and become report.py's Markdown."""
    import io

    bench = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")
    sys.path.insert(0, bench)
    try:
        import compile_times
        import report
    finally:
        sys.path.remove(bench)
    row = {"analysis": "calibration", "phase": "cold", "import_seconds": 0.1, "first_call_seconds": 8.5,
           "first_call_compiled": 1, "cached_first_call_seconds": 1.2, "second_call_seconds": 0.002,
           "kernels": [{"function": "fastevals._kernels.calibration.fold_bins_serial", "signature": "(float64)",
                        "seconds": 7.7}],
           "variants": [{"variant": "label int8", "seconds": 4.1, "compiled": 1, "functions": ["fold_bins_serial"]},
                        {"variant": "label bool", "seconds": 0.01, "compiled": 0, "functions": []}],
           "warmup_rest_seconds": 3.5, "warmup_rest_compiled": 1}
    out = io.StringIO()
    compile_times.print_table([row, {"analysis": "drift", "phase": "cold", "error": "boom"}], out)
    text = out.getvalue()
    assert "calibration" in text and "8.50 s" in text and "fold_bins_serial(float64)" in text
    assert "label int8" in text and "label bool" not in text and "drift        error: boom" in text
    kind, md = report.render({"kind": "compile_times", "environment": {"date": "d", "commit": "c",
                                                                        "load_average": [0.2, 0.3, 0.4]},
                              "rows": [row]})
    assert kind == "compile_times"
    assert "| calibration | 8.50 s | 1.20 s | 2.0 ms | 1 | 3.50 s | label int8 (4.1 s) |" in md
    assert "load average 0.20" in md and "busy" not in md
