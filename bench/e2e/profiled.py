"""Run a module as ``python -m MODULE ARGS`` under a profiler that sees every Python thread.

Run (``bench/e2e/run.py --profile PATH`` starts the process under test this way)::

    .venv/bin/python -m bench.e2e.profiled --out /tmp/bridge.prof -- otel_bridge serve
    .venv/bin/python -m bench.e2e.profiled --out /tmp/b.prof --engine yappi -- otel_bridge serve

``python -m cProfile`` sees the main thread only: the export queue's worker and the threads
of ``asyncio.to_thread`` are invisible to it. Here, with ``--engine cprofile`` (the default),
the main thread and every thread started through ``threading.Thread.run`` get a profiler of
their own; with ``--engine yappi`` (``pip install yappi``), yappi profiles every thread on
the CPU clock (cProfile measures wall time: a thread blocked in a C call is charged for the
wait). When the module ends (SIGTERM or SIGINT to a process that handles them, as
``otel-bridge serve`` and ``bench/stock.py`` do) the profiles are written as pstats files:
``--out`` for the main thread and ``{stem}.{thread name}{suffix}`` next to it for the others
(threads of one name merged), read with ``python -m pstats`` or ``pstats.Stats``. Threads
run by C code (gRPC's) are seen by neither: ``bench/e2e/procs.py``'s ``thread_cpu`` reads
their CPU from /proc.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import re
import runpy
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any


def thread_file(out: Path, thread: str) -> Path:
    """Where the profile of the threads named ``thread`` goes."""
    if thread == "MainThread":
        return out
    safe = re.sub(r"[^\w.-]+", "_", thread)
    return out.with_name(f"{out.stem}.{safe}{out.suffix}")


def with_cprofile(run: Callable[[], None], out: Path) -> None:
    """``run`` with one cProfile profiler per thread; the profiles written when it ends."""
    profiles: list[tuple[str, cProfile.Profile]] = []
    lock = threading.Lock()
    thread_run = threading.Thread.run

    def profiled_run(self: threading.Thread) -> None:
        profile = cProfile.Profile()
        with lock:
            profiles.append((self.name, profile))
        profile.enable()
        try:
            thread_run(self)
        finally:
            profile.disable()

    threading.Thread.run = profiled_run  # type: ignore[method-assign]
    main = cProfile.Profile()
    main.enable()
    try:
        run()
    finally:
        main.disable()
        threading.Thread.run = thread_run  # type: ignore[method-assign]
        merged: dict[str, pstats.Stats] = {"MainThread": pstats.Stats(main)}
        with lock:
            for name, profile in profiles:  # a thread still running: what it has so far
                key = re.sub(r"_\d+$", "", name)  # asyncio_0, asyncio_1, ...: one file
                if key in merged:
                    merged[key].add(profile)
                else:
                    merged[key] = pstats.Stats(profile)
        for name, stats in merged.items():
            stats.dump_stats(thread_file(out, name))


def with_yappi(run: Callable[[], None], out: Path) -> None:
    """``run`` under yappi on the CPU clock, every thread; one pstats file per thread name."""
    import yappi  # type: ignore[import-not-found, import-untyped, unused-ignore]  # optional

    yappi.set_clock_type("cpu")
    yappi.set_context_name_callback(lambda: threading.current_thread().name)
    yappi.start(builtins=True, profile_threads=True)
    try:
        run()
    finally:
        yappi.stop()
        by_name: dict[str, list[int]] = {}
        for thread in yappi.get_thread_stats():
            key = re.sub(r"_\d+$", "", str(thread.name))
            by_name.setdefault(key, []).append(thread.id)
        for name, ids in by_name.items():
            stats: Any = None
            for ctx in ids:
                part = yappi.get_func_stats(filter={"ctx_id": ctx})
                if stats is None:
                    stats = part
                else:
                    stats.add(part)
            if stats is not None and not stats.empty():
                stats.save(str(thread_file(out, name)), type="pstat")


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run the module under the profiler."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", required=True, help="pstats file of the main thread")
    parser.add_argument("--engine", choices=("cprofile", "yappi"), default="cprofile")
    parser.add_argument("module", help="the module to run as __main__")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")
    args = parser.parse_args(argv)
    sys.argv = [args.module, *args.args]

    def run() -> None:
        try:
            runpy.run_module(args.module, run_name="__main__", alter_sys=True)
        except SystemExit as exc:
            if exc.code not in (None, 0):
                print(f"profiled: {args.module} exited with {exc.code}", file=sys.stderr)

    engine = with_yappi if args.engine == "yappi" else with_cprofile
    engine(run, Path(args.out))


if __name__ == "__main__":
    main()
