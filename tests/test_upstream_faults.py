"""Upstream faults end runs promptly: resent old events are no progress, refusals close runs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from otel_bridge.core.records import Result, SpanRecord
from otel_bridge.server import BridgeServer
from otel_bridge.settings import Settings
from otel_bridge.simulator import Quirks, Simulator
from otel_bridge.simulator.flows import customer_support_flow
from otel_bridge.sinks.span_sinks import MemorySink
from otel_bridge.sources.states import SubscriptionState

pytestmark = pytest.mark.integration

FAST = {
    "port": 0,
    "reconnect_initial_s": 0.05,
    "reconnect_max_s": 0.2,
    "terminal_grace_s": 0.05,
    "ws_ping_interval_s": 0.5,
    "ws_ping_timeout_s": 1.0,
}
QUIET = {"greeting": "text", "echo": False, "keepalive_interval": None, "noise_probability": 0.0}


async def until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Wait until ``check()`` holds, failing after ``timeout_s`` with ``what``."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@asynccontextmanager
async def served(quirks: Quirks, **settings: Any) -> AsyncIterator[tuple[Simulator, BridgeServer]]:
    """A simulator with ``quirks`` and a bridge following it, exporting to memory."""
    async with Simulator(quirks, time_scale=0.05, seed=5) as sim:
        server = BridgeServer(
            Settings(**{**FAST, "upstream_url": sim.ws_url, **settings}),
            registry=CollectorRegistry(),
            sinks=[MemorySink()],
        )
        async with server:
            yield sim, server


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
    async with served(quirks, give_up_after_s=1.0, inactivity_timeout_s=600) as (sim, server):
        sub, _ = server.bridge.subscribe(flow, run)
        await sim.wait_subscribers(flow, run)
        await sim.start_run(body)
        await until(lambda: sub.state is SubscriptionState.FAILED, 20, "the subscription to fail")
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
    async with served(quirks, give_up_after_s=600, inactivity_timeout_s=600) as (sim, server):
        server.bridge.router.listeners.append(
            lambda o: spans.append(o) if isinstance(o, SpanRecord) else None
        )
        sub, _ = server.bridge.subscribe(flow, run)
        await sim.wait_subscribers(flow, run)
        await sim.start_run(body)
        await until(lambda: any(s.kind == "run" for s in spans), 20, "the run to be closed")
        await until(lambda: sub.state is SubscriptionState.FAILED, 5, "the subscription to fail")
        root = next(s for s in spans if s.kind == "run")
        assert root.result is Result.TIMEOUT
        assert root.attributes["lao.run.incomplete"] is True
        reason = root.attributes["lao.run.close_reason"]
        assert isinstance(reason, str) and f"HTTP {status}" in reason
        value = server.bridge.registry.get_sample_value
        assert value("lao_flow_runs_active", {"flow_name": flow}) == 0
        assert value("lao_flow_runs_total", {"flow_name": flow, "result": "timeout"}) == 1


async def test_a_404_before_the_run_started_is_retried() -> None:
    """A run socket that is not there yet (404 before any event) is retried, not given up."""
    quirks = Quirks(**QUIET, disconnect_after=0, refuse_reconnects=404)
    async with served(quirks, give_up_after_s=600) as (sim, server):
        sub, _ = server.bridge.subscribe("Later", "r1")
        hub = sim.hub("Later", "r1")
        await until(lambda: hub.connections >= 4, 10, "three refused reconnects")
        assert sub.state is SubscriptionState.RECONNECTING
        assert sub.error == "upstream answered HTTP 404"
