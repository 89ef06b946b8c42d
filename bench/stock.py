r"""The bridge's job done the stock way: the baseline of the end-to-end benchmark.

Run (``bench/e2e/run.py`` starts it like the bridge, pinned to the same core)::

    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 OTEL_EXPORTER_OTLP_INSECURE=true \\
        .venv/bin/python -m bench.stock --upstream ws://127.0.0.1:8765 --metrics-port 0

then write one ``FLOW RUN`` pair per line to its standard input: each run is followed as
``POST /v1/runs`` makes the bridge follow it, on its own socket at
``{upstream}/ws/{flow}/{run}`` until ``flow_completed`` or ``flow_error``. It is what one
would write with the libraries everyone uses: a ``websockets`` client, ``json.loads``, SDK
spans (root per run, child per task, ended at the events' timestamps) with a
``BatchSpanProcessor`` and the SDK's OTLP/gRPC exporter (both configured by the standard
``OTEL_*`` variables), and ``prometheus_client`` counters served on ``--metrics-port``.
Payloads are kept as JSON text attributes, cut at 4096 characters, and not redacted
(``--no-payloads``: not kept, to see what they cost). It prints ``stock: ready`` once it
reads its input, and flushes its spans on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from datetime import datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, Status, StatusCode
from prometheus_client import Counter, start_http_server
from websockets.asyncio.client import connect

MAX_PAYLOAD = 4096
EVENTS = Counter("lao_events", "LAO events received", ["flow_name", "event_type"])
TASKS = Counter("lao_tasks", "Tasks ended", ["flow_name", "task_name", "result"])
RUNS = Counter("lao_runs", "Runs ended", ["flow_name", "result"])


def when_ns(value: Any) -> int | None:
    """An event timestamp (epoch seconds or ISO-8601) in ns."""
    if isinstance(value, int | float):
        return int(value * 1e9)
    if isinstance(value, str):
        return round(datetime.fromisoformat(value).timestamp() * 1e6) * 1000
    return None


def payload(value: Any) -> str:
    """A payload as a span attribute."""
    return json.dumps(value)[:MAX_PAYLOAD]


async def follow(
    tracer: trace.Tracer, upstream: str, flow: str, run: str, payloads: bool = True
) -> None:
    """Follow one run's socket and turn its events into spans and counts."""
    root: Span | None = None
    tasks: dict[str, Span] = {}
    async with connect(f"{upstream}/ws/{flow}/{run}") as ws:
        async for message in ws:
            event = json.loads(message)
            kind = event.get("event_type")
            if not kind:
                continue
            EVENTS.labels(flow, kind).inc()
            at = when_ns(event.get("timestamp"))
            if kind == "flow_started":
                root = tracer.start_span(
                    f"invoke_workflow {flow}",
                    start_time=at,
                    attributes={"lao.flow.name": flow, "lao.run.name": run},
                )
            elif kind == "task_started":
                name = event.get("task_name", "task")
                agent = (event.get("input") or {}).get("config", {}).get("agent_id")
                attrs = {
                    "lao.flow.name": flow,
                    "lao.run.name": run,
                    "lao.task.name": name,
                    "lao.task.id": event.get("task_id", ""),
                }
                if payloads:
                    attrs["lao.task.input"] = payload(event.get("input"))
                if agent:
                    attrs["gen_ai.agent.id"] = agent
                context = trace.set_span_in_context(root) if root else None
                tasks[event.get("task_id", name)] = tracer.start_span(
                    f"{'invoke_agent' if agent else 'execute_task'} {name}",
                    context=context,
                    start_time=at,
                    attributes=attrs,
                )
            elif kind in ("task_completed", "task_failed"):
                span = tasks.pop(event.get("task_id", event.get("task_name", "task")), None)
                if span is None:
                    continue
                if kind == "task_failed":
                    error = event.get("error") or {}
                    span.set_attribute("error.type", str(error.get("type", "_OTHER")))
                    span.set_status(Status(StatusCode.ERROR, str(error.get("message", ""))))
                elif payloads:
                    span.set_attribute("lao.task.output", payload(event.get("output")))
                span.end(end_time=at)
                result = "failure" if kind == "task_failed" else "success"
                TASKS.labels(flow, event.get("task_name", "task"), result).inc()
            elif kind in ("flow_completed", "flow_error"):
                if root is not None:
                    if kind == "flow_error":
                        root.set_status(Status(StatusCode.ERROR))
                    elif payloads:
                        root.set_attribute("lao.flow.output", payload(event.get("output")))
                    root.end(end_time=at)
                RUNS.labels(flow, "failure" if kind == "flow_error" else "success").inc()
                return


async def main_async(args: argparse.Namespace) -> None:
    """Follow the runs named on stdin until SIGTERM, then flush."""
    provider = TracerProvider(resource=Resource.create({"service.name": "lao-stock"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    tracer = provider.get_tracer("bench.stock")
    start_http_server(args.metrics_port, addr="127.0.0.1")
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    running: set[asyncio.Task[None]] = set()

    async def read_runs() -> None:
        while line := await reader.readline():
            flow, _, run = line.decode().strip().partition(" ")
            task = asyncio.create_task(follow(tracer, args.upstream, flow, run, args.payloads))
            running.add(task)
            task.add_done_callback(ended)

    def ended(task: asyncio.Task[None]) -> None:
        running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            print(f"stock: run lost: {task.exception()!r}", file=sys.stderr)

    print("stock: ready", flush=True)
    reading = asyncio.create_task(read_runs())
    await stop.wait()
    for task in (reading, *running):
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(reading, *running, return_exceptions=True)
    provider.shutdown()


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--upstream", required=True, help="ws://host:port of the LAO socket")
    parser.add_argument("--metrics-port", type=int, default=0, help="Prometheus port (0: any)")
    parser.add_argument(
        "--payloads",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep inputs and outputs as span attributes (default: yes)",
    )
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
