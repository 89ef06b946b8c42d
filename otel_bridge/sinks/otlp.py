"""Span records on the wire: OTLP protobuf bytes, OTLP/JSON for files, SDK spans as reference.

:func:`encoder_for` gives the direct encoder (:mod:`.otlp_wire`) of a resource: the OTLP
exporters send its bytes, and the file sink writes the same message as OTLP/JSON, so a
span written to a file is the message a Collector or Jaeger receives.
:func:`to_readable_span` builds the SDK's own span of a record: the reference the direct
encoder is tested against.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, TraceFlags, TraceState
from opentelemetry.trace import StatusCode as OtelStatusCode

from otel_bridge import __version__
from otel_bridge.core import semconv as K
from otel_bridge.core.records import AttributeValue, SpanRecord, StatusCode
from otel_bridge.sinks.otlp_wire import Encoder

SCOPE = InstrumentationScope("otel_bridge", __version__, schema_url=K.SCHEMA_URL)
_STATUS = {
    StatusCode.UNSET: OtelStatusCode.UNSET,
    StatusCode.OK: OtelStatusCode.OK,
    StatusCode.ERROR: OtelStatusCode.ERROR,
}
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


def to_readable_span(record: SpanRecord, resource: Resource) -> ReadableSpan:
    """Build the SDK span an OTLP exporter sends for this record."""
    state = TraceState.from_header([record.trace_state]) if record.trace_state else None
    context = SpanContext(
        record.trace_id, record.span_id, is_remote=False, trace_flags=_SAMPLED, trace_state=state
    )
    parent = None
    if record.parent_span_id is not None:
        parent = SpanContext(
            record.trace_id,
            record.parent_span_id,
            is_remote=record.parent_is_remote,
            trace_flags=_SAMPLED,
        )
    description = record.status_message if record.status is StatusCode.ERROR else None
    return ReadableSpan(
        name=record.name,
        context=context,
        parent=parent,
        resource=resource,
        attributes=dict(record.attributes),
        events=[Event(e.name, dict(e.attributes), e.time_ns) for e in record.events],
        kind=SpanKind.CLIENT if record.client else SpanKind.INTERNAL,
        status=Status(_STATUS[record.status], description),
        start_time=record.start_ns,
        end_time=record.end_ns,
        instrumentation_scope=SCOPE,
    )


def _hex_ids(value: Any) -> Any:
    """Rewrite protobuf-JSON base64 ids as the hex strings OTLP/JSON requires."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in ("traceId", "spanId", "parentSpanId") and isinstance(item, str):
                out[key] = base64.b64decode(item).hex()
            else:
                out[key] = _hex_ids(item)
        return out
    if isinstance(value, list):
        return [_hex_ids(item) for item in value]
    return value


def encoder_for(resource: Resource) -> Encoder:
    """The direct OTLP encoder of spans of ``resource``, in the bridge's scope."""
    attrs: dict[str, AttributeValue] = {}
    for key, value in resource.attributes.items():
        if isinstance(value, str | bool | int | float):
            attrs[key] = value
        elif isinstance(value, Sequence):
            attrs[key] = [str(item) for item in value]
    return Encoder(
        attrs,
        SCOPE.name,
        SCOPE.version or "",
        resource.schema_url or "",
        SCOPE.schema_url or "",
    )


def traces_data(records: Iterable[SpanRecord], resource: Resource) -> dict[str, Any]:
    """Encode records as one OTLP/JSON ``TracesData`` object (Collector file-exporter form)."""
    wire = encoder_for(resource).request(records)
    request = ExportTraceServiceRequest.FromString(wire)
    as_dict = MessageToDict(request, use_integers_for_enums=True)
    return dict(_hex_ids(as_dict))


def spans_of(data: dict[str, Any]) -> Sequence[dict[str, Any]]:
    """Flatten the spans of an OTLP/JSON ``TracesData`` object (for readers and tests)."""
    return [
        span
        for resource_spans in data.get("resourceSpans", [])
        for scope_spans in resource_spans.get("scopeSpans", [])
        for span in scope_spans.get("spans", [])
    ]
