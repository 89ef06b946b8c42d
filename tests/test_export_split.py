"""OTLP requests stay under a size limit, oversized spans are trimmed, failures are classified."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource

from otel_bridge.core import semconv as K
from otel_bridge.core.records import AttributeValue, Result, SpanEvent, SpanRecord, StatusCode
from otel_bridge.core.redaction import CUT_MARK
from otel_bridge.core.trim import ESSENTIAL_KEYS, essentials, trim
from otel_bridge.errors import ExportError, ExportRejected
from otel_bridge.sinks.otlp import encoder_for
from otel_bridge.sinks.otlp_exporters import GrpcBytesExporter, HttpBytesExporter
from otel_bridge.sinks.otlp_wire import span_field
from otel_bridge.sinks.span_sinks import OtlpSink, otlp_sink_from_env
from support.otlp_receiver import GrpcReceiver, HttpReceiver
from support.ports import free_port

pytestmark = pytest.mark.integration  # starts OTLP receivers

RESOURCE = Resource.create({"service.name": "split-test"})
ENCODER = encoder_for(RESOURCE)
LIMIT = 64 * 1024
TRACE = 0x0AF7651916CD43DD8448EB211C80319C
ROOT_ID = 0x00F067AA0BA902B7
PROTOCOLS = ["grpc", "http/protobuf"]
Receiver = GrpcReceiver | HttpReceiver


def size_of(record: SpanRecord) -> int:
    """The size of a request holding only this record."""
    return ENCODER.request_size(len(span_field(record)))


def task(n: int, payload_bytes: int = 2000, **extra: AttributeValue) -> SpanRecord:
    """Task span ``n`` of the test run, with an output of ``payload_bytes`` bytes."""
    attributes: dict[str, AttributeValue] = {
        K.LAO_FLOW_NAME: "Split_Flow",
        K.LAO_RUN_NAME: "run-1",
        K.LAO_TASK_NAME: f"task_{n}",
        K.CICD_TASK_RUN_ID: f"task_{n}#1",
        K.CICD_TASK_RUN_RESULT: "failure" if n % 5 == 4 else "success",
        K.LAO_TASK_INPUT: '{"ticket":"' + "i" * 200 + '"}',
        K.LAO_TASK_OUTPUT: '{"answer":"' + "o" * payload_bytes + '"}',
        K.LAO_TASK_EXECUTION_TIME: 1.5,
        **extra,
    }
    failed = n % 5 == 4
    if failed:
        attributes[K.ERROR_TYPE] = "ValueError"
    return SpanRecord(
        kind="task",
        flow_name="Split_Flow",
        run_name="run-1",
        task_name=f"task_{n}",
        trace_id=TRACE,
        span_id=0x1000 + n,
        parent_span_id=ROOT_ID,
        parent_is_remote=False,
        name=f"execute_task task_{n}",
        start_ns=1_756_806_125_000_000_000 + n,
        end_ns=1_756_806_126_000_000_000 + n,
        attributes=attributes,
        events=(SpanEvent(K.EXCEPTION_EVENT, 1_756_806_126_000_000_000, {"x": "e" * 500}),),
        status=StatusCode.ERROR if failed else StatusCode.OK,
        status_message="bad input" if failed else None,
        result=Result.FAILURE if failed else Result.SUCCESS,
        error_type="ValueError" if failed else None,
    )


def root() -> SpanRecord:
    """The test run's root span."""
    return SpanRecord(
        kind="run",
        flow_name="Split_Flow",
        run_name="run-1",
        task_name=None,
        trace_id=TRACE,
        span_id=ROOT_ID,
        parent_span_id=None,
        parent_is_remote=False,
        name="invoke_workflow Split_Flow",
        start_ns=1_756_806_125_000_000_000,
        end_ns=1_756_806_130_000_000_000,
        attributes={K.LAO_FLOW_NAME: "Split_Flow", K.CICD_PIPELINE_RESULT: "success"},
        events=(),
        status=StatusCode.OK,
        status_message=None,
        result=Result.SUCCESS,
    )


@contextmanager
def receiving(protocol: str, **options: Any) -> Iterator[Receiver]:
    """A running receiver of ``protocol`` with the given fault options."""
    receiver: Receiver = GrpcReceiver(**options) if protocol == "grpc" else HttpReceiver(**options)
    with receiver:
        yield receiver


def sink_to(endpoint: str, protocol: str, limit: int = LIMIT, timeout: float = 1.0) -> OtlpSink:
    """An OTLP sink sending to ``endpoint`` with a short SDK timeout."""
    if protocol == "grpc":
        exporter: GrpcBytesExporter | HttpBytesExporter = GrpcBytesExporter(
            endpoint=endpoint, insecure=True, timeout=timeout
        )
    else:
        exporter = HttpBytesExporter(endpoint=endpoint, timeout=timeout)
    return OtlpSink(exporter, RESOURCE, f"otlp-{protocol}", max_request_bytes=limit)


def sink_for(receiver: Receiver, protocol: str, limit: int = LIMIT) -> OtlpSink:
    """An OTLP sink sending to ``receiver``."""
    return sink_to(receiver.endpoint, protocol, limit)


def span_ids(receiver: Receiver) -> list[str]:
    """The span ids the receiver got, in arrival order."""
    return [str(s["spanId"]) for s in receiver.spans()]


def attrs(span: dict[str, Any]) -> dict[str, object]:
    """A received span's attributes as {key: value}."""
    out: dict[str, object] = {}
    for item in span.get("attributes", []):
        (value,) = item["value"].values()
        out[item["key"]] = value
    return out


# -- splitting ------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_batch_over_the_limit_arrives_whole_in_requests_under_it(
    protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch encoding to ~5x the limit arrives whole, in order, as requests under the limit."""
    batch = [task(n) for n in range(150)] + [root()]
    assert len(ENCODER.request(batch)) > 4 * LIMIT
    # The gRPC receiver refuses anything over the limit, as a Collector does over its own.
    options = {"max_receive_bytes": LIMIT} if protocol == "grpc" else {}
    with receiving(protocol, **options) as receiver:
        prefix = "http://" if protocol == "grpc" else ""
        endpoint = prefix + receiver.endpoint.removesuffix("/v1/traces")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        sink = otlp_sink_from_env(RESOURCE, protocol, max_request_bytes=LIMIT)
        sink.export(batch)
        sink.shutdown()
    assert span_ids(receiver) == [r.span_id_hex for r in batch]
    assert len(receiver.sizes) >= 5 and max(receiver.sizes) <= LIMIT
    assert sink.trimmed == 0


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_batch_under_the_limit_is_one_request(protocol: str) -> None:
    """The common case: a batch that fits is sent as one request, exactly as encoded."""
    batch = [task(n) for n in range(10)] + [root()]
    with receiving(protocol) as receiver:
        sink = sink_for(receiver, protocol)
        sink.export(batch)
        sink.shutdown()
    assert receiver.sizes == [len(ENCODER.request(batch))]


def test_an_sdk_exporter_gets_the_same_split() -> None:
    """Any other SDK exporter (the reference path) gets the batch in requests under the limit."""
    batch = [task(n) for n in range(100)]
    with GrpcReceiver(max_receive_bytes=LIMIT) as receiver:
        exporter = OTLPSpanExporter(endpoint=receiver.endpoint, insecure=True, timeout=1)
        sink = OtlpSink(exporter, RESOURCE, max_request_bytes=LIMIT)
        sink.export(batch)
        sink.shutdown()
    assert span_ids(receiver) == [r.span_id_hex for r in batch]
    assert len(receiver.sizes) > 1 and max(receiver.sizes) <= LIMIT


# -- trimming on export ------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_oversized_span_arrives_trimmed_and_its_run_whole(
    protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Two spans over the limit arrive trimmed and flagged; root and siblings intact; one log."""
    big = [task(1, payload_bytes=3 * LIMIT), task(3, payload_bytes=LIMIT)]
    batch = [task(0), big[0], task(2), big[1], root()]
    with caplog.at_level(logging.DEBUG, "otel_bridge"), receiving(protocol) as receiver:
        sink = sink_for(receiver, protocol)
        sink.export(batch)
        sink.shutdown()
    received = {str(s["spanId"]): s for s in receiver.spans()}
    assert list(received) == [r.span_id_hex for r in batch]
    assert max(receiver.sizes) <= LIMIT
    for record in big:
        span = received[record.span_id_hex]
        got = attrs(span)
        assert got[K.LAO_PAYLOAD_TRUNCATED] is True
        output = str(got[K.LAO_TASK_OUTPUT])
        assert output.endswith(CUT_MARK)
        assert str(record.attributes[K.LAO_TASK_OUTPUT]).startswith(output.removesuffix(CUT_MARK))
        assert span["name"] == record.name and span["parentSpanId"] == f"{ROOT_ID:016x}"
        assert got[K.CICD_TASK_RUN_RESULT] == record.attributes[K.CICD_TASK_RUN_RESULT]
    for record in (batch[0], batch[2], batch[4]):
        got = attrs(received[record.span_id_hex])
        assert got == dict(record.attributes)
    assert sink.trimmed == 2
    lines = [r.getMessage() for r in caplog.records if "trimmed" in r.getMessage()]
    assert len(lines) == 1 and "2 of 5 spans" in lines[0]


# -- failures: retry later or refused for good -----------------------------------------------


def refusal_text(refusal: object) -> str:
    """How the error message names a refusal (a gRPC code or an HTTP status)."""
    return f"HTTP {refusal}" if isinstance(refusal, int) else str(getattr(refusal, "name", ""))


def failed_export(receiver: Receiver, protocol: str, batch: list[SpanRecord]) -> ExportError:
    """Export ``batch`` to ``receiver``, which must fail; the error raised."""
    sink = sink_for(receiver, protocol)
    with pytest.raises(ExportError) as caught:
        sink.export(batch)
    sink.shutdown()
    return caught.value


@pytest.mark.parametrize(
    ("protocol", "refusal", "permanent"),
    [
        ("grpc", grpc.StatusCode.INVALID_ARGUMENT, True),
        ("grpc", grpc.StatusCode.PERMISSION_DENIED, True),
        ("grpc", grpc.StatusCode.UNAUTHENTICATED, True),
        ("grpc", grpc.StatusCode.UNAVAILABLE, False),
        ("grpc", grpc.StatusCode.DEADLINE_EXCEEDED, False),
        ("http/protobuf", 400, True),
        ("http/protobuf", 403, True),
        ("http/protobuf", 413, True),
        ("http/protobuf", 408, False),
        ("http/protobuf", 429, False),
        ("http/protobuf", 500, False),
    ],
    ids=refusal_text,
)
def test_refusals_are_classified(protocol: str, refusal: object, permanent: bool) -> None:
    """Refused for good (gRPC non-retryable, HTTP 4xx but 408/429): ExportRejected; else not."""
    with receiving(protocol, accept_first=0, refuse_with=refusal) as receiver:
        error = failed_export(receiver, protocol, [task(0)])
    assert isinstance(error, ExportRejected) is permanent
    assert error.delivered == 0 and refusal_text(refusal) in str(error)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_unreachable_receiver_is_worth_retrying(protocol: str) -> None:
    """Nothing listening: ExportError (retry later), never ExportRejected."""
    port = free_port()
    endpoint = f"127.0.0.1:{port}" if protocol == "grpc" else f"http://127.0.0.1:{port}/v1/traces"
    sink = sink_to(endpoint, protocol, timeout=0.5)
    with pytest.raises(ExportError) as caught:
        sink.export([task(0), root()])
    sink.shutdown()
    assert not isinstance(caught.value, ExportRejected)
    assert caught.value.delivered == 0


def test_a_request_over_the_receivers_own_limit_is_refused_for_good() -> None:
    """A receiver limit below ours answers RESOURCE_EXHAUSTED without RetryInfo: rejected."""
    with GrpcReceiver(max_receive_bytes=LIMIT // 2) as receiver:
        error = failed_export(receiver, "grpc", [task(n) for n in range(40)])
    assert isinstance(error, ExportRejected) and "RESOURCE_EXHAUSTED" in str(error)


@pytest.mark.parametrize(
    ("protocol", "refusal", "permanent"),
    [
        ("grpc", grpc.StatusCode.INVALID_ARGUMENT, True),
        ("grpc", grpc.StatusCode.UNAVAILABLE, False),
        ("http/protobuf", 400, True),
        ("http/protobuf", 503, False),
    ],
    ids=["grpc-rejected", "grpc-unavailable", "http-400", "http-503"],
)
def test_delivered_counts_the_requests_acknowledged_before_a_failure(
    protocol: str, refusal: object, permanent: bool
) -> None:
    """When a later request fails, delivered is the spans of the earlier ones, which arrived."""
    batch = [task(n) for n in range(100)] + [root()]
    with receiving(protocol, accept_first=2, refuse_with=refusal) as receiver:
        error = failed_export(receiver, protocol, batch)
    assert isinstance(error, ExportRejected) is permanent
    arrived = span_ids(receiver)
    assert len(receiver.requests) == 2 and receiver.refused >= 1
    assert 0 < error.delivered == len(arrived) < len(batch)
    assert arrived == [r.span_id_hex for r in batch[: error.delivered]]


# -- trim, the pure function ---------------------------------------------------------------

BIG_TEXT = st.builds(lambda s, n: s * n, st.text(min_size=1, max_size=8), st.integers(1, 3000))
VALUES = st.one_of(
    BIG_TEXT, st.booleans(), st.integers(-(2**63), 2**63 - 1), st.lists(st.text(max_size=5))
)
KEYS = st.one_of(st.sampled_from(sorted(ESSENTIAL_KEYS)), st.text(min_size=1, max_size=12))
ATTRS = st.dictionaries(KEYS, VALUES, max_size=8)


@st.composite
def records(draw: st.DrawFn) -> SpanRecord:
    """A span record with large and small attributes on the span and its events."""
    events = draw(
        st.lists(st.builds(SpanEvent, st.text(max_size=10), st.integers(0, 2**63), ATTRS))
    )
    return SpanRecord(
        kind=draw(st.sampled_from(["run", "task"])),
        flow_name="F",
        run_name="r",
        task_name="t",
        trace_id=draw(st.integers(1, 2**128 - 1)),
        span_id=draw(st.integers(1, 2**64 - 1)),
        parent_span_id=draw(st.one_of(st.none(), st.integers(1, 2**64 - 1))),
        parent_is_remote=False,
        name=draw(st.text(max_size=40)),
        start_ns=1,
        end_ns=2,
        attributes=draw(ATTRS),
        events=tuple(events[:6]),
        status=draw(st.sampled_from(list(StatusCode))),
        status_message=draw(st.one_of(st.none(), st.text(max_size=30))),
        result=draw(st.sampled_from(list(Result))),
        error_type=draw(st.one_of(st.none(), st.text(max_size=10))),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records(), st.floats(0, 1.2))
def test_trim_always_fits_and_keeps_what_names_the_span(record: SpanRecord, share: float) -> None:
    """Any budget from the bare span up: the result fits, names/ids/status/result unchanged."""
    floor, full = size_of(essentials(record)), size_of(record)
    budget = floor + int(share * max(full - floor, 0))
    trimmed = trim(record, budget, size_of)
    assert size_of(trimmed) <= budget
    if full <= budget:
        assert trimmed is record
        return
    assert trimmed.attributes[K.LAO_PAYLOAD_TRUNCATED] is True
    for field in ("trace_id", "span_id", "parent_span_id", "name", "status", "status_message"):
        assert getattr(trimmed, field) == getattr(record, field)
    assert (trimmed.result, trimmed.error_type) == (record.result, record.error_type)
    for key, value in record.attributes.items():
        if key in ESSENTIAL_KEYS:
            assert trimmed.attributes[key] == value
    for key, value in trimmed.attributes.items():
        if key != K.LAO_PAYLOAD_TRUNCATED and value != record.attributes[key]:
            assert isinstance(value, str) and value.endswith(CUT_MARK)
            assert str(record.attributes[key]).startswith(value.removesuffix(CUT_MARK))


def test_trim_cuts_the_largest_attribute_and_only_as_far_as_needed() -> None:
    """A 100 KB output is cut to fit; the smaller input and the event keep every byte."""
    record = task(0, payload_bytes=100_000)
    trimmed = trim(record, LIMIT, size_of)
    assert LIMIT - 64 <= size_of(trimmed) <= LIMIT
    assert str(trimmed.attributes[K.LAO_TASK_OUTPUT]).endswith(CUT_MARK)
    assert trimmed.attributes[K.LAO_TASK_INPUT] == record.attributes[K.LAO_TASK_INPUT]
    assert trimmed.events == record.events


def test_trim_falls_back_to_the_essentials_when_cutting_is_not_enough() -> None:
    """Thousands of small attributes: names, result, flags and bare events are what is left."""
    many = {f"k{n}": "v" * 20 for n in range(5000)}
    record = task(4, payload_bytes=10, **many)
    trimmed = trim(record, 4096, size_of)
    assert size_of(trimmed) <= 4096
    assert [(e.name, e.time_ns, e.attributes) for e in trimmed.events] == [
        (e.name, e.time_ns, {}) for e in record.events
    ]
    assert trimmed.attributes[K.ERROR_TYPE] == "ValueError"
    assert trimmed.attributes[K.LAO_TASK_EXECUTION_TIME] == 1.5
    assert not any(key.startswith("k") for key in trimmed.attributes)
