"""An OTLP/gRPC receiver on a fixed port that can be stopped and started again (an outage)."""

from __future__ import annotations

from concurrent import futures
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from .otlp_receiver import _Store
from .ports import free_port


class RestartableReceiver(_Store):
    """Keeps every request it received across restarts; ``stop`` makes the port refuse."""

    def __init__(self, port: int | None = None) -> None:
        super().__init__()
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server: grpc.Server | None = None

    def start(self) -> None:
        """Listen (again) on the same port."""
        store = self

        class Servicer(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:
                store.add(request)
                return trace_service_pb2.ExportTraceServiceResponse()

        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Servicer(), server)
        server.add_insecure_port(f"127.0.0.1:{self.port}")
        server.start()
        self._server = server

    def stop(self) -> None:
        """Stop listening: connections are refused until :meth:`start`."""
        if self._server is not None:
            self._server.stop(0).wait()
            self._server = None

    def span_ids(self) -> list[str]:
        """Every span id received, duplicates included."""
        return [span["spanId"] for span in self.spans()]
