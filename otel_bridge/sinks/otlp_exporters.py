"""The SDK's OTLP exporters, sending bytes the direct encoder wrote.

Each class subclasses the OpenTelemetry SDK exporter of its protocol and replaces only its
translation step (``ReadableSpan`` → request message) by bytes already encoded
(:mod:`.otlp_wire`). Everything else stays the SDK's: every ``OTEL_EXPORTER_OTLP_*``
variable (endpoint, headers, TLS certificates, compression, timeout), its retries with
backoff, its channel re-initialisation and its own metrics.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as SdkGrpcExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as SdkHttpExporter,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace.export import SpanExportResult

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _identity(data: bytes) -> bytes:
    return data


class _BytesStub:
    """A TraceService stub whose requests are already serialised."""

    def __init__(self, channel: Any) -> None:
        self.Export = channel.unary_unary(
            EXPORT_METHOD,
            request_serializer=_identity,
            response_deserializer=ExportTraceServiceResponse.FromString,
        )


class GrpcBytesExporter(SdkGrpcExporter):
    """OTLP/gRPC: the SDK exporter, sending pre-encoded ``ExportTraceServiceRequest`` bytes."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._stub = _BytesStub  # also used when the SDK re-creates its channel
        # The SDK types its client as the generated stub; this one sends bytes as they are.
        self._client = _BytesStub(self._channel)  # type: ignore[assignment]
        self._batch_spans = 0

    def _translate_data(self, data: Any) -> Any:
        return data

    def _count_data(self, data: Any) -> int:
        return self._batch_spans

    def export_bytes(self, data: bytes, spans: int) -> bool:
        """Send one encoded request of ``spans`` spans (with the SDK's retries)."""
        self._batch_spans = spans
        # _export passes data through _translate_data above, so bytes are what it sends.
        return bool(self._export(data) is SpanExportResult.SUCCESS)  # type: ignore[arg-type]


class HttpBytesExporter(SdkHttpExporter):
    """OTLP/HTTP (protobuf): the SDK exporter, posting pre-encoded request bytes."""

    def export_bytes(self, data: bytes, spans: int) -> bool:
        """Post one encoded request of ``spans`` spans (with the SDK client's retries)."""
        if self._shutdown:
            return False
        with self._metrics.export_operation(spans) as result:
            outcome = self._client.export(data)
            if not outcome.success:
                result.error = outcome.error
                return False
        return True


BytesExporter = GrpcBytesExporter | HttpBytesExporter


def bytes_exporter(protocol: str) -> BytesExporter:
    """The exporter of ``protocol`` (``grpc`` or ``http/protobuf``), configured from OTEL_*."""
    if protocol == "grpc":
        return GrpcBytesExporter()
    return HttpBytesExporter()
