"""``python -m bench.restart``: run the measurements, print the tables (see the package doc)."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import bench.restart
from bench.e2e.procs import CPU_PEERS, BenchError
from bench.e2e.run import finish_logs, progress
from bench.e2e.run import setup_info as e2e_setup_info
from bench.restart.outage import Outage, measure_outage
from bench.restart.resume import Resume, measure_resume
from bench.restart.table import report


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Arguments, with --quick applied."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.restart",
        description=bench.restart.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--runs", type=int, default=500, help="runs in flight at the SIGKILL")
    parser.add_argument("--tasks", type=int, default=10, help="tasks per run")
    parser.add_argument("--open", type=int, help="the task open at the SIGKILL (tasks // 2)")
    parser.add_argument("--reps", type=int, default=3, help="restarts measured")
    parser.add_argument("--outage-runs", type=int, default=500, help="runs during the outage")
    parser.add_argument("--outage-tasks", type=int, default=50, help="their tasks per run")
    parser.add_argument(
        "--outage-s", type=float, default=40.0, help="the OTLP endpoint is down this long at least"
    )
    parser.add_argument("--rates", default="100,1000,5000", help="spans/s for survival times")
    parser.add_argument("--only", choices=("both", "resume", "outage"), default="both")
    parser.add_argument("--quick", action="store_true", help="smoke run: small, 1 restart")
    parser.add_argument("--keep-logs", action="store_true", help="keep the children's logs")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.tasks, args.reps = 50, 6, 1
        args.outage_runs, args.outage_tasks, args.outage_s = 50, 10, 15.0
    if args.open is None:
        args.open = args.tasks // 2
    if not 0 <= args.open < args.tasks:
        parser.error("--open must be a task number below --tasks")
    args.rates = [int(r) for r in str(args.rates).split(",") if r.strip()]
    return args


def setup_info(args: argparse.Namespace, pin: bool) -> dict[str, Any]:
    """What the numbers were measured on (the e2e benchmark's record, and the load)."""
    return {
        **e2e_setup_info(argparse.Namespace(**vars(args), idle=0), pin),
        **{k: getattr(args, k) for k in ("open", "outage_runs", "outage_tasks")},
        "load": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "date": date.today().isoformat(),
    }


@dataclass
class Results:
    """The measurements made so far (a failure keeps the earlier ones)."""

    resumes: list[Resume] = field(default_factory=list)
    outage: Outage | None = None


def measure(args: argparse.Namespace, logs: Path, pin: bool, results: Results) -> None:
    """Every measurement asked for, with a progress line each."""
    if args.only in ("both", "resume"):
        for rep in range(1, args.reps + 1):
            started = time.monotonic()
            r = measure_resume(args.runs, args.tasks, args.open, f"k{rep}", logs / f"k{rep}", pin)
            results.resumes.append(r)
            progress(
                f"restart {rep}: ready {r.ready_ms:,.0f} ms, sockets {r.all_sockets_ms:,.0f} ms, "
                f"spans {r.all_spans_ms:,.0f} ms; lost {r.lost}, dup {r.duplicates}, "
                f"dropped {r.dropped}, roots {r.roots} ({time.monotonic() - started:.1f} s)"
            )
    if args.only in ("both", "outage"):
        started = time.monotonic()
        outage = measure_outage(
            args.outage_runs, args.outage_tasks, args.outage_s, "o", logs / "o", pin
        )
        results.outage = outage
        progress(
            f"outage: {outage.waiting:,} spans waiting, {outage.per_span:,.0f} B per span, "
            f"delivered {outage.all_ms / 1000:,.1f} s after the receiver came back; "
            f"lost {outage.lost}, dup {outage.duplicates} ({time.monotonic() - started:.1f} s)"
        )


def main(argv: list[str] | None = None) -> int:
    """Run every measurement, print the tables; 1 if a measurement failed."""
    args = parse_args(argv)
    pin = bool(shutil.which("taskset")) and (os.cpu_count() or 1) >= 2
    if not pin:
        progress("bench: taskset missing or a single CPU: running UNPINNED")
    else:
        os.sched_setaffinity(0, {CPU_PEERS})
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop, clean up, report
    setup = setup_info(args, pin)
    logs = Path(tempfile.mkdtemp(prefix="bench-restart-"))
    failed = False
    results = Results()
    try:
        measure(args, logs, pin, results)
    except (BenchError, OSError) as exc:
        failed = True
        progress(f"bench: FAILED: {exc}")
    except KeyboardInterrupt:
        failed = True
        progress("bench: interrupted")
    print(report(setup, results.resumes, results.outage, args.rates), end="")
    finish_logs(logs, logs.rglob("*.log"), failed=failed, keep=args.keep_logs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
