r"""End-to-end benchmark: the bridge against the stock pipeline, over real sockets and gRPC.

Run::

    .venv/bin/python -m bench.e2e.run            # 200 runs x 50 tasks, 5,000 and 10,000/s, 3 reps
    .venv/bin/python -m bench.e2e.run --quick    # smoke run: small, one repetition (~1 min)
    .venv/bin/python -m bench.e2e.run --runs 100 --tasks 50 --rates 5000,10000 --reps 3 \\
        --idle 1000 --only both --json results.json

Three processes per measurement, all on loopback: ``bench/e2e/source.py`` (LAO stand-in:
per-run sockets, pre-serialised frames, sends on "go", optionally paced),
``bench/e2e/receiver.py`` (OTLP/gRPC receiver counting unique span ids) and the process under
test: ``otel-bridge serve`` with default settings (capture=redacted) or ``bench/stock.py``
(``websockets`` + ``json.loads`` + SDK spans + ``BatchSpanProcessor`` + SDK OTLP/gRPC +
``prometheus_client``; its batch processor gets the bridge's export queue size and delay,
20,000 spans and 50 ms). The process under test is pinned to CPU 0 with ``taskset -c 0``;
source, receiver and this script to CPU 1 (without ``taskset`` or a second CPU it says so and
runs unpinned). Every run is subscribed before the source sends anything (LAO has no replay).

Measured, per repetition and pipeline (both pipelines in the same invocation, alternating):

- busy: the source sends every event as fast as the sockets take them. CPU time of the
  process under test (utime+stime from ``/proc/PID/stat``) from "go" until the receiver has
  every span, per event and as events per CPU-second (the headline: stable on a noisy
  machine); wall events/s from "go" to the arrival of the last span; spans lost (expected
  ``runs * (tasks + 1)`` minus unique span ids received) and duplicated; peak RSS (VmHWM);
- paced at each ``--rates`` events/s: lag p50/p99, the time from the source handing a
  span-closing frame (a task's end, ``flow_completed``) to its socket to that span's first
  arrival at the receiver, both on the system-wide monotonic clock; loss; CPU per event;
- idle: resident memory of the process under test per subscription with ``--idle`` runs
  subscribed and silent (RSS after, settled, minus RSS before, settled).

It prints a markdown table, min / median / max over ``--reps`` repetitions, the bridge over
stock ratio of events per CPU-second per repetition, and the targets: bridge >= 3x stock,
p99 lag <= 250 ms at 5,000 events/s, <= 16 KiB per idle subscription at 1,000, zero loss.
Every wait is a bounded poll; children are stopped (SIGTERM, then SIGKILL) after each

Finding where the CPU goes: ``--threads`` adds, per busy or paced measurement, the CPU µs per
event of each thread of the process under test (main thread, Python threads, gRPC's C
threads, from /proc/PID/task); ``--profile PATH`` runs the process under test under
``bench/e2e/profiled.py`` (``--profiler cprofile``: one cProfile per Python thread, wall
time; ``yappi``: every thread on the CPU clock, ``pip install yappi``) and writes pstats
files ``{stem}.{tag}{suffix}`` (main thread) and ``{stem}.{tag}.{thread}{suffix}`` once the
process has stopped on SIGTERM. Profiled numbers are several times slower: read the shares.

Modules: ``procs.py`` (children, pinning, /proc readings), ``client.py`` (control HTTP),
``launch.py`` (receiver, source and process under test, subscribed), ``measure.py`` (one
measurement), ``table.py`` (the report), ``frames.py`` and ``source.py`` (the LAO stand-in),
``receiver.py`` (the OTLP receiver).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench.e2e.measure import measure_flow, measure_idle
from bench.e2e.procs import CPU_PEERS, ROOT, BenchError
from bench.e2e.table import Results, by_thread, report, write_json


def setup_info(args: argparse.Namespace, pin: bool) -> dict[str, Any]:
    """What the numbers were measured on."""
    rev = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    return {
        "runs": args.runs,
        "tasks": args.tasks,
        "events": args.runs * (2 * args.tasks + 2),
        "spans": args.runs * (args.tasks + 1),
        "rates": args.rates,
        "reps": args.reps,
        "idle": args.idle,
        "pinned": pin,
        "cpu": model,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "git": rev,
    }


def progress(text: str) -> None:
    """One line of progress on stderr."""
    print(text, file=sys.stderr, flush=True)


TAGS = {"bridge": "b", "bridge+state": "d", "stock": "s"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Arguments, with --quick applied."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=200, help="runs per measurement")
    parser.add_argument("--tasks", type=int, default=50, help="tasks per run")
    parser.add_argument("--rates", default="5000,10000", help="paced rates, events/s (comma list)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions")
    parser.add_argument("--idle", type=int, default=1000, help="idle subscriptions (0: skip)")
    parser.add_argument("--only", choices=("both", "bridge", "stock"), default="both")
    parser.add_argument(
        "--state",
        action="store_true",
        help="also measure the bridge with a state_dir (pipeline bridge+state: SQLite writes)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 40x20, 1 rep, 2,000/s, 200 idle"
    )
    parser.add_argument("--json", help="also write every measurement to this file")
    parser.add_argument("--keep-logs", action="store_true", help="keep the children's logs")
    parser.add_argument(
        "--threads", action="store_true", help="also report CPU per event by thread (from /proc)"
    )
    parser.add_argument(
        "--profile",
        metavar="PATH",
        help="profile the process under test in every busy and paced measurement (implies "
        "--threads): pstats files {stem}.{tag}{suffix} (main thread) and "
        "{stem}.{tag}.{thread}{suffix}, e.g. bridge.b1b.prof; see bench/e2e/profiled.py",
    )
    parser.add_argument(
        "--profiler",
        choices=("cprofile", "yappi"),
        default="cprofile",
        help="with --profile: cProfile per thread (wall time) or yappi (CPU time, pip install)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.tasks, args.reps, args.idle = 40, 20, 1, 200
        args.rates = "2000"
    args.rates = [int(r) for r in str(args.rates).split(",") if r.strip()]
    return args


def main(argv: list[str] | None = None) -> int:
    """Run every measurement, print the table; 1 if a measurement failed."""
    args = parse_args(argv)
    pin = bool(shutil.which("taskset")) and (os.cpu_count() or 1) >= 2
    if not pin:
        progress("bench: taskset missing or a single CPU: running UNPINNED (ratios noisier)")
    else:
        os.sched_setaffinity(0, {CPU_PEERS})
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop, clean up, report
    pipelines = ["bridge", "stock"] if args.only == "both" else [args.only]
    if args.state:
        pipelines.insert(1 if pipelines[0] == "bridge" else 0, "bridge+state")
    logs = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    results = Results(setup_info(args, pin))
    failed = False
    current = logs
    try:
        for rep in range(1, args.reps + 1):
            for pipeline in pipelines:
                for rate in [0, *args.rates]:
                    tag = f"{TAGS[pipeline]}{rep}{'b' if not rate else f'p{rate}'}"
                    started, current = time.monotonic(), logs / tag
                    flow = measure_flow(pipeline, args, rate, tag, current, pin)
                    results.flows.append(flow)
                    lag = f", lag p99 {flow.lag_p99_ms:,.1f} ms" if flow.lag_p99_ms else ""
                    progress(
                        f"rep {rep} {pipeline} {'busy' if not rate else f'{rate:,}/s'}: "
                        f"{flow.per_cpu_s:,.0f} events/CPU-s, {flow.wall_eps:,.0f} events/s, "
                        f"lost {flow.loss}, dup {flow.duplicates}{lag} "
                        f"({time.monotonic() - started:.1f} s)"
                    )
                    if flow.threads:
                        progress(f"  CPU µs per event by thread: {by_thread(flow)}")
                if args.idle:
                    tag = f"{TAGS[pipeline]}{rep}i"
                    current = logs / tag
                    kib = measure_idle(pipeline, args.idle, tag, current, pin)
                    results.idle.setdefault(pipeline, []).append(kib)
                    progress(f"rep {rep} {pipeline} idle: {kib:.1f} KiB per subscription")
    except (BenchError, OSError) as exc:
        failed = True
        progress(f"bench: FAILED: {exc}")
    except KeyboardInterrupt:
        failed = True
        progress("bench: interrupted")
    print(report(results, pipelines, args.rates, args.idle), end="")
    if args.json:
        write_json(results, args.json)
    finish_logs(logs, current.glob("*.log"), failed=failed, keep=args.keep_logs)
    return 1 if failed else 0


def finish_logs(logs: Path, shown: Iterable[Path], *, failed: bool, keep: bool) -> None:
    """Keep the children's logs (failed: with the last lines of ``shown``) or delete them."""
    if not (failed or keep):
        shutil.rmtree(logs, ignore_errors=True)
        return
    progress(f"bench: logs kept in {logs}")
    for log in sorted(shown) if failed else []:
        tail = log.read_text(errors="replace").splitlines()[-5:]
        if tail:
            progress(f"--- {log.relative_to(logs)} (last lines)\n" + "\n".join(tail))


if __name__ == "__main__":
    sys.exit(main())
