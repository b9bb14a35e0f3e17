"""The ``fastevals`` command: the parser, ``main``, the output helpers and the error contract.

Each subcommand lives in its own module of ``fastevals._cli`` (``demo``, ``abtest``, ``bootstrap``, ...),
which adds itself with ``add_parser(subparsers)``; ``fastevals/cli.py`` is the entry point.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import re
import sys
import warnings

# subcommand modules that add themselves with add_parser(subparsers); absent ones are skipped
_PLUGINS = ("fastevals._cli.demo", "fastevals._cli.abtest", "fastevals._cli.bootstrap",
            "fastevals._cli.calibration", "fastevals._cli.bandit", "fastevals._cli.experiments",
            "fastevals._cli.fairness", "fastevals._cli.slices", "fastevals._cli.drift",
            "fastevals._cli.compare", "fastevals._cli.warmup")


def _json_default(obj):
    import numpy as np

    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)


def _clean(obj):
    """NaN and inf are not JSON: write them as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def emit(result, args) -> int:
    """Show a result as every subcommand does and return the exit status 0.

    ``str(result)`` (the one renderer), or ``result.to_dict()`` as JSON with ``--json``; with
    ``--plot PATH`` the result's plot is also written there.
    """
    if getattr(args, "json", False):
        print_json(result.to_dict())
    else:
        print(result)
    path = getattr(args, "plot", None)
    if path:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        ax = result.plot(path=path)
        plt.close(ax.figure)
        if not getattr(args, "json", False):
            print(f"wrote {path}")
    return 0


def run_alone(add_parser, argv=None) -> int:
    """Run one plugin's subcommand(s) on their own (a plugin module's ``main``), with the same
    error and warning handling as :func:`main`.
    """
    parser = argparse.ArgumentParser(prog="fastevals")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return _dispatch(parser, parser.parse_args(argv))


def print_json(obj) -> None:
    """Print ``obj`` as indented JSON (NumPy scalars and arrays, NaN and inf made plain)."""
    print(json.dumps(_clean(json.loads(json.dumps(obj, default=_json_default))), indent=2))


def print_table(rows: list[dict], columns: list[str], *, stream=None) -> None:
    """A plain aligned text table."""
    from ..results import fmt

    stream = stream or sys.stdout
    cells = [[v if isinstance(v := r.get(c), str) else fmt(v) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[k]) for row in cells)) if cells else len(c) for k, c in enumerate(columns)]
    stream.write("  ".join(c.rjust(w) for c, w in zip(columns, widths)) + "\n")
    stream.write("  ".join("-" * w for w in widths) + "\n")
    for row in cells:
        stream.write("  ".join(v.rjust(w) for v, w in zip(row, widths)) + "\n")


def _where(specs: list[str], data):
    """--where COL=VALUE filters as one pyarrow expression (values cast to the column's type)."""
    if not specs:
        return None
    import pyarrow as pa
    import pyarrow.compute as pc

    from .. import _source as src

    schema = src.open_source(data).schema
    expr = None
    for spec in specs:
        if "=" not in spec:
            raise ValueError(f"--where must look like COLUMN=VALUE; got {spec!r}")
        col, value = spec.split("=", 1)
        if col not in schema.names:
            raise ValueError(f"--where names unknown column {col!r}; columns: {schema.names}")
        t = schema.field(col).type
        if pa.types.is_dictionary(t):
            t = t.value_type
        try:
            scalar = pa.scalar(value).cast(t)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise ValueError(f"--where value {value!r} does not fit column {col!r} of type {t}") from None
        e = pc.field(col) == scalar
        expr = e if expr is None else (expr & e)
    return expr


def build_parser() -> argparse.ArgumentParser:
    """The ``fastevals`` argument parser, with every subcommand's plugin registered."""
    from .. import __version__

    parser = argparse.ArgumentParser(prog="fastevals", description="Compiled statistics for evaluating ML models.")
    parser.add_argument("--version", action="version", version=f"fastevals {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    for name in _PLUGINS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.add_parser(sub)
    return parser


# ----------------------------------------------------------------------------------------------------
# the error contract: one prefix, CLI flags in hints, one-line warnings, --plot checked up front

_HINT = re.compile(r"(?<![\w`.-])([a-z][a-z0-9_]*)=('([^']*)'|\"([^\"]*)\"|([^\s,;:)'\"]+))")
_BACKTICKED = re.compile(r"`([a-z][a-z0-9_]*)`")
_CLI_ASIDE = re.compile(r"\s*\(CLI: [^)]*\)")


def _subcommand_flags(parser: argparse.ArgumentParser, argv_command: str | None) -> set[str]:
    """Every option string of the subcommand (and of its own subcommands)."""
    flags: set[str] = set()

    def walk(p):
        for action in p._actions:
            flags.update(s for s in action.option_strings if s.startswith("--"))
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    walk(sub)

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and argv_command in action.choices:
            walk(action.choices[argv_command])
    return flags


def cli_hints(message: str, flags: set[str]) -> str:
    """The library's Python-syntax hints as the subcommand's flags.

    ``pass nulls='drop'`` becomes ``pass --nulls drop`` and ``monte_carlo=N`` ``--monte-carlo N``
    where the subcommand has such a flag; a ``(CLI: ...)`` aside is dropped (the hint is already
    in CLI syntax); other text is left alone.

    Examples
    --------
    >>> cli_hints("pass nulls='drop' (CLI: --nulls drop) to leave them out", {"--nulls"})
    'pass --nulls drop to leave them out'
    >>> cli_hints("`monte_carlo` must be >= 1; try monte_carlo=N", {"--monte-carlo"})
    '`--monte-carlo` must be >= 1; try --monte-carlo N'
    """
    message = _CLI_ASIDE.sub("", message)

    def hint(m):
        flag = "--" + m.group(1).replace("_", "-")
        if flag not in flags:
            return m.group(0)
        value = next(v for v in (m.group(3), m.group(4), m.group(5)) if v is not None)
        return f"{flag} {value}"

    def name(m):
        flag = "--" + m.group(1).replace("_", "-")
        return f"`{flag}`" if flag in flags else m.group(0)

    return _BACKTICKED.sub(name, _HINT.sub(hint, message))


class _ErrorLines:
    """stderr while a subcommand runs: its own ``fastevals <command>: error: ...`` lines get the
    flags in their hints too (plugin subcommands print some errors themselves).
    """

    def __init__(self, stream, flags: set[str]):
        self._stream, self._flags = stream, flags

    def write(self, text: str) -> int:
        if text.startswith("fastevals") and ": error: " in text:
            text = cli_hints(text, self._flags)
        return self._stream.write(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    text = " ".join(str(message).split())
    (file or sys.stderr).write(f"fastevals: warning: {text}\n")


def main(argv=None) -> int:
    """Run the ``fastevals`` command line; returns the exit status (2 on a usage or input error).

    Every subcommand's ValueError, TypeError, FileNotFoundError or ImportError becomes one line,
    ``fastevals <command>: error: <message>`` (hints in CLI syntax), with exit status 2 and no
    traceback; warnings print as ``fastevals: warning: <message>``; ``--plot`` without matplotlib
    fails before any computing.
    """
    parser = build_parser()
    return _dispatch(parser, parser.parse_args(argv))


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Run the parsed subcommand: the one place errors become ``fastevals <command>: error: ...``."""
    flags = _subcommand_flags(parser, args.command)
    err = sys.stderr
    sys.stderr = _ErrorLines(err, flags)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", category=PendingDeprecationWarning)
            warnings.showwarning = _show_warning
            try:
                if getattr(args, "plot", None):
                    from .._protocol import optional_import

                    optional_import("matplotlib.pyplot", "--plot")
                return int(args.func(args) or 0)
            except (ValueError, TypeError, OSError, ImportError) as exc:  # OSError: FileNotFoundError too
                text = " ".join(str(exc).split("\n")) if str(exc) else type(exc).__name__
                err.write(f"fastevals {args.command}: error: {cli_hints(text, flags)}\n")
                return 2
    finally:
        sys.stderr = err
