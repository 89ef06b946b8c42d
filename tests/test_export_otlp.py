"""Real OTLP leaves the bridge over gRPC and over HTTP, configured by the standard variables."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.resources import Resource

from helpers import Driver, seed_events
from otel_bridge.bridge import make_resource
from otel_bridge.core.ids import run_trace_id
from otel_bridge.settings import Settings
from otel_bridge.sinks.export_queue import ExportQueue
from otel_bridge.sinks.span_sinks import otlp_protocol, otlp_sink_from_env
from support.otlp_receiver import GrpcReceiver, HttpReceiver

pytestmark = pytest.mark.integration

FLOW = "Customer_Support_Pipeline"


def play_seed(pipeline: Driver) -> None:
    """Feed the seed's Customer_Support events through a pipeline and flush."""
    for index, event in enumerate(seed_events(FLOW)):
        pipeline.handle_object(event, received_ns=1_756_806_140_000_000_000 + index)
    pipeline.flush(10)


def check_spans(spans: list[dict[str, object]]) -> None:
    """The seed run arrived whole: root and three tasks in the derived trace."""
    names = sorted(str(s["name"]) for s in spans)
    assert names == [
        "execute_task send_notifications",
        "execute_task update_salesforce",
        "invoke_agent sentiment_analyzer",
        "invoke_workflow Customer_Support_Pipeline",
    ]
    trace = f"{run_trace_id(FLOW, 'ticket_78453'):032x}"
    assert {s["traceId"] for s in spans} == {trace}
    assert "sk-prod-sentiment-key" not in repr(spans)


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_otlp_export_reaches_a_receiver(monkeypatch: pytest.MonkeyPatch, protocol: str) -> None:
    """Spans reach OTEL_EXPORTER_OTLP_ENDPOINT over the protocol in OTEL_EXPORTER_OTLP_PROTOCOL."""
    receiver = GrpcReceiver() if protocol == "grpc" else HttpReceiver()
    with receiver:
        endpoint = (
            f"http://{receiver.endpoint}"
            if protocol == "grpc"
            else receiver.endpoint[: -len("/v1/traces")]
        )
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
        monkeypatch.setenv("OTEL_SERVICE_NAME", "lao-test")
        monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=ci")
        assert Settings().otlp_enabled()
        sink = otlp_sink_from_env(make_resource())
        queue = ExportQueue(sink)
        pipeline = Driver([queue])
        play_seed(pipeline)
        spans = receiver.wait_spans(4)
        queue.close()
    check_spans(spans)
    attrs = {
        a["key"]: a["value"].get("stringValue")
        for r in receiver.resources()
        for a in r.get("attributes", [])
    }
    assert attrs["service.name"] == "lao-test"
    assert attrs["deployment.environment"] == "ci"


def test_unreachable_collector_is_counted_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refusing OTLP endpoint: failed attempts retried, then counted lost at close; no raise."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    failed: list[int] = []

    class Stats:
        def exported(self, exporter: str, count: int) -> None: ...
        def failed(self, exporter: str, count: int) -> None:
            failed.append(count)

        def dropped(self, exporter: str, reason: str, count: int) -> None: ...
        def queue_depth(self, exporter: str, depth: int) -> None: ...

    queue = ExportQueue(
        otlp_sink_from_env(Resource.create({})), Stats(), delay_s=0.01, retry_initial_s=0.05
    )
    pipeline = Driver([queue])
    play_seed(pipeline)
    assert not queue.flush(1.5)  # still retrying: nothing is given up while time allows
    assert queue.close(0.5) == 4  # the seed's four spans, undelivered at the deadline
    assert sum(failed) >= 4
    assert queue.dropped["shutdown_timeout"] == 4


def test_bad_protocol_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unsupported OTLP protocol names the variable to fix."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with pytest.raises(ValueError, match="OTEL_EXPORTER_OTLP_PROTOCOL"):
        otlp_protocol()
