"""Compile time per analysis: the first call of each analysis in a fresh process with an empty
numba cache, what it compiled (function and type signature), and what input dtypes compile
extra variants.

    python benchmarks/compile_times.py                       # every analysis, table on stdout
    python benchmarks/compile_times.py --only abtest --kernels 10
    python benchmarks/compile_times.py --json compile.json   # for benchmarks/report.py

Per analysis, two fresh processes share one empty temporary ``NUMBA_CACHE_DIR``:

1. *cold*: ``import fastevals``, the first call on a small input of the usual dtypes (timed:
   the compile a user meets, the **first use**), a second identical call (the warm time),
   then the same call with other input dtypes one at a time (int8, int16, uint8, bool,
   float32...: each one that compiles a variant of a kernel is listed with its seconds), then
   the analysis module's ``warmup()`` (the rest of its kernels: parallel twins...).
2. *cached*: the first call again in a new process, now loading from the cache that run 1 wrote
   (what a warm image pays).
3. with ``--dask``: the first call on a fresh Dask worker (a LocalCluster of one worker process),
   once with an empty cache and once with the cache of run 1: what every new worker pays.

Numba's ``numba:compile`` events say what was compiled (cache loads are not compilations);
callees are counted inside the outermost compile.  Times depend on the machine and its load:
the script prints the load average and both are in the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

N_ROWS = 20_000


# ----------------------------------------------------------------------------------------------
# the first call of each analysis, and its dtype variants (run in the child process)


def _rng():
    import numpy as np

    return np.random.default_rng(0)


def _ab_data(outcome="int64", group="str", value="float64"):
    import numpy as np
    import pyarrow as pa

    rng = _rng()
    g = rng.integers(0, 2, N_ROWS)
    labels = pa.array(np.where(g == 0, "a", "b"))
    groups = {"str": labels, "dict": labels.dictionary_encode(),
              "int64": pa.array(g.astype(np.int64)), "bool": pa.array(g.astype(bool)),
              "int8": pa.array(g.astype(np.int8))}
    y = rng.integers(0, 2, N_ROWS)
    return pa.table({"variant": groups[group],
                     "converted": pa.array(y.astype(bool) if outcome == "bool" else y.astype(outcome)),
                     "revenue": pa.array(rng.exponential(size=N_ROWS).astype(value))})


def _abtest(**dtypes):
    import fastevals

    fastevals.abtest(_ab_data(**dtypes), group="variant", outcome="converted", value="revenue", control="a"
                     if dtypes.get("group", "str") in ("str", "dict") else None)


def _bootstrap(x="float64"):
    import fastevals
    from fastevals import metrics

    v = _rng().normal(size=N_ROWS)
    v = (v > 0) if x == "bool" else (v * 10).astype(x) if x.startswith("int") else v.astype(x)
    fastevals.bootstrap({"x": v}, metrics.mean("x"), n_resamples=200, seed=1, progress=False)


def _calibration(label="int64", prob="float64"):
    import fastevals

    rng = _rng()
    p = rng.beta(2, 5, N_ROWS)
    y = rng.random(N_ROWS) < p
    fastevals.calibration({"p": p.astype(prob), "y": y if label == "bool" else y.astype(label)}, prob="p", label="y")


def _bandits(arm="int64", reward="float64"):
    import fastevals

    rng = _rng()
    r = rng.random(N_ROWS) < 0.3
    fastevals.replay({"arm": rng.integers(0, 10, N_ROWS).astype(arm),
                      "reward": r if reward == "bool" else r.astype(reward)}, fastevals.UCB1(10))


def _fairness(label="int64"):
    import numpy as np

    import fastevals

    rng = _rng()
    s = rng.choice(["f", "m"], N_ROWS)
    y = rng.integers(0, 2, N_ROWS)
    yhat = (rng.uniform(size=N_ROWS) < 0.3 + 0.3 * y).astype(np.int64)
    cast = (lambda a: a.astype(bool)) if label == "bool" else (lambda a: a.astype(label))
    fastevals.fairness({"y": cast(y), "yhat": cast(yhat), "s": s}, label="y", prediction="yhat", sensitive="s",
                       n_resamples=100, seed=1)


def _slices(error="bool"):
    import numpy as np

    import fastevals

    rng = _rng()
    err = rng.random(N_ROWS) < 0.1
    fastevals.slices({"err": err if error == "bool" else err.astype(error),
                      "country": rng.choice(["BR", "DE", "US"], N_ROWS),
                      "device": rng.integers(0, 3, N_ROWS).astype(np.int64)}, error="err")


def _drift(x="float64"):
    import fastevals

    rng = _rng()
    ref = {"x": rng.normal(size=N_ROWS).astype(x), "c": rng.choice(["a", "b"], N_ROWS)}
    cur = {"x": rng.normal(0.2, 1.0, size=N_ROWS // 2).astype(x), "c": rng.choice(["a", "b"], N_ROWS // 2)}
    fastevals.drift(ref, cur)


def _compare():
    import fastevals
    from fastevals._compare import demo_reviews

    fastevals.compare_models(demo_reviews(n=2000, seed=0), models=["llama3.1_8b", "llama3.2_3b"], label="rating",
                             metric="rmse", item="review_id", n_resamples=200, seed=0)


#: name -> (module with warmup(), first call, {variant label: kwargs of the first call})
ANALYSES = {
    "abtest": ("fastevals.ab_tests", _abtest, {
        "outcome int8": dict(outcome="int8"), "outcome int16": dict(outcome="int16"),
        "outcome uint8": dict(outcome="uint8"), "outcome int32": dict(outcome="int32"),
        "outcome bool": dict(outcome="bool"), "group dictionary": dict(group="dict"),
        "group int64": dict(group="int64"), "group int8": dict(group="int8"), "group bool": dict(group="bool"),
        "value float32": dict(value="float32"), "value int64": dict(value="int64")}),
    "bootstrap": ("fastevals.resampling", _bootstrap, {
        "x float32": dict(x="float32"), "x int64": dict(x="int64"), "x int8": dict(x="int8"),
        "x bool": dict(x="bool")}),
    "calibration": ("fastevals.reliability", _calibration, {
        "label int8": dict(label="int8"), "label bool": dict(label="bool"), "label float64": dict(label="float64"),
        "prob float32": dict(prob="float32")}),
    "bandits": ("fastevals.bandits", _bandits, {
        "arm int32": dict(arm="int32"), "arm uint8": dict(arm="uint8"), "reward bool": dict(reward="bool"),
        "reward float32": dict(reward="float32")}),
    "fairness": ("fastevals._fairness", _fairness, {"labels int8": dict(label="int8"),
                                                     "labels bool": dict(label="bool")}),
    "slices": ("fastevals._slices", _slices, {"error int8": dict(error="int8"),
                                               "error float64": dict(error="float64")}),
    "drift": ("fastevals._drift", _drift, {"x float32": dict(x="float32"), "x int64": dict(x="int64")}),
    "compare": ("fastevals._compare", _compare, {}),
}


def _child(name: str, phase: str, top: int) -> dict:
    """Run in a fresh process: the timings of one analysis."""
    t0 = time.perf_counter()
    import fastevals  # noqa: F401

    out = {"analysis": name, "phase": phase, "import_seconds": time.perf_counter() - t0}
    from fastevals._cli.warmup import CompileRecorder

    module, first, variants = ANALYSES[name]

    def timed(fn, **kw):
        t = time.perf_counter()
        with CompileRecorder() as rec:
            fn(**kw)
        return time.perf_counter() - t, rec.events

    if phase == "dask":
        return _on_fresh_dask_worker(out, first)
    seconds, events = timed(first)
    out["first_call_seconds"] = seconds
    out["first_call_compiled"] = len(events)
    if phase == "cached":
        return out
    out["kernels"] = sorted(({"function": f, "signature": s, "seconds": t} for f, s, t in events),
                            key=lambda e: -e["seconds"])[:top]
    out["second_call_seconds"] = timed(first)[0]
    out["variants"] = []
    for label, kw in variants.items():
        seconds, events = timed(first, **kw)
        out["variants"].append({"variant": label, "seconds": seconds, "compiled": len(events),
                                "functions": sorted({f.rsplit(".", 1)[-1] for f, _, _ in events})})
    import importlib

    warm = getattr(importlib.import_module(module), "warmup", None)
    if warm is not None:
        seconds, events = timed(warm)
        out["warmup_rest_seconds"] = seconds
        out["warmup_rest_compiled"] = len(events)
    return out


def _on_fresh_dask_worker(out: dict, first) -> dict:
    """The first call on a new Dask worker process (a LocalCluster of one worker, one thread),
    which inherits this process' NUMBA_CACHE_DIR: what every fresh worker of a cluster pays."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.run(lambda: None)  # the worker is up
        t = time.perf_counter()
        client.submit(first, pure=False).result()
        out["first_call_seconds"] = time.perf_counter() - t
        t = time.perf_counter()
        client.submit(first, pure=False).result()
        out["second_call_seconds"] = time.perf_counter() - t
    return out


def _run_child(name: str, phase: str, cache: str, top: int) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", name, "--phase", phase,
                           "--kernels", str(top)], capture_output=True, text=True, env=env, timeout=900)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"analysis": name, "phase": phase, "error": tail[0]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(names, top: int = 5, dask: bool = False) -> list[dict]:
    """Cold and cached figures of each analysis (each in its own empty cache folder); with
    ``dask``, also its first call on a fresh Dask worker, with an empty cache and a warm one."""
    rows = []
    for name in names:
        if dask:
            with tempfile.TemporaryDirectory(prefix="fastevals-numba-") as cache:
                dask_cold = _run_child(name, "dask", cache, top)
        with tempfile.TemporaryDirectory(prefix="fastevals-numba-") as cache:
            cold = _run_child(name, "cold", cache, top)
            cached = _run_child(name, "cached", cache, top) if "error" not in cold else {}
            dask_warm = _run_child(name, "dask", cache, top) if dask and "error" not in cold else {}
        cold["cached_first_call_seconds"] = cached.get("first_call_seconds")
        if dask:
            cold["dask_worker_first_call_seconds"] = {"empty cache": dask_cold.get("first_call_seconds"),
                                                      "warm cache": dask_warm.get("first_call_seconds")}
        rows.append(cold)
    return rows


def environment() -> dict:
    """Date, commit, load, CPUs and versions (``_peers.environment``)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import _peers

    return _peers.environment()


def print_table(rows: list[dict], stream=sys.stdout) -> None:
    w = stream.write
    w(f"{'analysis':<12} {'first use, empty cache':>22} {'from cache':>10} {'warm call':>9} "
      f"{'compiled':>8} {'rest of warmup':>14}\n")
    for r in rows:
        if "error" in r:
            w(f"{r['analysis']:<12} error: {r['error']}\n")
            continue
        cached = r.get("cached_first_call_seconds")
        w(f"{r['analysis']:<12} {r['first_call_seconds']:>20.2f} s {'-' if cached is None else f'{cached:.2f} s':>10} "
          f"{r['second_call_seconds'] * 1e3:>6.0f} ms {r['first_call_compiled']:>8} "
          f"{r.get('warmup_rest_seconds', 0.0):>12.2f} s\n")
    for r in rows:
        d = r.get("dask_worker_first_call_seconds")
        if d and "error" not in r:
            shown = ", ".join(f"{k} {'-' if v is None else f'{v:.2f} s'}" for k, v in d.items())
            w(f"{r['analysis']}: first call on a fresh Dask worker: {shown}\n")
    for r in rows:
        if "error" in r:
            continue
        w(f"\n{r['analysis']}: slowest compiles of the first call\n")
        for k in r["kernels"]:
            w(f"  {k['seconds']:6.2f} s  {k['function']}{k['signature']}\n")
        extra = [v for v in r["variants"] if v["compiled"]]
        if extra:
            w(f"  input dtypes that compile a variant (of {len(r['variants'])} tried):\n")
            for v in extra:
                w(f"    {v['variant']:<18} {v['seconds']:6.2f} s  {', '.join(v['functions'])}\n")
        else:
            w(f"  no other input dtype tried ({len(r['variants'])}) compiled a variant\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=None, help="comma-separated analyses (" + ", ".join(ANALYSES) + ")")
    parser.add_argument("--kernels", type=int, default=5, help="slowest compiles listed per analysis")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the figures as JSON here")
    parser.add_argument("--dask", action="store_true",
                        help="also time the first call on a fresh Dask worker (empty and warm cache)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--phase", default="cold", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, args.phase, args.kernels)))
        return 0
    names = args.only.split(",") if args.only else list(ANALYSES)
    unknown = [n for n in names if n not in ANALYSES]
    if unknown:
        parser.error(f"unknown analysis {unknown[0]!r}; choose from {', '.join(ANALYSES)}")
    env = environment()
    rows = measure(names, args.kernels, dask=args.dask)
    print(f"compile times, fresh process, empty NUMBA_CACHE_DIR; {env['date']}, commit {env['commit']}, "
          f"load {' / '.join(f'{x:.2f}' for x in env['load_average'])}, {env['cpus']} CPUs, "
          f"numba {env['versions'].get('numba')}")
    print_table(rows)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"kind": "compile_times", "environment": env, "rows": rows}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
