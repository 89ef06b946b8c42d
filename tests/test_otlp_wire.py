"""The direct OTLP encoder writes what the SDK's encoder writes, for any span record."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.sdk.resources import Resource

from helpers import run_events, seed_events
from otel_bridge import __version__
from otel_bridge.core.records import AttributeValue, Result, SpanEvent, SpanRecord, StatusCode
from otel_bridge.core.redaction import CaptureMode, PayloadPolicy
from otel_bridge.sinks import otlp_wire
from otel_bridge.sinks.otlp import encoder_for, to_readable_span
from otel_bridge.sinks.otlp_wire import span_field, varint

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


def spans_of(message: ExportTraceServiceRequest) -> list[Span]:
    """Every span of a request."""
    return [s for rs in message.resource_spans for ss in rs.scope_spans for s in ss.spans]


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


# -- the caches: bounded, and never a wrong encoding ----------------------------------------


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    """Every test starts and ends with empty encoder caches."""
    otlp_wire.clear_caches()
    yield
    otlp_wire.clear_caches()


def task_record(n: int, attributes: dict[str, AttributeValue], **fields: Any) -> SpanRecord:
    """Task span ``n`` of one run, with the given attributes."""
    values: dict[str, Any] = {
        "kind": "task",
        "flow_name": "F",
        "run_name": "r",
        "task_name": f"t{n % 3}",
        "trace_id": 0x0AF7651916CD43DD8448EB211C80319C,
        "span_id": n + 1,
        "parent_span_id": 0x00F067AA0BA902B7,
        "parent_is_remote": False,
        "name": f"execute_task t{n % 3}",
        "start_ns": 1_700_000_000_000_000_000 + n,
        "end_ns": 1_700_000_001_000_000_000 + n,
        "attributes": attributes,
        "events": (),
        "status": StatusCode.OK,
        "status_message": None,
        "result": Result.SUCCESS,
        **fields,
    }
    return SpanRecord(**values)


def test_one_key_with_different_values_encodes_each_value() -> None:
    """A key seen with many values, each repeated, gets each value's own encoding."""
    batch = [task_record(n, {"k": f"value-{n % 5}", "const": "same"}) for n in range(30)]
    assert direct(batch) == reference(batch)
    assert direct(batch) == reference(batch)  # now from the cache
    assert otlp_wire.cache_sizes()["pairs"] == 6


def test_equal_values_of_other_types_never_share_an_encoding() -> None:
    """The string 1, 1, True, 1.0, 0.0 and -0.0 under one key each encode as their own type."""
    values: list[AttributeValue] = ["1", 1, True, 1.0, 0.0, -0.0, "1", ["1"], 1, True]
    batch = [task_record(n, {"k": v}) for n, v in enumerate(values)]
    assert direct(batch) == reference(batch)
    kinds = [kv.value.WhichOneof("value") for s in spans_of(direct(batch)) for kv in s.attributes]
    expected = ["string", "int", "bool", "double", "double", "double", "string", "array"]
    assert kinds[:8] == [f"{kind}_value" for kind in expected]


def test_a_full_cache_starts_over_and_stays_within_its_bounds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past MAX_CACHED_PAIRS or MAX_CACHED_BYTES the cache is emptied; encodings stay right."""
    monkeypatch.setattr(otlp_wire, "MAX_CACHED_PAIRS", 4)
    monkeypatch.setattr(otlp_wire, "MAX_CACHED_BYTES", 200)
    batch = [task_record(n, {f"k{n % 3}": f"v{n % 7}", "x": "y" * 40}) for n in range(60)]
    for _ in range(3):
        assert direct(batch) == reference(batch)
        sizes = otlp_wire.cache_sizes()
        assert sizes["pairs"] <= 4 and sizes["bytes"] <= 200


def test_a_key_with_new_values_in_most_spans_stops_being_cached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ids new in every span fill the key's quota fast: the key is then encoded every time."""
    monkeypatch.setattr(otlp_wire, "MAX_NEW_VALUES", 8)
    batch = [task_record(n, {"lao.task.id": f"id-{n}", "flow": "F"}) for n in range(40)]
    assert direct(batch) == reference(batch)
    sizes = otlp_wire.cache_sizes()
    assert sizes["uncached_keys"] == 1
    assert sizes["pairs"] < 8 + 1  # the ids kept before the key was given up, and "flow"
    more = [task_record(n, {"lao.task.id": f"id-{n}", "flow": "F"}) for n in range(40, 60)]
    assert direct(more) == reference(more)
    assert otlp_wire.cache_sizes()["pairs"] == sizes["pairs"]


def test_a_key_whose_values_repeat_stays_cached_past_its_quota(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Many values, each in many spans (run names): the key keeps being cached."""
    monkeypatch.setattr(otlp_wire, "MAX_NEW_VALUES", 8)
    batch = [task_record(n, {"lao.run.name": f"run-{n // 20}"}) for n in range(400)]
    assert direct(batch) == reference(batch)
    assert otlp_wire.cache_sizes()["uncached_keys"] == 0


def test_long_values_are_never_cached() -> None:
    """A payload-sized value is encoded every time and its key is not cached at all."""
    long = "p" * (otlp_wire.MAX_CACHED_VALUE_CHARS + 1)
    batch = [task_record(n, {"payload": long, "short": "s"}) for n in range(5)]
    batch.append(task_record(5, {"payload": "short now", "short": "s"}))
    assert direct(batch) == reference(batch)
    sizes = otlp_wire.cache_sizes()
    assert (sizes["uncached_keys"], sizes["pairs"]) == (1, 1)


def test_names_errors_events_and_traces_caches_are_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Span names, error messages, exception events and trace ids: at most their bound."""
    monkeypatch.setattr(otlp_wire, "MAX_CACHED", 3)
    batch = [
        task_record(
            n,
            {},
            name=f"span {n}",
            trace_id=n + 1,
            status=StatusCode.ERROR,
            status_message=f"failed {n % 5}",
            events=(SpanEvent("exception", n, {"exception.type": f"E{n % 4}"}),),
        )
        for n in range(40)
    ]
    assert direct(batch) == reference(batch)
    sizes = otlp_wire.cache_sizes()
    assert max(sizes["names"], sizes["errors"], sizes["events"]) <= 3
    assert sizes["traces"] <= 4 * 3


def test_events_with_equal_attributes_of_other_types_encode_apart() -> None:
    """Event attributes 1 and True (equal in Python) and lists are not taken from the cache."""
    events = [
        SpanEvent("e", 1, {"k": 1}),
        SpanEvent("e", 2, {"k": True}),
        SpanEvent("e", 3, {"k": "1"}),
        SpanEvent("e", 4, {"k": ["1"]}),
    ]
    batch = [task_record(n, {}, events=(e,)) for n, e in enumerate(events * 2)]
    assert direct(batch) == reference(batch)


def test_requests_join_span_fields_like_wrap_does() -> None:
    """``join`` of span fields is ``wrap`` of their concatenation, and request_size fits it."""
    encoder = encoder_for(RESOURCE)
    fields = [span_field(task_record(n, {"k": "v" * n})) for n in range(0, 300, 37)]
    joined = encoder.join(fields)
    assert joined == encoder.wrap(b"".join(fields))
    assert len(joined) == encoder.request_size(sum(map(len, fields)))
