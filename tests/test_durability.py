"""Nothing lost: SIGKILL and restart, a receiver outage, SIGTERM with the receiver down.

Real ``otel-bridge serve`` processes with a state dir, a real OTLP/gRPC receiver that can
be stopped (tests/support/outage.py), and a LAO run socket that holds the rest of a run for
the next socket (tests/support/held_run.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from otel_bridge.core.timestamps import parse_timestamp
from otel_bridge.server import BridgeServer
from otel_bridge.settings import Settings
from otel_bridge.simulator import Quirks, Simulator
from otel_bridge.simulator.generator import generate_flow
from otel_bridge.sinks.otlp import spans_of
from otel_bridge.store.database import StateDatabase
from support.exposition import fetch_metrics, metric_value
from support.held_run import FakeClock, HeldRun, run_script, serving_held_run
from support.otlp_receiver import GrpcReceiver
from support.outage import RestartableReceiver
from support.ports import free_ports
from support.rig import FAST_RECONNECT, running_rig, serving_process, sigterm
from support.timing import UNIT, wait_for

pytestmark = pytest.mark.integration
JSON = dict[str, Any]
FLOW = "Resume Flow"


def bridge_env(upstream: str, receiver: RestartableReceiver, **extra: str) -> dict[str, str]:
    """The environment of a bridge exporting OTLP/gRPC to ``receiver``, retrying quickly."""
    return {
        **os.environ,
        "OTEL_BRIDGE_UPSTREAM_URL": upstream,
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "2000",
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        "OTEL_BRIDGE_EXPORT_RETRY_MAX_S": "1",
        "OTEL_BRIDGE_RECONNECT_INITIAL_S": str(0.05 * UNIT),
        "OTEL_BRIDGE_RECONNECT_MAX_S": str(0.2 * UNIT),
        "OTEL_BRIDGE_LOG_FORMAT": "json",
        **extra,
    }


class Ports:
    """A bridge's two listeners on fresh free ports."""

    def __init__(self) -> None:
        self.metrics, self.control = free_ports(2)
        self.metrics_url = f"http://127.0.0.1:{self.metrics}"
        self.url = f"http://127.0.0.1:{self.control}"

    def args(self, *more: str) -> list[str]:
        """Command-line flags for these ports."""
        return ["--port", str(self.metrics), "--control-port", str(self.control), *more]


async def ready(http: aiohttp.ClientSession, ports: Ports) -> None:
    """Wait until the bridge answers /readyz."""

    async def answered() -> bool:
        try:
            async with http.get(f"{ports.metrics_url}/readyz") as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False

    await wait_for(answered, 30 * UNIT, "the bridge to be ready")


async def settled(http: aiohttp.ClientSession, ports: Ports, events: int) -> None:
    """Wait until the bridge received ``events`` events and committed all it knows to disk."""

    async def done() -> bool:
        text = await fetch_metrics(http, ports.metrics_url)
        return (
            metric_value(text, "lao_events_total") >= events
            and metric_value(text, "otel_bridge_state_unsaved_changes", default=1) == 0
        )

    await wait_for(done, 20 * UNIT, f"{events} events received and saved")


def stamp(event: JSON) -> int:
    """An event's timestamp in ns."""
    value = parse_timestamp(event["timestamp"])
    assert value is not None
    return value


def by_id(receiver: RestartableReceiver) -> dict[str, JSON]:
    """Received spans by span id (duplicates already checked separately)."""
    return {span["spanId"]: span for span in receiver.spans()}


async def test_sigkill_at_several_points_resumes_one_exact_trace(tmp_path: Path) -> None:
    """SIGKILL three times mid-run (once with spans unexported): one trace, exact, no dups."""
    events = run_script(FLOW, "kill_1", 6, FakeClock())
    phases = [events[:2], events[2:6], events[6:9], events[9:]]
    held, receiver = HeldRun(), RestartableReceiver()
    receiver.start()
    state = tmp_path / "state"
    async with serving_held_run(held) as upstream, aiohttp.ClientSession() as http:
        env = bridge_env(upstream, receiver)
        for number, phase in enumerate(phases):
            ports = Ports()
            if number == 2:
                receiver.stop()  # this bridge dies with its spans on disk only
            async with serving_process(*ports.args("--state-dir", str(state)), env=env) as proc:
                await ready(http, ports)
                if number == 0:
                    run = {"flow_name": FLOW, "run_name": "kill_1"}
                    async with http.post(f"{ports.url}/v1/runs", json=run) as response:
                        assert response.status == 201
                if number == 3:
                    receiver.start()
                await held.wait_connections(number + 1, 20 * UNIT)
                async with http.get(f"{ports.url}/v1/runs") as response:
                    listed = [r["run_name"] for r in (await response.json())["runs"]]
                assert listed == ["kill_1"]  # followed again after a restart, without a POST
                held.release(*phase)
                if number < 3:
                    await settled(http, ports, len(phase))
                    proc.kill()
                    await proc.wait()
                    continue
                await wait_for(lambda: len(by_id(receiver)) >= 7 or None, 30 * UNIT, "every span")
                await sigterm(proc)
    ids = receiver.span_ids()
    assert [i for i, n in Counter(ids).items() if n > 1] == []  # nothing arrived twice
    spans = by_id(receiver)
    assert len(spans) == 7  # six task executions and the run
    assert len({s["traceId"] for s in spans.values()}) == 1
    root = next(s for s in spans.values() if "parentSpanId" not in s)
    assert int(root["startTimeUnixNano"]) == stamp(events[0])  # the real start, not synthetic
    assert int(root["endTimeUnixNano"]) == stamp(events[-1])
    for index in range(6):
        started, ended = events[1 + 2 * index], events[2 + 2 * index]
        task = next(s for s in spans.values() if s["name"].endswith(f"step {index}"))
        assert int(task["startTimeUnixNano"]) == stamp(started), task["name"]
        assert int(task["endTimeUnixNano"]) == stamp(ended), task["name"]
        assert task["parentSpanId"] == root["spanId"]
        failed = ended["event_type"] == "task_failed"
        assert task.get("status", {}).get("code", 0) == (2 if failed else 1), task["name"]


async def test_receiver_down_45s_while_runs_complete_loses_nothing(tmp_path: Path) -> None:
    """The OTLP receiver away for 45 s while runs complete: every span arrives after."""
    receiver = RestartableReceiver()
    out = tmp_path / "spans.jsonl"
    async with (
        Simulator(Quirks.quiet(), time_scale=0.05 * UNIT) as sim,
        aiohttp.ClientSession() as http,
    ):
        ports = Ports()
        env = bridge_env(sim.ws_url, receiver)
        async with serving_process(*ports.args("--traces-out", str(out)), env=env) as proc:
            await ready(http, ports)
            bodies = [
                generate_flow(random.Random(seed), 5, run_name=f"outage_{seed}", odd_names=0)
                for seed in range(4)
            ]
            for body in bodies:
                run = {"flow_name": body["flow_name"], "run_name": body["run_name"]}
                async with http.post(f"{ports.url}/v1/runs", json=run) as response:
                    assert response.status == 201
                await sim.wait_subscribers(body["flow_name"], body["run_name"], timeout=10 * UNIT)
                await sim.start_run(body)
            down_since = time.monotonic()
            for body in bodies:
                await sim.wait_run(body["flow_name"], body["run_name"], timeout=60 * UNIT)

            async def outage_over() -> bool:
                text = await fetch_metrics(http, ports.metrics_url)
                failed = metric_value(text, "otel_bridge_spans_failed_total")
                return failed > 0 and time.monotonic() - down_since >= 45

            await wait_for(outage_over, 120, "a 45 s outage with failed export attempts")
            receiver.start()
            expected = {s["spanId"] for s in spans_in_file(out)}
            assert len(expected) > 4 * 3
            await wait_for(
                lambda: expected <= set(receiver.span_ids()) or None,
                30 * UNIT,
                "every span at the receiver after the outage",
            )
            text = await fetch_metrics(http, ports.metrics_url)
            assert metric_value(text, "otel_bridge_spans_dropped_total") == 0
            await sigterm(proc)
    assert sorted(receiver.span_ids()) == sorted(expected)  # once each


def spans_in_file(path: Path) -> list[JSON]:
    """Spans of an OTLP/JSON lines file."""
    return [
        span
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
        for span in spans_of(json.loads(line))
    ]


async def test_sigterm_with_receiver_down_exits_in_time_and_next_start_delivers(
    tmp_path: Path,
) -> None:
    """Receiver down at SIGTERM: exit before the deadline; the next start sends it all, once."""
    events = run_script(FLOW, "term_1", 4, FakeClock())
    held, receiver = HeldRun(), RestartableReceiver()
    state = tmp_path / "state"
    deadline_s = 5.0
    async with serving_held_run(held) as upstream, aiohttp.ClientSession() as http:
        env = bridge_env(upstream, receiver, OTEL_BRIDGE_SHUTDOWN_TIMEOUT_S=str(deadline_s))
        ports = Ports()
        async with serving_process(*ports.args("--state-dir", str(state)), env=env) as proc:
            await ready(http, ports)
            run = {"flow_name": FLOW, "run_name": "term_1"}
            async with http.post(f"{ports.url}/v1/runs", json=run) as response:
                assert response.status == 201
            await held.wait_connections(1, 20 * UNIT)
            held.release(*events[:6])  # three tasks done, the run still open
            await settled(http, ports, 6)
            began = time.monotonic()
            logs = await sigterm(proc)
            took = time.monotonic() - began
        assert proc.returncode == 0, logs
        assert took < deadline_s + 2, f"exit took {took:.1f}s"
        assert "spans kept in state_dir" in logs
        receiver.start()
        ports = Ports()
        async with serving_process(*ports.args("--state-dir", str(state)), env=env) as proc:
            await ready(http, ports)
            await held.wait_connections(2, 20 * UNIT)  # the open run is followed again
            held.release(*events[6:])
            await wait_for(lambda: len(by_id(receiver)) >= 5 or None, 30 * UNIT, "every span")
            await sigterm(proc)
    assert sorted(Counter(receiver.span_ids()).values()) == [1] * 5
    root = next(s for s in receiver.spans() if "parentSpanId" not in s)
    assert int(root["startTimeUnixNano"]) == stamp(events[0])


LONG_RUN = {
    "flow_name": "Long Flow",
    "run_name": "open_at_stop",
    "tasks": [
        {
            "name": "slow",
            "tag": "agent",
            "function": "call_lyzr_agent",
            "params": {"config": {"agent_id": "a"}},
            "x-sim": {"duration": 600},
        }
    ],
    "edges": [],
}


@pytest.mark.parametrize("choice", ["keep", "close"])
async def test_open_runs_at_shutdown_are_kept_or_closed_as_asked(
    tmp_path: Path, choice: str
) -> None:
    """With a state dir, SIGTERM keeps open runs there (keep) or ends them as error (close)."""
    async with running_rig(
        state_dir=str(tmp_path), shutdown_open_runs=choice, **FAST_RECONNECT
    ) as rig:
        await rig.follow(LONG_RUN)
        await wait_for(lambda: rig.events_received("task_started") >= 1 or None)
        sink = rig.sink
    saved = StateDatabase(tmp_path).load()
    roots = [s for s in sink.records if s.kind == "run"]
    if choice == "keep":
        assert roots == [] and len(saved.runs) == 1 and len(saved.subscriptions) == 1
    else:
        assert [r.result.value for r in roots] == ["error"]
        assert not saved.runs and not saved.subscriptions


async def test_oversized_spans_through_the_bridge_arrive_trimmed_with_their_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """export_max_request_bytes reaches the OTLP sink: big spans trimmed, batches split."""
    limit = 64 * 1024
    big = {"blob": "x" * (150 * 1024)}
    tasks = [
        {
            "name": f"big {index}",
            "tag": "api",
            "function": "api_call",
            "params": {"url": "https://example.com", "method": "GET"},
            "x-sim": {"duration": 0.01, "output": big},
        }
        for index in range(4)
    ]
    body = {"flow_name": "Big Flow", "run_name": "big_1", "tasks": tasks, "edges": []}
    with GrpcReceiver(max_receive_bytes=limit + 1024) as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://{receiver.endpoint}")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
        async with (
            Simulator(Quirks.quiet(), time_scale=0.05 * UNIT) as sim,
            BridgeServer(
                Settings(
                    port=0,
                    control_port=0,
                    upstream_url=sim.ws_url,
                    export_max_request_bytes=limit,
                    max_payload_bytes=400_000,
                ),
                registry=CollectorRegistry(),
            ) as server,  # the sinks the settings and OTEL_* ask for: OTLP here
            aiohttp.ClientSession() as http,
        ):
            run = {"flow_name": "Big Flow", "run_name": "big_1"}
            async with http.post(f"{server.url}/v1/runs", json=run) as response:
                assert response.status == 201
            await sim.wait_subscribers("Big Flow", "big_1", timeout=10 * UNIT)
            await sim.start_run(body)
            spans = await asyncio.to_thread(receiver.wait_spans, 5, 30 * UNIT)
    assert len(spans) == 5 and len(receiver.requests) >= 5  # one request per big span at least
    truncated = [
        s
        for s in spans
        if {"key": "lao.payload.truncated", "value": {"boolValue": True}} in s["attributes"]
    ]
    names = [f"execute_task big {i}" for i in range(4)] + ["invoke_workflow Big Flow"]
    assert sorted(s["name"] for s in truncated) == names  # the root carries all 4 outputs
    root = next(s for s in spans if "parentSpanId" not in s)
    assert all(s.get("parentSpanId") == root["spanId"] for s in spans if s is not root)
