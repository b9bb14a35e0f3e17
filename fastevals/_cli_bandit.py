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
    r.add_argument("--batch-size", type=int, default=1, help="kept events per policy update (default: 1)")
    r.add_argument("--seed", type=int, default=0, help="seed of random policies (default: 0)")
    r.add_argument("--nulls", default="raise", choices=("raise", "drop"))
    r.add_argument("--confidence", type=float, default=0.95, help="confidence level (default: 0.95)")
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
    s.add_argument("--plot", metavar="PATH", default=None, help="save the regret plot to PATH (matplotlib)")
    s.add_argument("--bound", action="store_true",
                   help="draw UCB1's regret bound (Auer et al. 2002, Theorem 1) on the plot")
    s.add_argument("--json", action="store_true", help="print the result as JSON")
    s.set_defaults(func=_run_simulate)


def _fmt(x) -> str:
    return "nan" if x is None else f"{x:.6g}"


def _run_replay(args) -> int:
    from .bandits import replay
    from .cli import print_json

    log = args.log[0] if len(args.log) == 1 else args.log
    try:
        res = replay(log, args.policy, arm=args.arm, reward=args.reward, propensity=args.propensity,
                     batch_size=args.batch_size, nulls=args.nulls, seed=args.seed,
                     confidence_level=args.confidence)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"fastevals bandit replay: error: {exc}", file=sys.stderr)
        return 2
    if args.plot:
        res.plot(args.plot)
    if args.json:
        print_json(res.to_dict())
        return 0
    lo, hi = res.confidence_interval
    print(f"replay of {res.policy.name} (Li et al. 2011), batch size {res.batch_size}")
    print(f"events: {res.n_events:,}   kept: {res.n_kept:,} ({res.kept_fraction:.2%})")
    print(f"estimated reward per step: {_fmt(res.estimate)}   "
          f"{res.confidence_level:.0%} CI [{_fmt(lo)}, {_fmt(hi)}]")
    if res.ips is not None:
        print(f"IPS:   {_fmt(res.ips)}   CI [{_fmt(res.ips_confidence_interval.low)}, "
              f"{_fmt(res.ips_confidence_interval.high)}]")
        print(f"SNIPS: {_fmt(res.snips)}   CI [{_fmt(res.snips_confidence_interval.low)}, "
              f"{_fmt(res.snips_confidence_interval.high)}]")
    labels = res.policy.arm_labels or tuple(range(res.policy.n_arms))
    width = max(len(str(lab)) for lab in labels)
    print("kept events per arm:")
    for lab, n in zip(labels, res.kept_per_arm, strict=True):
        print(f"  {str(lab):<{width}}  {int(n):,}")
    if args.plot:
        print(f"plot written to {args.plot}")
    return 0


def _run_simulate(args) -> int:
    from .bandits import simulate
    from .cli import print_json

    try:
        means = [float(x) for x in args.means.split(",") if x.strip()]
    except ValueError:
        print("fastevals bandit simulate: error: --means must be comma-separated numbers; "
              f"got {args.means!r}", file=sys.stderr)
        return 2
    try:
        res = simulate(args.policy, means, n_steps=args.steps, n_runs=args.runs, seed=args.seed,
                       rewards=args.rewards)
    except (ValueError, TypeError) as exc:
        print(f"fastevals bandit simulate: error: {exc}", file=sys.stderr)
        return 2
    if args.plot:
        res.plot(args.plot, bound=args.bound)
    if args.json:
        print_json(res.to_dict())
        return 0
    lo, hi = res.final_regret_confidence_interval
    print(f"{res.n_runs:,} runs x {res.n_steps:,} steps of {res.policy}, seed {res.seed}")
    print(f"mean cumulative regret after {res.n_steps:,} steps: {res.final_regret:.4g}  "
          f"(95% CI [{lo:.4g}, {hi:.4g}]; {res.band_level:.0%} of runs in "
          f"[{res.regret_band.low[-1]:.4g}, {res.regret_band.high[-1]:.4g}])")
    if args.policy == "ucb1":
        print(f"UCB1 bound (Auer et al. 2002, Theorem 1): {float(res.regret_bound([res.n_steps])[0]):.4g}")
    print("arm   mean     share of plays")
    for j, (m, f) in enumerate(zip(res.arm_means, res.arm_frequency, strict=True)):
        print(f"{j:<5} {m:<8.4g} {f:.4f}")
    if args.plot:
        print(f"plot written to {args.plot}")
    return 0


def main(argv=None) -> int:  # pragma: no cover - convenience for `python -m fastevals._cli_bandit`
    parser = argparse.ArgumentParser(prog="fastevals")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
