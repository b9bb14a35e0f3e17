"""Developer sessions: ``nox -s tests``, ``large``, ``bench``, ``lint``, ``cudasim``, ``demo``.

``cudasim`` runs the CUDA twins against the CPU kernels under numba-cuda's simulator (no GPU
needed); the default ``tests`` session runs them too. On a GPU machine,
``NUMBA_ENABLE_CUDASIM=0 python -m pytest -m cuda`` runs them on the device and
``python benchmarks/gpu_bench.py`` prints the GPU figures.
"""

import nox

nox.options.sessions = ["lint", "tests"]


@nox.session
def tests(session):
    """The test suite as CI runs it (large sizes excluded)."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def large(session):
    """The tests behind the `large` marker (minutes)."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", "-m", "large", *session.posargs)


@nox.session
def bench(session):
    """Benchmarks for real (standard workload sizes), JSON written to .benchmarks/."""
    session.install("-e", ".[test,bench]")
    session.run(
        "python", "-m", "pytest", "benchmarks", "--benchmark-enable", "--benchmark-autosave",
        *session.posargs, env={"FASTEVALS_BENCH_FULL": "1"},
    )


@nox.session
def cudasim(session):
    """The CUDA twins against the CPU kernels under the CUDA simulator (no GPU needed)."""
    session.install("-e", ".[test,cuda]")
    session.run("python", "-m", "pytest", "-m", "cuda", "tests/test_cuda.py", *session.posargs,
                env={"NUMBA_ENABLE_CUDASIM": "1"})


@nox.session
def lint(session):
    """ruff (with the numpydoc ``D`` rules on the package) and mypy on the public modules.

    ``pyproject.toml`` holds both configurations: ``ruff check .`` and ``mypy fastevals`` check
    exactly the intended files (kernels and CUDA twins are excluded from mypy there). The
    package is installed so that mypy sees numpy's, scipy's and pyarrow's own annotations.
    """
    session.install("-e", ".", "ruff", "mypy")
    session.run("ruff", "check", ".")
    session.run("mypy", "fastevals")


@nox.session
def demo(session):
    session.install("-e", ".")
    session.run("fastevals", "demo")
