"""Print median times and ratios of fastevals bandits against their peers on
BA1-BA3 (../shared/benchmarking.md): interleaved A B A B, warm-up first, JIT
compile (or cache load) time on its own line.

    python benchmarks/compare_bandits.py            # small sizes
    FASTEVALS_BENCH_FULL=1 python benchmarks/compare_bandits.py   # standard workloads
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [_HERE, os.path.dirname(_HERE)]  # the workloads module, then this checkout's fastevals

import numpy as np  # noqa: E402
import test_bench_bandits as wb  # noqa: E402


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def interleaved(funcs: dict, repeats: int) -> dict:
    """Median (wall, CPU) seconds per function, calls interleaved A B A B ... after one warm-up each.

    CPU time (``time.process_time``) is what this process used: on a busy shared machine it
    shows the cost of single-threaded code better than wall time.
    """
    for f in funcs.values():
        f()
    times = {name: ([], []) for name in funcs}
    for _ in range(repeats):
        for name, f in funcs.items():
            c0, t0 = time.process_time(), time.perf_counter()
            f()
            times[name][0].append(time.perf_counter() - t0)
            times[name][1].append(time.process_time() - c0)
    return {name: (statistics.median(w), statistics.median(c)) for name, (w, c) in times.items()}


class OneThread:
    """Run fastevals' parallel kernels on one thread inside the block."""

    def __enter__(self):
        from fastevals import _config

        self.before = _config.get_num_threads()
        _config.set_num_threads(1)

    def __exit__(self, *exc):
        from fastevals import _config

        _config.set_num_threads(self.before)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions of each (default 5)")
    parser.add_argument("--peer-repeats", type=int, default=3,
                        help="repetitions of the slow peer loops of BA2/BA3 (default 3)")
    args = parser.parse_args(argv)

    rss0 = _rss_mb()
    import numba

    import fastevals
    import fastevals.bandits as fb
    from fastevals import _config

    try:
        from importlib.metadata import version

        import mabwiser

        mabwiser_version = version("mabwiser")
    except ImportError:
        mabwiser = None
        mabwiser_version = "not installed"
    threads = _config.get_num_threads()
    print(f"fastevals {fastevals.__version__}, numba {numba.__version__}, numpy {np.__version__}, "
          f"mabwiser {mabwiser_version}, python {platform.python_version()}, {threads} threads, "
          f"{'FULL' if wb.FULL else 'small'} sizes")

    t0 = time.perf_counter()
    fb.warmup()
    print(f"JIT compile / cache load of the bandit kernels: {time.perf_counter() - t0:.2f} s (first call)")

    rows = []

    def add(wid, work, med, base):
        for name, (wall, cpu) in med.items():
            rows.append((wid, work, name, wall, wall / med[base][0], cpu, cpu / med[base][1]))

    arms, rewards = wb.make_log()
    n = arms.size

    # BA1 ------------------------------------------------------------------------------------
    import pyarrow as pa

    table = pa.table({"arm": arms, "reward": rewards})
    funcs = {
        "fastevals, 1 thread": lambda: fb.UCB1(wb.K).update(arms, rewards),
        "fastevals, Arrow table, 1 thread": lambda: fb.UCB1(wb.K).update(table),
        "numpy bincount x2 (floor)": lambda: (np.bincount(arms, minlength=wb.K),
                                              np.bincount(arms, rewards, minlength=wb.K)),
    }
    if mabwiser is not None:
        funcs["MABWiser fit"] = lambda: wb.mabwiser_fit(arms, rewards)
        exp = wb.mabwiser_fit(arms, rewards).predict_expectations()
        np.testing.assert_allclose(fb.UCB1(wb.K).update(arms, rewards).scores(),
                                   [exp[j] for j in range(wb.K)], rtol=1e-12)
    with OneThread():
        med = interleaved(funcs, args.repeats)
    med.update(interleaved({f"fastevals, {threads} threads": lambda: fb.UCB1(wb.K).update(arms, rewards)},
                           args.repeats))
    add("BA1", f"UCB1 update, {n:,} rows", med, "fastevals, 1 thread")

    # BA2 ------------------------------------------------------------------------------------
    with OneThread():
        med = interleaved({"fastevals, Arrow table": lambda: fb.replay(table, fb.UCB1(wb.K))}, args.repeats)
    add("BA2", f"replay over {n:,} events", med, "fastevals, Arrow table")
    wall, cpu = med["fastevals, Arrow table"]
    print(f"BA2: fastevals replays {n / wall / 1e6:.1f} M events/s wall, {n / cpu / 1e6:.1f} M events/s "
          "per CPU-second, on one core")
    if mabwiser is not None:
        m = wb.N_REPLAY
        pa_, pr_ = arms[:m].copy(), rewards[:m].copy()
        ptable = pa.table({"arm": pa_, "reward": pr_})
        kept, est = wb.mabwiser_replay(pa_, pr_)
        res = fb.replay(ptable, fb.UCB1(wb.K))
        assert res.n_kept == kept and abs(res.estimate - est) <= 1e-12 * abs(est)
        with OneThread():
            med2 = interleaved({"fastevals": lambda: fb.replay(ptable, fb.UCB1(wb.K)),
                                "MABWiser predict+partial_fit loop": lambda: wb.mabwiser_replay(pa_, pr_)},
                               args.peer_repeats)
        add("BA2", f"replay over the first {m:,} events", med2, "fastevals")
        peer = med2["MABWiser predict+partial_fit loop"]
        print(f"BA2: per-event ratio, ours over {n:,} events vs MABWiser over {m:,}: "
              f"{(peer[0] / m) / (wall / n):,.0f}x wall, {(peer[1] / m) / (cpu / n):,.0f}x CPU")

    # BA3 ------------------------------------------------------------------------------------
    runs, steps = wb.SIM_RUNS, wb.SIM_STEPS
    ours_sim = fb.simulate("ucb1", wb.MEANS, n_steps=steps, n_runs=runs, seed=wb.SEED)
    regret, counts = wb.numpy_simulate_ucb1(wb.MEANS, steps, runs, wb.SEED)
    np.testing.assert_array_equal(ours_sim.mean_pulls, counts.sum(axis=0) / runs)

    def sim():
        return fb.simulate("ucb1", wb.MEANS, n_steps=steps, n_runs=runs, seed=wb.SEED)

    with OneThread():
        med = interleaved({
            "fastevals, 1 thread": sim,
            "NumPy loop (vectorized over runs)": lambda: wb.numpy_simulate_ucb1(wb.MEANS, steps, runs, wb.SEED),
        }, args.peer_repeats)
    med.update(interleaved({f"fastevals, {threads} threads": sim}, args.peer_repeats))
    add("BA3", f"{runs:,} runs x {steps:,} steps, {wb.K} arms", med, "fastevals, 1 thread")
    wall, cpu = med["fastevals, 1 thread"]
    print(f"BA3: fastevals simulates {runs * steps / wall / 1e6:.1f} M steps/s wall, "
          f"{runs * steps / cpu / 1e6:.1f} M steps/s per CPU-second on one core; "
          f"{runs * steps / med[f'fastevals, {threads} threads'][0] / 1e6:.1f} M steps/s wall on {threads} threads")

    print()
    print("| id | workload | implementation | median wall | wall / ours | median CPU | CPU / ours |")
    print("|---|---|---|---:|---:|---:|---:|")
    for wid, work, name, wall, rw, cpu, rc in rows:
        print(f"| {wid} | {work} | {name} | {wall * 1e3:,.2f} ms | {rw:,.1f}x | {cpu * 1e3:,.2f} ms | {rc:,.1f}x |")
    print(f"\npeak RSS above the process baseline: {_rss_mb() - rss0:,.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
