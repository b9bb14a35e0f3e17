"""``fastevals warmup``: compile every kernel ahead of time, one analysis at a time, and say
how long each took and where numba keeps the compiled code.

Numba compiles a kernel on its first use, per machine and per type signature, and keeps the
result in its on-disk cache.  A new laptop, a CI job, a container or a fresh Dask worker pays
that compile (seconds to tens of seconds an analysis on a small machine) unless the cache is
already there, so build images warm::

    ENV NUMBA_CACHE_DIR=/opt/numba-cache
    RUN fastevals warmup

``NUMBA_CACHE_DIR`` chooses the cache folder (it must be the same, and readable, when the
image runs); without it numba writes ``__pycache__`` folders next to fastevals' sources, or a
user-wide cache folder where the package folder is read-only.  The cache is keyed by the
source files and the CPU, so it serves the same fastevals version on the same kind of machine.

``fastevals warmup`` runs the ``warmup()`` of each analysis module (the ones
:func:`fastevals.warmup` calls, plus those of the newer analyses where their module has one),
timing each, then :func:`fastevals.warmup` itself, which finds everything compiled.
"""

from __future__ import annotations

import argparse
import importlib
import os
import time
from dataclasses import dataclass, field

#: (name shown, module whose ``warmup()`` compiles that analysis' kernels): the list
#: ``fastevals.warmup()`` runs
from .. import WARMUPS as ANALYSES  # noqa: E402


@dataclass
class CompileRecorder:
    """Numba compilations seen while active (``numba:compile`` events; cache loads are not
    compilations and do not appear): ``(function, signature, seconds)`` of the outermost ones.

    Use as a context manager; ``events`` lists what was compiled, callees inside their caller's time.
    """

    events: list = field(default_factory=list)
    _depth: int = 0
    _starts: list = field(default_factory=list)

    def __enter__(self):
        from numba.core import event

        recorder = self

        class _Listener(event.Listener):
            def on_start(self, ev):
                recorder._depth += 1
                recorder._starts.append(time.perf_counter())

            def on_end(self, ev):
                recorder._depth -= 1
                t = time.perf_counter() - recorder._starts.pop()
                if recorder._depth == 0:
                    recorder.events.append((_function_name(ev.data), _signature(ev.data), t))

        self._listener = _Listener()
        event.register("numba:compile", self._listener)
        return self

    def __exit__(self, *exc):
        from numba.core import event

        event.unregister("numba:compile", self._listener)
        return False

    @property
    def seconds(self) -> float:
        return sum(t for _, _, t in self.events)


def _function_name(data) -> str:
    disp = data.get("dispatcher") if isinstance(data, dict) else None
    func = getattr(disp, "py_func", None)
    if func is None:
        return "?"
    return f"{func.__module__}.{func.__qualname__}"


def _signature(data) -> str:
    args = data.get("args") if isinstance(data, dict) else None
    return "(" + ", ".join(str(a) for a in args) + ")" if args is not None else "?"


def cache_location() -> str:
    """Where numba reads and writes fastevals' compiled kernels, in words."""
    chosen = os.environ.get("NUMBA_CACHE_DIR")
    if chosen:
        return f"{chosen} (NUMBA_CACHE_DIR)"
    kernels = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_kernels")
    if os.access(kernels, os.W_OK):
        return (f"{os.path.join(kernels, '__pycache__')} and the other __pycache__ folders of fastevals "
                "(next to the sources; set NUMBA_CACHE_DIR to choose a folder)")
    from numba.misc.appdirs import AppDirs

    return (f"{AppDirs(appname='numba', appauthor=False).user_cache_dir} (numba's user-wide cache: the package "
            "folder is read-only; set NUMBA_CACHE_DIR to choose a folder)")


def warm(names=None, *, parallel: bool = True, everything: bool = True) -> list[dict]:
    """Run the warmups, timed one analysis at a time; one dict per analysis.

    ``names`` limits the analyses (None: all whose module is installed and has ``warmup``);
    ``everything`` also calls :func:`fastevals.warmup` at the end.  Failures are reported in
    the dict (``error``), not raised, so one broken analysis does not hide the others' figures.
    """
    known = dict(ANALYSES)
    if names is not None:
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"unknown analysis {unknown[0]!r} for --only; choose from: {', '.join(known)}")
    rows = []
    for name, module_name in ANALYSES:
        if names is not None and name not in names:
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            if names is not None:
                rows.append({"analysis": name, "seconds": None, "compiled": None, "error": "not installed"})
            continue
        fn = getattr(module, "warmup", None)
        if fn is None:
            if names is not None:
                rows.append({"analysis": name, "seconds": None, "compiled": None, "error": "has no warmup()"})
            continue
        rows.append(_timed(name, lambda f=fn: f(parallel)))
    if everything:
        import fastevals

        rows.append(_timed("fastevals.warmup()", lambda: fastevals.warmup(parallel)))
    return rows


def _timed(name, fn) -> dict:
    t0 = time.perf_counter()
    with CompileRecorder() as rec:
        try:
            fn()
            error = None
        except Exception as exc:  # noqa: BLE001 - reported per analysis, the others still run
            error = f"{type(exc).__name__}: {exc}"
    return {"analysis": name, "seconds": time.perf_counter() - t0, "compiled": len(rec.events),
            "compile_seconds": rec.seconds, "error": error}


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "warmup",
        help="compile every kernel now (or load it from numba's cache) and print the time per analysis",
        description="Compile the numba kernels of every analysis ahead of time, so that a first call "
                    "does not pay for it; prints seconds per analysis and where the cache lives. Set "
                    "NUMBA_CACHE_DIR to choose the cache folder (e.g. when building a container image "
                    "or a Dask worker image).",
    )
    p.add_argument("--only", default=None, metavar="NAMES",
                   help="comma-separated analyses to warm (" + ", ".join(n for n, _ in ANALYSES) + ")")
    p.add_argument("--serial", action="store_true",
                   help="skip the A/B kernels' parallel twins (inputs under 500,000 rows a batch use the serial ones)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    names = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
    t0 = time.perf_counter()
    rows = warm(names, parallel=not args.serial, everything=names is None)  # a ValueError: main reports it
    total = time.perf_counter() - t0
    where = cache_location()
    failed = [r for r in rows if r["error"] and r["seconds"] is not None]
    if args.json:
        import numba

        from .main import print_json

        print_json({"analyses": rows, "total_seconds": total, "cache": where,
                    "numba": numba.__version__, "threads": numba.get_num_threads()})
        return 1 if failed else 0
    from .main import print_table

    shown = [{"analysis": r["analysis"],
              "seconds": "-" if r["seconds"] is None else f"{r['seconds']:.2f}",
              "compiled": "-" if r["compiled"] is None else str(r["compiled"]),
              "note": r["error"] or ("loaded from the cache" if r["compiled"] == 0 else "")}
             for r in rows]
    print_table(shown, ["analysis", "seconds", "compiled", "note"])
    print(f"total {total:.2f} s; compiled = numba functions compiled (0: all loaded from the cache)")
    print(f"numba cache: {where}")
    return 1 if failed else 0
