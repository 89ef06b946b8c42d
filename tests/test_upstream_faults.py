"""Upstream faults end runs promptly: resent old events are no progress, refusals close runs."""

from __future__ import annotations

import pytest
from aiohttp import web

from otel_bridge.core.ids import root_span_id, run_trace_id
from otel_bridge.core.records import Result, SpanRecord
from otel_bridge.simulator import Quirks
from otel_bridge.simulator.flows import customer_support_flow
from otel_bridge.sources.states import SubscriptionState
from support.rig import FAST_RECONNECT, running_bridge, running_rig, running_upstream
from support.timing import UNIT, wait_for

pytestmark = pytest.mark.integration

QUIET = {"greeting": "text", "echo": False, "keepalive_interval": None, "noise_probability": 0.0}
FAST = {**FAST_RECONNECT, "ws_ping_interval_s": 0.5 * UNIT, "ws_ping_timeout_s": 1.0 * UNIT}


async def test_a_server_resending_old_events_is_given_up_on() -> None:
    """Reconnects that only bring resent events are failures: the bridge gives up in time."""
    quirks = Quirks(
        **QUIET,
        resend_history=True,
        disconnect_after=2,
        disconnect_connections=10_000,
    )
    body = customer_support_flow()
    flow, run = body["flow_name"], body["run_name"]
    options = {**FAST, "give_up_after_s": 1.0 * UNIT, "inactivity_timeout_s": 600}
    async with running_rig(quirks, time_scale=0.05 * UNIT, **options) as rig:
        sim, server = rig.sim, rig.server
        sub, _ = server.bridge.subscribe(flow, run)
        await sim.wait_subscribers(flow, run)
        await sim.start_run(body)
        await wait_for(lambda: sub.state is SubscriptionState.FAILED, 20 * UNIT, "sub fails")
        assert sub.error is not None and "gave up" in sub.error
        # Two frames a connection, then a drop: at 0.05-0.2 s backoff for ~1 s, a few dozen
        # connects at most (before, resent events reset the backoff and it never gave up).
        assert 3 <= sub.connects <= 40
        registry = server.bridge.registry
        value = registry.get_sample_value
        assert value("otel_bridge_events_dropped_total", {"reason": "duplicate"}) >= 2


@pytest.mark.parametrize("status", [401, 403, 404, 410])
async def test_a_refused_reconnect_closes_the_run_at_once(status: int) -> None:
    """LAO refusing the socket after the run started ends the run now, with the reason."""
    quirks = Quirks(**QUIET, disconnect_after=2, refuse_reconnects=status)
    body = customer_support_flow()
    flow, run = body["flow_name"], body["run_name"]
    spans: list[SpanRecord] = []
    options = {**FAST, "give_up_after_s": 600, "inactivity_timeout_s": 600}
    async with running_rig(quirks, time_scale=0.05 * UNIT, **options) as rig:
        sim, server = rig.sim, rig.server
        server.bridge.router.listeners.append(
            lambda o: spans.append(o) if isinstance(o, SpanRecord) else None
        )
        sub, _ = server.bridge.subscribe(flow, run)
        await sim.wait_subscribers(flow, run)
        await sim.start_run(body)
        await wait_for(lambda: any(s.kind == "run" for s in spans), 20 * UNIT, "run closed")
        await wait_for(lambda: sub.state is SubscriptionState.FAILED, 5 * UNIT, "sub fails")
        root = next(s for s in spans if s.kind == "run")
        assert root.result is Result.ERROR
        assert root.attributes["lao.run.incomplete"] is True
        reason = root.attributes["lao.run.close_reason"]
        assert isinstance(reason, str) and f"HTTP {status}" in reason
        value = server.bridge.registry.get_sample_value
        assert value("lao_flow_runs_active", {"flow_name": flow}) == 0
        assert value("lao_flow_runs_total", {"flow_name": flow, "result": "error"}) == 1


async def test_a_404_before_the_run_started_is_retried() -> None:
    """A run socket that is not there yet (404 before any event) is retried, not given up."""
    quirks = Quirks(**QUIET, disconnect_after=0, refuse_reconnects=404)
    async with running_rig(quirks, **FAST, give_up_after_s=600) as rig:
        sim, server = rig.sim, rig.server
        sub, _ = server.bridge.subscribe("Later", "r1")
        hub = sim.hub("Later", "r1")
        await wait_for(lambda: hub.connections >= 4, 10 * UNIT, "three refused reconnects")
        assert sub.state is SubscriptionState.RECONNECTING
        assert sub.error == "upstream answered HTTP 404"


async def test_log_lines_about_a_run_carry_its_trace_and_span_ids(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A subscription's log lines name the run's trace id and root span id."""
    quirks = Quirks(**QUIET, disconnect_after=2, refuse_reconnects=403)
    body = customer_support_flow()
    flow, run = body["flow_name"], body["run_name"]
    caplog.set_level("INFO", logger="otel_bridge")
    async with running_rig(quirks, time_scale=0.05 * UNIT, **FAST, give_up_after_s=600) as rig:
        sub, _ = rig.server.bridge.subscribe(flow, run)
        await rig.sim.wait_subscribers(flow, run)
        await rig.sim.start_run(body)
        await wait_for(lambda: sub.state is SubscriptionState.FAILED, 20 * UNIT, "sub fails")
    refused = [r for r in caplog.records if r.getMessage() == "upstream refused the subscription"]
    assert refused, [r.getMessage() for r in caplog.records]
    assert refused[0].__dict__["trace_id"] == f"{run_trace_id(flow, run):032x}"
    assert refused[0].__dict__["span_id"] == f"{root_span_id(flow, run):016x}"


async def test_every_connected_run_socket_gets_lao_s_json_ping() -> None:
    """Like LAO's own client, the bridge sends {"type":"ping"} on each run socket periodically."""
    received: dict[str, list[str]] = {}

    async def socket(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        frames = received.setdefault(request.match_info["run"], [])
        async for message in ws:
            frames.append(message.data)
        return ws

    async with (
        running_upstream(socket) as upstream,
        running_bridge(upstream, app_ping_interval_s=0.1 * UNIT) as server,
    ):
        for run in ("r1", "r2"):
            server.bridge.subscribe("F", run)

        def both_pinged_twice() -> bool:
            pings = [received.get(r, []).count('{"type":"ping"}') for r in ("r1", "r2")]
            return min(pings) >= 2

        await wait_for(both_pinged_twice, 10 * UNIT, "two pings on each socket")
