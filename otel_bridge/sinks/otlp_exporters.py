"""The SDK's OTLP exporters, sending bytes the direct encoder wrote.

Each class subclasses the OpenTelemetry SDK exporter of its protocol and replaces only its
translation step (``ReadableSpan`` → request message) by bytes already encoded
(:mod:`.otlp_wire`). Everything else stays the SDK's: every ``OTEL_EXPORTER_OTLP_*``
variable (endpoint, headers, TLS certificates, compression, timeout), its retries with
backoff, its channel re-initialisation and its own metrics.

``export_bytes`` answers an :class:`Outcome`: sent, worth retrying later, or refused for
good. Refused for good, as the OTLP specification says: gRPC codes that are not retryable
(:data:`PERMANENT_GRPC_CODES`; ``RESOURCE_EXHAUSTED`` too unless the receiver sent a
``RetryInfo``, since a message over its size limit is refused so), HTTP 4xx other than
408 and 429. Anything else (no answer, a timeout, 5xx, ``UNAVAILABLE``) is worth retrying.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc  # type: ignore[import-untyped]  # no types-grpcio in the dev extras
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as SdkGrpcExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as SdkHttpExporter,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace.export import SpanExportResult

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
# gRPC codes a request is refused with for good (OTLP specification, "Failures").
PERMANENT_GRPC_CODES = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAUTHENTICATED,
    }
)
RETRY_INFO_KEY = "google.rpc.retryinfo-bin"
RETRYABLE_HTTP_4XX = frozenset({408, 429})


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one request: sent, or not (then whether it was refused for good)."""

    sent: bool
    permanent: bool = False
    reason: str = ""


SENT = Outcome(sent=True)


def _identity(data: bytes) -> bytes:
    return data


class _Errors:
    """The gRPC errors of one request's attempts (shared: the SDK re-creates its stub)."""

    def __init__(self) -> None:
        self.seen: list[Any] = []


class _BytesStub:
    """A TraceService stub whose requests are already serialised; it remembers errors."""

    def __init__(self, channel: Any, errors: _Errors | None = None) -> None:
        self._call = channel.unary_unary(
            EXPORT_METHOD,
            request_serializer=_identity,
            response_deserializer=ExportTraceServiceResponse.FromString,
        )
        self._errors = errors or _Errors()

    def Export(self, request: bytes, **kwargs: Any) -> Any:
        """Send one request; remember its error for the exporter before the SDK handles it."""
        try:
            return self._call(request, **kwargs)
        except grpc.RpcError as error:
            self._errors.seen.append(error)
            raise


def _grpc_error_outcome(error: Any) -> Outcome:
    """What one gRPC error says of the request."""
    code = error.code()
    reason = f"{code.name}: {error.details()}"
    permanent = code in PERMANENT_GRPC_CODES
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        permanent = dict(error.trailing_metadata() or ()).get(RETRY_INFO_KEY) is None
    return Outcome(sent=False, permanent=permanent, reason=reason)


def _grpc_outcome(errors: list[Any]) -> Outcome:
    """The outcome of a request the SDK gave up on after ``errors``, one per attempt.

    Refused for good once is for good: the SDK retries ``RESOURCE_EXHAUSTED`` itself until
    its deadline, so the last error of a request over the receiver's size limit is a
    ``DEADLINE_EXCEEDED`` that says nothing of the request.
    """
    outcomes = [_grpc_error_outcome(error) for error in errors]
    for outcome in outcomes:
        if outcome.permanent:
            return outcome
    return outcomes[-1] if outcomes else Outcome(sent=False, reason="no answer")


def _http_outcome(status: int | None, reason: str | None, error: object) -> Outcome:
    """The outcome of a POST the SDK client gave up on (``status`` None: no answer)."""
    if status is None:
        return Outcome(sent=False, reason=str(error or "no answer"))
    permanent = 400 <= status < 500 and status not in RETRYABLE_HTTP_4XX
    return Outcome(sent=False, permanent=permanent, reason=f"HTTP {status} {reason or ''}".strip())


class GrpcBytesExporter(SdkGrpcExporter):
    """OTLP/gRPC: the SDK exporter, sending pre-encoded ``ExportTraceServiceRequest`` bytes."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        errors = self._errors = _Errors()
        # Also used when the SDK re-creates its channel (after UNAVAILABLE).
        self._stub = lambda channel: _BytesStub(channel, errors)
        # The SDK types its client as the generated stub; this one sends bytes as they are.
        self._client = _BytesStub(self._channel, errors)  # type: ignore[assignment]
        self._batch_spans = 0

    def _translate_data(self, data: Any) -> Any:
        return data

    def _count_data(self, data: Any) -> int:
        return self._batch_spans

    def export_bytes(self, data: bytes, spans: int) -> Outcome:
        """Send one encoded request of ``spans`` spans (with the SDK's retries)."""
        self._batch_spans = spans
        self._errors.seen.clear()
        # _export passes data through _translate_data above, so bytes are what it sends.
        if self._export(data) is SpanExportResult.SUCCESS:  # type: ignore[arg-type]
            return SENT
        return _grpc_outcome(self._errors.seen)


class HttpBytesExporter(SdkHttpExporter):
    """OTLP/HTTP (protobuf): the SDK exporter, posting pre-encoded request bytes."""

    def export_bytes(self, data: bytes, spans: int) -> Outcome:
        """Post one encoded request of ``spans`` spans (with the SDK client's retries)."""
        if self._shutdown:
            return Outcome(sent=False, reason="exporter shut down")
        with self._metrics.export_operation(spans) as result:
            answer = self._client.export(data)
            if not answer.success:
                result.error = answer.error
                return _http_outcome(answer.status_code, answer.reason, answer.error)
        return SENT


BytesExporter = GrpcBytesExporter | HttpBytesExporter


def bytes_exporter(protocol: str) -> BytesExporter:
    """The exporter of ``protocol`` (``grpc`` or ``http/protobuf``), configured from OTEL_*."""
    if protocol == "grpc":
        return GrpcBytesExporter()
    return HttpBytesExporter()
