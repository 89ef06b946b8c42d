"""Real OTLP receivers on loopback, built from the opentelemetry-proto messages (gRPC and HTTP).

By default they accept every request. Scripted faults: accept the first ``accept_first``
requests, then refuse every later one (``refuse_with``: a gRPC status code, or an HTTP
status); the gRPC receiver can also take a ``max_receive_bytes`` as a Collector does
(larger requests are refused by gRPC itself with RESOURCE_EXHAUSTED). ``sizes`` holds the
byte size of every accepted request; refused ones are counted in ``refused``.
"""

from __future__ import annotations

import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from otel_bridge.sinks.otlp import _hex_ids


class _Store:
    def __init__(self, accept_first: int | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.sizes: list[int] = []
        self.refused = 0
        self.cond = threading.Condition()
        self._accept_first = accept_first

    def accepts(self) -> bool:
        """Whether the next request is accepted (else it is counted as refused)."""
        with self.cond:
            if self._accept_first is None or len(self.requests) < self._accept_first:
                return True
            self.refused += 1
            return False

    def add(self, request: trace_service_pb2.ExportTraceServiceRequest, size: int = 0) -> None:
        as_dict = _hex_ids(MessageToDict(request, use_integers_for_enums=True))
        with self.cond:
            self.requests.append(as_dict)
            self.sizes.append(size or request.ByteSize())
            self.cond.notify_all()

    def spans(self) -> list[dict[str, Any]]:
        with self.cond:
            return [
                span
                for req in self.requests
                for rs in req.get("resourceSpans", [])
                for ss in rs.get("scopeSpans", [])
                for span in ss.get("spans", [])
            ]

    def resources(self) -> list[dict[str, Any]]:
        with self.cond:
            return [rs.get("resource", {}) for r in self.requests for rs in r["resourceSpans"]]

    def wait_spans(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        with self.cond:
            self.cond.wait_for(
                lambda: (
                    sum(
                        len(ss.get("spans", []))
                        for req in self.requests
                        for rs in req.get("resourceSpans", [])
                        for ss in rs.get("scopeSpans", [])
                    )
                    >= count
                ),
                timeout,
            )
        return self.spans()


class GrpcReceiver(_Store):
    """An OTLP/gRPC trace receiver on 127.0.0.1:<free port>."""

    def __init__(
        self,
        *,
        max_receive_bytes: int | None = None,
        accept_first: int | None = None,
        refuse_with: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT,
    ) -> None:
        super().__init__(accept_first)
        store = self

        class Servicer(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:
                if not store.accepts():
                    context.abort(refuse_with, "refused by the test receiver")
                store.add(request)
                return trace_service_pb2.ExportTraceServiceResponse()

        options = []
        if max_receive_bytes is not None:
            options.append(("grpc.max_receive_message_length", max_receive_bytes))
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), options=options)
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Servicer(), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.endpoint = f"127.0.0.1:{self.port}"

    def __enter__(self) -> GrpcReceiver:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop(0).wait()


class HttpReceiver(_Store):
    """An OTLP/HTTP (protobuf) trace receiver on 127.0.0.1:<free port>, path /v1/traces."""

    def __init__(self, *, accept_first: int | None = None, refuse_with: int = 400) -> None:
        super().__init__(accept_first)
        store = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = 200 if self.path == "/v1/traces" else 404
                if status == 200 and not store.accepts():
                    status = refuse_with
                if status == 200:
                    request = trace_service_pb2.ExportTraceServiceRequest()
                    request.ParseFromString(body)
                    store.add(request, len(body))
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()
                self.wfile.write(trace_service_pb2.ExportTraceServiceResponse().SerializeToString())

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}/v1/traces"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> HttpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
