"""The main thread's work after the engine: ``Router.emit`` (export queue, metrics, listeners).

Run::

    .venv/bin/python -m bench.route [--runs 200] [--tasks 50] [--reps 5]

The engine's outputs for the end-to-end benchmark's frames (``bench/e2e/frames.py``, default
payload policy) are collected first, every repetition from runs of its own; then
``router.emit(outputs)`` is timed per frame, as ``sources/upstream.py`` calls it, with the
bridge's pieces: the Prometheus metrics on a fresh registry, one export queue (its worker
kept asleep: a batch size and delay no repetition reaches; nothing is sent) and a listener
like the bridge's. Prints this thread's CPU µs per event (``time.thread_time``), best and
median.

Instruction counts: ``valgrind --tool=callgrind --dump-before=time_thread_time
--callgrind-out-file=/tmp/cg.out .venv/bin/python -m bench.route --runs 20 --reps 3``;
parts 2, 4, 6 are repetitions 1, 2, 3 (divide their ``summary`` by the events).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

from prometheus_client import CollectorRegistry

from bench.e2e.frames import FLOW, build_frames
from otel_bridge.core.engine import Engine
from otel_bridge.core.outputs import Output, RunClosed
from otel_bridge.core.records import SpanRecord
from otel_bridge.sinks.export_queue import ExportQueue
from otel_bridge.sinks.metrics import Metrics
from otel_bridge.sinks.router import Router


class NullSink:
    """A span sink that keeps nothing."""

    name = "null"

    def export(self, records: Sequence[SpanRecord]) -> None:
        """Drop the records."""

    def shutdown(self) -> None:
        """Nothing to release."""


def outputs(runs: int, tasks: int, tag: str, seed: int) -> list[list[Output]]:
    """The engine's outputs for every frame of ``runs`` runs, one list per frame."""
    engine = Engine()
    now = time.time_ns()
    names, frames = build_frames(runs, tasks, tag, seed)
    out = []
    for frame in frames:
        data = frame.data
        size = data[1] & 0x7F
        text = data[2 if size < 126 else 4 if size == 126 else 10 :].decode()
        out.append(engine.receive(text, run=(FLOW, names[frame.run]), received_ns=now))
    return out


def one_pass(router: Router, frames: list[list[Output]]) -> float:
    """CPU µs per frame (this thread's) to emit every frame's outputs."""
    emit = router.emit
    start = time.thread_time()
    for frame in frames:
        emit(frame)
    return (time.thread_time() - start) * 1e6 / len(frames)


def main() -> None:
    """Print the CPU µs per event of ``Router.emit``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    passes = [outputs(args.runs, args.tasks, f"r{n}", n) for n in range(args.reps)]
    metrics = Metrics(CollectorRegistry())
    spans = args.runs * (args.tasks + 1)
    queue = ExportQueue(
        NullSink(), metrics, max_queue=spans * args.reps + 1, max_batch=10**9, delay_s=3600
    )
    closed = [0]

    def listener(output: Output) -> None:  # what the bridge's does: look for run ends
        if isinstance(output, RunClosed):
            closed[0] += 1

    router = Router([queue], metrics)
    router.listeners.append(listener)
    frames = iter(passes)
    results = [one_pass(router, next(frames)) for _ in range(args.reps)]
    events = len(passes[0])
    print(
        f"{events:,} events, Router.emit: CPU µs per event best {min(results):.2f}, "
        f"median {statistics.median(results):.2f} ({closed[0]} runs closed)"
    )
    queue.close(0)


if __name__ == "__main__":
    main()
