"""The pass-through socket: clients pointed at the bridge get LAO's frames; LAO sees one."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from otel_bridge.simulator import Quirks
from support.rig import Rig, running_rig
from support.timing import UNIT, wait_for

pytestmark = pytest.mark.integration

FLOW = "Pass Flow"


def flow_body(
    run: str, n: int = 4, duration: float = 0.05, output_bytes: int = 0
) -> dict[str, Any]:
    """A chain of ``n`` api tasks; outputs padded to ``output_bytes``."""
    tasks = []
    for i in range(n):
        params: dict[str, Any] = {"config": {"url": "https://x.example/api", "method": "POST"}}
        if i:
            params["after"] = {"depends": f"t{i - 1}"}
        hints: dict[str, Any] = {"duration": duration}
        if output_bytes:
            hints["output"] = {"blob": "x" * output_bytes}
        tasks.append(
            {
                "name": f"t{i}",
                "tag": "api",
                "function": "api_call",
                "params": params,
                "x-sim": hints,
            }
        )
    return {"flow_name": FLOW, "run_name": run, "tasks": tasks, "edges": []}


@pytest.fixture
def rig_options() -> dict[str, Any]:
    return {
        "quirks": replace(Quirks.quiet(), echo=True),
        "seed": 5,
        "terminal_grace_s": 0.1 * UNIT,
        "client_buffer_frames": 32,
        "reconnect_initial_s": 0.05 * UNIT,
    }


async def collect(ws: ClientConnection, frames: list[str] | None = None) -> list[str]:
    """Read until the bridge closes the socket, into ``frames`` if given; return them."""
    frames = [] if frames is None else frames
    try:
        async for message in ws:
            frames.append(str(message))
    except ConnectionClosed:
        pass
    return frames


def event_types(frames: list[str]) -> list[str]:
    return [json.loads(f)["event_type"] for f in frames if f.startswith("{") and "event_type" in f]


async def test_fan_out_to_many_clients_over_one_upstream(rig: Rig) -> None:
    """Three clients get every frame LAO sent, unchanged, over one upstream; spans recorded."""
    run = "fan_1"
    clients = [await connect(rig.socket_url(FLOW, run)) for _ in range(3)]
    readers = [asyncio.create_task(collect(ws)) for ws in clients]
    await rig.start(flow_body(run))
    results = await asyncio.wait_for(asyncio.gather(*readers), 20 * UNIT)
    sent = [json.dumps(e) for e in rig.sim.events_sent(FLOW, run)]
    for frames in results:
        got = [f for f in frames if f.startswith("{")]
        assert [json.loads(f) for f in got] == [json.loads(s) for s in sent]
    assert rig.sim.hub(FLOW, run).connections == 1
    await rig.flush()
    spans = rig.spans(run)
    assert sum(s.kind == "run" for s in spans) == 1 and sum(s.kind == "task" for s in spans) == 4


async def test_client_pings_are_forwarded_upstream(rig: Rig) -> None:
    """A client's JSON ping reaches LAO, whose echo comes back through the bridge."""
    run = "ping_1"
    async with connect(rig.socket_url(FLOW, run)) as ws:
        await rig.sim.wait_subscribers(FLOW, run, timeout=5 * UNIT)
        await ws.send(json.dumps({"type": "ping"}))
        reply = await asyncio.wait_for(ws.recv(), 5 * UNIT)
        assert "Echoing:" in str(reply)


async def test_late_client_gets_frames_from_then_on(rig: Rig) -> None:
    """A client joining mid-run gets the later frames only, like LAO itself."""
    run = "late_1"
    early = await connect(rig.socket_url(FLOW, run))
    early_frames: list[str] = []
    early_reader = asyncio.create_task(collect(early, early_frames))
    await rig.start(flow_body(run, n=6, duration=0.2))
    await wait_for(
        lambda: "task_completed" in event_types(early_frames), message="the first task to end"
    )
    late = await connect(rig.socket_url(FLOW, run))
    late_frames = await asyncio.wait_for(collect(late), 20 * UNIT)
    early_frames = await asyncio.wait_for(early_reader, 20 * UNIT)
    assert event_types(early_frames)[0] == "flow_started"
    assert "flow_started" not in event_types(late_frames)
    assert event_types(late_frames)[-1] == "flow_completed"
    assert late_frames == early_frames[len(early_frames) - len(late_frames) :]


async def test_slow_client_is_cut_without_stalling_others(rig: Rig) -> None:
    """A client that stops reading is closed with 1013; the other client and the spans are whole."""
    run = "slow_1"
    slow = await connect(rig.socket_url(FLOW, run), max_queue=1)
    fast = await connect(rig.socket_url(FLOW, run), max_size=None)
    fast_reader = asyncio.create_task(collect(fast))
    await rig.start(flow_body(run, n=60, duration=0.0, output_bytes=150_000))
    fast_frames = await asyncio.wait_for(fast_reader, 30 * UNIT)
    assert event_types(fast_frames).count("task_completed") == 60
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(slow.recv(), 10 * UNIT)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
    registry = rig.server.bridge.registry
    assert (
        registry.get_sample_value(
            "otel_bridge_passthrough_frames_dropped_total", {"reason": "client_too_slow"}
        )
        == 1
    )
    await rig.flush()
    assert sum(s.kind == "task" for s in rig.spans(run)) == 60


async def test_bad_names_are_refused_before_upgrade(rig: Rig) -> None:
    """A run name with control characters gets HTTP 400, not a socket."""
    with pytest.raises(Exception, match="400"):
        await connect(rig.socket_url(FLOW, "bad\u0001name"))


NODE_DIR = Path(__file__).parent / "node"


def node_client_ready() -> None:
    """Install the Node client's one dependency (ws) once; skip or fail without Node."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        if os.environ.get("CI"):
            pytest.fail("node and npm are required in CI")
        pytest.skip("node/npm not installed")
    if not (NODE_DIR / "node_modules" / "ws").is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--silent"],
            cwd=NODE_DIR,
            check=True,
            timeout=300,
        )


@pytest.mark.parametrize("token", [None, "9b1f0c7e3a5d4e2f8a6c1b0d9e7f5a3c"])
async def test_seed_workflow_monitor_in_node_works_through_the_bridge(
    rig_options: dict[str, Any], token: str | None
) -> None:
    """The docs' JavaScript WorkflowMonitor, pointed at the bridge, follows a run to its end.

    With a control token it offers it as the subprotocol ``bearer.<token>``, like a browser.
    """
    await asyncio.to_thread(node_client_ready)
    run = "node_1"
    async with running_rig(**rig_options, control_token=token) as rig:
        base = f"ws://127.0.0.1:{rig.server.control_port}"
        proc = await asyncio.create_subprocess_exec(
            "node",
            str(NODE_DIR / "monitor.js"),
            *([base, FLOW, run] + ([token] if token else [])),
            stdout=asyncio.subprocess.PIPE,
        )
        await rig.sim.wait_subscribers(FLOW, run, timeout=15 * UNIT)
        await rig.sim.start_run(flow_body(run, n=3))
        out, _ = await asyncio.wait_for(proc.communicate(), 30 * UNIT)
        assert proc.returncode == 0
        lines = [json.loads(line) for line in out.decode().splitlines()]
        assert lines[0] == {"open": True, "protocol": f"bearer.{token}" if token else ""}
        handled = [line["event_type"] for line in lines if "event_type" in line]
        assert handled == (
            ["flow_started"] + ["task_started", "task_completed"] * 3 + ["flow_completed"]
        )
        assert lines[-1] == {"closed": True}
        await rig.flush()
        assert sum(s.kind == "run" for s in rig.spans(run)) == 1
