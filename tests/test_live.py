"""The live path against the real simulator: subscribe, reconnect, stall, control API."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from otel_bridge.core.ids import root_span_id, run_trace_id
from otel_bridge.core.records import SpanRecord, StatusCode
from otel_bridge.simulator import Quirks
from otel_bridge.simulator.flows import customer_support_flow
from support.rig import FAST_RECONNECT, Rig, running_bridge, running_rig
from support.timing import UNIT, wait_for

pytestmark = pytest.mark.integration

FAST = {**FAST_RECONNECT, "ws_ping_interval_s": 0.2 * UNIT, "ws_ping_timeout_s": 0.3 * UNIT}


def chain_flow(run_name: str, n: int = 5, duration: float = 0.15) -> dict[str, Any]:
    """A flow of ``n`` agent tasks in a chain, each with a fixed duration."""
    tasks = []
    for i in range(n):
        params: dict[str, Any] = {"config": {"agent_id": f"agent-{i}", "api_key": "sk-live-secret"}}
        if i:
            params["previous"] = {"depends": f"step_{i - 1}"}
        tasks.append(
            {
                "name": f"step_{i}",
                "tag": "agent",
                "function": "call_lyzr_agent",
                "params": params,
                "x-sim": {"duration": duration},
            }
        )
    return {"flow_name": "Chain Flow", "run_name": run_name, "tasks": tasks, "edges": []}


def live(quirks: Quirks, **options: Any) -> dict[str, Any]:
    """``running_rig`` options: these quirks, seed 3, a fast-reconnecting, fast-pinging bridge."""
    return {"quirks": quirks, "seed": 3, **FAST, **options}


@pytest.fixture
def rig_options() -> dict[str, Any]:
    return live(Quirks(keepalive_interval=0.1 * UNIT, noise_probability=0.3), time_scale=0.1 * UNIT)


def check_whole(spans: list[SpanRecord], tasks: int) -> SpanRecord:
    """Assert one root, ``tasks`` distinct task spans under it; return the root."""
    roots = [s for s in spans if s.kind == "run"]
    assert len(roots) == 1
    root = roots[0]
    task_spans = [s for s in spans if s.kind == "task"]
    assert len({s.span_id for s in task_spans}) == len(task_spans) == tasks
    assert all(s.parent_span_id == root.span_id for s in task_spans)
    assert all(s.trace_id == root.trace_id for s in task_spans)
    return root


async def test_seed_run_through_socket_becomes_a_trace(rig: Rig) -> None:
    """A subscribed run, noise and all, comes out as the contract's trace with event times."""
    spans = await rig.play(customer_support_flow("live_1"))
    root = check_whole(spans, 3)
    flow = "Customer_Support_Pipeline"
    assert root.trace_id == run_trace_id(flow, "live_1")
    assert root.span_id == root_span_id(flow, "live_1")
    assert root.status is StatusCode.OK
    sent = rig.sim.events_sent(flow, "live_1")
    started = next(e for e in sent if e["event_type"] == "flow_started")
    assert root.start_ns == round(started["timestamp"] * 1e6) * 1000
    registry = rig.server.bridge.registry
    assert registry.get_sample_value("otel_bridge_frames_ignored_total", {"reason": "keepalive"})


async def test_mid_run_cut_reconnects_and_trace_stays_whole() -> None:
    """A connection dropped mid-run is re-established; one root, every task, no duplicates."""
    async with running_rig(**live(replace(Quirks.quiet(), disconnect_after=3))) as rig:
        spans = await rig.play(chain_flow("cut_1"))
        root = check_whole(spans, 5)
        assert root.status is StatusCode.OK
        sub = rig.server.bridge.subscriptions[("Chain Flow", "cut_1")]
        assert sub.connects >= 2
        assert rig.server.bridge.registry.get_sample_value("otel_bridge_reconnects_total") >= 1


async def test_stalled_upstream_is_detected_by_protocol_ping() -> None:
    """An upstream that stops answering pings is dropped and reconnected; the trace survives."""
    quirks = replace(Quirks.quiet(), stall_after=2)
    async with running_rig(**live(quirks)) as rig:
        spans = await rig.play(chain_flow("stall_1", n=4, duration=0.6))
        root = check_whole(spans, 4)
        assert root.status is StatusCode.OK
        assert rig.server.bridge.subscriptions[("Chain Flow", "stall_1")].connects >= 2


async def test_names_are_percent_encoded_upstream(rig: Rig) -> None:
    """Flow and run names with spaces, slashes and non-ASCII reach the right run socket."""
    body = chain_flow("run/β 7?x=1", n=2)
    body["flow_name"] = "Support Flow/β 1"
    spans = await rig.play(body)
    root = check_whole(spans, 2)
    assert root.flow_name == "Support Flow/β 1" and root.run_name == "run/β 7?x=1"


async def test_secrets_never_reach_exported_spans(rig: Rig) -> None:
    """The seed's api key and bearer token appear nowhere in what the live path exports."""
    spans = await rig.play(customer_support_flow("live_secret"))
    text = repr([(s.attributes, s.events) for s in spans])
    assert "sk-prod-sentiment-key" not in text and "sf_prod_token_xyz" not in text
    assert "[REDACTED]" in text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"flow_name": "", "run_name": "r"}, "flow_name must not be empty"),
        ({"flow_name": "f", "run_name": "a\nb"}, "control characters"),
        ({"flow_name": "f", "run_name": "x" * 600}, "longer than"),
        ({"flow_name": 5, "run_name": "r"}, "must be a string"),
        ({"flow_name": "f", "run_name": "r", "traceparent": "00-xyz"}, "traceparent"),
    ],
)
async def test_bad_registrations_get_400_with_message(
    rig: Rig, body: dict[str, Any], message: str
) -> None:
    """A bad name or traceparent is refused with a message, never subscribed."""
    async with rig.http.post(f"{rig.server.url}/v1/runs", json=body) as response:
        payload = await response.json()
    assert response.status == 400
    assert message in payload["error"]
    assert rig.server.bridge.subscriptions == {}


async def test_control_api_lists_and_deletes(rig: Rig) -> None:
    """GET lists a subscription with its trace id; DELETE stops it; unknown runs are 404."""
    assert (await rig.post_run("Flow A", "run/1")).status == 201
    assert (await rig.post_run("Flow A", "run/1")).status == 200
    http = rig.http
    listed = await (await http.get(f"{rig.server.url}/v1/runs")).json()
    assert listed["runs"][0]["trace_id"] == f"{run_trace_id('Flow A', 'run/1'):032x}"
    one = await http.get(f"{rig.server.url}/v1/runs/Flow%20A/run%2F1")
    assert one.status == 200
    gone = await http.delete(f"{rig.server.url}/v1/runs/Flow%20A/run%2F1")
    assert gone.status == 204
    missing = await http.delete(f"{rig.server.url}/v1/runs/Flow%20A/run%2F1")
    assert missing.status == 404
    health = await http.get(f"{rig.server.url}/healthz")
    ready = await http.get(f"{rig.server.url}/readyz")
    assert health.status == ready.status == 200


async def test_ended_run_cannot_be_subscribed_again(rig: Rig) -> None:
    """Registering a run that already ended answers 409 instead of a dead subscription."""
    await rig.play(chain_flow("once", n=1))
    assert (await rig.post_run("Chain Flow", "once")).status == 409


async def test_control_token_is_required_when_set() -> None:
    """With control_token set, /v1 needs the bearer token; health stays open."""
    async with running_rig(**live(Quirks(), control_token="s3cret")) as rig:
        url = f"{rig.server.url}/v1/runs"
        assert (await rig.http.get(url)).status == 401
        ok = await rig.http.get(url, headers={"Authorization": "Bearer s3cret"})
        assert ok.status == 200
        assert (await rig.http.get(f"{rig.server.url}/healthz")).status == 200


async def test_shutdown_ends_open_runs_as_incomplete() -> None:
    """Stopping the bridge mid-run exports the root as incomplete, an error; nothing lost."""
    async with running_rig(**live(Quirks(greeting="off", keepalive_interval=None))) as rig:
        await rig.follow(chain_flow("shutdown_1", n=3, duration=2.0))
        await wait_for(lambda: rig.events_received("task_started"), message="a task to start")
        await rig.server.stop()
        roots = [s for s in rig.sink.records if s.kind == "run"]
        assert len(roots) == 1
        assert roots[0].attributes["lao.run.incomplete"] is True
        assert roots[0].attributes["cicd.pipeline.result"] == "error"
        assert roots[0].attributes["lao.run.close_reason"] == "the bridge shut down"
        open_tasks = [s for s in rig.sink.records if s.kind == "task"]
        assert open_tasks and open_tasks[0].attributes["lao.task.incomplete"] is True


async def test_unreachable_upstream_gives_up_and_closes_run() -> None:
    """With no upstream at all the subscription retries, then fails with a reason."""
    upstream = "ws://127.0.0.1:9"
    async with running_bridge(upstream, give_up_after_s=0.5 * UNIT, **FAST) as server:
        sub, _ = server.bridge.subscribe("F", "R")
        await asyncio.wait_for(sub.wait(), 10 * UNIT)
        assert sub.state == "failed"
        assert sub.error is not None and "gave up" in sub.error
        assert server.bridge.registry.get_sample_value("otel_bridge_reconnects_total") >= 1


async def test_watchdog_closes_a_run_that_never_ends() -> None:
    """A run that goes silent is closed by the watchdog as a timeout, and its socket is left."""
    async with running_rig(**live(Quirks.quiet(), inactivity_timeout_s=0.5 * UNIT)) as rig:
        body = chain_flow("silent_1", n=1)
        body["tasks"][0]["x-sim"] = {"hang": "forever"}
        await rig.follow(body)
        sub = rig.server.bridge.subscriptions[("Chain Flow", "silent_1")]
        await asyncio.wait_for(sub.wait(), 10 * UNIT)
        await rig.flush()
        root = next(s for s in rig.sink.records if s.kind == "run")
        assert root.attributes["cicd.pipeline.result"] == "timeout"
        assert root.attributes["lao.run.incomplete"] is True
        task = next(s for s in rig.sink.records if s.kind == "task")
        assert task.attributes["lao.task.incomplete"] is True
