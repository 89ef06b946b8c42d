"""The upstream client (picows) against scripted servers: frames, pings, closes, handshakes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from picows import (
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
    ws_create_server,
)

from otel_bridge.sources import ws_client, ws_frames
from otel_bridge.sources.upstream import run_url
from otel_bridge.sources.ws_client import BadURL, Link, Refused, connect
from support.ports import LOOPBACK
from support.silent import silent_server
from support.timing import UNIT, wait_for

pytestmark = pytest.mark.integration

OnConnect = Callable[[WSTransport], None]


class Peer(WSListener):
    """The server's side of one connection: runs a script, records what the client sends."""

    def __init__(self, script: OnConnect, pong: bool) -> None:
        self.script = script
        self.pong = pong
        self.frames: list[tuple[WSMsgType, bytes]] = []
        self.transport: WSTransport | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        """Run the script."""
        self.transport = transport
        self.script(transport)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        """Record the frame; answer a ping (unless stalled) and a close like a server does."""
        self.frames.append((frame.msg_type, frame.get_payload_as_bytes()))
        if frame.msg_type is WSMsgType.PING and self.pong:
            transport.send_pong(frame.get_payload_as_bytes())
        elif frame.msg_type is WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()


class Upstream:
    """A picows server on loopback; ``peers`` and ``requests`` as they come."""

    def __init__(self, script: OnConnect, status: int, pong: bool) -> None:
        self.script = script
        self.status = status
        self.pong = pong
        self.peers: list[Peer] = []
        self.requests: list[WSUpgradeRequest] = []
        self.clients: list[Link] = []
        self.port = 0

    def accept(self, request: WSUpgradeRequest) -> Peer | WSUpgradeResponseWithListener:
        """The listener factory of picows: a Peer, or the refusal."""
        self.requests.append(request)
        if self.status != 101:
            refusal = WSUpgradeResponse.create_error_response(self.status)
            return WSUpgradeResponseWithListener(refusal, None)
        peer = Peer(self.script, self.pong)
        self.peers.append(peer)
        return peer

    def url(self, path: str = "/ws/F/r") -> str:
        """The ws:// URL of ``path``."""
        return f"ws://{LOOPBACK}:{self.port}{path}"


@asynccontextmanager
async def upstream(
    script: OnConnect = lambda t: None, *, status: int = 101, pong: bool = True
) -> AsyncIterator[Upstream]:
    """A scripted run socket; ``pong=False`` never answers the client's pings (a stall)."""
    up = Upstream(script, status, pong)
    server = await ws_create_server(up.accept, LOOPBACK, 0, enable_auto_pong=False)
    up.port = server.sockets[0].getsockname()[1]
    try:
        yield up
    finally:  # hang up every connection, both sides, before the loop goes
        for client in up.clients:
            client.abandon()
        for peer in up.peers:
            if peer.transport is not None:
                peer.transport.disconnect(False)
                with contextlib.suppress(Exception):
                    await peer.transport.wait_disconnected()
        for client in up.clients:
            await asyncio.wait_for(client.closed, 5 * UNIT)
        server.close()
        await server.wait_closed()


def link(got: list[str | bytes], interval: float = 20.0, timeout: float = 20.0) -> Link:
    """A client connection that keeps what it receives."""
    return Link(got.append, interval * UNIT, timeout * UNIT)


async def opened(url: str, client: Link, up: Upstream | None = None, **headers: str) -> Link:
    """``client``, connected to ``url`` (and hung up when ``up`` ends)."""
    await connect(
        url, client, headers=list(headers.items()), open_timeout=5 * UNIT, ssl_context=None
    )
    if up is not None:
        up.clients.append(client)
    return client


def send_fragments(transport: WSTransport) -> None:
    """Whole and fragmented text and binary messages; UTF-8 cut inside a character."""
    transport.send(WSMsgType.TEXT, b"whole")
    transport.send(WSMsgType.BINARY, b"\x00\xff")
    transport.send(WSMsgType.TEXT, b"caf\xc3", fin=False)
    transport.send(WSMsgType.CONTINUATION, b"\xa9 ", fin=False)
    transport.send(WSMsgType.PING, b"between fragments")
    transport.send(WSMsgType.CONTINUATION, b"au lait", fin=True)
    transport.send(WSMsgType.BINARY, b"\x01", fin=False)
    transport.send(WSMsgType.CONTINUATION, b"\x02", fin=True)


async def test_messages_arrive_whole_as_str_for_text_and_bytes_for_binary() -> None:
    """Text as str, binary as bytes, fragmented messages reassembled (a ping in between)."""
    got: list[str | bytes] = []
    async with upstream(send_fragments) as up:
        client = await opened(up.url(), link(got), up)
        await wait_for(lambda: len(got) >= 4, 5 * UNIT, "four messages")
        assert got == ["whole", b"\x00\xff", "café au lait", b"\x01\x02"]
        pongs = [p for kind, p in up.peers[0].frames if kind is WSMsgType.PONG]
        assert pongs == [b"between fragments"]  # the server's ping was answered
        assert not client.closed.done()


async def test_a_stalled_upstream_is_dropped_by_protocol_pings() -> None:
    """No pong within ping_timeout of a ping: the connection ends with 1011, in time."""
    got: list[str | bytes] = []
    async with upstream(pong=False) as up:
        started = time.monotonic()
        client = await opened(up.url(), link(got, interval=0.2, timeout=0.3), up)
        reason = await asyncio.wait_for(client.closed, 5 * UNIT)
        took = time.monotonic() - started
    assert reason is not None and "1011 (internal error) keepalive ping timeout" in reason
    assert 0.45 * UNIT <= took <= 3 * UNIT
    assert [k for k, _ in up.peers[0].frames][:1] == [WSMsgType.PING]


async def test_pings_go_every_interval_while_frames_flow() -> None:
    """Pings are periodic, not only when idle: a busy socket is still checked for a stall."""
    got: list[str | bytes] = []
    transports: list[WSTransport] = []

    async def traffic() -> None:
        while True:  # a frame every 20 ms: the socket is never idle for a ping interval
            transports[0].send(WSMsgType.TEXT, b"{}")
            await asyncio.sleep(0.02)

    async with upstream(transports.append) as up:
        client = await opened(up.url(), link(got, interval=0.1, timeout=1.0), up)
        sender = asyncio.create_task(traffic())
        try:
            await wait_for(
                lambda: sum(k is WSMsgType.PING for k, _ in up.peers[0].frames) >= 3,
                5 * UNIT,
                "three pings while frames flow",
            )
        finally:
            sender.cancel()
        assert len(got) >= 10 and not client.closed.done()  # pongs came back: still up


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (WSCloseCode.OK, None),
        (WSCloseCode.GOING_AWAY, None),
        (
            WSCloseCode.INTERNAL_ERROR,
            "connection closed: received 1011 (internal error) boom; "
            "then sent 1011 (internal error) boom",
        ),
        (None, "connection closed: no close frame received or sent"),
    ],
)
async def test_how_the_server_closed_decides_normal_or_not(
    code: WSCloseCode | None, reason: str | None
) -> None:
    """1000/1001 are normal ends; another code or a cut connection is not (websockets' words)."""

    def close(transport: WSTransport) -> None:
        transport.send(WSMsgType.TEXT, b"last")
        if code is None:
            transport.disconnect(False)
        else:
            transport.send_close(code, b"boom")

    got: list[str | bytes] = []
    async with upstream(close) as up:
        client = await opened(up.url(), link(got), up)
        assert await asyncio.wait_for(client.closed, 5 * UNIT) == reason
    assert got == ["last"]


async def test_our_close_is_answered_and_normal() -> None:
    """close() sends 1000; the server's answer ends the connection normally."""
    got: list[str | bytes] = []
    async with upstream() as up:
        client = await opened(up.url(), link(got), up)
        assert await client.send_text('{"type":"ping"}')
        client.close()
        assert await asyncio.wait_for(client.closed, 5 * UNIT) is None
        assert not await client.send_text("after")
        sent = [(k, p) for k, p in up.peers[0].frames if k is not WSMsgType.PONG]
        assert sent[0] == (WSMsgType.TEXT, b'{"type":"ping"}')
        assert sent[1][0] is WSMsgType.CLOSE and sent[1][1][:2] == (1000).to_bytes(2, "big")


async def test_the_handshake_sends_the_path_as_given_and_our_headers() -> None:
    """Percent-encoded segments go unchanged; User-Agent and extra headers are sent."""
    got: list[str | bytes] = []
    async with upstream() as up:
        url = run_url(up.url(""), "My Flow", "a/b c%é")
        await opened(url, link(got), up, **{"x-api-key": "k1", "Origin": "https://studio"})
        request = up.requests[0]
    assert request.path == b"/ws/My%20Flow/a%2Fb%20c%25%C3%A9"
    assert request.headers["User-Agent"] == "otel-bridge"
    assert request.headers["x-api-key"] == "k1"
    assert request.headers["Origin"] == "https://studio"


async def test_a_configured_user_agent_replaces_ours() -> None:
    """A User-Agent among the extra headers is sent instead of otel-bridge, not beside it."""
    async with upstream() as up:
        await opened(up.url(), link([]), up, **{"user-agent": "mine/1"})
        assert up.requests[0].headers.getall("User-Agent") == ["mine/1"]


def test_proxies_come_from_the_environment_as_websockets_picks_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ws(s)_proxy, socks, https and http proxy variables apply; no_proxy exempts a host."""
    for name in ("http_proxy", "https_proxy", "ws_proxy", "wss_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    assert ws_client.proxy_for("wss://lao.example/ws/F/r") is None
    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")
    assert ws_client.proxy_for("wss://lao.example/ws/F/r") == "http://proxy.example:3128"
    monkeypatch.setenv("no_proxy", "lao.example")
    assert ws_client.proxy_for("wss://lao.example/ws/F/r") is None


async def test_a_refusal_raises_its_http_status() -> None:
    """An HTTP answer other than 101 raises Refused with the status."""
    async with upstream(status=403) as up:
        with pytest.raises(Refused) as refused:
            await opened(up.url(), link([]), up)
    assert refused.value.status == 403


async def test_a_url_that_is_not_a_websocket_url_is_bad() -> None:
    """http:// (or garbage) is a BadURL, not a retry."""
    for url in ("http://example.invalid/ws/F/r", "ws://"):
        with pytest.raises(BadURL):
            await opened(url, link([]))


def send_in_two_fragments(transport: WSTransport) -> None:
    """1,200 bytes in two frames of 600."""
    transport.send(WSMsgType.TEXT, b"x" * 600, fin=False)
    transport.send(WSMsgType.CONTINUATION, b"x" * 600)


async def test_oversized_and_invalid_messages_drop_the_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A frame or fragmented message over the limit closes with 1009, bad UTF-8 with 1007."""
    monkeypatch.setattr(ws_client, "MAX_MESSAGE_BYTES", 1000)
    monkeypatch.setattr(ws_frames, "MAX_MESSAGE_BYTES", 1000)
    scripts: list[tuple[OnConnect, str]] = [
        (lambda t: t.send(WSMsgType.TEXT, b"x" * 1001), "1009"),
        (send_in_two_fragments, "1009"),
        (lambda t: t.send(WSMsgType.TEXT, b"\xff\xfe"), "1007"),
        (lambda t: t.send(WSMsgType.CONTINUATION, b"x"), "1002"),
    ]
    for script, code in scripts:
        got: list[str | bytes] = []
        async with upstream(script) as up:
            client = await opened(up.url(), link(got), up)
            reason = await asyncio.wait_for(client.closed, 5 * UNIT)
        assert reason is not None and f"sent {code}" in reason, reason
        assert got == []


async def test_a_timed_out_or_cancelled_handshake_hangs_up() -> None:
    """A server that accepts but never answers: TimeoutError, and its socket is closed at once."""
    async with silent_server() as silent:
        port, accepted, ended = silent.port, silent.accepted, silent.ended
        client = link([])
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await connect(
                f"ws://{LOOPBACK}:{port}/ws/F/r",
                client,
                headers=[],
                open_timeout=0.3 * UNIT,
                ssl_context=None,
            )
        await wait_for(lambda: ended, 2 * UNIT, "the server to see the hang-up")
        assert ended[0] - started < 2 * UNIT

        task = asyncio.ensure_future(
            connect(
                f"ws://{LOOPBACK}:{port}/ws/F/r",
                link([]),
                headers=[],
                open_timeout=60,
                ssl_context=None,
            )
        )
        await wait_for(lambda: len(accepted) == 2, 2 * UNIT, "connected, handshake pending")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await wait_for(lambda: len(ended) == 2, 2 * UNIT, "the hang-up of the cancelled one")


def test_picows_logs_warnings_only() -> None:
    """The per-connection INFO lines are not logged; its warnings are."""
    assert not ws_client.PICOWS_LOG.isEnabledFor(20)
    assert ws_client.PICOWS_LOG.isEnabledFor(30) == ws_client.PICOWS_LOG.logger.isEnabledFor(30)
