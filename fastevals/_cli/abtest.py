"""``fastevals abtest``: the G-test and z-test of an experiment log (Parquet file, folder or glob)."""

from __future__ import annotations

import argparse
import sys
import time
import warnings

from .dask import add_dask_options
from .main import _where, print_json


def add_parser(subparsers) -> None:
    """Add the ``abtest`` subcommand."""
    ab = subparsers.add_parser("abtest", help="G-test and z-test of an experiment log (Parquet file, folder or glob)")
    ab.add_argument("data", help="Parquet file, folder or glob")
    _add_abtest_arguments(ab)
    ab.set_defaults(func=_run_abtest)
    add_dask_options(ab)


def _add_abtest_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--group", default="variant", help="group (variant) column [variant]")
    p.add_argument("--outcome", default=None, help="categorical outcome column for the G-test")
    p.add_argument("--value", default=None, help="numeric column for the z-test")
    p.add_argument("--by", action="append", default=[], help="segment column (repeatable)")
    p.add_argument("--control", default=None, help="control group label")
    p.add_argument("--kind", choices=["mean", "proportion"], default="mean")
    p.add_argument("--alternative", choices=["two-sided", "larger", "smaller"], default="two-sided")
    p.add_argument("--margin", type=float, default=0.0)
    p.add_argument("--covariate", action="append", default=[], metavar="COL",
                   help="pre-experiment covariate of the z-test: regression adjustment, CUPED (repeatable)")
    p.add_argument("--denominator", default=None, metavar="COL",
                   help="ratio metric: sum(value) / sum(COL) per group, delta-method standard error")
    p.add_argument("--variance", choices=["welch", "hc1"], default="welch",
                   help="z-test standard error: Welch (default) or HC1 (robust OLS)")
    p.add_argument("--confidence", type=float, default=0.95)
    p.add_argument("--correction", choices=["williams", "yates"], default=None)
    p.add_argument("--monte-carlo", type=int, default=None, metavar="N")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--adjust", choices=["holm", "bh", "none"], default="holm")
    p.add_argument("--nulls", choices=["raise", "drop"], default="raise")
    p.add_argument("--where", action="append", default=[], metavar="COL=VALUE",
                   help="keep rows where COL equals VALUE (pushed into the Parquet scan; repeatable)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--plot", default=None, metavar="PNG",
                   help="write a plot here: the z-test's differences with their intervals (else the G-test's)")
    p.add_argument("--progress", action="store_true", help="show a progress bar even outside a terminal")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _run_abtest(args) -> int:
    from ..ab_tests import abtest
    from ..results import SampleRatioMismatchWarning
    from .dask import dask_client, dask_engine

    if args.outcome is None and args.value is None:
        raise ValueError("give --outcome (G-test), --value (z-test) or both")
    t0 = time.perf_counter()
    with warnings.catch_warnings(), dask_client(args):
        # the report prints the sample-ratio check loudly itself; other warnings reach the user
        warnings.simplefilter("ignore", SampleRatioMismatchWarning)
        report = abtest(
            args.data, group=args.group, outcome=args.outcome, value=args.value, by=args.by or None,
            control=args.control, kind=args.kind, alternative=args.alternative, margin=args.margin,
            confidence=args.confidence, correction=args.correction, monte_carlo=args.monte_carlo,
            seed=args.seed, adjust=None if args.adjust == "none" else args.adjust, nulls=args.nulls,
            filter=_where(args.where, args.data), batch_size=args.batch_size,
            progress=True if getattr(args, "progress", False) else None,
            engine=dask_engine(args), covariate=getattr(args, "covariate", None) or None,
            denominator=getattr(args, "denominator", None), variance=getattr(args, "variance", "welch"),
        )
    if args.json:
        print_json(report.to_dict())
    else:
        print(report)
        sys.stdout.write(f"\n({time.perf_counter() - t0:.2f} s)\n")
    if getattr(args, "plot", None):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        ax = report.plot(path=args.plot)
        plt.close(ax.figure)
        if not args.json:
            print(f"wrote {args.plot}")
    return 0
