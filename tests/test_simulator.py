"""The LAO simulator over the wire: real server on loopback, real websockets client."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import io
import json
import random
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, cast

import aiohttp
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError

from otel_bridge.simulator import (
    Quirks,
    Simulator,
    customer_support_flow,
    financial_data_flow,
    generate_flow,
    parse_flow,
)
from otel_bridge.simulator.cli import add_arguments
from otel_bridge.simulator.cli import run as run_cli
from otel_bridge.simulator.quirks import DisconnectMode

pytestmark = pytest.mark.integration

SCALE = 0.01
NOT_EVENTS = {"keepalive", "pong", "ping"}
# Default quirks (greeting, echo, noise) but a quick server close after the terminal event.
TEST_QUIRKS = Quirks(close_after_terminal=0.05)

JSON = dict[str, Any]


def sequential_flow(name: str, run: str, n_tasks: int, duration: float) -> JSON:
    """Return a chain of n api tasks of ``duration`` simulated seconds each."""
    tasks = [
        {
            "name": f"step_{i}",
            "tag": "step",
            "function": "api_call",
            "params": {"prev": {"depends": f"step_{i - 1}"}} if i else {},
            "x-sim": {"duration": duration},
        }
        for i in range(n_tasks)
    ]
    return {"flow_name": name, "run_name": run, "tasks": tasks}


def events_of(frames: list[str]) -> list[JSON]:
    """Return the event frames among raw frames, dropping greetings, echoes and keepalives."""
    events = []
    for frame in frames:
        try:
            message = json.loads(frame)
        except ValueError:
            continue
        if isinstance(message, dict) and message.get("event_type", "ping") not in NOT_EVENTS:
            events.append(message)
    return events


async def read_all(ws: ClientConnection, seconds: float = 5.0) -> list[str]:
    """Read text frames until the server closes the socket cleanly."""
    frames: list[str] = []
    async with asyncio.timeout(seconds):
        async for frame in ws:
            frames.append(str(frame))
    return frames


async def read_until(ws: ClientConnection, event_type: str, frames: list[str]) -> None:
    """Read frames into ``frames`` until an event of ``event_type`` arrives."""
    async with asyncio.timeout(5):
        while True:
            frames.append(str(await ws.recv()))
            if any(e["event_type"] == event_type for e in events_of(frames[-1:])):
                return


def ws_connect(url: str, **kwargs: Any) -> connect:
    return connect(url, proxy=None, open_timeout=5, close_timeout=1, **kwargs)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_customer_support_seed_flow_over_the_wire(http: aiohttp.ClientSession) -> None:
    """The docs' support flow: send_notifications starts, never completes, then flow_completed."""
    body = customer_support_flow()
    async with (
        Simulator(TEST_QUIRKS, time_scale=SCALE) as sim,
        ws_connect(sim.socket_url("Customer_Support_Pipeline", "ticket_78453")) as ws,
    ):
        async with http.post(f"{sim.http_url}/run-dag/", json=body) as response:
            assert response.status == 200
            answer = await response.json()
        assert answer == {"status": "processing", "task_id": "cust-support-001"}
        frames = await read_all(ws)
        events = events_of(frames)
        assert events == sim.events_sent("Customer_Support_Pipeline", "ticket_78453")
        assert [(e["event_type"], e.get("task_name")) for e in events] == [
            ("flow_started", None),
            ("task_started", "sentiment_analyzer"),
            ("task_completed", "sentiment_analyzer"),
            ("task_started", "update_salesforce"),
            ("task_completed", "update_salesforce"),
            ("task_started", "send_notifications"),
            ("flow_completed", "flow"),
        ]
        started, completed = events[1], events[2]
        assert started["task_id"] == completed["task_id"] == "b29aa07f-9341-4ac5-9160-4f7e1f594654"
        assert started["input"]["config"]["api_key"] == "sk-prod-sentiment-key"
        assert started["input"]["priority"] == "urgent"
        assert started["input"]["customer_email"] == "cto@enterprise-client.com"
        headers = events[3]["input"]["config"]["headers"]
        assert headers == {"Authorization": "Bearer sf_prod_token_xyz"}
        assert events[0]["task_id"] == "cust-support-001"
        assert events[0]["message"] == "Starting customer support workflow"
        assert completed["output"]["urgency_score"] == 9.2
        assert completed["execution_time"] == pytest.approx(5.333 * SCALE, abs=0.05)
        final = events[-1]
        assert final["task_id"] == "pipeline-complete"
        assert set(final["output"]) == {
            "sentiment_analyzer",
            "update_salesforce",
            "send_notifications",
            "summary",
        }
        assert final["total_execution_time"] == pytest.approx(13.413 * SCALE, abs=0.1)
        stamps = [e["timestamp"] for e in events]
        assert stamps == sorted(stamps) and isinstance(stamps[0], float)
        async with http.get(f"{sim.http_url}/task-status/cust-support-001") as response:
            status = await response.json()
        assert status["status"] == "completed"
        assert set(status["results"]) == {
            "sentiment_analyzer",
            "update_salesforce",
            "send_notifications",
        }


async def test_financial_seed_flow_fails_without_task_ids() -> None:
    """The docs' financial flow: no task_id anywhere, task_failed then flow_error, halted."""
    async with Simulator(TEST_QUIRKS, time_scale=SCALE) as sim:
        url = sim.socket_url("Financial_Data_Pipeline", "daily_batch_20240215")
        async with ws_connect(url) as ws:
            task_id = await sim.start_run(financial_data_flow())
            frames = await read_all(ws)
        events = events_of(frames)
        assert [e["event_type"] for e in events] == [
            "flow_started",
            "task_started",
            "task_failed",
            "flow_error",
        ]
        assert all("task_id" not in e for e in events)
        assert events[0]["message"] == "Processing 45,000 financial records"
        assert events[1]["input"]["record_count"] == 45000
        failed = events[2]
        assert failed["error"]["type"] == "DataValidationError"
        assert failed["error"]["code"] == "VALIDATION_FAILED"
        assert failed["error"]["details"]["failed_records"] == 1247
        assert failed["partial_results"]["valid_records"] == 43753
        assert events[3]["error"]["type"] == "PipelineHaltedError"
        assert events[3]["partial_results"]["quarantined_records"] == 1247
        assert sim.task_status(task_id) == {"status": "failed", "results": {}}
        assert await sim.wait_run("Financial_Data_Pipeline", "daily_batch_20240215") == "failed"


async def test_dependency_order_and_sibling_concurrency() -> None:
    """Siblings start together and overlap; a join starts only after both ended."""
    body = {
        "flow_name": "Fan",
        "run_name": "r1",
        "tasks": [
            {"name": "a", "function": "call_lyzr_agent", "params": {}, "x-sim": {"duration": 1}},
            {"name": "b", "function": "api_call", "params": {"x": {"depends": "a"}}},
            {"name": "c", "function": "api_call", "params": {"x": {"depends": "a"}}},
            {
                "name": "d",
                "function": "a2a",
                "params": {"b": {"depends": "b"}, "c": {"depends": "c"}},
                "x-sim": {"duration": 1},
            },
        ],
        "x-sim": {"duration": 10},
    }
    async with Simulator(Quirks.quiet(), time_scale=SCALE) as sim:
        await sim.start_run(body)
        assert await sim.wait_run("Fan", "r1") == "completed"
        events = sim.events_sent("Fan", "r1")
    at = {(e["event_type"], e.get("task_name")): i for i, e in enumerate(events)}
    assert at[("task_completed", "a")] < at[("task_started", "b")]
    assert at[("task_completed", "a")] < at[("task_started", "c")]
    assert at[("task_started", "c")] < at[("task_completed", "b")]
    assert at[("task_started", "b")] < at[("task_completed", "c")]
    assert max(at[("task_completed", "b")], at[("task_completed", "c")]) < at[("task_started", "d")]
    d_input = events[at[("task_started", "d")]]["input"]
    assert set(d_input) == {"b", "c"} and d_input["b"]["status_code"] in (200, 201)


@pytest.mark.parametrize("seed", range(6))
async def test_generated_flows_play_parents_first(seed: int) -> None:
    """Random DAGs play each task after its parents; a failure halts the run with flow_error."""
    body = generate_flow(random.Random(seed), 9, failure_rate=0.15)
    flow = parse_flow(body)
    async with Simulator(Quirks.quiet(), time_scale=0.002, seed=seed) as sim:
        await sim.start_run(body)
        status = await sim.wait_run(flow.flow_name, flow.run_name)
        events = sim.events_sent(flow.flow_name, flow.run_name)
    completed: set[str] = set()
    failed = False
    for event in events:
        name = event.get("task_name")
        if event["event_type"] == "task_started":
            assert not failed, "no task starts after a failure"
            assert set(flow.parents[str(name)]) <= completed
        elif event["event_type"] == "task_completed":
            completed.add(str(name))
        elif event["event_type"] == "task_failed":
            failed = True
    assert events[-1]["event_type"] == ("flow_error" if failed else "flow_completed")
    assert status == ("failed" if failed else "completed")


async def test_untaken_branches_emit_nothing() -> None:
    """Only the chosen branch of a conditional and of a router (and no descendants) plays."""
    body = {
        "flow_name": "Branchy",
        "run_name": "r",
        "tasks": [
            {
                "name": "gate",
                "function": "gpt_conditional_block",
                "params": {},
                "x-sim": {"branch": "false"},
            },
            {"name": "yes", "function": "api_call", "params": {}},
            {"name": "yes_child", "function": "api_call", "params": {"x": {"depends": "yes"}}},
            {"name": "no", "function": "api_call", "params": {}},
            {
                "name": "router",
                "function": "gpt_router",
                "params": {"n": {"depends": "no"}},
                "x-sim": {"branch": "tech"},
            },
            {"name": "billing", "function": "call_lyzr_agent", "params": {}},
            {"name": "tech", "function": "call_lyzr_agent", "params": {}},
        ],
        "edges": [
            {"source": "gate", "target": "yes", "condition": "true"},
            {"source": "gate", "target": "no", "condition": "false"},
            {"source": "router", "target": "billing", "condition": "route == 'billing'"},
            {"source": "router", "target": "tech", "condition": "route == 'tech'"},
        ],
        "x-sim": {"duration": 1},
    }
    async with Simulator(Quirks.quiet(), time_scale=SCALE) as sim:
        await sim.start_run(body)
        assert await sim.wait_run("Branchy", "r") == "completed"
        events = sim.events_sent("Branchy", "r")
    names = {e.get("task_name") for e in events if e["event_type"] == "task_started"}
    assert names == {"gate", "no", "router", "tech"}
    assert events[1]["task_name"] == "gate"
    gate_done = next(e for e in events if e["event_type"] == "task_completed")
    assert gate_done["output"]["branch"] == "false"
    assert set(events[-1]["output"]) == {"gate", "no", "router", "tech"}


async def test_late_subscriber_gets_no_replay() -> None:
    """A socket opened mid-run gets only the events sent after it connected."""
    body = sequential_flow("Late", "r", 4, 8)
    async with (
        Simulator(TEST_QUIRKS, time_scale=SCALE) as sim,
        ws_connect(sim.socket_url("Late", "r")) as early,
    ):
        await sim.start_run(body)
        early_frames: list[str] = []
        await read_until(early, "task_completed", early_frames)
        async with ws_connect(sim.socket_url("Late", "r")) as late:
            late_events = events_of(await read_all(late))
        early_events = events_of(early_frames + await read_all(early))
    sent = sim.events_sent("Late", "r")
    assert early_events == sent
    assert late_events and late_events[0]["event_type"] != "flow_started"
    skipped = len(sent) - len(late_events)
    assert skipped >= 3
    assert late_events == sent[skipped:]


async def test_several_subscribers_all_get_every_frame() -> None:
    """Three sockets on one run all receive the same events."""
    async with Simulator(TEST_QUIRKS, time_scale=SCALE) as sim:
        url = sim.socket_url("Multi", "r")
        async with ws_connect(url) as one, ws_connect(url) as two, ws_connect(url) as three:
            await sim.start_run(sequential_flow("Multi", "r", 2, 2))
            got = await asyncio.gather(read_all(one), read_all(two), read_all(three))
    sent = sim.events_sent("Multi", "r")
    assert len(sent) == 6
    assert [events_of(frames) for frames in got] == [sent, sent, sent]


async def test_greeting_echo_and_keepalive_noise() -> None:
    """Greetings alternate text/JSON, client frames are echoed, keepalives and pongs arrive."""
    quirks = Quirks(keepalive_interval=0.02, noise_probability=0.0, close_after_terminal=None)
    async with Simulator(quirks, time_scale=SCALE) as sim:
        url = sim.socket_url("Noisy", "r")
        async with ws_connect(url) as first, ws_connect(url) as second:
            assert await first.recv() == "connection established"
            assert json.loads(await second.recv()) == {
                "type": "system",
                "message": "Connected to workflow Noisy/r",
            }
            await first.send("hello")
            await first.send(json.dumps({"type": "ping"}))
            frames: list[str] = []
            async with asyncio.timeout(5):
                while len(frames) < 12:
                    frames.append(str(await first.recv()))
    assert "Echoing: hello" in frames
    assert json.dumps({"message": 'Echoing: {"type": "ping"}'}) in frames
    parsed = [json.loads(f) for f in frames if f.startswith("{")]
    assert {"event_type": "keepalive"} in parsed
    assert parsed.count({"event_type": "pong"}) >= 2  # an answer to the ping, and a keepalive


async def test_plain_text_noise_and_duplicates() -> None:
    """With noise and duplicates certain, each event is preceded by text and sent twice."""
    quirks = Quirks(noise_probability=1.0, duplicate_events=1.0, close_after_terminal=0.05)
    async with (
        Simulator(quirks, time_scale=SCALE) as sim,
        ws_connect(sim.socket_url("Dup", "r")) as ws,
    ):
        await sim.start_run(sequential_flow("Dup", "r", 1, 1))
        frames = await read_all(ws)
    sent = sim.events_sent("Dup", "r")
    body = frames[1:]  # after the greeting
    assert len(body) == 3 * len(sent)
    for index, event in enumerate(sent):
        noise, first, again = body[3 * index : 3 * index + 3]
        assert not noise.startswith("{")
        assert json.loads(first) == json.loads(again) == event


async def test_unknown_event_types_when_enabled() -> None:
    """unknown_events=1 adds an undocumented task_progress event inside each task."""
    async with Simulator(
        dataclasses.replace(Quirks.quiet(), unknown_events=1.0), time_scale=SCALE
    ) as sim:
        await sim.start_run(sequential_flow("Unknown", "r", 2, 2))
        await sim.wait_run("Unknown", "r")
    types = [e["event_type"] for e in sim.events_sent("Unknown", "r")]
    assert types.count("task_progress") == 2
    assert types.index("task_progress") == types.index("task_started") + 1


async def test_millisecond_timestamps_on_the_wire() -> None:
    """timestamps=milliseconds sends integer epoch milliseconds."""
    quirks = Quirks(timestamps="milliseconds", close_after_terminal=0.05)
    async with (
        Simulator(quirks, time_scale=SCALE) as sim,
        ws_connect(sim.socket_url("Ms", "r")) as ws,
    ):
        await sim.start_run(sequential_flow("Ms", "r", 1, 1))
        events = events_of(await read_all(ws))
    assert events and all(isinstance(e["timestamp"], int) for e in events)
    assert all(e["timestamp"] > 1e12 for e in events)


async def test_iso_timestamps_and_run_level_override() -> None:
    """timestamps=iso sends UTC ISO-8601 strings; a flow's x-sim can pick its own style."""
    async with Simulator(Quirks(timestamps="iso"), time_scale=SCALE) as sim:
        await sim.start_run(sequential_flow("Iso", "r", 1, 1))
        seconds_body = {**sequential_flow("Sec", "r", 1, 1), "x-sim": {"timestamps": "seconds"}}
        await sim.start_run(seconds_body)
        await sim.wait_run("Iso", "r")
        await sim.wait_run("Sec", "r")
    stamps = [e["timestamp"] for e in sim.events_sent("Iso", "r")]
    assert all(isinstance(s, str) and s.endswith("Z") for s in stamps)
    parsed = [datetime.fromisoformat(s).timestamp() for s in stamps]
    assert parsed == sorted(parsed)
    assert all(isinstance(e["timestamp"], float) for e in sim.events_sent("Sec", "r"))


@pytest.mark.parametrize("mode", ["close", "abort"])
async def test_disconnect_mid_run_then_reconnect_gets_later_events_only(mode: str) -> None:
    """The first socket drops after N events (1011 or abort); a reconnect sees only later ones."""
    quirks = Quirks(
        disconnect_after=3, disconnect_mode=cast(DisconnectMode, mode), close_after_terminal=0.05
    )
    async with Simulator(quirks, time_scale=SCALE) as sim:
        url = sim.socket_url("Drop", "r")
        first_frames: list[str] = []
        async with ws_connect(url) as first:
            await sim.start_run(sequential_flow("Drop", "r", 5, 8))
            with pytest.raises(ConnectionClosedError) as closed:
                async with asyncio.timeout(5):
                    async for frame in first:
                        first_frames.append(str(frame))
        if mode == "close":
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
        else:
            assert closed.value.rcvd is None
        async with ws_connect(url) as second:
            second_events = events_of(await read_all(second))
        assert await sim.wait_run("Drop", "r") == "completed"
    sent = sim.events_sent("Drop", "r")
    assert events_of(first_frames) == sent[:3]
    assert second_events and second_events[-1]["event_type"] == "flow_completed"
    assert second_events == sent[len(sent) - len(second_events) :]
    assert len(second_events) <= len(sent) - 3


async def test_stall_stops_pongs_so_client_ping_timeout_fires() -> None:
    """After stall_after frames the server stops sending and answering pings; pings time out."""
    quirks = Quirks(stall_after=1, keepalive_interval=0.02)
    async with Simulator(quirks, time_scale=SCALE) as sim:
        frames: list[str] = []
        url = sim.socket_url("Stall", "r")
        async with ws_connect(url, ping_interval=0.05, ping_timeout=0.1) as ws:
            await sim.start_run(sequential_flow("Stall", "r", 3, 30))
            with pytest.raises(ConnectionClosedError) as closed:
                async with asyncio.timeout(3):
                    async for frame in ws:
                        frames.append(str(frame))
        assert "keepalive ping timeout" in str(closed.value)
        assert [e["event_type"] for e in events_of(frames)] == ["flow_started"]
        assert len(sim.events_sent("Stall", "r")) < 7  # the run is still going


async def test_server_closes_normally_after_terminal_event() -> None:
    """Shortly after flow_completed the server closes the socket with 1000."""
    async with (
        Simulator(Quirks(close_after_terminal=0.05), time_scale=SCALE) as sim,
        ws_connect(sim.socket_url("Bye", "r")) as ws,
    ):
        await sim.start_run(sequential_flow("Bye", "r", 1, 1))
        await read_all(ws)
        assert ws.close_code == 1000


async def test_wrapper_body_and_bad_dags_get_422(http: aiohttp.ClientSession) -> None:
    """The documented wrapper body, a cycle and an unknown dependency are refused with 422."""
    cyclic = {
        "flow_name": "F",
        "run_name": "r",
        "tasks": [
            {"name": "a", "function": "api_call", "params": {"x": {"depends": "b"}}},
            {"name": "b", "function": "api_call", "params": {"x": {"depends": "a"}}},
        ],
    }
    unknown = {
        "flow_name": "F",
        "run_name": "r",
        "tasks": [{"name": "a", "function": "api_call", "params": {"x": {"depends": "zz"}}}],
    }
    wrapper = {"workflow_data": customer_support_flow(), "inputs": {}}
    async with Simulator(TEST_QUIRKS) as sim:
        for bad, words in ((wrapper, "workflow_data"), (cyclic, "cycle"), (unknown, "'zz'")):
            async with http.post(f"{sim.http_url}/run-dag/", json=bad) as response:
                assert response.status == 422
                detail = (await response.json())["detail"]
            assert words in detail[0]["msg"]
        async with http.post(f"{sim.http_url}/run-dag/", data=b"{not json") as response:
            assert response.status == 422
        async with http.get(f"{sim.http_url}/task-status/nope") as response:
            assert response.status == 404
        assert sim.runs() == []


async def test_run_dag_without_trailing_slash_and_task_status(
    http: aiohttp.ClientSession,
) -> None:
    """POST /run-dag works too; task-status goes from processing to completed with results."""
    async with Simulator(TEST_QUIRKS, time_scale=SCALE) as sim:
        body = sequential_flow("Status", "r", 2, 10)
        async with http.post(f"{sim.http_url}/run-dag", json=body) as response:
            task_id = (await response.json())["task_id"]
        async with http.get(f"{sim.http_url}/task-status/{task_id}") as response:
            assert (await response.json())["status"] == "processing"
        await sim.wait_run("Status", "r")
        async with http.get(f"{sim.http_url}/task-status/{task_id}") as response:
            done = await response.json()
        assert done["status"] == "completed"
        assert set(done["results"]) == {"step_0", "step_1"}
        again = await sim.start_run(body)
        assert again != task_id


async def test_percent_encoded_names_with_spaces_and_slashes() -> None:
    """Socket path segments are percent-decoded, so names with spaces, / and β work."""
    flow_name, run_name = "Support Flow/β 1", "run #1 ?x"
    async with Simulator(TEST_QUIRKS, time_scale=SCALE) as sim:
        url = sim.socket_url(flow_name, run_name)
        assert url.endswith("/ws/Support%20Flow%2F%CE%B2%201/run%20%231%20%3Fx")
        async with ws_connect(url) as ws:
            await sim.start_run(sequential_flow(flow_name, run_name, 1, 1))
            events = events_of(await read_all(ws))
    assert events == sim.events_sent(flow_name, run_name)
    assert {(e["flow_name"], e["run_name"]) for e in events} == {(flow_name, run_name)}


async def test_api_key_is_enforced_when_configured(http: aiohttp.ClientSession) -> None:
    """With api_key set, requests without the x-api-key header get 401."""
    body = sequential_flow("Key", "r", 1, 1)
    async with Simulator(TEST_QUIRKS, time_scale=SCALE, api_key="secret") as sim:
        async with http.post(f"{sim.http_url}/run-dag/", json=body) as response:
            assert response.status == 401
        headers = {"x-api-key": "secret"}
        async with http.post(f"{sim.http_url}/run-dag/", json=body, headers=headers) as response:
            assert response.status == 200
        with pytest.raises(Exception, match="401"):
            async with ws_connect(sim.socket_url("Key", "r")):
                pass
        async with ws_connect(sim.socket_url("Key", "r2"), additional_headers=headers) as ws:
            assert await ws.recv() == "connection established"


async def test_run_that_hangs_forever_stays_processing_and_stops_cleanly() -> None:
    """A task hinted to hang forever keeps its run processing until the simulator stops."""
    body = sequential_flow("Stuck", "r", 2, 1)
    body["tasks"][0]["x-sim"] = {"duration": 1, "hang": "forever"}
    async with (
        Simulator(TEST_QUIRKS, time_scale=SCALE) as sim,
        ws_connect(sim.socket_url("Stuck", "r")) as ws,
    ):
        task_id = await sim.start_run(body)
        frames: list[str] = []
        await read_until(ws, "task_started", frames)
        with pytest.raises(TimeoutError):
            await sim.wait_run("Stuck", "r", timeout=0.2)
        assert sim.task_status(task_id) == {"status": "processing", "results": {}}
        await sim.stop()
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(2):
                while True:
                    await ws.recv()
        assert ws.close_code == 1001


async def test_cli_plays_seed_flows_and_prints_a_line_per_run() -> None:
    """`simulate --play seed --runs 2` plays both docs flows and prints start and end lines."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        ["--port", "0", "--play", "seed", "--runs", "2", "--time-scale", "0.001", "--interval", "0"]
    )
    out = io.StringIO()
    assert await run_cli(args, out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("LAO simulator: POST http://127.0.0.1:")
    assert lines[1].startswith("run started Customer_Support_Pipeline/ticket_78453")
    assert "status=completed events=7" in lines[2]
    assert lines[3].startswith("run started Financial_Data_Pipeline/daily_batch_20240215")
    assert "status=failed events=4" in lines[4]


def test_cli_options_all_have_help() -> None:
    """Every simulate option documents itself."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    actions = [a for a in parser._actions if a.option_strings and a.dest != "help"]
    assert actions and all(a.help for a in actions)
