"""Markdown tables from a benchmark run's JSON, so that the README's figures are exactly the
last run's, with its date, commit, load average and library versions.

    python benchmarks/report.py --run --update README.md     # the one command: run, then rewrite the README
    python benchmarks/report.py RUN.json [RUN2.json ...]     # Markdown of earlier runs on stdout
    python benchmarks/report.py RUN.json --update README.md  # rewrite the README's marked sections

``--run`` runs the standard workloads at their full sizes (``FASTEVALS_BENCH_FULL=1``; half an
hour or more on a 2-core machine: scipy runs the full B), writing ``bootstrap.json``,
``abtest.json`` and ``compile_times.json`` into ``--out`` (default ``benchmarks/results``), then
renders them.  Run it on a quiet machine: every table states the load average it was measured at.

Reads what the benchmark commands write:

* ``python benchmarks/compare_bootstrap.py --json bs.json`` (BS1-BS4 against scipy at the full B),
* ``python benchmarks/compare_abtest.py --full --json ab.json`` (AB1-AB3 and PQ1),
* ``python benchmarks/compile_times.py --json compile.json`` (compile time per analysis),
* ``python -m pytest benchmarks --benchmark-enable --benchmark-json bench.json`` (pytest-benchmark:
  one table per benchmark group, each entry's median and its ratio to the group's ``ours``).

With ``--update FILE`` each table replaces the text between the markers
``<!-- report:KIND -->`` and ``<!-- /report:KIND -->`` in FILE (KIND: ``bootstrap``, ``abtest``,
``compile_times`` or ``pytest_benchmark``); a file without a kind's markers is left as it is
for that kind, and the script says so.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys


def _load(env: dict | None) -> str:
    if not env:
        return "load average not recorded"
    la = env.get("load_average")
    if not la:
        return "load average not recorded"
    return f"load average {la[0]:.2f} / {la[1]:.2f} / {la[2]:.2f} (1 / 5 / 15 min) at the start"


def _provenance(env: dict | None, *, end_load=None, extra: str = "") -> str:
    env = env or {}
    parts = [f"Measured {env.get('date', '(date not recorded)')}",
             f"commit {env.get('commit', '(not recorded)')}",
             _load(env)]
    if end_load:
        parts[-1] += f", {end_load[0]:.2f} at the end"
    if env.get("cpus"):
        parts.append(f"{env['cpus']} CPUs ({env.get('machine', '')})".replace(" ()", ""))
    versions = env.get("versions") or {}
    shown = ", ".join(f"{k} {v}" for k, v in versions.items() if k != "fastevals-source")
    text = "; ".join(parts) + "."
    if shown:
        text += f" Versions: {shown}."
    if extra:
        text += " " + extra
    la = (env.get("load_average") or [0.0])[0]
    cpus = env.get("cpus") or 1
    if la > 0.5 * cpus:
        text += (f" **The machine was busy (load {la:.1f} on {cpus} CPUs): the times and ratios are noisy; "
                 "rerun on a quiet machine before quoting them.**")
    return text


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f} ms" if seconds < 1 else f"{seconds:,.2f} s"


def bootstrap_table(run: dict) -> str:
    lines = [_provenance(run.get("environment"), end_load=run.get("load_average_end"),
                         extra=f"Sizes: {run.get('sizes', '?')}. Command: "
                               "`FASTEVALS_BENCH_FULL=1 python benchmarks/compare_bootstrap.py --json bs.json`."),
             "",
             "| id | workload | N | B | fastevals (median) | scipy.stats.bootstrap at the full B (median) "
             "| speed-up (median of paired ratios) | weights/s |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in run["rows"]:
        mo, mp = statistics.median(r["ours_s"]), statistics.median(r["peer_s"])
        flag = "" if r.get("agree", True) else " (answers differ!)"
        lines.append(f"| {r['id']} | {r['workload']} | {r['n']:,} | {r['B']:,} | {_ms(mo)} | "
                     f"{_ms(mp)} (batch={r['batch']}) | {r['ratio']:,.0f}x{flag} | "
                     f"{r['weights_per_s'] / 1e9:,.2f} G |")
    lines.append("")
    lines.append(f"Every peer ran the full B, interleaved with ours ({len(run['rows'][0]['ours_s'])} timed rounds "
                 "after an untimed round whose intervals were checked to agree); scipy used its vectorized path "
                 "with the `batch` found fastest on this machine. JIT: `warmup()` took "
                 f"{run.get('warmup_s', float('nan')):.2f} s in that process.")
    return "\n".join(lines)


def abtest_table(run: dict) -> str:
    env = run.get("environment") or {"versions": run.get("versions")}
    lines = [_provenance(env, end_load=run.get("load_average_end"),
                         extra=f"{run.get('rows', 0):,} rows. Command: "
                               "`python benchmarks/compare_abtest.py --full --json ab.json`."),
             "",
             "| workload | peer | ours (median) | peer (median) | speed-up (peer / ours) |",
             "|---|---|---:|---:|---:|"]
    for r in run["table"]:
        lines.append(f"| {r['workload']} | {r['peer']} | {r['ours_ms']:,.1f} ms | {r['peer_ms']:,.1f} ms | "
                     f"{r['speedup']:,.2f} |")
    mem = run.get("memory")
    if mem:
        lines.append("")
        lines.append(f"Peak RSS above the baseline, fresh processes: ours {mem['ours']['above_mb']:.0f} MB "
                     f"(batch_size {mem['batch_size']:,}), `pq.read_table` {mem['pyarrow']['above_mb']:.0f} MB"
                     + (f", ours on a longer file {mem['ours_long_file']['above_mb']:.0f} MB"
                        if "ours_long_file" in mem else "") + ".")
    jit = run.get("jit")
    if jit:
        cold = jit["cold"]
        firsts = sorted(r["first_s"] for r in jit["warm_runs"])
        lines.append(f"First call in a new process: {firsts[len(firsts) // 2]:.2f} s with a warm cache (median of "
                     f"{len(firsts)}); {cold['first_s'] - cold['second_s']:.2f} s of JIT compile with an empty one.")
    return "\n".join(lines)


def compile_table(run: dict) -> str:
    dask = any("dask_worker_first_call_seconds" in r for r in run["rows"])
    lines = [_provenance(run.get("environment"),
                         extra="Command: `python benchmarks/compile_times.py"
                               + (" --dask" if dask else "") + " --json compile.json`."),
             "",
             "| analysis | first use, empty cache | first use, from the cache | warm call | functions compiled "
             "| rest of its warmup() | dtypes that compile a variant |"
             + (" fresh Dask worker, empty / warm cache |" if dask else ""),
             "|---|---:|---:|---:|---:|---:|---|" + ("---:|" if dask else "")]

    def sec(v):
        return "-" if v is None else f"{v:.2f} s"

    for r in run["rows"]:
        if "error" in r:
            lines.append(f"| {r['analysis']} | error: {r['error']} | | | | | |" + (" |" if dask else ""))
            continue
        variants = ", ".join(f"{v['variant']} ({v['seconds']:.1f} s)" for v in r.get("variants", []) if v["compiled"])
        line = (f"| {r['analysis']} | {r['first_call_seconds']:.2f} s | {sec(r.get('cached_first_call_seconds'))} | "
                f"{_ms(r['second_call_seconds'])} | {r['first_call_compiled']} | "
                f"{r.get('warmup_rest_seconds', 0.0):.2f} s | {variants or '-'} |")
        if dask:
            d = r.get("dask_worker_first_call_seconds") or {}
            line += f" {sec(d.get('empty cache'))} / {sec(d.get('warm cache'))} |"
        lines.append(line)
    return "\n".join(lines)


def pytest_benchmark_table(run: dict) -> str:
    env = run.get("fastevals_environment")
    if env is None:  # a file written without benchmarks/conftest.py's hook: what pytest-benchmark kept
        ci = run.get("commit_info") or {}
        mi = run.get("machine_info") or {}
        commit = (ci.get("id") or "?")[:9] + (" (dirty)" if ci.get("dirty") else "")
        env = {"date": run.get("datetime"), "commit": commit,
               "cpus": (mi.get("cpu") or {}).get("count"), "machine": mi.get("machine", "")}
    lines = [_provenance(env, extra="Command: `python -m pytest benchmarks --benchmark-enable "
                                    "--benchmark-json bench.json`."),
             "",
             "| group | entry | median | rounds | relative to ours (> 1: ours is faster) |",
             "|---|---|---:|---:|---:|"]
    groups: dict = {}
    for b in run.get("benchmarks", []):
        groups.setdefault(b.get("group") or "", []).append(b)
    for group in sorted(groups):
        benches = groups[group]
        ours = next((b for b in benches if "[ours" in b["name"] or b["name"].endswith("ours]")), None)
        for b in benches:
            med = b["stats"]["median"]
            rel = "-" if ours is None or b is ours else f"{med / ours['stats']['median']:,.2f}"
            lines.append(f"| {group} | {b['name']} | {_ms(med)} | {b['stats']['rounds']} | {rel} |")
    return "\n".join(lines)


def kind_of(run: dict) -> str:
    if run.get("kind") in ("compare_bootstrap", "compare_abtest", "compile_times"):
        return {"compare_bootstrap": "bootstrap", "compare_abtest": "abtest"}.get(run["kind"], run["kind"])
    if "benchmarks" in run and "machine_info" in run:
        return "pytest_benchmark"
    if "table" in run and "first_call_s" in run:  # compare_abtest.py before it wrote "kind"
        return "abtest"
    raise ValueError("not a benchmark JSON this script knows (compare_bootstrap.py, compare_abtest.py, "
                     "compile_times.py --json, or pytest --benchmark-json)")


RENDER = {"bootstrap": bootstrap_table, "abtest": abtest_table, "compile_times": compile_table,
          "pytest_benchmark": pytest_benchmark_table}


def render(run: dict) -> tuple[str, str]:
    kind = kind_of(run)
    return kind, RENDER[kind](run)


def update_file(path: str, sections: dict[str, str]) -> list[str]:
    """Replace each ``<!-- report:KIND -->...<!-- /report:KIND -->`` block; returns the kinds replaced."""
    with open(path) as fh:
        text = fh.read()
    done = []
    for kind, body in sections.items():
        # the block between the markers may be empty (a fresh README) or hold an earlier table
        pattern = re.compile(rf"(<!-- report:{kind} -->\n)(?:.*?\n)?(<!-- /report:{kind} -->)", re.S)
        text, n = pattern.subn(lambda m, body=body: m.group(1) + body.rstrip("\n") + "\n" + m.group(2), text)
        if n:
            done.append(kind)
    with open(path, "w") as fh:
        fh.write(text)
    return done


#: the benchmark commands ``--run`` runs (full sizes), each writing the JSON named
RUNS = (("bootstrap.json", ["compare_bootstrap.py"]),
        ("abtest.json", ["compare_abtest.py", "--full"]),
        ("compile_times.json", ["compile_times.py"]))


def run_all(out: str, only=None) -> list[str]:
    """Run the benchmark commands at full size; the JSON paths they wrote."""
    import os
    import subprocess

    here = os.path.dirname(os.path.abspath(__file__))
    os.makedirs(out, exist_ok=True)
    env = dict(os.environ, FASTEVALS_BENCH_FULL="1")
    paths = []
    for name, cmd in RUNS:
        if only and name.split(".")[0] not in only:
            continue
        path = os.path.join(out, name)
        print(f"running {' '.join(cmd)} -> {path}", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, os.path.join(here, cmd[0]), *cmd[1:], "--json", path], env=env,
                       check=True, stdout=sys.stderr)
        paths.append(path)
    return paths


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="*", help="JSON files written by the benchmark commands")
    ap.add_argument("--run", action="store_true", help="run the benchmark commands first (full sizes)")
    ap.add_argument("--only", nargs="*", default=None, help="with --run: bootstrap, abtest, compile_times")
    ap.add_argument("--out", default=None, help="with --run: folder for the JSON (default benchmarks/results)")
    ap.add_argument("--update", metavar="FILE", help="rewrite the marked sections of FILE instead of printing")
    args = ap.parse_args(argv)
    if args.run:
        import os

        out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
        args.runs = list(args.runs) + run_all(out, args.only)
    if not args.runs:
        ap.error("give JSON files, or --run")
    sections = {}
    for path in args.runs:
        with open(path) as fh:
            kind, body = render(json.load(fh))
        sections[kind] = body
    if args.update:
        done = update_file(args.update, sections)
        for kind in sections:
            print(f"{args.update}: {'updated' if kind in done else 'no markers for'} {kind}"
                  + ("" if kind in done else f" (add <!-- report:{kind} --> and <!-- /report:{kind} -->)"))
        return 0
    print("\n\n".join(sections.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
