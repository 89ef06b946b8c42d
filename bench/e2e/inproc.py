"""The bridge's main-thread work on the end-to-end benchmark's frames, in process, no sockets.

Run::

    .venv/bin/python -m bench.e2e.inproc [--runs 200] [--tasks 50] [--reps 5] [--stage all]

The same frames as ``bench.e2e.run`` (``frames.build_frames``) go through what
``sources/upstream.py`` does with each: ``router.emit(engine.receive(...))``, with the
default payload policy (``capture=redacted``), the Prometheus metrics on a fresh registry and
a listener standing in for the bridge's. No export queue (the OTLP encoding happens on the
export thread). Prints the CPU µs per event (``time.process_time``), best and median of
``--reps``; ``--stage`` limits the work to the engine alone (``engine``) to tell the
router's share. Quick to iterate with; ``bench.e2e.run`` stays the headline.
"""

from __future__ import annotations

import argparse
import statistics
import time

import orjson
from prometheus_client import CollectorRegistry

from bench.e2e.frames import FLOW, build_frames
from otel_bridge.core.engine import Engine
from otel_bridge.core.outputs import Output
from otel_bridge.sinks.metrics import Metrics
from otel_bridge.sinks.router import Router


def payloads(runs: int, tasks: int) -> list[tuple[bytes, str]]:
    """Each frame's text payload (the WebSocket header stripped) and its run name."""
    names, frames = build_frames(runs, tasks, "inproc")
    out = []
    for frame in frames:
        data = frame.data
        size = data[1] & 0x7F
        start = 2 if size < 126 else 4 if size == 126 else 10
        body = data[start:]
        orjson.loads(body)  # a sanity check: every frame is one JSON object
        out.append((body, names[frame.run]))
    return out


def one_pass(frames: list[tuple[bytes, str]], stage: str) -> float:
    """CPU µs per event for one pass over every frame, with a fresh engine and registry."""
    engine = Engine()
    router = Router((), Metrics(CollectorRegistry()), trace_of=engine.trace_id_of)
    seen: list[int] = [0]

    def listener(output: Output) -> None:
        seen[0] += 1

    router.listeners.append(listener)
    texts = [(body.decode(), run) for body, run in frames]
    now = time.time_ns()
    start = time.process_time()
    if stage == "engine":
        for text, run in texts:
            engine.receive(text, run=(FLOW, run), received_ns=now)
    else:
        for text, run in texts:
            router.emit(engine.receive(text, run=(FLOW, run), received_ns=now))
    return (time.process_time() - start) * 1e6 / len(frames)


def main() -> None:
    """Print CPU µs per event, best and median."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--stage", choices=("all", "engine"), default="all")
    args = parser.parse_args()
    frames = payloads(args.runs, args.tasks)
    results = [one_pass(frames, args.stage) for _ in range(args.reps)]
    print(
        f"{len(frames):,} events, stage {args.stage}: CPU µs per event "
        f"best {min(results):.1f}, median {statistics.median(results):.1f}"
    )


if __name__ == "__main__":
    main()
