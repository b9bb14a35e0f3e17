"""The README's Python examples run as written, check what they claim, and say which extra they need.

Each ```python block runs in order in one namespace (later blocks of a section use earlier
ones' data), with warnings as errors. Every block asserts something it claims (a number
against its reference, a documented value), so an example whose answer changed fails here.
A block that imports a library outside the core install (`pip install .`: numba, numpy, scipy,
pyarrow) must say so in the prose just above it ("needs ...").
"""

import pathlib
import re
import warnings

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
CORE = {"numpy", "scipy", "pyarrow", "fastevals", "numba", "os", "tempfile", "math", "json"}


def _blocks():
    text = README.read_text()
    out = []
    for m in re.finditer(r"```python\n(.*?)```", text, re.S):
        before = text[:m.start()].rstrip().splitlines()[-3:]
        out.append((m.group(1), "\n".join(before), text[:m.start()].count("\n") + 1))
    return out


def test_readme_python_blocks_run_and_check_their_claims():
    blocks = _blocks()
    assert len(blocks) >= 10, "README has lost its python examples"
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for code, _, line in blocks:
            assert re.search(r"^\s*assert ", code, re.M), f"the README block at line {line} asserts nothing"
            exec(compile(code, f"{README}:{line}", "exec"), namespace)


def test_readme_blocks_say_which_extra_they_need():
    for code, before, line in _blocks():
        imported = set(re.findall(r"^\s*(?:import|from) ([A-Za-z_]\w*)", code, re.M))
        imported |= {m for stmt in re.findall(r"^\s*import (.+)$", code, re.M) for m in
                     (part.strip().split(" ")[0].split(".")[0] for part in stmt.split(","))}
        extra = imported - CORE
        if extra:
            assert "needs" in before.lower() or "extra" in before.lower(), \
                f"the README block at line {line} imports {sorted(extra)} without saying it needs them"
