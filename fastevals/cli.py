"""The ``fastevals`` command: ``demo``, ``abtest`` and the subcommands of the other analyses."""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys
import time
import warnings

# subcommand modules that add themselves with add_parser(subparsers); absent ones are skipped
_PLUGINS = ("fastevals._cli_bootstrap", "fastevals._cli_calibration", "fastevals._cli_bandit",
            "fastevals._cli_experiments", "fastevals._cli_fairness", "fastevals._cli_slices",
            "fastevals._cli_drift", "fastevals._cli_compare", "fastevals._cli_warmup")


def _json_default(obj):
    import numpy as np

    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)


def _clean(obj):
    """NaN and inf are not JSON: write them as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def print_json(obj) -> None:
    print(json.dumps(_clean(json.loads(json.dumps(obj, default=_json_default))), indent=2))


def print_table(rows: list[dict], columns: list[str], *, stream=None) -> None:
    """A plain aligned text table."""
    from .results import fmt

    stream = stream or sys.stdout
    cells = [[fmt(r.get(c)) if not isinstance(r.get(c), str) else r.get(c) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[k]) for row in cells)) if cells else len(c) for k, c in enumerate(columns)]
    stream.write("  ".join(c.rjust(w) for c, w in zip(columns, widths)) + "\n")
    stream.write("  ".join("-" * w for w in widths) + "\n")
    for row in cells:
        stream.write("  ".join(v.rjust(w) for v, w in zip(row, widths)) + "\n")


def _where(specs: list[str], data):
    """--where COL=VALUE filters as one pyarrow expression (values cast to the column's type)."""
    if not specs:
        return None
    import pyarrow as pa
    import pyarrow.compute as pc

    from . import _source as src

    schema = src.open_source(data).schema
    expr = None
    for spec in specs:
        if "=" not in spec:
            raise ValueError(f"--where must look like COLUMN=VALUE; got {spec!r}")
        col, value = spec.split("=", 1)
        if col not in schema.names:
            raise ValueError(f"--where names unknown column {col!r}; columns: {schema.names}")
        t = schema.field(col).type
        if pa.types.is_dictionary(t):
            t = t.value_type
        try:
            scalar = pa.scalar(value).cast(t)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise ValueError(f"--where value {value!r} does not fit column {col!r} of type {t}") from None
        e = pc.field(col) == scalar
        expr = e if expr is None else (expr & e)
    return expr


def _report_text(report, args) -> None:
    out = sys.stdout
    srm = report.srm
    out.write(f"rows read: {report.rows_read:,}" + (f", dropped (nulls): {report.rows_dropped:,}" if
                                                    report.rows_dropped else "") + "\n")
    if srm.mismatch:
        bar = "!" * 78
        out.write(f"{bar}\n{srm.message()}\n{bar}\n")
    else:
        out.write(srm.message() + "\n")
    g = report.g_test
    if g is not None:
        out.write(f"\nG-test: {args.group} x {args.outcome}" + (f" by {', '.join(args.by)}" if args.by else "") + "\n")
        if hasattr(g, "table"):
            rows = g.table.to_pylist()
            cols = [c for c in g.table.column_names if c not in ("note",)]
            print_table(rows, cols)
            notes = {r["note"] for r in rows if r["note"]}
            for n in notes:
                out.write(f"note: {n}\n")
        else:
            mc = (f", Monte Carlo p = {g.pvalue_mc:.4g} ({g.n_monte_carlo} tables)"
                  if g.pvalue_mc is not None else "")
            out.write(f"  G = {g.statistic:.6g}, dof = {g.dof}, p = {g.pvalue:.4g}{mc}\n")
            header = [args.group] + [str(o) for o in g.outcomes]
            rows = [dict(zip(header, [str(grp)] + [int(x) for x in g.observed[k]])) for k, grp in enumerate(g.groups)]
            print_table(rows, header)
            if g.note:
                out.write(f"note: {g.note}\n")
    z = report.z_test
    if z is not None:
        out.write(f"\nz-test ({z.kind if hasattr(z, 'kind') else args.kind}) on {args.value}: "
                  "treatment vs control\n")
        if hasattr(z, "table"):
            hide = ("note", "std_error", "standard_error", "standard_error_unadjusted", "rel_ci_low", "rel_ci_high",
                    "adjusted_mean_control", "adjusted_mean_treatment", "extra_sample_size")
            cols = [c for c in z.table.column_names if c not in hide and not c.startswith("theta[")]
            rows = z.table.to_pylist()
            print_table(rows, cols)
            for n in {r["note"] for r in rows if r["note"]}:
                out.write(f"note: {n}\n")
        else:
            lo, hi = z.confidence_interval
            rlo, rhi = z.relative_confidence_interval
            out.write(
                f"  control   ({z.control!s}): n = {z.n_control:,}, mean = {z.mean_control:.6g}\n"
                f"  treatment ({z.treatment!s}): n = {z.n_treatment:,}, mean = {z.mean_treatment:.6g}\n"
                f"  difference = {z.difference:.6g}  [{lo:.6g}, {hi:.6g}] ({z.confidence:.0%})\n"
                f"  relative = {z.relative_difference:+.3%}  [{rlo:+.3%}, {rhi:+.3%}]\n"
                f"  z = {z.statistic:.4f}, p = {z.pvalue:.4g} ({z.alternative}, margin {z.margin:g})\n"
            )
            if z.denominator is not None:
                out.write(f"  ratio metric: sum({args.value}) / sum({z.denominator}) per group, delta-method "
                          "standard error\n")
            if z.covariates:
                theta = ", ".join(f"{c} {t:.4g}" for c, t in zip(z.covariates, z.theta))
                out.write(f"  adjusted for {theta} ({z.variance} standard error {z.standard_error:.4g}, "
                          f"unadjusted {z.standard_error_unadjusted:.4g})\n"
                          f"  variance reduction = {z.variance_reduction:.1%} (worth {z.extra_sample_size:,.0f} "
                          "more rows of a plain test)\n")
            if z.note:
                out.write(f"note: {z.note}\n")


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
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _run_abtest(args) -> int:
    from ._cli_dask import dask_client, dask_engine
    from .ab_tests import abtest

    if args.outcome is None and args.value is None:
        raise ValueError("give --outcome (G-test), --value (z-test) or both")
    t0 = time.perf_counter()
    with warnings.catch_warnings(), dask_client(args):
        # the SRM result is printed loudly by the report itself
        warnings.simplefilter("ignore")
        report = abtest(
            args.data, group=args.group, outcome=args.outcome, value=args.value, by=args.by or None,
            control=args.control, kind=args.kind, alternative=args.alternative, margin=args.margin,
            confidence=args.confidence, correction=args.correction, monte_carlo=args.monte_carlo,
            seed=args.seed, adjust=None if args.adjust == "none" else args.adjust, nulls=args.nulls,
            filter=_where(args.where, args.data), batch_size=args.batch_size, progress=not args.json,
            engine=dask_engine(args), covariate=getattr(args, "covariate", None) or None,
            denominator=getattr(args, "denominator", None), variance=getattr(args, "variance", "welch"),
        )
    if args.json:
        print_json(report.to_dict())
    else:
        _report_text(report, args)
        sys.stdout.write(f"\n({time.perf_counter() - t0:.2f} s)\n")
    return 0


def _run_demo(args) -> int:
    from .demo import write_experiment

    path = args.out
    t0 = time.perf_counter()
    if not os.path.exists(path) or args.overwrite:
        sys.stderr.write(f"writing a synthetic experiment log of {args.rows:,} sessions to {path} ...\n")
        write_experiment(path, args.rows, seed=args.seed)
        sys.stderr.write(f"  done in {time.perf_counter() - t0:.1f} s\n")
    else:
        sys.stderr.write(f"using the existing demo log {path} (--overwrite to rewrite it)\n")
    sys.stdout.write(
        f"\n$ fastevals abtest {path} --group variant --outcome converted --value revenue --control control\n"
    )
    ns = argparse.Namespace(
        data=path, group="variant", outcome="converted", value="revenue", by=[], control="control",
        kind="mean", alternative="two-sided", margin=0.0, confidence=0.95, correction=None,
        monte_carlo=None, seed=None, adjust="holm", nulls="raise", where=[], batch_size=None, json=False,
    )
    _run_abtest(ns)
    sys.stdout.write(
        f"\n$ fastevals abtest {path} --outcome converted --value revenue --control control --by device\n"
    )
    ns.by = ["device"]
    _run_abtest(ns)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from ._cli_dask import add_dask_options

    parser = argparse.ArgumentParser(prog="fastevals", description="Compiled statistics for evaluating ML models.")
    parser.add_argument("--version", action="version", version=f"fastevals {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    demo = sub.add_parser("demo", help="write a synthetic experiment log to Parquet and analyse it")
    demo.add_argument("--rows", type=int, default=3_000_000)
    demo.add_argument("--out", default=os.path.join("fastevals-demo", "experiment.parquet"))
    demo.add_argument("--seed", type=int, default=2026)
    demo.add_argument("--overwrite", action="store_true")
    demo.set_defaults(func=_run_demo)

    ab = sub.add_parser("abtest", help="G-test and z-test of an experiment log (Parquet file, folder or glob)")
    ab.add_argument("data", help="Parquet file, folder or glob")
    _add_abtest_arguments(ab)
    ab.set_defaults(func=_run_abtest)
    add_dask_options(ab)

    for name in _PLUGINS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.add_parser(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        sys.stderr.write(f"fastevals {args.command}: error: {exc}\n")
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
