"""The ``fastevals`` command (entry point).

The code lives in ``fastevals/_cli/``: the parser, ``main`` and the output helpers in
``fastevals/_cli/main.py``, one module per command beside it (``demo``, ``abtest``, ``bootstrap``, ...).
This module re-exports them, so ``fastevals.cli:main`` and ``python -m fastevals.cli`` keep working.
"""

from __future__ import annotations

import sys

from ._cli.main import (
    _PLUGINS,  # noqa: F401  (the subcommand modules, for code that read cli._PLUGINS)
    build_parser,
    cli_hints,
    emit,
    main,
    print_json,
    print_table,
    run_alone,
)

__all__ = ["build_parser", "cli_hints", "emit", "main", "print_json", "print_table", "run_alone"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
