"""Simulator → bridge → a real Jaeger over OTLP gRPC and OTLP/HTTP, read back through the v3 API.

Each test plays runs in the simulator (time scaled down), lets a real bridge follow them over
its control API and export to Jaeger with an explicitly built SDK exporter, stops the bridge
(flushing it), then reads the traces back: by trace id — the id computed here from the run's
names with the contract's recipe (hashlib, not the bridge's code) — both as Jaeger shows it
(query adjusters applied) and as stored (``raw_traces=true``), and by search on service and
operation. Every span's start and end must equal its event's timestamp to the microsecond,
and Jaeger must have nothing to warn about: its adjusters add a ``@jaeger@warnings``
attribute for duplicate span ids, parents missing from the trace, and children outside
their parent's time range.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Literal

import aiohttp
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

from otel_bridge.bridge import make_resource
from otel_bridge.simulator import Quirks
from otel_bridge.simulator.flows import customer_support_flow, financial_data_flow
from otel_bridge.sinks.span_sinks import OtlpSink
from support import _http
from support.jaeger import JaegerServer, Span, TraceNotFoundError, decode_attributes, spans_of
from support.rig import Rig, running_bridge, running_rig
from support.timing import UNIT, wait_for

pytestmark = pytest.mark.integration

JSON = dict[str, Any]
OtlpProtocol = Literal["grpc", "http"]

SECRETS = ("sk-prod-sentiment-key", "sf_prod_token_xyz")
WARNINGS = "@jaeger@warnings"
KIND_INTERNAL = 1
KIND_CLIENT = 3  # agent calls are remote calls (GenAI agent-span conventions)
STATUS_UNSET, STATUS_OK, STATUS_ERROR = 0, 1, 2
PARENT_IS_REMOTE = 0x200  # OTLP SpanFlags: the span's parent context is remote
TIME_SCALE = 0.02


# -- the contract's recipe, computed independently ------------------------------------------
def _sha256(*parts: str) -> bytes:
    return hashlib.sha256("\0".join(parts).encode("utf-8")).digest()


def trace_id_for(flow: str, run: str) -> str:
    r"""First 16 bytes of sha256("lao-run\0" + flow + "\0" + run), as hex."""
    return _sha256("lao-run", flow, run)[:16].hex()


def root_id_for(flow: str, run: str) -> str:
    r"""First 8 bytes of sha256("lao-flow\0" + flow + "\0" + run), as hex."""
    return _sha256("lao-flow", flow, run)[:8].hex()


def task_id_for(flow: str, run: str, key: str) -> str:
    r"""First 8 bytes of sha256("lao-task\0" + flow + "\0" + run + "\0" + key), as hex."""
    return _sha256("lao-task", flow, run, key)[:8].hex()


def event_ns(event: JSON) -> int:
    """An event's epoch-seconds timestamp in ns, exact to the microsecond it was sent with."""
    micros = Decimal(repr(event["timestamp"])) * 1_000_000
    assert micros == micros.to_integral_value(), f"not whole microseconds: {event}"
    return int(micros) * 1_000


def seconds_ns(seconds: float) -> int:
    """A duration in seconds (as an event's execution_time carries it) in ns."""
    return int(Decimal(repr(seconds)) * 1_000_000) * 1_000


def find_event(events: list[JSON], event_type: str, task_name: str | None = None) -> JSON:
    """The one event of that type (and task) the simulator sent."""
    found = [
        e
        for e in events
        if e["event_type"] == event_type and (task_name is None or e.get("task_name") == task_name)
    ]
    assert len(found) == 1, f"{event_type} {task_name}: {found}"
    return found[0]


# -- reading Jaeger ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def jaeger() -> Iterator[JaegerServer]:
    with JaegerServer() as server:
        yield server


@dataclass
class Read:
    """One trace read back from Jaeger: as shown (adjusted) and as stored (raw)."""

    trace_id: str
    spans: list[Span]
    raw_spans: list[Span]
    text: str  # every response body read, for "absent from Jaeger" checks

    def by_name(self) -> dict[str, Span]:
        """Spans by name (names are unique within the traces these tests read)."""
        named = {span.name: span for span in self.spans}
        assert len(named) == len(self.spans), [s.name for s in self.spans]
        return named


def read_trace(jaeger: JaegerServer, trace_id: str, count: int) -> Read:
    """Wait for ``count`` spans of a trace, then read it adjusted and raw (blocking)."""
    jaeger.wait_for_trace(trace_id, min_spans=count, timeout=15 * UNIT)
    url = f"{jaeger.query_url}/api/v3/traces/{trace_id}"
    status, shown = _http.get(url)
    assert status == 200, shown
    status, stored = _http.get(url, {"raw_traces": "true"})
    assert status == 200, stored
    return Read(
        trace_id,
        spans_of(json.loads(shown)["result"]),
        spans_of(json.loads(stored)["result"]),
        shown.decode() + stored.decode(),
    )


def search_ids(jaeger: JaegerServer, service: str, operation: str | None = None) -> set[str]:
    """Trace ids a v3 search by service (and operation) finds, each trace checked whole."""
    found = set()
    for trace in jaeger.find_traces(service, operation):
        ids = {span.trace_id for span in spans_of(trace)}
        assert len(ids) == 1, ids
        found |= ids
    return found


def assert_clean(read: Read, count: int) -> None:
    """One trace, ``count`` unique spans as stored, every parent present, no Jaeger warnings."""
    assert len(read.raw_spans) == count, sorted(s.name for s in read.raw_spans)
    assert len(read.spans) == count, sorted(s.name for s in read.spans)
    for spans in (read.spans, read.raw_spans):
        ids = [span.span_id for span in spans]
        assert len(set(ids)) == len(ids), f"duplicate span ids: {sorted(ids)}"
        assert {span.trace_id for span in spans} == {read.trace_id}
        parents = {span.parent_span_id for span in spans} - {""}
        assert parents <= set(ids), f"parents missing from the trace: {parents - set(ids)}"
        roots = [span.name for span in spans if not span.parent_span_id]
        assert len(roots) == 1, f"roots: {roots}"
    for span in read.spans:
        assert WARNINGS not in span.attributes, (span.name, span.attributes[WARNINGS])


def status_of(span: Span) -> tuple[int, str]:
    """(code, message) of a span's OTLP status."""
    return int(span.status.get("code", STATUS_UNSET)), str(span.status.get("message", ""))


def span_events(span: Span) -> list[tuple[str, int, JSON]]:
    """(name, time ns, attributes) of a span's events."""
    return [
        (e["name"], int(e["timeUnixNano"]), decode_attributes(e.get("attributes", [])))
        for e in span.raw.get("events", [])
    ]


def assert_times(span: Span, start: JSON | int, end: JSON | int) -> None:
    """Start and end equal the given events' timestamps (or ns values), to the microsecond."""
    start_ns = start if isinstance(start, int) else event_ns(start)
    end_ns = end if isinstance(end, int) else event_ns(end)
    assert (span.start_ns, span.end_ns) == (start_ns, end_ns), span.name


# -- the simulator and the bridge --------------------------------------------------------------
def span_exporter(jaeger: JaegerServer, protocol: OtlpProtocol) -> SpanExporter:
    """An SDK OTLP exporter pointed at Jaeger explicitly (never from the environment)."""
    if protocol == "grpc":
        return GrpcSpanExporter(endpoint=jaeger.otlp_grpc_endpoint, insecure=True)
    return HttpSpanExporter(endpoint=jaeger.otlp_http_traces_url)


def unique_service(label: str) -> str:
    """A service name no other test exports under, so that searches see only this test."""
    return f"lao-e2e-{label}-{uuid.uuid4().hex[:8]}"


@asynccontextmanager
async def jaeger_rig(
    jaeger: JaegerServer,
    protocol: OtlpProtocol,
    service: str,
    quirks: Quirks | None = None,
    *,
    time_scale: float = TIME_SCALE,
    reconnect_initial_s: float = 0.1,
) -> AsyncIterator[Rig]:
    """A simulator and a bridge exporting to Jaeger; leaving it stops (and flushes) the bridge.

    ``time_scale`` and ``reconnect_initial_s`` are stretched by the test time unit together.
    """
    resource = make_resource({"service.name": service})
    sink = OtlpSink(span_exporter(jaeger, protocol), resource, f"otlp-{protocol}")
    async with running_rig(
        quirks,
        time_scale=time_scale * UNIT,
        seed=11,
        sinks=[sink],
        reconnect_initial_s=reconnect_initial_s * UNIT,
        terminal_grace_s=0.2 * UNIT,
        app_ping_interval_s=0,
        otlp="off",
    ) as rig:
        yield rig


# -- expectations shared by several tests --------------------------------------------------------
CS_ROOT = "invoke_workflow Customer_Support_Pipeline"
CS_SENTIMENT = "invoke_agent sentiment_analyzer"
CS_SALESFORCE = "execute_task update_salesforce"
CS_NOTIFY = "execute_task send_notifications"


def assert_customer_support_trace(read: Read, events: list[JSON], flow: str, run: str) -> None:
    """The seed's Customer_Support run as the contract says it becomes, times from its events."""
    assert read.trace_id == trace_id_for(flow, run)
    assert_clean(read, 4)
    spans = read.by_name()
    assert set(spans) == {CS_ROOT, CS_SENTIMENT, CS_SALESFORCE, CS_NOTIFY}
    root_id = root_id_for(flow, run)
    root = spans[CS_ROOT]
    assert (root.span_id, root.parent_span_id, root.kind) == (root_id, "", KIND_INTERNAL)
    for name in (CS_SENTIMENT, CS_SALESFORCE, CS_NOTIFY):
        assert spans[name].parent_span_id == root_id
        assert spans[name].kind == (KIND_CLIENT if name == CS_SENTIMENT else KIND_INTERNAL)
        assert spans[name].attributes["lao.run.name"] == run

    started, completed = find_event(events, "flow_started"), find_event(events, "flow_completed")
    assert_times(root, started, completed)
    assert status_of(root) == (STATUS_OK, "")
    assert span_events(root) == []
    attrs = dict(root.attributes)
    assert json.loads(attrs.pop("lao.flow.output")) == completed["output"]
    assert attrs == {
        "lao.flow.name": flow,
        "lao.run.name": run,
        "lao.flow.task_id": "cust-support-001",
        "lao.message": "Starting customer support workflow",
        "cicd.pipeline.name": flow,
        "cicd.pipeline.run.id": f"{flow}/{run}",
        "cicd.pipeline.result": "success",
        "gen_ai.operation.name": "invoke_workflow",
        "gen_ai.workflow.name": flow,
        "lao.flow.total_execution_time_s": completed["total_execution_time"],
    }

    for name, task, task_id in (
        (CS_SENTIMENT, "sentiment_analyzer", "b29aa07f-9341-4ac5-9160-4f7e1f594654"),
        (CS_SALESFORCE, "update_salesforce", "crm-update-567"),
    ):
        span, begun = spans[name], find_event(events, "task_started", task)
        ended = find_event(events, "task_completed", task)
        assert span.span_id == task_id_for(flow, run, task_id)
        assert_times(span, begun, ended)
        assert status_of(span) == (STATUS_OK, "")
        attrs = dict(span.attributes)
        task_input = json.loads(attrs.pop("lao.task.input"))
        assert json.loads(attrs.pop("lao.task.output")) == ended["output"]
        expected = {
            "lao.flow.name": flow,
            "lao.run.name": run,
            "lao.task.name": task,
            "lao.task.id": task_id,
            "lao.task.execution_time_s": ended["execution_time"],
            "cicd.pipeline.task.name": task,
            "cicd.pipeline.task.run.id": task_id,
            "cicd.pipeline.task.run.result": "success",
        }
        if task == "sentiment_analyzer":
            expected |= {
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.provider.name": "lyzr",
                "gen_ai.agent.id": "sentiment-v2",
            }
            assert task_input["config"] == {"agent_id": "sentiment-v2", "api_key": "[REDACTED]"}
            assert task_input["priority"] == "urgent"
        else:
            assert task_input["config"]["headers"] == {"Authorization": "[REDACTED]"}
            assert task_input["case_data"] == begun["input"]["case_data"]
        assert attrs == expected

    # send_notifications never reports its end: it ends with the run, incomplete, and its
    # result is success because flow_completed's output has a send_notifications key.
    notify = spans[CS_NOTIFY]
    assert notify.span_id == task_id_for(flow, run, "notify-001")
    assert_times(notify, find_event(events, "task_started", "send_notifications"), completed)
    assert status_of(notify) == (STATUS_UNSET, "")
    assert notify.attributes["lao.task.incomplete"] is True
    assert notify.attributes["cicd.pipeline.task.run.result"] == "success"
    assert "lao.task.execution_time_s" not in notify.attributes


# -- tests ------------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", ["grpc", "http"])
async def test_seed_customer_support_run_reads_back_whole_and_without_secrets(
    jaeger: JaegerServer, protocol: OtlpProtocol
) -> None:
    """The seed Customer_Support run is one clean trace in Jaeger, found by id and search."""
    service = unique_service(f"seed-{protocol}")
    # One Jaeger serves the module: same names would mean the same trace (ids are derived).
    body = customer_support_flow(f"ticket_78453_{protocol}")
    flow, run = body["flow_name"], body["run_name"]
    async with jaeger_rig(jaeger, protocol, service) as r:
        registered = await r.follow(body)
        await r.finish(flow, run, "completed")
        events = r.sim.events_sent(flow, run)
    trace_id = trace_id_for(flow, run)
    assert registered["trace_id"] == trace_id

    read = await asyncio.to_thread(read_trace, jaeger, trace_id, 4)
    assert_customer_support_trace(read, events, flow, run)
    assert {span.service for span in read.spans} == {service}

    assert await asyncio.to_thread(search_ids, jaeger, service) == {trace_id}
    for operation in (CS_ROOT, CS_SENTIMENT, CS_NOTIFY):
        assert await asyncio.to_thread(search_ids, jaeger, service, operation) == {trace_id}
    assert await asyncio.to_thread(search_ids, jaeger, service, "execute_task nothing") == set()
    operations = await asyncio.to_thread(jaeger.operations, service)
    assert sorted(operations) == sorted([CS_ROOT, CS_SENTIMENT, CS_SALESFORCE, CS_NOTIFY])

    sent = json.dumps(events)
    assert all(secret in sent for secret in SECRETS)  # the bridge did receive them
    searched = await asyncio.to_thread(jaeger.find_traces, service)
    everything = read.text + json.dumps(searched)
    assert "[REDACTED]" in everything
    for secret in SECRETS:
        assert secret not in everything


async def test_failing_financial_run_shows_the_error_on_task_and_root(
    jaeger: JaegerServer,
) -> None:
    """The seed Financial run (no task ids) fails: ERROR statuses, exception events, error.type."""
    service = unique_service("financial")
    body = financial_data_flow()
    flow, run = body["flow_name"], body["run_name"]
    async with jaeger_rig(jaeger, "http", service) as r:
        await r.play(body, status="failed")
        events = r.sim.events_sent(flow, run)
    trace_id = trace_id_for(flow, run)
    read = await asyncio.to_thread(read_trace, jaeger, trace_id, 2)
    assert_clean(read, 2)
    spans = read.by_name()
    root = spans["invoke_workflow Financial_Data_Pipeline"]
    task = spans["execute_task validate_financial_data"]

    started, errored = find_event(events, "flow_started"), find_event(events, "flow_error")
    assert root.span_id == root_id_for(flow, run)
    assert root.parent_span_id == ""
    assert_times(root, started, errored)
    message = "Data quality threshold not met, stopping pipeline"
    assert status_of(root) == (STATUS_ERROR, message)
    end = event_ns(errored)
    exception = {"exception.type": "PipelineHaltedError", "exception.message": message}
    assert span_events(root) == [("exception", end, exception)]
    attrs = dict(root.attributes)
    details = json.loads(attrs.pop("lao.error.details"))
    assert details == {
        "threshold": 0.02,
        "actual_failure_rate": 0.0277,
        "action_taken": "quarantine_and_alert",
    }
    assert json.loads(attrs.pop("lao.partial_results")) == errored["partial_results"]
    assert attrs == {
        "lao.flow.name": flow,
        "lao.run.name": run,
        "lao.message": "Processing 45,000 financial records",
        "cicd.pipeline.name": flow,
        "cicd.pipeline.run.id": f"{flow}/{run}",
        "cicd.pipeline.result": "failure",
        "error.type": "PipelineHaltedError",
        "lao.error.code": "QUALITY_THRESHOLD_FAILED",
        "gen_ai.operation.name": "invoke_workflow",
        "gen_ai.workflow.name": flow,
    }

    # No task_id in the events: the key is task_name NUL occurrence.
    begun = find_event(events, "task_started", "validate_financial_data")
    failed = find_event(events, "task_failed", "validate_financial_data")
    assert "task_id" not in failed
    assert task.span_id == task_id_for(flow, run, "validate_financial_data\x001")
    assert task.parent_span_id == root.span_id
    assert_times(task, begun, failed)
    task_message = "1,247 records failed validation checks"
    assert status_of(task) == (STATUS_ERROR, task_message)
    assert span_events(task) == [
        (
            "exception",
            event_ns(failed),
            {"exception.type": "DataValidationError", "exception.message": task_message},
        )
    ]
    attrs = dict(task.attributes)
    assert json.loads(attrs.pop("lao.error.details")) == failed["error"]["details"]
    assert json.loads(attrs.pop("lao.partial_results")) == failed["partial_results"]
    assert json.loads(attrs.pop("lao.task.input")) == begun["input"]
    assert attrs == {
        "lao.flow.name": flow,
        "lao.run.name": run,
        "lao.task.name": "validate_financial_data",
        "lao.task.execution_time_s": failed["execution_time"],
        "cicd.pipeline.task.name": "validate_financial_data",
        "cicd.pipeline.task.run.id": "validate_financial_data#1",
        "cicd.pipeline.task.run.result": "failure",
        "error.type": "DataValidationError",
        "lao.error.code": "VALIDATION_FAILED",
    }
    found = await asyncio.to_thread(
        search_ids, jaeger, service, "execute_task validate_financial_data"
    )
    assert found == {trace_id}


def resumable_flow(run: str) -> JSON:
    """Fetch ‖ classify → store, timed so a disconnect after 2 frames loses two events.

    At time scale 0.05: flow_started and fetch's task_started go out at 0 s, then the
    socket drops; fetch completes at 0.1 s and classify starts at 0.15 s, both while the
    bridge waits 0.2-0.4 s to reconnect; classify ends at 0.75 s and store at 0.95 s.
    """
    return {
        "flow_name": "Resumed_Pipeline",
        "run_name": run,
        "tasks": [
            {
                "name": "fetch",
                "tag": "io",
                "function": "api_call",
                "params": {"config": {"url": "https://example.com/in", "method": "GET"}},
                "x-sim": {"task_id": "fetch-1", "duration": 2},
            },
            {
                "name": "classify",
                "tag": "agent",
                "function": "call_lyzr_agent",
                "params": {"config": {"agent_id": "classifier-3"}},
                "x-sim": {"task_id": "classify-1", "delay": 3, "duration": 12},
            },
            {
                "name": "store",
                "tag": "io",
                "function": "api_call",
                "params": {"data": {"depends": "classify"}},
                "x-sim": {"task_id": "store-1", "duration": 4},
            },
        ],
        "x-sim": {"task_id": "resumed-run-1"},
    }


@pytest.mark.parametrize("mode", ["close", "abort"])
async def test_run_cut_and_resumed_is_one_whole_trace(
    jaeger: JaegerServer, mode: Literal["close", "abort"]
) -> None:
    """A socket dropped mid-run: one trace, no duplicates, lost events as the contract says."""
    service = unique_service(f"resumed-{mode}")
    body = resumable_flow(f"cut_then_resumed_{mode}")
    flow, run = body["flow_name"], body["run_name"]
    quirks = replace(Quirks.quiet(), disconnect_after=2, disconnect_mode=mode)
    async with jaeger_rig(
        jaeger, "grpc", service, quirks, time_scale=0.05, reconnect_initial_s=0.4
    ) as r:
        await r.follow(body)
        described = await r.finish(flow, run, "completed")
        events = r.sim.events_sent(flow, run)
    assert described["connects"] == 2
    assert [(e["event_type"], e.get("task_name")) for e in events] == [
        ("flow_started", None),
        ("task_started", "fetch"),
        ("task_completed", "fetch"),  # lost: sent while the bridge was reconnecting
        ("task_started", "classify"),  # lost likewise
        ("task_completed", "classify"),
        ("task_started", "store"),
        ("task_completed", "store"),
        ("flow_completed", "flow"),
    ]

    trace_id = trace_id_for(flow, run)
    read = await asyncio.to_thread(read_trace, jaeger, trace_id, 4)
    assert_clean(read, 4)
    spans = read.by_name()
    # classify's input (its agent_id) came with the lost start: the contract names it
    # execute_task and gives it no gen_ai.agent.id.
    assert set(spans) == {
        "invoke_workflow Resumed_Pipeline",
        "execute_task fetch",
        "execute_task classify",
        "execute_task store",
    }
    root = spans["invoke_workflow Resumed_Pipeline"]
    completed = find_event(events, "flow_completed")
    assert root.span_id == root_id_for(flow, run)
    assert_times(root, find_event(events, "flow_started"), completed)
    assert status_of(root) == (STATUS_OK, "")
    assert root.attributes["cicd.pipeline.result"] == "success"
    assert "lao.span.synthetic_start" not in root.attributes
    for name in ("execute_task fetch", "execute_task classify", "execute_task store"):
        assert spans[name].parent_span_id == root.span_id

    # fetch's end was lost: it ends with the run, incomplete, UNSET; its result is success
    # because flow_completed's output has a "fetch" key.
    fetch = spans["execute_task fetch"]
    assert "fetch" in completed["output"]
    assert fetch.span_id == task_id_for(flow, run, "fetch-1")
    assert_times(fetch, find_event(events, "task_started", "fetch"), completed)
    assert status_of(fetch) == (STATUS_UNSET, "")
    assert fetch.attributes["lao.task.incomplete"] is True
    assert fetch.attributes["cicd.pipeline.task.run.result"] == "success"
    assert "lao.span.synthetic_start" not in fetch.attributes

    # classify's start was lost: it starts at end - execution_time, marked synthetic.
    classify = spans["execute_task classify"]
    ended = find_event(events, "task_completed", "classify")
    assert classify.span_id == task_id_for(flow, run, "classify-1")
    synthetic_start = event_ns(ended) - seconds_ns(ended["execution_time"])
    assert_times(classify, synthetic_start, ended)
    assert status_of(classify) == (STATUS_OK, "")
    assert classify.attributes["lao.span.synthetic_start"] is True
    assert classify.attributes["cicd.pipeline.task.run.result"] == "success"
    assert "gen_ai.agent.id" not in classify.attributes
    assert "lao.task.input" not in classify.attributes

    store = spans["execute_task store"]
    assert store.span_id == task_id_for(flow, run, "store-1")
    assert_times(
        store,
        find_event(events, "task_started", "store"),
        find_event(events, "task_completed", "store"),
    )
    assert status_of(store) == (STATUS_OK, "")
    assert "lao.span.synthetic_start" not in store.attributes
    assert await asyncio.to_thread(search_ids, jaeger, service) == {trace_id}


async def test_run_joined_mid_way_gets_a_synthetic_root_start(jaeger: JaegerServer) -> None:
    """A run registered after it began: root and first task start synthetically, trace clean."""
    service = unique_service("late")
    body = customer_support_flow("ticket_joined_late")
    flow, run = body["flow_name"], body["run_name"]
    # At time scale 0.05 sentiment_analyzer runs from 0.11 s to 0.38 s: the bridge joins
    # in between, so flow_started and sentiment_analyzer's task_started are never seen.
    async with jaeger_rig(jaeger, "grpc", service, time_scale=0.05) as r:
        await r.sim.start_run(body)
        await wait_for(
            lambda: len(r.sim.events_sent(flow, run)) >= 2,
            message="sentiment_analyzer to start",
            interval=0.005,
        )
        await r.register(flow, run)
        await r.finish(flow, run, "completed")
        events = r.sim.events_sent(flow, run)

    read = await asyncio.to_thread(read_trace, jaeger, trace_id_for(flow, run), 4)
    assert_clean(read, 4)
    spans = read.by_name()
    # sentiment_analyzer's agent_id came with its lost start: it is execute_task here.
    sentiment, root = spans["execute_task sentiment_analyzer"], spans[CS_ROOT]
    ended = find_event(events, "task_completed", "sentiment_analyzer")
    synthetic_start = event_ns(ended) - seconds_ns(ended["execution_time"])
    assert_times(sentiment, synthetic_start, ended)
    assert sentiment.attributes["lao.span.synthetic_start"] is True
    assert sentiment.span_id == task_id_for(flow, run, "b29aa07f-9341-4ac5-9160-4f7e1f594654")
    # The earliest event seen is sentiment_analyzer's end, yet the root never starts after
    # one of its tasks: it starts with sentiment_analyzer's synthetic start.
    assert_times(root, synthetic_start, find_event(events, "flow_completed"))
    assert root.attributes["lao.span.synthetic_start"] is True
    assert root.attributes["cicd.pipeline.result"] == "success"
    assert status_of(root) == (STATUS_OK, "")
    for name in (CS_SALESFORCE, CS_NOTIFY):
        assert spans[name].parent_span_id == root.span_id
        assert "lao.span.synthetic_start" not in spans[name].attributes
    assert_times(
        spans[CS_SALESFORCE],
        find_event(events, "task_started", "update_salesforce"),
        find_event(events, "task_completed", "update_salesforce"),
    )


async def test_two_runs_of_one_flow_at_once_are_two_separate_traces(
    jaeger: JaegerServer,
) -> None:
    """Two concurrent runs of one flow land in two traces, neither holding the other's spans."""
    service = unique_service("concurrent")
    bodies = [customer_support_flow("ticket_a"), customer_support_flow("ticket_b")]
    flow = bodies[0]["flow_name"]
    async with jaeger_rig(jaeger, "http", service) as r:
        for body in bodies:
            await r.register(flow, body["run_name"])
        for body in bodies:
            await r.sim.wait_subscribers(flow, body["run_name"], timeout=5 * UNIT)
        await asyncio.gather(*(r.sim.start_run(body) for body in bodies))
        for body in bodies:
            await r.finish(flow, body["run_name"], "completed")
        events = {body["run_name"]: r.sim.events_sent(flow, body["run_name"]) for body in bodies}
    starts = [find_event(events[run], "flow_started") for run in ("ticket_a", "ticket_b")]
    ends = [find_event(events[run], "flow_completed") for run in ("ticket_a", "ticket_b")]
    assert event_ns(starts[1]) < event_ns(ends[0]) and event_ns(starts[0]) < event_ns(ends[1])

    trace_ids = {run: trace_id_for(flow, run) for run in ("ticket_a", "ticket_b")}
    assert len(set(trace_ids.values())) == 2
    span_ids: set[str] = set()
    for run, trace_id in trace_ids.items():
        read = await asyncio.to_thread(read_trace, jaeger, trace_id, 4)
        assert_customer_support_trace(read, events[run], flow, run)
        span_ids |= {span.span_id for span in read.raw_spans}
    assert len(span_ids) == 8  # the same task ids in both runs, yet no shared span id

    expected = set(trace_ids.values())
    assert await asyncio.to_thread(search_ids, jaeger, service) == expected
    assert await asyncio.to_thread(search_ids, jaeger, service, CS_SENTIMENT) == expected


async def test_registered_traceparent_makes_the_run_a_subtree_of_the_caller(
    jaeger: JaegerServer,
) -> None:
    """A run registered with a caller's traceparent hangs under the caller's span, in its trace."""
    caller_service = unique_service("caller")
    provider = TracerProvider(resource=Resource.create({"service.name": caller_service}))
    provider.add_span_processor(SimpleSpanProcessor(span_exporter(jaeger, "grpc")))
    caller = provider.get_tracer("otel-bridge.tests").start_span("POST /tickets")
    context = caller.get_span_context()
    caller_trace, caller_span = f"{context.trace_id:032x}", f"{context.span_id:016x}"
    traceparent = f"00-{caller_trace}-{caller_span}-01"

    service = unique_service("traced")
    body = customer_support_flow("ticket_traced")
    flow, run = body["flow_name"], body["run_name"]
    try:
        async with jaeger_rig(jaeger, "grpc", service) as r:
            registered = await r.register(flow, run, traceparent=traceparent)
            await r.start(body)
            await r.finish(flow, run, "completed")
            events = r.sim.events_sent(flow, run)
    finally:
        await asyncio.to_thread(caller.end)  # the caller's request outlives the run
        await asyncio.to_thread(provider.shutdown)
    assert registered["trace_id"] == caller_trace

    read = await asyncio.to_thread(read_trace, jaeger, caller_trace, 5)
    assert_clean(read, 5)
    spans = read.by_name()
    assert set(spans) == {"POST /tickets", CS_ROOT, CS_SENTIMENT, CS_SALESFORCE, CS_NOTIFY}
    request, root = spans["POST /tickets"], spans[CS_ROOT]
    assert (request.span_id, request.parent_span_id, request.service) == (
        caller_span,
        "",
        caller_service,
    )
    assert root.parent_span_id == caller_span
    assert root.raw.get("flags", 0) & PARENT_IS_REMOTE
    assert root.span_id == root_id_for(flow, run)  # span ids stay derived
    assert root.service == service
    assert request.start_ns <= root.start_ns <= root.end_ns <= request.end_ns
    assert_times(root, find_event(events, "flow_started"), find_event(events, "flow_completed"))
    for name, task_id in (
        (CS_SENTIMENT, "b29aa07f-9341-4ac5-9160-4f7e1f594654"),
        (CS_SALESFORCE, "crm-update-567"),
        (CS_NOTIFY, "notify-001"),
    ):
        assert spans[name].parent_span_id == root.span_id
        assert spans[name].span_id == task_id_for(flow, run, task_id)
        assert spans[name].service == service

    with pytest.raises(TraceNotFoundError):  # nothing went to the trace derived from names
        await asyncio.to_thread(jaeger.get_trace, trace_id_for(flow, run))
    assert await asyncio.to_thread(search_ids, jaeger, service, CS_ROOT) == {caller_trace}


@pytest.mark.parametrize(
    ("traceparent", "why"),
    [
        ("not-a-traceparent", "must look like"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", "must look like"),
        ("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", "must look like"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba9g2b7-01", "must look like"),
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", "trace id is all zeros"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", "parent id is all zeros"),
        ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "version ff"),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", "exactly four fields"),
        (42, "must look like"),
    ],
)
async def test_malformed_traceparent_is_refused_with_400_and_a_message(
    traceparent: object, why: str
) -> None:
    """POST /v1/runs with a malformed traceparent answers 400 saying why and follows nothing."""
    body = {"flow_name": "Some_Flow", "run_name": "r1", "traceparent": traceparent}
    async with (
        running_bridge("ws://127.0.0.1:9", sinks=[], otlp="off") as server,
        aiohttp.ClientSession() as http,
    ):
        async with http.post(f"{server.url}/v1/runs", json=body) as response:
            assert response.status == 400
            answer = await response.json()
        async with http.get(f"{server.url}/v1/runs") as response:
            listed = await response.json()
    assert "traceparent" in answer["error"]
    assert why in answer["error"]
    assert listed == {"runs": []}
