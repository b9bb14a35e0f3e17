"""``fastevals bandit replay|simulate``: command-line entry points for bandits.

Examples::

    fastevals bandit replay LOG.parquet --arm model --reward clicked
    fastevals bandit simulate --means 0.1,0.12,0.15 --steps 10000 --runs 1000 --plot regret.png
"""

from __future__ import annotations

import argparse
import sys

_POLICY_CHOICES = ("ucb1", "ucb1-tuned", "thompson", "epsilon-greedy")


def add_parser(subparsers) -> None:
    """Add the ``bandit`` subcommand (with ``replay`` and ``simulate``) to ``subparsers``."""
    p = subparsers.add_parser("bandit", help="multi-armed bandits: replay a policy on a log, or simulate it",
                              description="Evaluate bandit policies offline (replay, Li et al. 2011) "
                                          "or by simulation.")
    sub = p.add_subparsers(dest="bandit_command", metavar="{replay,simulate}")
    sub.required = True

    r = sub.add_parser("replay", help="replay a policy on a logged (arm, reward) stream",
                       description="Stream a log in its order through a policy; an event counts where the "
                                   "policy picks the logged arm (Li, Chu, Langford & Wang 2011).")
    r.add_argument("log", nargs="+", help="Parquet file(s), folder or glob")
    r.add_argument("--arm", default="arm", help="column with the logged arm (default: arm)")
    r.add_argument("--reward", default="reward", help="column with the reward in [0, 1] (default: reward)")
    r.add_argument("--propensity", default=None, help="column with the logging propensity (adds IPS/SNIPS)")
    r.add_argument("--policy", default="ucb1", choices=_POLICY_CHOICES, help="policy (default: ucb1)")
    r.add_argument("--update-every", type=int, default=1, help="kept events per policy update (default: 1)")
    r.add_argument("--batch-size", type=int, default=None, help="rows per scanned batch")
    r.add_argument("--seed", type=int, default=0, help="seed of random policies (default: 0)")
    r.add_argument("--nulls", default="raise", choices=("raise", "drop"))
    r.add_argument("--confidence", type=float, default=0.95, help="confidence level (default: 0.95)")
    r.add_argument("--progress", action="store_true", help="show a progress bar even outside a terminal")
    r.add_argument("--plot", metavar="PATH", default=None, help="save the reward curve to PATH (matplotlib)")
    r.add_argument("--json", action="store_true", help="print the result as JSON")
    r.set_defaults(func=_run_replay)

    s = sub.add_parser("simulate", help="simulate many runs of a policy on Bernoulli arms",
                       description="Simulate independent bandit runs in parallel; report mean cumulative "
                                   "regret and how often each arm was played.")
    s.add_argument("--means", required=True, help="comma-separated arm means in [0, 1], e.g. 0.1,0.12,0.15")
    s.add_argument("--policy", default="ucb1", choices=_POLICY_CHOICES, help="policy (default: ucb1)")
    s.add_argument("--steps", type=int, default=10_000, help="plays per run (default: 10000)")
    s.add_argument("--runs", type=int, default=1000, help="independent runs (default: 1000)")
    s.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    s.add_argument("--rewards", default="bernoulli", choices=("bernoulli", "beta"))
    s.add_argument("--confidence", type=float, default=0.95,
                   help="level of the final regret's interval (default: 0.95)")
    s.add_argument("--band", type=float, default=0.9, help="share of runs in the regret band (default: 0.9)")
    s.add_argument("--plot", metavar="PATH", default=None, help="save the regret plot to PATH (matplotlib)")
    s.add_argument("--bound", action="store_true",
                   help="draw UCB1's regret bound (Auer et al. 2002, Theorem 1) on the plot")
    s.add_argument("--json", action="store_true", help="print the result as JSON")
    s.set_defaults(func=_run_simulate)


def _error(exc) -> int:
    print(f"fastevals bandit: error: {exc}", file=sys.stderr)
    return 2


def _save_plot(res, path, **kwargs) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = res.plot(path=path, **kwargs)
    plt.close(ax.figure)


def _run_replay(args) -> int:
    from .._bandits import replay
    from .._protocol import check_plot_path
    from .main import print_json

    log = args.log[0] if len(args.log) == 1 else args.log
    try:
        check_plot_path(args.plot)  # fail before computing when matplotlib is missing
        res = replay(log, args.policy, arm=args.arm, reward=args.reward, propensity=args.propensity,
                     update_every=args.update_every, batch_size=args.batch_size, nulls=args.nulls, seed=args.seed,
                     confidence=args.confidence, progress=True if args.progress else None)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as exc:
        return _error(exc)
    if args.plot:
        _save_plot(res, args.plot)
    if args.json:
        print_json(res.to_dict())
        return 0
    print(res)
    if args.plot:
        print(f"plot written to {args.plot}")
    return 0


def _run_simulate(args) -> int:
    from .._bandits import simulate
    from .._protocol import check_plot_path
    from .main import print_json

    try:
        means = [float(x) for x in args.means.split(",") if x.strip()]
    except ValueError:
        return _error(f"--means must be comma-separated numbers; got {args.means!r}")
    try:
        check_plot_path(args.plot)
        res = simulate(args.policy, means, n_steps=args.steps, n_runs=args.runs, seed=args.seed,
                       rewards=args.rewards, confidence=args.confidence, band=args.band)
    except (ValueError, TypeError, ImportError) as exc:
        return _error(exc)
    if args.plot:
        _save_plot(res, args.plot, bound=args.bound)
    if args.json:
        print_json(res.to_dict())
        return 0
    print(res)
    if args.plot:
        print(f"plot written to {args.plot}")
    return 0


def main(argv=None) -> int:  # pragma: no cover - convenience for `python -m fastevals._cli.bandit`
    parser = argparse.ArgumentParser(prog="fastevals")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
