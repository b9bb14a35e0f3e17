"""Bugs that mypy found while the public API was typed (issue 14, "Types and docs")."""

from __future__ import annotations

import subprocess
import sys


def test_power_imports_without_docstrings():
    # power.py filled a shared block into its docstrings with `__doc__.replace`; under
    # `python -OO` docstrings are None and importing fastevals.power raised AttributeError
    code = "import fastevals; r = fastevals.power(n_per_group=1000, effect=0.1, sd=1.0); print(round(r.power, 6))"
    out = subprocess.run([sys.executable, "-OO", "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    import fastevals

    assert float(out.stdout) == round(fastevals.power(n_per_group=1000, effect=0.1, sd=1.0).power, 6)
