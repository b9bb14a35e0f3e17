"""Print median times and ratios for the drift workload DR1.

    python benchmarks/compare_drift.py            # standard size: 10M reference rows, 1M current rows
    python benchmarks/compare_drift.py --small    # 1M / 100k (quick look)

Ours and the peers run on the same data, interleaved (A B A B ...), after a warm-up round (JIT
compile or numba's cache load is timed on its own line). The answers are asserted to agree first.
Peers: scipy's ks_2samp + wasserstein_distance looped over the 20 numeric columns and
chi2_contingency (G-test) over the 10 categorical ones; Evidently if installed.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

import _peers  # noqa: E402
from test_bench_drift import (  # noqa: E402
    assert_agree,
    dr1_table,
    ours_exact_mode,
    ours_profile_mode,
    scipy_loop,
)

import fastevals  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    n_ref, n_cur = (1_000_000, 100_000) if args.small else (10_000_000, 1_000_000)
    ref, cur = dr1_table(n_ref, False), dr1_table(n_cur, True)
    print(f"DR1: {n_ref:,} reference rows x 30 columns vs {n_cur:,} current rows; "
          f"threads {_peers.thread_info()}; load {os.getloadavg()}")
    t0 = time.perf_counter()
    fastevals.drift(fastevals.profile(ref.slice(0, 1000)), cur.slice(0, 1000))
    print(f"first call (compile or cache load): {time.perf_counter() - t0:.2f} s")
    peer = scipy_loop(ref, cur)
    assert_agree(ours_profile_mode(ref, cur), peer, exact=False)
    assert_agree(ours_exact_mode(ref, cur), peer, exact=True)
    prof = fastevals.profile(ref)
    fns = {
        "ours: profile(ref) + drift(profile, cur)": lambda: ours_profile_mode(ref, cur),
        "ours: drift(stored profile, cur)": lambda: fastevals.drift(prof, cur),
        "ours: exact mode drift(ref, cur)": lambda: ours_exact_mode(ref, cur),
        "scipy ks_2samp + wasserstein + chi2 loop": lambda: scipy_loop(ref, cur),
        "scipy ks_2samp + chi2 loop (no wasserstein)": lambda: scipy_loop(ref, cur, wasserstein=False),
    }
    try:
        from evidently import Report
        from evidently.presets import DataDriftPreset

        rp, cp = ref.to_pandas(), cur.to_pandas()
        fns["evidently DataDriftPreset"] = lambda: Report([DataDriftPreset()]).run(cp, rp)
    except ImportError:
        print("evidently: not installed, skipped")
    timing = _peers.interleave(fns, rounds=args.rounds, warmup=0)
    base = "ours: profile(ref) + drift(profile, cur)"
    print(f"\n{'entry':<46}{'median s':>10}{'ratio to ours':>15}")
    for name in fns:
        print(f"{name:<46}{timing.median_ms(name) / 1e3:>10.2f}{timing.ratio(name, base):>15.2f}")
    print(f"\nversions: {_peers.versions()}")


if __name__ == "__main__":
    main()
