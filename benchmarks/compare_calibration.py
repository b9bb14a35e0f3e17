"""Print median times and ratios for the calibration workloads (CA1, CA2).

    python benchmarks/compare_calibration.py            # standard sizes: 10M binary, 1M x 10
    python benchmarks/compare_calibration.py --small    # 1M binary, 100k x 10 (quick look)
    python benchmarks/compare_calibration.py --cpu-time # 1 thread, process CPU time: robust to a busy machine

Ours and the peers run on the same data, interleaved (A B A B ...), after a warm-up; the
first call of ours (JIT compile, or loading numba's cache) is reported on its own line.
netcal needs torch, so its ECE is replaced by a NumPy twin of its formula.
"""

import argparse
import os
import sys
import time

import numpy as np
import pyarrow as pa

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

from test_bench_calibration import (  # noqa: E402
    N_BINS,
    N_CLASSES,
    ca1_data,
    ca2_data,
    netcal_ece_twin,
    sklearn_twin,
    top_label_twin,
)

import fastevals.reliability as fc  # noqa: E402

CLOCK = time.perf_counter


def interleaved(funcs: dict, repeats: int) -> dict:
    times = {k: [] for k in funcs}
    for _ in range(repeats):
        for k, f in funcs.items():
            t = CLOCK()
            f()
            times[k].append(CLOCK() - t)
    return {k: float(np.median(v)) for k, v in times.items()}


def report(title, med, ours_key):
    print(f"\n{title}")
    for k, v in med.items():
        ratio = "" if k == ours_key else f"   ours is {v / med[ours_key]:6.1f}x faster"
        print(f"  {k:<38} {v * 1e3:10.1f} ms{ratio}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--cpu-time", action="store_true",
                    help="one numba thread, time.process_time instead of wall time")
    args = ap.parse_args()
    global CLOCK
    if args.cpu_time:
        from fastevals._config import set_num_threads

        set_num_threads(1)
        CLOCK = time.process_time
    import numba
    import sklearn

    from fastevals._config import get_num_threads

    n1 = 1_000_000 if args.small else 10_000_000
    n2 = 100_000 if args.small else 1_000_000
    print(f"numpy {np.__version__}, numba {numba.__version__}, scikit-learn {sklearn.__version__}, "
          f"pyarrow {pa.__version__}; {get_num_threads()} threads; {os.cpu_count()} CPUs; "
          f"{'process CPU time' if args.cpu_time else 'wall time'}; load average {os.getloadavg()[0]:.1f}")

    p, y = ca1_data(n1)
    table = pa.table({"p": p, "y": y})
    t = time.perf_counter()
    fc.calibration(table, prob="p", label="y", n_bins=N_BINS, strategy="quantile")
    print(f"first call (JIT compile or cache load + one run): {time.perf_counter() - t:.2f} s")
    edges = np.linspace(0, 1, N_BINS + 1)
    for strategy in ("uniform", "quantile"):
        res = fc.calibration(table, prob="p", label="y", n_bins=N_BINS, strategy=strategy)
        pt, pp = sklearn_twin(p, y, strategy)
        np.testing.assert_allclose(res.curve.sklearn_curve()[0], pt, rtol=1e-12)
        np.testing.assert_allclose(res.curve.sklearn_curve()[1], pp, rtol=1e-12)
        funcs = {
            "fastevals.calibration (all scalars)": lambda s=strategy: fc.calibration(
                table, prob="p", label="y", n_bins=N_BINS, strategy=s),
            "sklearn calibration_curve": lambda s=strategy: sklearn_twin(p, y, s),
        }
        if strategy == "uniform":
            np.testing.assert_allclose(res.ece, netcal_ece_twin(p, y, edges), rtol=1e-10)
            funcs["NumPy ECE twin (netcal formula)"] = lambda: netcal_ece_twin(p, y, edges)
        med = interleaved(funcs, args.repeats)
        report(f"CA1 {strategy}: {n1:,} binary predictions, {N_BINS} bins", med,
               "fastevals.calibration (all scalars)")

    P, y2 = ca2_data(n2)
    t2 = pa.table({"P": pa.FixedSizeListArray.from_arrays(pa.array(P.ravel()), N_CLASSES), "y": y2})
    res = fc.calibration(t2, prob="P", label="y")
    np.testing.assert_allclose(res.ece, top_label_twin(P, y2), rtol=1e-10)
    fc.calibration(t2, prob="P", label="y", multiclass="classwise")
    med = interleaved({
        "fastevals top-label": lambda: fc.calibration(t2, prob="P", label="y"),
        "NumPy top-label ECE twin": lambda: top_label_twin(P, y2),
    }, args.repeats)
    report(f"CA2 top-label: {n2:,} x {N_CLASSES} classes", med, "fastevals top-label")


if __name__ == "__main__":
    main()
