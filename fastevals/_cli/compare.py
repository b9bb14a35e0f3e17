"""The ``fastevals compare`` command: compare models on one table of their predictions.

``fastevals compare RESULTS.parquet --models llama3.1_8b,llama3.2_3b --metric rmse --label rating --item id``

Prints the comparison (each model's metric with its interval and rank, every
pairwise paired difference with its interval and adjusted p-value); ``--plot``
writes a forest plot of the pairwise differences; ``--json`` prints
``result.to_dict()``.  The long layout: ``--model NAME_COL --score SCORE_COL --item ID``.
"""

from __future__ import annotations

import argparse
import sys

from .dask import add_dask_options, dask_client, dask_engine


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "compare",
        help="compare models evaluated on the same items: paired intervals, tests, ranks",
        description="Each model's metric with its interval, every pairwise paired difference (analytic and "
                    "paired-bootstrap intervals, tests adjusted across pairs), the ranking with its uncertainty "
                    "and the minimum detectable difference.",
    )
    p.add_argument("data", nargs="+", help="Parquet file(s), folder or glob")
    p.add_argument("--models", default=None, help="comma-separated score/prediction columns, one per model")
    p.add_argument("--model", default=None, help="long layout: the model-name column")
    p.add_argument("--score", default=None, help="long layout: the score column")
    p.add_argument("--label", default=None, help="truth column (rmse, mse, mae, accuracy, f1, auc)")
    p.add_argument("--item", default=None, help="item id column (keys the bootstrap weights)")
    p.add_argument("--cluster", default=None, help="cluster column (CR1 standard errors, cluster bootstrap)")
    p.add_argument("--metric", default="mean", help="mean (default), accuracy, mse, rmse, mae, f1, auc")
    p.add_argument("--test", default="paired", choices=["paired", "mcnemar"])
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap replicates (0: analytic only)")
    p.add_argument("--confidence", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=None, help="bootstrap seed (default 0)")
    p.add_argument("--adjust", default="holm", choices=["holm", "bh", "none"])
    p.add_argument("--nulls", default="raise", choices=["raise", "drop"])
    p.add_argument("--plot", default=None, metavar="PNG", help="write a forest plot of the pairwise differences")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_dask_options(p)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from .._compare import compare_models

    data = args.data[0] if len(args.data) == 1 else args.data
    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    with dask_client(args):
        res = compare_models(
            data, models=models, model=args.model, score=args.score, label=args.label, item=args.item,
            cluster=args.cluster, metric=args.metric, test=args.test, confidence=args.confidence,
            n_resamples=args.resamples, seed=args.seed, adjust=args.adjust, nulls=args.nulls,
            engine=dask_engine(args),
        )
    from .main import emit

    return emit(res, args)


def main(argv=None) -> int:
    """Run the subcommand on its own."""
    from .main import run_alone

    return run_alone(add_parser, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
