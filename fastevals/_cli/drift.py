"""``fastevals drift REFERENCE CURRENT`` and ``fastevals profile DATA --out ref.profile``.

``REFERENCE`` is Parquet data (exact mode) or a profile stored by ``fastevals profile``
(profile mode: the reference is not read again).
"""

from __future__ import annotations

import argparse
import os
import tempfile


def _columns(text):
    return text.split(",") if text else None


def _common(p) -> None:
    p.add_argument("--columns", default=None, help="columns to compare, comma-separated (default: all)")
    p.add_argument("--categorical", default=None, help="integer columns to treat as categorical, comma-separated")
    p.add_argument("--by", default=None, help="segment column(s), comma-separated")
    p.add_argument("--label", default=None, help="label column (prior shift)")
    p.add_argument("--prediction", default=None, help="prediction column (concept drift; needs --label)")
    p.add_argument("--bins", type=int, default=1000, help="fine bins of numeric columns (default 1000)")
    p.add_argument("--nulls", default="raise", choices=["raise", "drop"])


def add_parser(subparsers) -> argparse.ArgumentParser:
    d = subparsers.add_parser(
        "drift", help="drift tests and distances of current data against a reference (data or stored profile)",
        description="One row per column: KS (numeric) or G-test (categorical), Holm-adjusted p-values, PSI, "
                    "Jensen-Shannon, Hellinger, Wasserstein and a drift flag.")
    d.add_argument("reference", help="reference Parquet file/folder/glob, or a profile from `fastevals profile`")
    d.add_argument("current", nargs="+", help="current Parquet file(s), folder or glob")
    _common(d)
    d.add_argument("--alpha", type=float, default=0.05)
    d.add_argument("--adjust", default="holm", choices=["holm", "bh", "none"])
    d.add_argument("--psi-threshold", type=float, default=0.2, help="PSI needed for the flag (0: test alone)")
    d.add_argument("--distance-bins", type=int, default=10)
    d.add_argument("--resamples", type=int, default=0,
                   help="Poisson bootstrap replicates of the performance differences (default 0: normal intervals)")
    d.add_argument("--seed", type=int, default=None)
    d.add_argument("--plot", default=None, metavar="PNG", help="write the summary plot here")
    d.add_argument("--json", action="store_true", help="print the result as JSON")
    d.set_defaults(func=run_drift)
    p = subparsers.add_parser(
        "profile", help="profile reference data once into a stored, mergeable profile",
        description="Scan the reference once (exact counts for categorical columns, fine-bin counts for "
                    "numeric ones) and write the profile's bytes to --out (atomically).")
    p.add_argument("data", nargs="+", help="Parquet file(s), folder or glob")
    p.add_argument("--out", required=True, help="file to write the profile to (e.g. ref.profile)")
    _common(p)
    p.add_argument("--json", action="store_true", help="print the profile's summary as JSON")
    p.set_defaults(func=run_profile)
    return d


def _write_atomic(path: str, data: bytes) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".profile-", dir=folder)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make the profile private
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def run_profile(args) -> int:
    from .._drift import profile

    data = args.data[0] if len(args.data) == 1 else args.data
    prof = profile(data, columns=_columns(args.columns), categorical=_columns(args.categorical),
                   by=_columns(args.by), label=args.label, prediction=args.prediction, n_bins=args.bins,
                   nulls=args.nulls)
    payload = prof.to_bytes()
    _write_atomic(args.out, payload)
    from .main import emit

    emit(prof.finalize(), args)
    if not args.json:
        print(f"wrote {args.out} ({len(payload):,} bytes)")
    return 0


def run_drift(args) -> int:
    from .._drift import drift

    current = args.current[0] if len(args.current) == 1 else args.current
    res = drift(args.reference, current, columns=_columns(args.columns), categorical=_columns(args.categorical),
                by=_columns(args.by), label=args.label, prediction=args.prediction, n_bins=args.bins,
                alpha=args.alpha, adjust=args.adjust, psi_threshold=args.psi_threshold,
                distance_bins=args.distance_bins, n_resamples=args.resamples, seed=args.seed,
                nulls=args.nulls)
    from .main import emit

    return emit(res, args)
