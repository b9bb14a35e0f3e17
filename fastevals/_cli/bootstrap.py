r"""``fastevals bootstrap``: bootstrap intervals of metrics over a Parquet file (or folder / glob).

Example::

    fastevals bootstrap scores.parquet -m "roc_auc(label, score)" \
        -m "accuracy(label, pred_b) - accuracy(label, pred_a)" --method bca -B 2000 --seed 1
"""

from __future__ import annotations

import re
import sys

_TERM = re.compile(r"\s*([a-z_0-9]+)\s*\(([^()]*)\)\s*")


def _value(text: str):
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def parse_metric(text: str):
    """``"name(col, col, key=value)"``, optionally ``"<term> - <term>"`` or ``"<term> / <term>"``."""
    from .. import metrics

    terms = []
    ops = []
    pos = 0
    while True:
        m = _TERM.match(text, pos)
        if m is None:
            raise ValueError(f"cannot parse metric {text!r}: expected name(column, ...) such as 'mean(x)' "
                             "or 'accuracy(y, b) - accuracy(y, a)'")
        name, arg_text = m.group(1), m.group(2)
        fn = getattr(metrics, name, None)
        if name.startswith("_") or not callable(fn) or isinstance(fn, type):
            raise ValueError(f"unknown metric {name!r} in {text!r}")
        args, kwargs = [], {}
        for part in (p.strip() for p in arg_text.split(",") if p.strip()):
            if "=" in part:
                k, v = (s.strip() for s in part.split("=", 1))
                kwargs[k] = _value(v)
            else:
                args.append(part)
        if name == "quantile" and len(args) == 2:
            args[1] = float(args[1])
        terms.append(fn(*args, **kwargs))
        pos = m.end()
        if pos >= len(text):
            break
        op = text[pos]
        if op not in "-/":
            raise ValueError(f"cannot parse metric {text!r} at {text[pos:]!r}: expected '-' or '/'")
        ops.append(op)
        pos += 1
    out = terms[0]
    for op, t in zip(ops, terms[1:]):
        out = out - t if op == "-" else out / t
    return out


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "bootstrap", help="bootstrap confidence intervals of evaluation metrics",
        description="Bootstrap confidence intervals (Poisson bootstrap, one pass) of metrics over Parquet data.",
    )
    p.add_argument("data", nargs="+", help="Parquet file(s), folder or glob")
    p.add_argument("-m", "--metric", action="append", required=True,
                   help="metric expression, e.g. 'mean(x)', 'ratio(revenue, sessions)', 'quantile(x, 0.9)', "
                        "'accuracy(y, b) - accuracy(y, a)' (repeat for several)")
    p.add_argument("-B", "--n-resamples", type=int, default=2000)
    p.add_argument("--confidence", type=float, default=0.95)
    p.add_argument("--method", default="percentile", choices=["percentile", "basic", "bca"])
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--cluster", default=None, help="unit id column: all rows of a unit share a weight")
    p.add_argument("--by", action="append", default=None, help="segment column (repeatable)")
    p.add_argument("--group", default=None)
    p.add_argument("--control", default=None, help="control level of --group (parsed as int if it is one)")
    p.add_argument("--comparison", default="difference", choices=["difference", "relative", "both"],
                   help="with --control: treatment - control, treatment / control - 1, or both")
    p.add_argument("--resampling", default="poisson", choices=["poisson", "multinomial"])
    p.add_argument("--nulls", default="raise", choices=["raise", "drop"])
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    from .dask import add_dask_options

    add_dask_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..resampling import BootstrapResult, bootstrap
    from .dask import dask_client, dask_engine

    try:
        ms = [parse_metric(t) for t in args.metric]
        data = args.data[0] if len(args.data) == 1 else args.data
        control = _value(args.control) if args.control is not None else None
        with dask_client(args):
            res = bootstrap(data, ms if len(ms) > 1 else ms[0], n_resamples=args.n_resamples,
                            confidence=args.confidence, method=args.method, seed=args.seed, cluster=args.cluster,
                            by=args.by, group=args.group, control=control, comparison=args.comparison,
                            resampling=args.resampling, nulls=args.nulls, batch_size=args.batch_size,
                            engine=dask_engine(args))
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"fastevals bootstrap: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        from .main import print_json

        print_json([res.to_dict()] if isinstance(res, BootstrapResult) else res.to_dict()["rows"])
        return 0
    print(res)  # the result's own report: one renderer for the API and the CLI
    return 0
