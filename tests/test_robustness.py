"""Bad input and awkward timing never take the bridge down or touch another run's telemetry."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from helpers import Driver
from otel_bridge.core.records import SpanRecord
from otel_bridge.simulator import Quirks
from otel_bridge.sinks.metrics import Metrics
from support.ports import LOOPBACK
from support.rig import FAST_RECONNECT, running_bridge, running_rig, running_upstream
from support.timing import UNIT, wait_for

pytestmark = pytest.mark.integration


def poison_frames() -> list[str]:
    """Frames that are valid JSON yet once crashed the core."""
    return [
        '{"event_type":"task_started","task_name":"a\\ud800b","task_id":"\\udfff","timestamp":1}',
        '{"event_type":"task_completed","task_name":"x","execution_time":1e303,"timestamp":2}',
        '{"event_type":"task_started","task_name":"y","input":{"k":"\\ud83d"},"timestamp":3}',
        '{"event_type":"flow_error","error":{"message":"\\udc00"},"timestamp":4}',
    ]


def test_poison_frames_do_not_touch_other_runs() -> None:
    """Lone surrogates and absurd durations are handled; a healthy run beside them is whole."""
    spans: list[SpanRecord] = []
    pipeline = Driver(metrics=Metrics(CollectorRegistry()))
    pipeline.listeners.append(lambda o: spans.append(o) if isinstance(o, SpanRecord) else None)
    healthy = [
        {"event_type": "flow_started", "timestamp": 1.0},
        {"event_type": "task_started", "task_id": "t1", "task_name": "ok", "timestamp": 1.5},
        {"event_type": "task_completed", "task_id": "t1", "task_name": "ok", "timestamp": 2.0},
        {"event_type": "flow_completed", "timestamp": 3.0},
    ]
    for bad, good in zip(poison_frames(), healthy, strict=True):
        pipeline.handle_frame(bad, flow_name="F", run_name="poison", received_ns=10)
        pipeline.handle_frame(json.dumps(good), flow_name="F", run_name="good", received_ns=10)
    good_spans = [s for s in spans if s.run_name == "good"]
    assert sorted(s.name for s in good_spans) == ["execute_task ok", "invoke_workflow F"]
    poisoned = [s for s in spans if s.run_name == "poison"]
    assert any(s.kind == "run" for s in poisoned)
    assert all(s.start_ns <= s.end_ns for s in spans)


def test_a_failing_listener_does_not_stop_export() -> None:
    """An exception in an output listener is logged; the spans still reach the sink."""
    sink_spans: list[SpanRecord] = []

    def broken(output: object) -> None:
        raise RuntimeError("listener bug")

    pipeline = Driver()
    pipeline.listeners.append(broken)
    pipeline.listeners.append(lambda o: sink_spans.append(o) if isinstance(o, SpanRecord) else None)
    pipeline.handle_frame(
        '{"event_type":"flow_completed","timestamp":5}', flow_name="F", run_name="r", received_ns=1
    )
    assert [s.kind for s in sink_spans] == ["run"]


async def test_stop_during_handshake_returns_promptly() -> None:
    """DELETE of a run whose upstream never completes the handshake returns at once."""
    writers: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.read(65536)

    tarpit = await asyncio.start_server(swallow, LOOPBACK, 0)
    port = tarpit.sockets[0].getsockname()[1]
    try:
        async with running_bridge(f"ws://{LOOPBACK}:{port}", **FAST_RECONNECT) as server:
            server.bridge.subscribe("F", "handshake")
            await wait_for(lambda: writers, message="the bridge to connect to the tarpit")
            assert await asyncio.wait_for(server.bridge.unsubscribe("F", "handshake"), 3 * UNIT)
            await asyncio.wait_for(server.stop(), 5 * UNIT)
    finally:
        for writer in writers:
            writer.close()
        tarpit.close()
        await tarpit.wait_closed()


async def test_server_that_drops_every_connection_is_given_up() -> None:
    """An upstream that accepts, greets like LAO, then closes is given up, not hammered."""

    async def slam(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("connection established")  # LAO greets every connection
        await ws.close()
        return ws

    async with (
        running_upstream(slam) as upstream,
        running_bridge(upstream, give_up_after_s=1.0 * UNIT, **FAST_RECONNECT) as server,
    ):
        sub, _ = server.bridge.subscribe("F", "flap")
        await asyncio.wait_for(sub.wait(), 10 * UNIT)
        assert sub.state == "failed"
        assert sub.connects < 40


async def test_subscription_to_a_run_that_never_starts_is_dropped() -> None:
    """A subscribed run that never sends an event is unsubscribed after the inactivity limit."""
    async with running_rig(inactivity_timeout_s=0.5 * UNIT, **FAST_RECONNECT) as rig:
        sub, _ = rig.server.bridge.subscribe("F", "typo_run")
        await asyncio.wait_for(sub.wait(), 10 * UNIT)
        assert sub.state == "done" and "no event" in (sub.error or "")


async def test_listing_never_shows_upstream_credentials() -> None:
    """Userinfo in the upstream URL is redacted from /v1/runs."""
    async with (
        running_bridge("ws://lao:Sup3rS3cret@127.0.0.1:9", **FAST_RECONNECT) as server,
        aiohttp.ClientSession() as http,
    ):
        server.bridge.subscribe("F", "r")
        text = await (await http.get(f"{server.url}/v1/runs")).text()
        assert "Sup3rS3cret" not in text


async def test_concurrent_deletes_do_not_error() -> None:
    """Two DELETEs of one run answer 204 and 404, never 500."""
    async with (
        running_bridge("ws://127.0.0.1:9", **FAST_RECONNECT) as server,
        aiohttp.ClientSession() as http,
    ):
        server.bridge.subscribe("F", "r")
        url = f"{server.url}/v1/runs/F/r"
        statuses = sorted(
            r.status for r in await asyncio.gather(http.delete(url), http.delete(url))
        )
        assert statuses == [204, 404]


async def test_passthrough_outlives_the_telemetry_watchdog() -> None:
    """After the watchdog closes a silent run, a pass-through client still gets LAO's frames."""
    quirks = replace(Quirks.quiet(), close_after_terminal=0.2 * UNIT)
    flow, run = "Wait Flow", "approval_1"
    body = {
        "flow_name": flow,
        "run_name": run,
        "edges": [],
        "tasks": [
            {
                "name": "approve",
                "tag": "human",
                "function": "approval_block",
                "params": {},
                "x-sim": {"duration": 2.5},
            }
        ],
    }
    async with running_rig(quirks, inactivity_timeout_s=0.5 * UNIT, **FAST_RECONNECT) as rig:
        frames: list[str] = []
        async with connect(rig.socket_url(flow, run)) as ws:
            await rig.start(body)
            try:
                async for message in ws:
                    frames.append(str(message))
            except ConnectionClosed:
                pass
        kinds = [json.loads(f).get("event_type") for f in frames if f.startswith("{")]
        assert kinds[-1] == "flow_completed"
        root = await rig.wait_root(run)
        assert root.result.value == "timeout"


def test_a_log_line_about_a_run_carries_its_trace_ids(caplog: pytest.LogCaptureFixture) -> None:
    """The router's log line about a run's event names the run's trace and root span ids."""
    from otel_bridge.core.ids import root_span_id, run_trace_id

    drive = Driver()
    drive.router.trace_of = drive.engine.trace_id_of
    caplog.set_level("DEBUG", logger="otel_bridge")
    start = '{"event_type":"flow_started","timestamp":5}'
    for _ in range(2):  # the second one is a duplicate: dropped, logged at debug
        drive.handle_frame(start, flow_name="F", run_name="r", received_ns=5_000_000_000)
    (record,) = [r for r in caplog.records if r.getMessage() == "event dropped"]
    assert record.__dict__["trace_id"] == f"{run_trace_id('F', 'r'):032x}"
    assert record.__dict__["span_id"] == f"{root_span_id('F', 'r'):016x}"
