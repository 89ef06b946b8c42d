"""The real Jaeger and Prometheus fixtures work end to end (tests/support/)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from support.jaeger import (
    JaegerServer,
    TraceNotFoundError,
    decode_any_value,
    normalize_trace_id,
    spans_of,
    split_by_trace,
)
from support.ports import LOOPBACK, free_port
from support.process import require_binary
from support.prometheus import PrometheusServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def jaeger() -> Iterator[JaegerServer]:
    with JaegerServer() as server:
        yield server


@pytest.fixture
def metrics_registry() -> Iterator[tuple[CollectorRegistry, str]]:
    registry = CollectorRegistry()
    port = free_port()
    httpd, thread = start_http_server(port, addr=LOOPBACK, registry=registry)
    try:
        yield registry, f"{LOOPBACK}:{port}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _send_trace(exporter: SpanExporter, service: str) -> str:
    """Export a parent span with one child through `exporter`; return the trace id (hex)."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("otel-bridge.tests")
    with tracer.start_as_current_span("support.parent") as parent:
        parent.set_attribute("lao.step", 3)
        with tracer.start_as_current_span("support.child") as child:
            child.set_attribute("lao.agent", "writer")
    provider.shutdown()
    return normalize_trace_id(parent.get_span_context().trace_id)


def _assert_trace_readable(jaeger: JaegerServer, trace_id: str, service: str) -> None:
    """Check the trace is complete by id, and found by service and by operation."""
    trace = jaeger.wait_for_trace(trace_id, min_spans=2, timeout=15)
    spans = {span.name: span for span in spans_of(trace)}
    assert set(spans) == {"support.parent", "support.child"}
    parent, child = spans["support.parent"], spans["support.child"]
    assert {parent.trace_id, child.trace_id} == {trace_id}
    assert child.parent_span_id == parent.span_id
    assert parent.service == child.service == service
    assert parent.attributes == {"lao.step": 3}
    assert child.attributes == {"lao.agent": "writer"}
    assert parent.end_ns >= child.end_ns > child.start_ns >= parent.start_ns

    found = jaeger.find_traces(service)
    assert [spans_of(t)[0].trace_id for t in found] == [trace_id]
    by_operation = jaeger.find_traces(service, operation="support.child")
    assert [spans_of(t)[0].trace_id for t in by_operation] == [trace_id]
    assert service in jaeger.services()
    assert sorted(jaeger.operations(service)) == ["support.child", "support.parent"]


def test_jaeger_receives_otlp_grpc_and_serves_it_over_v3(jaeger: JaegerServer) -> None:
    """A trace sent by the SDK's OTLP gRPC exporter reads back by id and by service search."""
    service = f"support-grpc-{uuid.uuid4().hex[:8]}"
    exporter = GrpcSpanExporter(endpoint=jaeger.otlp_grpc_endpoint, insecure=True)
    trace_id = _send_trace(exporter, service)
    _assert_trace_readable(jaeger, trace_id, service)


def test_jaeger_receives_otlp_http_and_serves_it_over_v3(jaeger: JaegerServer) -> None:
    """A trace sent by the SDK's OTLP/HTTP exporter reads back by id and by service search."""
    service = f"support-http-{uuid.uuid4().hex[:8]}"
    exporter = HttpSpanExporter(endpoint=jaeger.otlp_http_traces_url)
    trace_id = _send_trace(exporter, service)
    _assert_trace_readable(jaeger, trace_id, service)


def test_jaeger_unknown_trace_and_service_read_as_absent(jaeger: JaegerServer) -> None:
    """An unknown trace id raises TraceNotFoundError; an unknown service finds no traces."""
    with pytest.raises(TraceNotFoundError):
        jaeger.get_trace("0123456789abcdef0123456789abcdef")
    assert jaeger.find_traces(f"no-such-service-{uuid.uuid4().hex}") == []


def test_prometheus_scrapes_a_client_and_answers_queries(
    metrics_registry: tuple[CollectorRegistry, str],
) -> None:
    """Prometheus scrapes a prometheus_client server and query() returns its values."""
    registry, target = metrics_registry
    gauge = Gauge("support_probe_value", "A value set by the test", registry=registry)
    gauge.set(42.5)
    with PrometheusServer([target]) as prom:
        targets = prom.wait_for_targets_up(timeout=20)
        assert [t["health"] for t in targets] == ["up"]
        prom.wait_for("support_probe_value", lambda data: bool(data["result"]), timeout=20)
        assert prom.query_value("support_probe_value") == 42.5
        series = prom.query("support_probe_value")["result"]
        assert series[0]["metric"]["job"] == "test"
        assert series[0]["metric"]["instance"] == target

        gauge.set(7)
        prom.wait_for(
            "support_probe_value",
            lambda data: bool(data["result"]) and data["result"][0]["value"][1] == "7",
            timeout=20,
        )


def test_prometheus_stores_exemplars_from_an_openmetrics_scrape(
    metrics_registry: tuple[CollectorRegistry, str],
) -> None:
    """A counter exemplar (only OpenMetrics carries them) comes back from query_exemplars."""
    registry, target = metrics_registry
    counter = Counter("support_runs", "Runs seen by the test", registry=registry)
    trace_id = uuid.uuid4().hex
    counter.inc(exemplar={"trace_id": trace_id})
    with PrometheusServer([target]) as prom:
        found = prom.wait_for_exemplars("support_runs_total", timeout=20)
        exemplars = [e for series in found for e in series["exemplars"]]
        assert {e["labels"]["trace_id"] for e in exemplars} == {trace_id}
        assert float(exemplars[0]["value"]) == 1.0


def test_jaeger_search_returns_each_matching_trace_separately(jaeger: JaegerServer) -> None:
    """Two traces of one service come back from find_traces as two separate traces."""
    service = f"support-two-{uuid.uuid4().hex[:8]}"
    exporter = GrpcSpanExporter(endpoint=jaeger.otlp_grpc_endpoint, insecure=True)
    first = _send_trace(exporter, service)
    second = _send_trace(
        GrpcSpanExporter(endpoint=jaeger.otlp_grpc_endpoint, insecure=True), service
    )
    traces = jaeger.wait_for_traces(service, min_traces=2, timeout=15)
    by_id = {spans_of(t)[0].trace_id: t for t in traces}
    assert set(by_id) == {first, second}
    for trace_id, trace in by_id.items():
        assert {span.trace_id for span in spans_of(trace)} == {trace_id}
        assert len(spans_of(trace)) == 2


def test_split_by_trace_groups_spans_of_a_merged_answer() -> None:
    """Spans of two traces merged in one resource/scope split into one TracesData each."""
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]}
    merged = {
        "resourceSpans": [
            {
                "resource": resource,
                "scopeSpans": [
                    {
                        "scope": {"name": "s"},
                        "spans": [
                            {"traceId": "a", "spanId": "1", "name": "x"},
                            {"traceId": "b", "spanId": "2", "name": "y"},
                            {"traceId": "a", "spanId": "3", "name": "z"},
                        ],
                    },
                ],
            },
        ],
    }
    split = split_by_trace(merged)
    assert [[s.span_id for s in spans_of(t)] for t in split] == [["1", "3"], ["2"]]
    assert split[0]["resourceSpans"][0]["resource"] == resource
    assert split[0]["resourceSpans"][0]["scopeSpans"][0]["scope"] == {"name": "s"}
    assert {s.service for t in split for s in spans_of(t)} == {"svc"}


def test_decode_any_value_handles_every_otlp_json_kind() -> None:
    """OTLP-JSON AnyValues decode to str, bool, int (from its string form), float, list, dict."""
    assert decode_any_value({"stringValue": "s"}) == "s"
    assert decode_any_value({"boolValue": True}) is True
    assert decode_any_value({"intValue": "9007199254740993"}) == 9007199254740993
    assert decode_any_value({"doubleValue": 0.5}) == 0.5
    assert decode_any_value({"arrayValue": {"values": [{"intValue": "1"}]}}) == [1]
    kv = {"kvlistValue": {"values": [{"key": "k", "value": {"stringValue": "v"}}]}}
    assert decode_any_value(kv) == {"k": "v"}


def test_missing_binary_skips_outside_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without CI a missing server binary skips the test with a reason."""
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"tools/build\.sh"):
        require_binary(tmp_path / "jaeger", "run tools/build.sh")


def test_missing_binary_fails_under_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With CI=true a missing server binary fails loudly instead of skipping."""
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require_binary(tmp_path / "jaeger", "run tools/build.sh")
