"""The ``fastevals slices`` command: the slices of the data where a model does worse.

``fastevals slices LOG.parquet --label y --prediction yhat --columns country,device,age``

Prints the slices where the model is significantly worse than on the rest (the result's text);
``--json`` prints ``result.to_dict()``, ``--plot PNG`` draws the top slices with their intervals.
"""

from __future__ import annotations

import argparse
import sys

from .dask import add_dask_options, dask_client, dask_engine


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "slices",
        help="find the slices (column values and pairs of them) where a model is significantly worse",
        description="Count every slice of up to --max-order columns in one pass, test each against the rest "
                    "(G-test for error rates, Welch z for mean losses), adjust the p-values over all slices "
                    "and print the significant ones, most harmful first.",
    )
    p.add_argument("data", nargs="+", help="Parquet file(s), folder or glob")
    metric = p.add_argument_group("the metric (one of)")
    metric.add_argument("--error", default=None, help="0/1 column, 1 where the model was wrong")
    metric.add_argument("--label", default=None, help="label column (with --prediction: error = label != prediction)")
    metric.add_argument("--prediction", default=None, help="prediction column")
    metric.add_argument("--loss", default=None, help="per-row loss column (mean loss)")
    p.add_argument("--columns", default=None, help="columns to slice by, comma-separated (default: all others)")
    p.add_argument("--max-order", type=int, default=2, help="most conditions in a slice (1-3, default 2)")
    p.add_argument("--min-size", type=int, default=30, help="rows a slice needs to be tested (default 30)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    p.add_argument("--adjust", default="bh", choices=["bh", "holm", "none"])
    p.add_argument("--bins", type=int, default=10, help="quantile bins of numeric columns (default 10)")
    p.add_argument("--sort-by", default="score", choices=["score", "excess", "difference", "pvalue"])
    p.add_argument("--confidence", type=float, default=0.95)
    p.add_argument("--nulls", default="raise", choices=["raise", "drop"])
    p.add_argument("--plot", default=None, metavar="PNG", help="write a plot of the top slices here")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_dask_options(p)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from .._slices import slices

    data = args.data[0] if len(args.data) == 1 else args.data
    with dask_client(args):
        res = slices(
            data, error=args.error, label=args.label, prediction=args.prediction, loss=args.loss,
            columns=args.columns.split(",") if args.columns else None, max_order=args.max_order,
            min_size=args.min_size, alpha=args.alpha, adjust=args.adjust, n_bins=args.bins,
            sort_by=args.sort_by, confidence=args.confidence, nulls=args.nulls, engine=dask_engine(args),
        )
    from .main import emit

    return emit(res, args)


def main(argv=None) -> int:
    """Run the subcommand on its own."""
    from .main import run_alone

    return run_alone(add_parser, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
