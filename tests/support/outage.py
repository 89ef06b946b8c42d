"""An OTLP/gRPC receiver on a fixed port that can be stopped and started again (an outage)."""

from __future__ import annotations

from concurrent import futures
from typing import Any

import aiohttp
import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

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


async def scrape(http: aiohttp.ClientSession, metrics_url: str) -> dict[str, float]:
    """The bridge's metrics as ``{'name{k="v",...}': value}`` (labels sorted)."""
    async with http.get(f"{metrics_url}/metrics") as response:
        text = await response.text()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out


def total(metrics: dict[str, float], name: str) -> float:
    """The sum of every series of ``name``."""
    return sum(v for k, v in metrics.items() if k == name or k.startswith(name + "{"))
