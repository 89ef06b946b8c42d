"""The doors: token on the control API and pass-through socket, split ports, HTTP limits."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from otel_bridge.cli import main
from otel_bridge.server import BridgeServer, RepeatFilter, limited_repeats
from otel_bridge.settings import SettingsError, load_settings
from support.exposition import metric_value
from support.ports import LOOPBACK, free_ports
from support.rig import (
    FAST_RECONNECT,
    Rig,
    running_bridge,
    running_rig,
    running_upstream,
    serving_process,
    sigterm,
)
from support.timing import UNIT, wait_for

pytestmark = pytest.mark.integration

TOKEN = "0f3a9c2e7b1d4f6a8c0e2b4d6f8a1c3e"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
FLOW = "Door Flow"


CUT = "otel_bridge_http_connections_cut_total"


def sample(server: BridgeServer, name: str, **labels: str) -> float:
    """A sample of the bridge's registry (0 when absent)."""
    return server.bridge.registry.get_sample_value(name, labels) or 0.0


async def status_of(answer: Any) -> int:
    """The status of a request made with ``aiohttp`` (the response released)."""
    async with answer as response:
        return int(response.status)


# ---- the token ------------------------------------------------------------------------


async def test_control_api_needs_the_token_and_unauthenticated_posts_subscribe_nothing() -> None:
    """Without or with a wrong token /v1 answers 401; 200 POSTs without it subscribe nothing."""
    async with running_rig(control_token=TOKEN, **FAST_RECONNECT) as rig:
        url, body = f"{rig.server.url}/v1/runs", {"flow_name": FLOW, "run_name": "r"}
        wrong = {"Authorization": f"Bearer {TOKEN[:-1]}x"}
        statuses = await asyncio.gather(
            *(
                status_of(rig.http.post(url, json=body, headers=wrong if i % 2 else {}))
                for i in range(200)
            )
        )
        assert set(statuses) == {401}
        async with rig.http.get(url) as refused:
            assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert rig.server.bridge.subscriptions == {}
        async with rig.http.post(url, json=body, headers=BEARER) as ok:
            assert ok.status == 201
        for health in (rig.server.url, rig.server.metrics_url):
            assert (await rig.http.get(f"{health}/healthz")).status == 200


async def test_passthrough_socket_needs_the_token_before_subscribing() -> None:
    """A /ws client without the token gets 401 and no upstream socket is opened for it."""
    async with running_rig(control_token=TOKEN, **FAST_RECONNECT) as rig:
        bad = [{}, {"Authorization": "Bearer nope"}]
        for headers in bad:
            with pytest.raises(InvalidStatus) as refused:
                await connect(rig.socket_url(FLOW, "r"), additional_headers=headers)
            assert refused.value.response.status_code == 401
        with pytest.raises(InvalidStatus):
            await connect(rig.socket_url(FLOW, "r"), subprotocols=[Subprotocol("bearer.nope")])
        assert rig.server.bridge.subscriptions == {}
        assert rig.sim.hub(FLOW, "r").connections == 0


@pytest.mark.parametrize("path", ["//v1/runs", "/./v1/runs", "/%761/runs", "/v1/../v1/runs"])
async def test_odd_paths_cannot_slip_past_the_token(path: str) -> None:
    """The token is required by route, not by path text: odd spellings get 401 too."""
    async with running_bridge("ws://127.0.0.1:9", control_token=TOKEN) as server:
        head = f"GET {path} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n".encode()
        async with raw_connections(server.control_port, 1, head) as [(reader, _)]:
            assert (await reader.read()).startswith(b"HTTP/1.1 401")


@pytest.mark.parametrize(
    ("offered", "selected"),
    [
        ([], None),  # the token in the Authorization header
        ([f"bearer.{TOKEN}"], f"bearer.{TOKEN}"),  # what a browser can do
        (["otel-bridge", f"bearer.{TOKEN}"], "otel-bridge"),  # the token is not echoed
    ],
)
async def test_passthrough_socket_takes_the_token_as_header_or_subprotocol(
    offered: list[str], selected: str | None
) -> None:
    """The token works as a bearer header or a bearer.<token> subprotocol, which is selected."""
    async with running_rig(control_token=TOKEN, **FAST_RECONNECT) as rig:
        headers = {} if offered else BEARER
        protocols = [Subprotocol(p) for p in offered] or None
        url = rig.socket_url(FLOW, "r")
        async with connect(url, additional_headers=headers, subprotocols=protocols) as ws:
            assert ws.subprotocol == selected
            await rig.sim.wait_subscribers(FLOW, "r", timeout=5 * UNIT)


async def test_metrics_and_control_listeners_serve_their_own_paths(rig: Rig) -> None:
    """/metrics only on the metrics port; /v1 and /ws only on the control port; health on both."""
    control, metrics, http = rig.server.url, rig.server.metrics_url, rig.http
    assert control != metrics
    assert await status_of(http.get(f"{metrics}/metrics")) == 200
    assert await status_of(http.get(f"{control}/metrics")) == 404
    assert await status_of(http.get(f"{metrics}/v1/runs")) == 404
    assert await status_of(http.post(f"{metrics}/v1/runs", json={})) in (404, 405)
    assert await status_of(http.get(f"{metrics}/ws/{FLOW}/r")) == 404
    for base in (control, metrics):
        assert await status_of(http.get(f"{base}/readyz")) == 200


# ---- settings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"OTEL_BRIDGE_CONTROL_HOST": "0.0.0.0"}, "set control_token"),
        ({"OTEL_BRIDGE_CONTROL_HOST": "10.1.2.3"}, "not a loopback address"),
        ({"OTEL_BRIDGE_CONTROL_HOST": "bridge.example"}, "not a loopback address"),
        ({"OTEL_BRIDGE_CONTROL_TOKEN": ""}, "control_token must not be empty"),
        ({"OTEL_BRIDGE_CONTROL_TOKEN": "a b"}, "must not contain spaces"),
        ({"OTEL_BRIDGE_CONTROL_PORT": "9464"}, "control_port (OTEL_BRIDGE_CONTROL_PORT) must"),
    ],
)
def test_open_control_listener_without_token_and_empty_tokens_are_refused(
    environ: dict[str, str], message: str
) -> None:
    """A non-loopback control host needs a token; an empty token is an error, not 'no auth'."""
    with pytest.raises(SettingsError, match="invalid settings") as refused:
        load_settings(environ=environ)
    assert message in str(refused.value)
    assert TOKEN not in str(refused.value)


def test_loopback_or_tokened_control_hosts_load() -> None:
    """Loopback addresses need no token; any address may listen with one."""
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert load_settings(environ={"OTEL_BRIDGE_CONTROL_HOST": host}).control_host == host
    tokened = {"OTEL_BRIDGE_CONTROL_HOST": "0.0.0.0", "OTEL_BRIDGE_CONTROL_TOKEN": TOKEN}
    assert load_settings(environ=tokened).control_token == TOKEN


def test_serve_refuses_to_start_with_an_open_control_port_and_no_token(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`serve --control-host 0.0.0.0` without a token exits 2 with one line."""
    assert main(["serve", "--control-host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "control_token" in err


# ---- client frames and pass-through-only runs ------------------------------------------


@asynccontextmanager
async def recording_upstream() -> AsyncIterator[tuple[str, list[str | bytes]]]:
    """A run socket that records what it receives and sends nothing; (base URL, frames)."""
    received: list[str | bytes] = []

    async def record(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        async for message in ws:
            if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                received.append(message.data)
        return ws

    async with running_upstream(record) as upstream:
        yield upstream, received


async def test_only_small_text_frames_go_upstream_at_a_bounded_rate() -> None:
    """Binary and oversized frames are dropped; 40 pings at once pass at the burst, not all."""
    async with (
        recording_upstream() as (upstream, received),
        running_bridge(upstream, **FAST_RECONNECT) as server,
    ):
        url = f"ws://{LOOPBACK}:{server.control_port}/ws/F/r"
        async with connect(url) as ws:
            sub = await wait_for(lambda: server.bridge.subscriptions.get(("F", "r")))
            await wait_for(lambda: sub.state == "connected", message="the upstream socket")
            started = asyncio.get_running_loop().time()
            await ws.send(b"\x00binary")
            await ws.send("x" * 5000)
            for _ in range(40):
                await ws.send('{"type":"ping"}')

            def outcomes() -> dict[str, float]:
                kinds = ("sent", "binary", "too_large", "rate_limited")
                name = "otel_bridge_passthrough_client_frames_total"
                return {k: sample(server, name, outcome=k) for k in kinds}

            await wait_for(lambda: sum(outcomes().values()) == 42, message="42 frames judged")
            took = asyncio.get_running_loop().time() - started
            counts = outcomes()
            assert counts["binary"] == counts["too_large"] == 1
            assert 10 <= counts["sent"] <= 10 + 5 * took + 1  # burst 10, then 5 a second
            assert counts["rate_limited"] == 40 - counts["sent"]
            await wait_for(lambda: len(received) == counts["sent"], message="pings upstream")
        assert all(frame == '{"type":"ping"}' for frame in received)


async def test_a_3_mb_client_frame_closes_the_client_and_never_reaches_upstream() -> None:
    """A frame over 64 KiB closes its client with 1009; upstream receives nothing."""
    async with (
        recording_upstream() as (upstream, received),
        running_bridge(upstream, **FAST_RECONNECT) as server,
    ):
        async with connect(f"ws://{LOOPBACK}:{server.control_port}/ws/F/big") as ws:
            sub = await wait_for(lambda: server.bridge.subscriptions.get(("F", "big")))
            await wait_for(lambda: sub.state == "connected", message="the upstream socket")
            with pytest.raises(ConnectionClosed) as closed:
                await ws.send("y" * 3_000_000)
                await asyncio.wait_for(ws.recv(), 10 * UNIT)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        assert received == []


def long_run(run: str) -> dict[str, Any]:
    """One task that takes a minute: the run is in flight while the test acts."""
    task = {"name": "wait", "tag": "api", "function": "api_call", "params": {}}
    task["x-sim"] = {"duration": 60.0}
    return {"flow_name": FLOW, "run_name": run, "tasks": [task], "edges": []}


async def test_a_run_only_pass_through_clients_asked_for_ends_with_the_last_of_them() -> None:
    """The last client out stops the subscription and closes the run as cancellation."""
    async with running_rig(**FAST_RECONNECT) as rig:
        key = (FLOW, "pt_only")
        first, second = [await connect(rig.socket_url(*key)) for _ in range(2)]
        await rig.start(long_run("pt_only"))
        await wait_for(lambda: rig.events_received("task_started"), message="the task to start")
        sub = rig.server.bridge.subscriptions[key]
        await first.close()
        await wait_for(lambda: len(sub.clients) == 1, message="the first client to leave")
        assert rig.server.bridge.subscriptions.get(key) is sub
        await second.close()
        await wait_for(lambda: key not in rig.server.bridge.subscriptions, message="dropped")
        await wait_for(lambda: rig.sim.hub(*key).subscribers == 0, message="upstream closed")
        root = await rig.wait_root("pt_only")
        assert root.attributes["cicd.pipeline.result"] == "cancellation"


async def test_a_registered_run_outlives_its_pass_through_clients(rig: Rig) -> None:
    """A run POSTed to /v1/runs stays followed when a pass-through client comes and goes."""
    await rig.register(FLOW, "posted")
    async with connect(rig.socket_url(FLOW, "posted")):
        sub = rig.server.bridge.subscriptions[(FLOW, "posted")]
        await wait_for(lambda: sub.clients, message="the client to attach")
    await wait_for(lambda: not sub.clients, message="the client to leave")
    assert rig.server.bridge.subscriptions[(FLOW, "posted")] is sub and sub.active


# ---- HTTP limits ------------------------------------------------------------------------


async def open_raw(port: int, head: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw connection that has sent ``head`` (a partial one stays half-open)."""
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    writer.write(head)
    await writer.drain()
    return reader, writer


async def closed_by_peer(reader: asyncio.StreamReader) -> bool:
    """Wait until the bridge closes the connection (EOF or reset); True then."""
    with suppress(ConnectionError):
        while await reader.read(65536):
            pass
    return True


@asynccontextmanager
async def raw_connections(
    port: int, count: int, head: bytes
) -> AsyncIterator[list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]:
    """``count`` raw connections that sent ``head``; closed on leaving."""
    opened = [await open_raw(port, head) for _ in range(count)]
    try:
        yield opened
    finally:
        for _, writer in opened:
            writer.close()
            with suppress(ConnectionError):
                await writer.wait_closed()


HALF_HEAD = b"GET /v1/runs HTTP/1.1\r\nHost: bridge\r\n"  # the blank line never comes


async def test_half_open_requests_are_cut_within_the_header_timeout_while_healthz_answers() -> None:
    """40 half-open requests: 8 over the cap closed at once, the rest cut at the header timeout."""
    timeout = 1.0 * UNIT
    options = {"http_header_timeout_s": timeout, "http_max_connections": 32}
    async with (
        running_rig(**FAST_RECONNECT, **options) as rig,
        raw_connections(rig.server.control_port, 40, HALF_HEAD) as opened,
    ):
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with rig.http.get(f"{rig.server.metrics_url}/healthz") as health:
            assert health.status == 200
        await wait_for(lambda: sample(rig.server, CUT, listener="control", reason="limit") == 8)
        assert loop.time() - started < timeout  # /healthz and the refusals came before any cut
        await asyncio.wait_for(
            asyncio.gather(*(closed_by_peer(r) for r, _ in opened)), timeout + 3 * UNIT
        )
        assert loop.time() - started >= 0.9 * timeout
        assert sample(rig.server, CUT, listener="control", reason="header_timeout") == 32
        # The control port takes requests again.
        assert await status_of(rig.http.get(f"{rig.server.url}/v1/runs")) == 200


async def read_answer(reader: asyncio.StreamReader) -> bytes:
    """One HTTP answer's head and body (Content-Length framed)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return head + await reader.readexactly(length)


async def test_each_request_head_on_a_kept_alive_connection_is_timed() -> None:
    """After one answer, a second request head that never ends is cut at the header timeout."""
    options = {"http_header_timeout_s": 0.5 * UNIT, "http_keepalive_timeout_s": 600.0}
    async with running_bridge("ws://127.0.0.1:9", **options) as server:
        head = b"GET /healthz HTTP/1.1\r\nHost: bridge\r\n\r\n"
        async with raw_connections(server.port, 1, head) as [(reader, writer)]:
            assert b" 200 " in await read_answer(reader)
            writer.write(HALF_HEAD)
            await asyncio.wait_for(closed_by_peer(reader), 5 * UNIT)
        assert sample(server, CUT, listener="metrics", reason="header_timeout") == 1


async def test_an_idle_kept_alive_connection_is_closed() -> None:
    """A connection idle after its answer is closed after http_keepalive_timeout_s."""
    options = {"http_header_timeout_s": 600.0, "http_keepalive_timeout_s": 0.5 * UNIT}
    async with running_bridge("ws://127.0.0.1:9", **options) as server:
        head = b"GET /healthz HTTP/1.1\r\nHost: bridge\r\n\r\n"
        async with raw_connections(server.control_port, 1, head) as [(reader, _)]:
            assert b" 200 " in await read_answer(reader)
            await asyncio.wait_for(closed_by_peer(reader), 5 * UNIT)


async def test_a_body_that_never_arrives_gets_408() -> None:
    """A POST whose body stops short is answered 408 within the timeout, not held."""
    async with running_bridge("ws://127.0.0.1:9", http_header_timeout_s=0.5 * UNIT) as server:
        head = b'POST /v1/runs HTTP/1.1\r\nHost: b\r\nContent-Length: 100\r\n\r\n{"flow'
        async with raw_connections(server.control_port, 1, head) as [(reader, _)]:
            answer = await asyncio.wait_for(read_answer(reader), 5 * UNIT)
        assert answer.startswith(b"HTTP/1.1 408")


@pytest.mark.parametrize(
    "body", ["[" * 60_000, "{" + '"a":[' * 33 + "1" + "]" * 33 + "}", '{"a":' * 500]
)
async def test_deeply_nested_bodies_are_a_400_without_traceback(rig: Rig, body: str) -> None:
    """Bodies nested deeper than 32 levels are refused with 400, never a 500."""
    async with rig.http.post(f"{rig.server.url}/v1/runs", data=body) as response:
        text = await response.text()
    assert response.status == 400, text
    assert "nested deeper than 32" in json.loads(text)["error"]


async def test_a_body_nested_within_the_limit_is_accepted(rig: Rig) -> None:
    """A registration with 20 levels of extra nesting still subscribes."""
    body = '{"flow_name": "F", "run_name": "nested", "x": ' + "[" * 20 + "]" * 20 + "}"
    async with rig.http.post(f"{rig.server.url}/v1/runs", data=body) as response:
        assert response.status == 201, await response.text()


# ---- logs -------------------------------------------------------------------------------


def test_repeated_warnings_pass_once_per_window_with_a_count() -> None:
    """1,000 identical errors in a window make one line; the next line says 999 were held."""
    now = [0.0]
    repeat = RepeatFilter(window_s=10.0, clock=lambda: now[0])

    def record(msg: str, level: int = logging.ERROR) -> logging.LogRecord:
        return logging.LogRecord("otel_bridge.x", level, __file__, 1, msg, None, None)

    passed = [repeat.filter(record("upstream lost")) for _ in range(1000)]
    assert passed.count(True) == 1
    assert repeat.filter(record("another message")) and repeat.filter(record("info", 20))
    assert repeat.held_back() == [("otel_bridge.x", "upstream lost", 999)]
    now[0] = 10.0
    later = record("upstream lost")
    assert repeat.filter(later) and later.repeated == 999
    assert repeat.held_back() == []


def test_lines_still_held_back_are_counted_on_leaving(caplog: pytest.LogCaptureFixture) -> None:
    """limited_repeats lets one of 50 warnings through, then logs the 49 held back on leaving."""
    caplog.set_level(logging.INFO, logger="otel_bridge.server")
    logger = logging.getLogger("test_doors.repeats")
    logger.propagate = False
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger.addHandler(handler)
    try:
        with limited_repeats(logger):
            for _ in range(50):
                logger.warning("HTTP connection refused: too many open")
    finally:
        logger.removeHandler(handler)
    assert lines == ["HTTP connection refused: too many open"]
    (summary,) = [r for r in caplog.records if r.getMessage() == "repeated log lines held back"]
    assert summary.__dict__["repeated"] == 49


async def test_serve_logs_a_flood_of_refused_connections_once_with_its_count() -> None:
    """50 connections over the cap make one warning line, and one count of 49 at shutdown."""
    metrics_port, control_port = free_ports(2)
    env = {
        **os.environ,
        "OTEL_BRIDGE_PORT": str(metrics_port),
        "OTEL_BRIDGE_CONTROL_PORT": str(control_port),
        "OTEL_BRIDGE_HTTP_MAX_CONNECTIONS": "1",
        "OTEL_BRIDGE_HTTP_HEADER_TIMEOUT_S": "600",
        "OTEL_BRIDGE_LOG_FORMAT": "json",
    }
    async with serving_process(env=env) as proc, aiohttp.ClientSession() as http:

        async def refusals() -> float | None:
            """The control listener's refusals as /metrics shows them (None: no answer)."""
            with suppress(aiohttp.ClientError):
                async with http.get(f"http://{LOOPBACK}:{metrics_port}/metrics") as r:
                    text = await r.text()
                return metric_value(text, CUT, listener="control", reason="limit")
            return None

        async def refused(count: float) -> bool:
            return await refusals() == count

        await wait_for(lambda: refused(0.0), 20 * UNIT, "the bridge to listen")
        async with raw_connections(control_port, 1, HALF_HEAD):
            for _ in range(50):
                async with raw_connections(control_port, 1, b"") as [(reader, _)]:
                    await closed_by_peer(reader)
            await wait_for(lambda: refused(50.0), message="50 refusals counted")
        err = await sigterm(proc)
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    warned = [x for x in lines if x["message"] == "HTTP connection refused: too many open"]
    assert len(warned) == 1
    (summary,) = [x for x in lines if x["message"] == "repeated log lines held back"]
    assert summary["repeated"] == 49 and summary["held_message"] == warned[0]["message"]


def test_serve_names_the_listener_it_cannot_bind() -> None:
    """A taken control port exits 2 with one line naming it."""
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = ["serve", "--port", "0", "--control-port", str(port)]
        result = subprocess.run(
            [sys.executable, "-m", "otel_bridge", *argv],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port} (control)" in result.stderr.splitlines()[-1]
