"""Developer sessions: ``nox -s tests``, ``large``, ``bench``, ``lint``, ``demo``.

A ``cudasim`` session (CUDA kernels under the simulator) comes with the CUDA kernels (issue 7);
there are none yet, and a session that selects no test would only fail.
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
def lint(session):
    session.install("ruff")
    session.run("ruff", "check", "fastevals", "tests", "benchmarks", "noxfile.py")


@nox.session
def demo(session):
    session.install("-e", ".")
    session.run("fastevals", "demo")
