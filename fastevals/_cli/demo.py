"""``fastevals demo``: write a synthetic experiment log to Parquet and analyse it."""

from __future__ import annotations

import os
import sys
import time


def add_parser(subparsers) -> None:
    """Add the ``demo`` subcommand."""
    demo = subparsers.add_parser("demo", help="write a synthetic experiment log to Parquet and analyse it")
    demo.add_argument("--rows", type=int, default=3_000_000)
    demo.add_argument("--out", default=os.path.join("fastevals-demo", "experiment.parquet"))
    demo.add_argument("--seed", type=int, default=2026)
    demo.add_argument("--overwrite", action="store_true")
    demo.set_defaults(func=_run_demo)


def _run_demo(args) -> int:
    from ..demo import write_experiment
    from .abtest import _run_abtest
    from .main import build_parser

    path = args.out
    t0 = time.perf_counter()
    if not os.path.exists(path) or args.overwrite:
        sys.stderr.write(f"writing a synthetic experiment log of {args.rows:,} sessions to {path} ...\n")
        write_experiment(path, args.rows, seed=args.seed)
        sys.stderr.write(f"  done in {time.perf_counter() - t0:.1f} s\n")
    else:
        sys.stderr.write(f"using the existing demo log {path} (--overwrite to rewrite it)\n")
    for extra in ([], ["--by", "device"]):
        argv = ["abtest", path, "--group", "variant", "--outcome", "converted", "--value", "revenue",
                "--control", "control", *extra]
        sys.stdout.write(f"\n$ fastevals {' '.join(argv)}\n")
        _run_abtest(build_parser().parse_args(argv))
    return 0
