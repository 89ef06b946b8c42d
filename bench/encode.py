r"""The export thread's work per span: OTLP encoding, and the gRPC exporter around it.

Run::

    .venv/bin/python -m bench.encode [--runs 200] [--tasks 50] [--reps 5] [--grpc]

The span records are the end-to-end benchmark's (``bench/e2e/frames.py``, through the
engine with the default payload policy, as ``bench/e2e/inproc.py`` does). Each repetition
hands them, in batches of ``--batch`` (the export queue's 512), to an
:class:`~otel_bridge.sinks.span_sinks.OtlpSink` whose exporter only counts the bytes: the
encoding an export thread does, nothing else. Prints the CPU µs per span
(``time.thread_time``), best and median. ``--cold`` clears the encoder's caches before each
repetition (otherwise the first repetition fills them and the others find them warm).

``--grpc`` also sends every batch to ``bench/e2e/receiver.py`` (started here, on the other
CPU when there are two) with the bridge's OTLP/gRPC exporter, default settings (no
compression), and prints this thread's CPU per span for the whole export (encoding and the
SDK exporter) and the process's (gRPC's own C threads too).

Each repetition encodes runs of its own (new run names, task ids and payloads: what the
caches cannot know in advance), built before any is timed.

Instruction counts (load-independent): callgrind cuts a profile at every ``thread_time``
call, so parts 2, 4, 6 are repetitions 1, 2, 3 (divide their ``summary`` by the spans)::

    PYTHONHASHSEED=0 valgrind --tool=callgrind --dump-before=time_thread_time \
        --callgrind-out-file=/tmp/cg.out .venv/bin/python -m bench.encode --runs 20 --reps 3
    grep summary: /tmp/cg.out.2 /tmp/cg.out.4 /tmp/cg.out.6
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from opentelemetry.sdk.resources import Resource

from bench.e2e.frames import FLOW, build_frames
from otel_bridge.core.engine import Engine
from otel_bridge.core.records import SpanRecord
from otel_bridge.sinks import otlp_wire
from otel_bridge.sinks.otlp_exporters import SENT, GrpcBytesExporter, Outcome
from otel_bridge.sinks.span_sinks import OtlpSink

RESOURCE = Resource.create({"service.name": "otel-bridge-bench"})


def span_records(runs: int, tasks: int, tag: str = "encode", seed: int = 7) -> list[SpanRecord]:
    """The sampled span records of the e2e benchmark's runs, in the order they finish."""
    engine = Engine()
    now = time.time_ns()
    records = []
    names, frames = build_frames(runs, tasks, tag, seed)
    for frame in frames:
        data = frame.data
        size = data[1] & 0x7F
        text = data[2 if size < 126 else 4 if size == 126 else 10 :].decode()
        for output in engine.receive(text, run=(FLOW, names[frame.run]), received_ns=now):
            if isinstance(output, SpanRecord) and output.sampled:
                records.append(output)
    return records


class CountingExporter(GrpcBytesExporter):
    """The bridge's gRPC exporter class, sending nothing: it counts requests and bytes."""

    def __init__(self) -> None:
        super().__init__(endpoint="http://127.0.0.1:9", insecure=True)
        self.requests = 0
        self.bytes = 0

    def export_bytes(self, data: bytes, spans: int) -> Outcome:
        """Count the request."""
        self.requests += 1
        self.bytes += len(data)
        return SENT


def one_pass(sink: OtlpSink, records: Sequence[SpanRecord], batch: int, cold: bool) -> float:
    """CPU µs per span (this thread's) to export every record in batches of ``batch``.

    Callgrind's ``--dump-before=time_thread_time`` cuts a profile at each pass's start
    and end (see the module docstring).
    """
    if cold:
        otlp_wire.clear_caches()
    start = time.thread_time()
    for at in range(0, len(records), batch):
        sink.export(records[at : at + batch])
    return (time.thread_time() - start) * 1e6 / len(records)


def timed(label: str, run: Callable[[], float], reps: int) -> list[float]:
    """Run ``reps`` times; print best and median."""
    results = [run() for _ in range(reps)]
    print(f"{label}: best {min(results):.2f}, median {statistics.median(results):.2f}")
    return results


def start_receiver(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    """``bench/e2e/receiver.py`` on the other CPU (if any); its gRPC port."""
    port_file = folder / "receiver.port"
    argv = [sys.executable, "-m", "bench.e2e.receiver", "--port-file", str(port_file)]
    if (os.cpu_count() or 1) >= 2:
        argv = ["taskset", "-c", "1", *argv]
        os.sched_setaffinity(0, {0})
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not port_file.exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise SystemExit("the receiver did not start")
        time.sleep(0.05)
    return proc, int(json.loads(port_file.read_text())["grpc"])


def grpc_pass(sink: OtlpSink, records: Sequence[SpanRecord], batch: int) -> tuple[float, float]:
    """CPU µs per span, this thread's and the process's, to send every record over gRPC."""
    thread, process = time.thread_time(), time.process_time()
    for at in range(0, len(records), batch):
        sink.export(records[at : at + batch])
    per_span = 1e6 / len(records)
    return (time.thread_time() - thread) * per_span, (time.process_time() - process) * per_span


def main() -> None:
    """Print the CPU µs per span of encoding (and of a gRPC export with ``--grpc``)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--cold", action="store_true", help="clear the caches every pass")
    parser.add_argument("--grpc", action="store_true", help="also export to a gRPC receiver")
    args = parser.parse_args()
    # Each pass gets runs of its own (new run names, task ids, payloads), as a bridge does.
    passes = [span_records(args.runs, args.tasks, f"p{n}", n) for n in range(args.reps)]
    records = passes[0]
    counting = CountingExporter()
    sink = OtlpSink(counting, RESOURCE)
    label = f"{len(records):,} spans, encoding only, CPU µs per span"
    batches = iter(passes)
    timed(label, lambda: one_pass(sink, next(batches), args.batch, args.cold), args.reps)
    print(f"  {counting.bytes / counting.requests:,.0f} bytes per request of {args.batch}")
    if not args.grpc:
        return
    with tempfile.TemporaryDirectory() as folder:
        proc, port = start_receiver(Path(folder))
        try:
            exporter = GrpcBytesExporter(endpoint=f"http://127.0.0.1:{port}", insecure=True)
            real = OtlpSink(exporter, RESOURCE)
            grpc_pass(real, records[: args.batch], args.batch)  # connect, warm up
            results = [grpc_pass(real, records, args.batch) for _ in range(args.reps)]
            for index, what in enumerate(("this thread", "the process")):
                values = [r[index] for r in results]
                print(
                    f"gRPC export, {what}, CPU µs per span: best {min(values):.2f}, "
                    f"median {statistics.median(values):.2f}"
                )
            real.shutdown()
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
