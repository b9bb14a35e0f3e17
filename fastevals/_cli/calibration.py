"""The ``fastevals calibration`` subcommand: it prints ``str(result)``, or ``result.to_dict()`` with ``--json``.

``fastevals calibration LOG.parquet --prob p --label y --bins 15 --strategy quantile --plot out.png``

With ``--scheduler tcp://host:8786`` (a running Dask cluster) or ``--dask-workers N``
(a local cluster for the run) the Dask workers read the Parquet input and fold it.
"""

from __future__ import annotations

import argparse
import sys

from .dask import add_dask_options, dask_client, dask_engine


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "calibration",
        help="reliability table, ECE and Brier decomposition of predicted probabilities",
        description="Bin predicted probabilities (as sklearn's calibration_curve) and print the per-bin "
                    "table, ECE/RMS/MCE, the debiased L2 error and the Brier decomposition.",
    )
    p.add_argument("data", nargs="+", help="Parquet file(s), folder or glob")
    p.add_argument("--prob", required=True,
                   help="probability column; for multiclass a comma-separated list or a "
                        "fixed-size-list column")
    p.add_argument("--label", required=True, help="label column (0/1, or class index for multiclass)")
    p.add_argument("--bins", type=int, default=15, help="number of bins (default 15)")
    p.add_argument("--strategy", default="uniform",
                   help="uniform (default), quantile, or comma-separated edges")
    p.add_argument("--weights", default=None, help="row weight column")
    p.add_argument("--by", default=None, help="segment column(s), comma-separated")
    p.add_argument("--multiclass", default="top-label", choices=["top-label", "classwise"])
    p.add_argument("--resamples", type=int, default=0,
                   help="Poisson bootstrap replicates for bands and the ECE CI")
    p.add_argument("--confidence", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--nulls", default="raise", choices=["raise", "drop"])
    p.add_argument("--no-check-rows", action="store_true", help="skip the multiclass row-sum check")
    p.add_argument("--plot", default=None, metavar="PNG", help="write a reliability diagram here")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--progress", action="store_true", help="show a progress bar even outside a terminal")
    add_dask_options(p)
    p.set_defaults(func=run)
    return p


def _error(exc) -> int:
    print(f"fastevals calibration: error: {exc}", file=sys.stderr)
    return 2


def run(args) -> int:
    from .._calibration import calibration
    from .._protocol import check_plot_path

    prob = args.prob.split(",") if "," in args.prob else args.prob
    strategy = args.strategy
    if strategy not in ("uniform", "quantile"):
        try:
            strategy = [float(x) for x in strategy.split(",")]
        except ValueError:
            return _error(f"--strategy must be uniform, quantile or comma-separated edges; got {strategy!r}")
    data = args.data[0] if len(args.data) == 1 else args.data
    try:
        check_plot_path(args.plot)  # fail before computing when matplotlib is missing
        with dask_client(args):
            res = calibration(
                data, prob=prob, label=args.label, n_bins=args.bins, strategy=strategy, weights=args.weights,
                multiclass=args.multiclass, by=args.by.split(",") if args.by else None,
                n_resamples=args.resamples, confidence=args.confidence, seed=args.seed, nulls=args.nulls,
                check_rows=not args.no_check_rows, engine=dask_engine(args),
                progress=True if args.progress else None,
            )
    except (ValueError, TypeError, FileNotFoundError, ImportError) as exc:
        return _error(exc)
    from .main import emit

    return emit(res, args)


def main(argv=None) -> int:
    """Run the subcommand on its own."""
    from .main import run_alone

    return run_alone(add_parser, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
