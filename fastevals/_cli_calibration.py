"""``fastevals calibration LOG.parquet --prob p --label y --bins 15 --strategy quantile --plot out.png``

With ``--scheduler tcp://host:8786`` (a running Dask cluster) or ``--dask-workers N``
(a local cluster for the run) the Dask workers read the Parquet input and fold it.
"""

from __future__ import annotations

import argparse
import math
import sys

from ._cli_dask import add_dask_options, dask_client, dask_engine


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
    add_dask_options(p)
    p.set_defaults(func=run)
    return p


def _fmt(v, spec=".4f") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, spec)


def _print_result(res, out) -> None:
    for c in res.curves:
        head = "" if c.label is None else f"class {c.label}\n"
        out.write(head)
        out.write(f"{'bin':>4} {'lower':>8} {'upper':>8} {'count':>12} {'mean_pred':>10} {'observed':>10} "
                  f"{'ci_low':>8} {'ci_high':>8}\n")
        for b in range(len(c.count)):
            out.write(f"{b:>4} {c.edges[b]:>8.4f} {c.edges[b + 1]:>8.4f} {int(c.count[b]):>12,} "
                      f"{_fmt(c.mean_predicted[b]):>10} {_fmt(c.observed_frequency[b]):>10} "
                      f"{_fmt(c.interval.low[b]):>8} {_fmt(c.interval.high[b]):>8}\n")
    d = res.brier_decomposition
    ci = "" if res.ece_ci is None else f"  [{res.ece_ci.low:.6f}, {res.ece_ci.high:.6f}]"
    out.write(f"\nrows            {res.n:,} (dropped {res.rows_dropped:,})\n")
    out.write(f"ECE             {res.ece:.6f}{ci}\n")
    out.write(f"RMS CE          {res.rms:.6f}\n")
    out.write(f"MCE             {res.mce:.6f}\n")
    out.write(f"debiased L2^2   {res.debiased_l2_sq:.6g}\n")
    out.write(f"Brier           {d.brier:.6f} = REL {d.reliability:.6f} - RES {d.resolution:.6f} "
              f"+ UNC {d.uncertainty:.6f} + WBV {d.within_bin_variance:.6f} "
              f"- WBC {d.within_bin_covariance:.6f}\n")
    if res.collapsed_bins:
        out.write(f"collapsed bins (tied quantile edges): {list(res.collapsed_bins)}\n")
    if res.segments:
        out.write("\nsegment ECE\n")
        for k, v in res.segments.items():
            out.write(f"  {k!s:>20}  {v.ece:.6f}  (n={v.n:,})\n")


def run(args) -> int:
    from .reliability import calibration

    prob = args.prob.split(",") if "," in args.prob else args.prob
    strategy = args.strategy
    if strategy not in ("uniform", "quantile"):
        try:
            strategy = [float(x) for x in strategy.split(",")]
        except ValueError:
            print(f"error: --strategy must be uniform, quantile or comma-separated edges; got {strategy!r}",
                  file=sys.stderr)
            return 2
    data = args.data[0] if len(args.data) == 1 else args.data
    try:
        with dask_client(args):
            res = calibration(
                data, prob=prob, label=args.label, n_bins=args.bins, strategy=strategy, weights=args.weights,
                multiclass=args.multiclass, by=args.by.split(",") if args.by else None,
                n_resamples=args.resamples, confidence=args.confidence, seed=args.seed, nulls=args.nulls,
                check_rows=not args.no_check_rows, engine=dask_engine(args),
            )
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        from .cli import print_json

        print_json(res.to_dict())
        sys.stdout.write("\n")
    else:
        _print_result(res, sys.stdout)
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        fig = res.plot(args.plot)
        import matplotlib.pyplot as plt

        plt.close(fig)
        if not args.json:
            print(f"wrote {args.plot}")
    return 0


def main(argv=None) -> int:
    """Run the subcommand on its own (the lead wires it into ``fastevals.cli``)."""
    parser = argparse.ArgumentParser(prog="fastevals")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
