"""Throughput of the path frame → engine → span records → OTLP/JSON bytes.

Run: ``make bench`` or ``.venv/bin/python -m bench.throughput [--runs N] [--tasks M]``.
Prints events per second for classification + tracking alone and for the whole path with
OTLP/JSON encoding, at several numbers of runs in flight (per-event cost must not grow with
them), and the peak memory of the tracker per open run.
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc
import uuid
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource

from otel_bridge.core.engine import Engine
from otel_bridge.core.outputs import Output
from otel_bridge.core.records import SpanRecord
from otel_bridge.sinks.otlp import traces_data
from otel_bridge.sinks.router import Router


def make_frames(
    runs: int, tasks: int, interleave: bool = True, first: int = 0
) -> list[tuple[str, str]]:
    """Frames of ``runs`` runs of ``tasks`` agent tasks, interleaved run by run."""
    per_run: list[list[dict[str, Any]]] = []
    for r in range(first, first + runs):
        t0 = 1_756_806_000.0 + r
        run = f"run_{r}"
        events: list[dict[str, Any]] = [
            {"event_type": "flow_started", "flow_name": "Bench", "run_name": run, "timestamp": t0}
        ]
        for t in range(tasks):
            task_id = str(uuid.UUID(int=r * 10_000 + t))
            base = {
                "flow_name": "Bench",
                "run_name": run,
                "task_id": task_id,
                "task_name": f"task_{t}",
            }
            events.append(
                {
                    **base,
                    "event_type": "task_started",
                    "timestamp": t0 + t,
                    "input": {
                        "config": {"agent_id": "a", "api_key": "sk-secret-123456"},
                        "message": "hello " * 20,
                    },
                }
            )
            events.append(
                {
                    **base,
                    "event_type": "task_completed",
                    "timestamp": t0 + t + 0.5,
                    "execution_time": 0.5,
                    "output": {"answer": "ok " * 40},
                }
            )
        events.append(
            {
                "event_type": "flow_completed",
                "flow_name": "Bench",
                "run_name": run,
                "timestamp": t0 + tasks + 1,
                "output": {},
            }
        )
        per_run.append(events)
    frames: list[tuple[str, str]] = []
    if interleave:
        for step in range(2 * tasks + 2):
            frames.extend((json.dumps(ev[step]), ev[step]["run_name"]) for ev in per_run)
    else:
        frames = [(json.dumps(e), e["run_name"]) for events in per_run for e in events]
    return frames


def bench_core(frames: Sequence[tuple[str, str]], encode: bool) -> tuple[float, int]:
    """Events per second through engine and router; optionally encoding spans as OTLP/JSON."""
    spans: list[SpanRecord] = []
    engine, router = Engine(), Router()

    def keep(output: Output) -> None:
        if isinstance(output, SpanRecord):
            spans.append(output)

    router.listeners.append(keep)
    resource = Resource.create({"service.name": "bench"})
    start = time.perf_counter()
    for i, (frame, run) in enumerate(frames):
        router.emit(engine.receive(frame, run=("Bench", run), received_ns=i))
        if encode and len(spans) >= 512:
            json.dumps(traces_data(spans, resource))
            spans.clear()
    if encode and spans:
        json.dumps(traces_data(spans, resource))
    elapsed = time.perf_counter() - start
    return len(frames) / elapsed, len(frames)


def memory_per_open_run(runs: int, tasks: int) -> float:
    """Bytes the tracker holds per open run (each with ``tasks`` tasks, one still open)."""
    frames = [
        f for f in make_frames(runs, tasks, interleave=False) if '"flow_completed"' not in f[0]
    ]
    engine, router = Engine(), Router()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i, (frame, run) in enumerate(frames):
        router.emit(engine.receive(frame, run=("Bench", run), received_ns=i))
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / runs


def main() -> None:
    """Print the benchmark table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--events", type=int, default=50_000, help="events per measurement")
    args = parser.parse_args()
    print(f"{'runs in flight':>15} {'track ev/s':>12} {'track+encode ev/s':>18}")
    for runs in (1, 100, 1000, 2500):
        # The same number of events each time: ``runs`` interleaved runs, cut to --events.
        frames: list[tuple[str, str]] = []
        while len(frames) < args.events:
            frames += make_frames(runs, args.tasks, first=len(frames))
        frames = frames[: args.events]
        track, _ = bench_core(frames, encode=False)
        full, _ = bench_core(frames, encode=True)
        print(f"{runs:>15} {track:>12,.0f} {full:>18,.0f}")
    per_run_bytes = memory_per_open_run(1000, args.tasks)
    print(f"tracker memory per open run ({args.tasks} tasks seen): {per_run_bytes / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
