"""The direct OTLP encoder writes what the SDK's encoder writes, for any span record."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource

from helpers import run_events, seed_events
from otel_bridge import __version__
from otel_bridge.core.records import Result, SpanEvent, SpanRecord, StatusCode
from otel_bridge.core.redaction import CaptureMode, PayloadPolicy
from otel_bridge.sinks.otlp import encoder_for, to_readable_span
from otel_bridge.sinks.otlp_wire import varint

RESOURCE = Resource.create({"service.name": "wire-test", "service.instance.id": "i-1"})
VALUES = st.one_of(
    st.text(max_size=30),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.lists(st.text(max_size=10), max_size=4),
)
ATTRS = st.dictionaries(st.text(min_size=1, max_size=20), VALUES, max_size=8)


def reference(records: list[SpanRecord]) -> ExportTraceServiceRequest:
    """What the SDK's own encoder makes of the records."""
    return encode_spans([to_readable_span(r, RESOURCE) for r in records])


def direct(records: list[SpanRecord]) -> ExportTraceServiceRequest:
    """What the direct encoder writes, parsed back."""
    return ExportTraceServiceRequest.FromString(encoder_for(RESOURCE).request(records))


@st.composite
def records(draw: st.DrawFn) -> SpanRecord:
    """Any span record the engine could build."""
    status = draw(st.sampled_from(list(StatusCode)))
    parent = draw(st.one_of(st.none(), st.integers(1, 2**64 - 1)))
    events = draw(
        st.lists(
            st.builds(SpanEvent, st.text(max_size=20), st.integers(0, 2**63 - 1), ATTRS),
            max_size=3,
        )
    )
    return SpanRecord(
        kind=draw(st.sampled_from(["run", "task"])),
        flow_name="F",
        run_name="r",
        task_name=None,
        trace_id=draw(st.integers(1, 2**128 - 1)),
        span_id=draw(st.integers(1, 2**64 - 1)),
        parent_span_id=parent,
        parent_is_remote=parent is not None and draw(st.booleans()),
        name=draw(st.text(max_size=40)),
        start_ns=draw(st.integers(0, 2**63 - 1)),
        end_ns=draw(st.integers(0, 2**63 - 1)),
        attributes=draw(ATTRS),
        events=tuple(events),
        status=status,
        status_message=draw(st.one_of(st.none(), st.text(max_size=30))),
        result=Result.SUCCESS,
        trace_state=draw(st.sampled_from(["", "vendor=value", "a=1,b=2"])),
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(records(), min_size=1, max_size=5))
def test_direct_encoding_equals_the_sdk_encoding(batch: list[SpanRecord]) -> None:
    """Generated records encode to the very message the SDK's encoder builds."""
    assert direct(batch) == reference(batch)


def test_seed_runs_encode_like_the_sdk_in_every_capture_mode() -> None:
    """The seed's runs (payloads, errors, exception events) encode as the SDK encodes them."""
    for mode in CaptureMode:
        batch = run_events(seed_events(), policy=PayloadPolicy(mode), close=Result.CANCELLATION)
        assert direct(batch) == reference(batch)


def test_scope_and_resource_are_the_bridge_s() -> None:
    """The instrumentation scope is otel_bridge at its version; the resource is the given one."""
    message = direct(run_events(seed_events()))
    (resource_spans,) = message.resource_spans
    attrs = {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes}
    assert attrs["service.name"] == "wire-test"
    (scope_spans,) = resource_spans.scope_spans
    assert (scope_spans.scope.name, scope_spans.scope.version) == ("otel_bridge", __version__)


def test_varints_round_trip_like_protobuf() -> None:
    """Varints of zero, boundaries and negative int64 are protobuf's."""
    assert varint(0) == b"\x00"
    assert varint(127) == b"\x7f"
    assert varint(128) == b"\x80\x01"
    assert varint(-1) == b"\xff" * 9 + b"\x01"
