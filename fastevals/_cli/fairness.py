"""The ``fastevals fairness`` command: group fairness of a model's decisions.

``fastevals fairness LOG.parquet --label y --prediction yhat --sensitive gender``

Prints the fairness result (``str(result)``: disparities with intervals and p-values, the
per-group table); ``--json`` prints ``result.to_dict()``.  With ``--scheduler`` /
``--dask-workers`` the Dask workers read the Parquet input and fold it.
"""

from __future__ import annotations

import argparse
import sys

from .dask import add_dask_options, dask_client, dask_engine


def _columns(text):
    return text.split(",") if text and "," in text else text


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "fairness",
        help="group rates and fairness disparities (demographic parity, equal opportunity, equalized odds) "
             "with bootstrap intervals",
        description="Per group of the sensitive column(s): selection rate, TPR, FPR, precision, accuracy with "
                    "Wilson intervals; disparities between groups with Poisson-bootstrap intervals and G-tests.",
    )
    p.add_argument("data", nargs="+", help="Parquet file(s), folder or glob")
    p.add_argument("--label", required=True, help="true outcome column (0/1 or boolean)")
    p.add_argument("--prediction", default=None, help="predicted outcome column (0/1 or boolean)")
    p.add_argument("--score", default=None, help="score column, thresholded at --threshold (instead of --prediction)")
    p.add_argument("--threshold", type=float, default=0.5, help="threshold on --score (default 0.5)")
    p.add_argument("--thresholds", default=None, help="comma-separated threshold sweep on --score")
    p.add_argument("--sensitive", required=True, help="sensitive column(s), comma-separated for intersections")
    p.add_argument("--by", default=None, help="segment column(s), comma-separated")
    p.add_argument("--resamples", type=int, default=1000, help="Poisson bootstrap replicates (default 1000)")
    p.add_argument("--confidence", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--nulls", default="raise", choices=["raise", "drop"])
    p.add_argument("--plot", default=None, metavar="PNG", help="write the disparity bars here")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_dask_options(p)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from .._fairness import fairness

    data = args.data[0] if len(args.data) == 1 else args.data
    try:
        thresholds = None if args.thresholds is None else [float(t) for t in args.thresholds.split(",")]
    except ValueError:
        raise ValueError(f"--thresholds must be comma-separated numbers; got {args.thresholds!r}") from None
    with dask_client(args):
        res = fairness(data, label=args.label, prediction=args.prediction, score=args.score,
                       threshold=args.threshold, thresholds=thresholds, sensitive=_columns(args.sensitive),
                       by=_columns(args.by), n_resamples=args.resamples, confidence=args.confidence,
                       seed=args.seed, nulls=args.nulls, engine=dask_engine(args))
    from .main import emit

    return emit(res, args)


def main(argv=None) -> int:
    """Run the subcommand on its own."""
    from .main import run_alone

    return run_alone(add_parser, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
