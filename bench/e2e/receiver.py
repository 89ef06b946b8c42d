"""The OTLP/gRPC receiver of the end-to-end benchmark: counts spans, cheaply.

Run (``bench/e2e/run.py`` starts it, pinned next to the source)::

    .venv/bin/python -m bench.e2e.receiver --port-file PATH

It implements ``opentelemetry.proto.collector.trace.v1.TraceService/Export`` with the
classes generated in ``opentelemetry-proto`` and keeps, per span, only (trace id, span id) to
count unique spans and duplicates, and the time of the first arrival of the span's lag key:
``lao.task.id`` for a task span, ``run:`` + ``lao.run.name`` for a root span (the source
keys its send times the same way). Times are ``time.monotonic_ns`` at the start of the
``Export`` call, comparable with the source's across processes.

A tiny HTTP server on another port answers ``GET /status`` (unique, total, duplicates,
requests, first_ns, last_ns: last_ns is the arrival of the last new span) and
``GET /arrivals`` (lag key -> ns). Both ports are written to ``--port-file`` as JSON
(``{"grpc": ..., "http": ...}``) once they accept connections.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]  # no types-grpcio in the dev extras
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

TASK_ID = "lao.task.id"
RUN_NAME = "lao.run.name"


class Counts(trace_service_pb2_grpc.TraceServiceServicer):
    """The servicer and what it saw."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: set[bytes] = set()
        self.arrivals: dict[str, int] = {}
        self.total = 0
        self.requests = 0
        self.first_ns: int | None = None
        self.last_ns: int | None = None

    def Export(  # the generated service's method name
        self,
        request: trace_service_pb2.ExportTraceServiceRequest,
        context: grpc.ServicerContext,
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        """Count the request's spans."""
        now = time.monotonic_ns()
        ids: list[bytes] = []
        keys: list[str | None] = []
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    ids.append(span.trace_id + span.span_id)
                    task = run = None
                    for kv in span.attributes:
                        if kv.key == TASK_ID:
                            task = kv.value.string_value
                            break
                        if kv.key == RUN_NAME:
                            run = kv.value.string_value
                    keys.append(task if task is not None else None if run is None else "run:" + run)
        with self.lock:
            self.requests += 1
            self.total += len(ids)
            if self.first_ns is None:
                self.first_ns = now
            new = False
            for span_id, key in zip(ids, keys, strict=True):
                if span_id not in self.seen:
                    self.seen.add(span_id)
                    new = True
                    if key is not None:
                        self.arrivals.setdefault(key, now)
            if new:
                self.last_ns = now
        return trace_service_pb2.ExportTraceServiceResponse()

    def status(self) -> dict[str, Any]:
        """What the runner polls."""
        with self.lock:
            return {
                "unique": len(self.seen),
                "total": self.total,
                "duplicates": self.total - len(self.seen),
                "requests": self.requests,
                "first_ns": self.first_ns,
                "last_ns": self.last_ns,
            }


def http_server(counts: Counts) -> ThreadingHTTPServer:
    """The status server (not started)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/status":
                body = json.dumps(counts.status()).encode()
            elif self.path == "/arrivals":
                with counts.lock:
                    body = json.dumps(counts.arrivals).encode()
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


def main() -> None:
    """Serve until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    counts = Counts()
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=args.workers),
        options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
    )
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(counts, server)  # type: ignore[no-untyped-call]
    grpc_port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    status = http_server(counts)
    threading.Thread(target=status.serve_forever, daemon=True).start()
    temp = Path(args.port_file + ".tmp")
    temp.write_text(json.dumps({"grpc": grpc_port, "http": status.server_address[1]}))
    os.replace(temp, args.port_file)
    print(f"receiver: OTLP/gRPC on {grpc_port}, status on {status.server_address[1]}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass
    status.shutdown()
    server.stop(0)


if __name__ == "__main__":
    main()
