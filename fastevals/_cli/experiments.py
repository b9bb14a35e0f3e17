"""``fastevals sequential`` and ``fastevals power``.

    fastevals sequential LOG.parquet --group variant --value revenue --control a --time day --method msprt
    fastevals power --baseline 0.10 --lift 0.01 --relative --metric proportion
    fastevals power --effect 0.2 --sd 1 --n 400          (the power at 400 units per group)

Both print ``str(result)`` (``--json``: ``result.to_dict()``).
"""

from __future__ import annotations

import argparse
import sys

from .dask import add_dask_options, dask_client, dask_engine


def _label(text: str):
    """A control label from the command line: an integer when it reads as one."""
    try:
        return int(text)
    except ValueError:
        return text


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "sequential",
        help="sequential A/B test that allows peeking: one row per look (mSPRT, confidence sequence, "
             "group sequential)",
        description="Test treatment against control at every distinct value of the time column "
                    "(rows up to that value), with always-valid p-values and intervals.",
    )
    p.add_argument("data", nargs="+", help="Parquet file(s), folder or glob")
    p.add_argument("--group", required=True, help="group column (two groups)")
    metric = p.add_mutually_exclusive_group(required=True)
    metric.add_argument("--value", help="numeric metric column")
    metric.add_argument("--outcome", help="0/1 metric column")
    p.add_argument("--control", default=None, help="control group label (default: first in sorted order)")
    p.add_argument("--time", default="day", help="look column (default: day)")
    p.add_argument("--method", default="msprt", choices=["msprt", "confidence_sequence", "group_sequential"])
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--tau2", type=float, default=None, help="mSPRT mixing variance (default: 0.01 x row variance)")
    p.add_argument("--tuning", type=float, default=5000.0, help="confidence sequence: rows where it is tightest")
    p.add_argument("--spending", default="obrien_fleming", choices=["obrien_fleming", "pocock"])
    p.add_argument("--max-n", type=int, default=None, help="group sequential: planned rows in both groups")
    p.add_argument("--nulls", default="raise", choices=["raise", "drop"])
    p.add_argument("--plot", default=None, metavar="PNG", help="write the estimate and intervals by look here")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_dask_options(p)
    p.set_defaults(func=run_sequential)

    q = subparsers.add_parser(
        "power",
        help="sample size (or power with --n) of a two-group z-test",
        description="Units per group to reach --power, or the power at --n units per group (normal "
                    "approximation; two-sided power counts both tails, as statsmodels).",
    )
    q.add_argument("--metric", default=None, choices=["mean", "proportion", "ratio"],
                   help="default: proportion when --baseline is given without --sd/--variance, else mean")
    q.add_argument("--baseline", type=float, default=None, help="control mean or conversion rate")
    q.add_argument("--lift", type=float, default=None, help="difference to detect (relative with --relative)")
    q.add_argument("--relative", action="store_true", help="--lift is relative to --baseline")
    q.add_argument("--effect", type=float, default=None, help="absolute difference to detect")
    q.add_argument("--sd", type=float, default=None, help="per-unit standard deviation (mean)")
    q.add_argument("--variance", type=float, default=None, help="per-unit variance (mean; ratio: delta method)")
    q.add_argument("--power", type=float, default=0.8, help="target power (default 0.8)")
    q.add_argument("--n", type=float, default=None, help="units in the control group: print the power instead")
    q.add_argument("--alpha", type=float, default=0.05)
    q.add_argument("--alternative", default="two-sided", choices=["two-sided", "larger", "smaller"])
    q.add_argument("--margin", type=float, default=0.0, help="null value of the difference (non-inferiority)")
    q.add_argument("--ratio", type=float, default=1.0, help="treatment units per control unit")
    q.add_argument("--variance-reduction", type=float, default=0.0, help="share of variance removed by CUPED")
    q.add_argument("--design-effect", type=float, default=1.0, help="variance inflation of clustered units")
    q.add_argument("--json", action="store_true", help="print the result as JSON")
    q.set_defaults(func=run_power)
    return p


def run_sequential(args) -> int:
    from .._experiments import sequential_test

    data = args.data[0] if len(args.data) == 1 else args.data
    with dask_client(args):
        res = sequential_test(
            data, group=args.group, value=args.value, outcome=args.outcome,
            control=None if args.control is None else _label(args.control), time=args.time,
            method=args.method, alpha=args.alpha, tau2=args.tau2, tuning=args.tuning, spending=args.spending,
            max_n=args.max_n, nulls=args.nulls, engine=dask_engine(args))
    from .main import emit

    return emit(res, args)


def run_power(args) -> int:
    from .._experiments import power, sample_size

    metric = args.metric
    if metric is None:
        metric = "proportion" if args.baseline is not None and args.sd is None and args.variance is None else "mean"
    design = dict(effect=args.effect, baseline=args.baseline, lift=args.lift, relative=args.relative, metric=metric,
                  sd=args.sd, variance=args.variance, alpha=args.alpha, alternative=args.alternative,
                  margin=args.margin, ratio=args.ratio, variance_reduction=args.variance_reduction,
                  design_effect=args.design_effect)
    res = power(args.n, **design) if args.n is not None else sample_size(power=args.power, **design)
    from .main import emit

    return emit(res, args)


def main(argv=None) -> int:
    """Run the subcommands on their own."""
    from .main import run_alone

    return run_alone(add_parser, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
