"""Command-line options that run a subcommand on Dask.

Any subcommand that reads data can offer them::

    fastevals abtest 'logs/*.parquet' --group variant --outcome converted --scheduler tcp://host:8786
    fastevals abtest 'logs/*.parquet' --group variant --outcome converted --dask-workers 4

Wiring, in a subcommand's ``add_parser``::

    from .dask import add_dask_options, dask_client, dask_engine
    add_dask_options(parser)
    ...
    def run(args):
        with dask_client(args):
            result = abtest(args.data, ..., engine=dask_engine(args))

``--scheduler ADDRESS`` connects to a running cluster; ``--dask-workers N``
starts a local cluster of N worker processes (one thread each) for the run
and stops it afterwards. With either, the input paths are read by the
workers (``dask.dataframe.read_parquet``), so the paths must be readable from
the workers (shared storage, S3...). Without them the command runs in this
process, as always.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

_INSTALL_HINT = "install the dask extra: pip install 'fastevals[dask]'"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {value}")
    return value


def add_dask_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--scheduler`` and ``--dask-workers`` (mutually exclusive) to ``parser``."""
    group = parser.add_argument_group("Dask (run on a cluster; needs the dask extra)")
    options = group.add_mutually_exclusive_group()
    options.add_argument(
        "--scheduler", metavar="ADDRESS", default=None,
        help="run on the Dask cluster whose scheduler is at ADDRESS (e.g. tcp://host:8786); "
             "the workers read the input paths",
    )
    options.add_argument(
        "--dask-workers", metavar="N", type=_positive_int, default=None,
        help="start a local Dask cluster of N worker processes for this run",
    )


def dask_engine(args: argparse.Namespace) -> str | None:
    """``"dask"`` when the command line asks for Dask, else None (in-process)."""
    if getattr(args, "scheduler", None) or getattr(args, "dask_workers", None):
        return "dask"
    return None


@contextlib.contextmanager
def dask_client(args: argparse.Namespace, *, timeout: str = "20s") -> Iterator[object | None]:
    """Yield a ``distributed.Client`` for ``--scheduler`` / ``--dask-workers``, or None without them.

    The client is the default scheduler while the block runs; on exit it is
    closed, and a cluster started for ``--dask-workers`` is shut down. ``timeout`` bounds
    the wait for a scheduler given by ``--scheduler``.
    """
    address = getattr(args, "scheduler", None)
    workers = getattr(args, "dask_workers", None)
    if not address and not workers:
        yield None
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - the extra is installed in the test environment
        raise SystemExit(f"fastevals: --scheduler / --dask-workers need distributed; {_INSTALL_HINT}") from exc
    if address:
        try:
            client = Client(address, timeout=timeout)
        except OSError as exc:
            raise SystemExit(f"fastevals: cannot reach the Dask scheduler at {address!r}: {exc}") from exc
        with client:
            yield client
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        yield client
