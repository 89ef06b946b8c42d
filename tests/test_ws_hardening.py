"""The picows client against a hand-written server: limits, fairness, back-pressure, closes."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import struct
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import cast

import pytest

from otel_bridge.core.engine import Engine
from otel_bridge.errors import SettingsError
from otel_bridge.settings import Settings, load_settings
from otel_bridge.sinks.router import Router
from otel_bridge.sources import ws_frames
from otel_bridge.sources.passthrough import ClientChannel
from otel_bridge.sources.upstream import Subscription
from otel_bridge.sources.ws_client import Link, Refused, connect
from support.ports import LOOPBACK
from support.timing import UNIT, wait_for

pytestmark = pytest.mark.integration

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, CONT, CLOSE = 0x1, 0x0, 0x8
Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def frame(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0) -> bytes:
    """An unmasked (server) frame."""
    first = (0x80 if fin else 0) | rsv | opcode
    size = len(payload)
    if size < 126:
        return struct.pack("!BB", first, size) + payload
    if size < 65536:
        return struct.pack("!BBH", first, 126, size) + payload
    return struct.pack("!BBQ", first, 127, size) + payload


def close_frame(code: int, reason: bytes = b"") -> bytes:
    """A server close frame."""
    return frame(CLOSE, struct.pack("!H", code) + reason)


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes, bytes]:
    """One client frame: (opcode, masking key, unmasked payload)."""
    first, second = await reader.readexactly(2)
    size = second & 0x7F
    if size == 126:
        (size,) = struct.unpack("!H", await reader.readexactly(2))
    elif size == 127:
        (size,) = struct.unpack("!Q", await reader.readexactly(8))
    key = await reader.readexactly(4)
    data = await reader.readexactly(size)
    return first & 0x0F, key, bytes(b ^ key[i % 4] for i, b in enumerate(data))


async def client_close_code(reader: asyncio.StreamReader) -> int:
    """The code of the client's close frame (skipping anything before it)."""
    while True:
        opcode, _, payload = await read_frame(reader)
        if opcode == CLOSE:
            return int(struct.unpack("!H", payload[:2])[0])


def accept(request: bytes) -> bytes:
    """The 101 answer to ``request``."""
    line = next(x for x in request.split(b"\r\n") if x.lower().startswith(b"sec-websocket-key"))
    token = base64.b64encode(hashlib.sha1(line.split(b":", 1)[1].strip() + GUID).digest())
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + token + b"\r\n\r\n"
    )


@asynccontextmanager
async def raw_server(script: Script, *, answer: bytes | None = None) -> AsyncIterator[str]:
    """A server that upgrades (or sends ``answer``), then runs ``script``; yields its URL."""
    stop = asyncio.Event()
    handlers: list[asyncio.Task[None]] = []

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            writer.write(answer if answer is not None else accept(request))
            await writer.drain()
            await script(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        scripted = asyncio.ensure_future(run(reader, writer))
        handlers.append(scripted)
        ended = asyncio.ensure_future(stop.wait())
        await asyncio.wait({scripted, ended}, return_when=asyncio.FIRST_COMPLETED)
        for task in (scripted, ended):
            task.cancel()
        writer.close()

    server = await asyncio.start_server(handle, LOOPBACK, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"ws://{LOOPBACK}:{port}/ws/F/r"
    finally:
        stop.set()
        await asyncio.gather(*handlers, return_exceptions=True)
        server.close()
        await server.wait_closed()


async def open_link(url: str, got: list[str | bytes], **kw: float) -> Link:
    """A connected Link keeping what it receives."""
    link = Link(got.append, kw.get("interval", 20.0) * UNIT, kw.get("timeout", 20.0) * UNIT)
    await connect(url, link, headers=[], open_timeout=5 * UNIT, ssl_context=None)
    return link


async def forever() -> None:
    """Park a server script (the test ends it)."""
    await asyncio.Event().wait()


# ---- 1. fragments ----------------------------------------------------------------------


async def test_a_message_in_too_many_fragments_is_closed_with_1009() -> None:
    """Past 4,096 fragments (empty ones too) the client closes with 1009; at 4,096 it delivers."""
    codes: list[int] = []

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(frame(TEXT, b"a", fin=False) + frame(CONT, b"", fin=False) * 5000)
        codes.append(await client_close_code(reader))
        await forever()

    async def at_the_cap(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parts = frame(TEXT, b"a", fin=False) + frame(CONT, b"b", fin=False) * 4094
        writer.write(parts + frame(CONT, b"c"))
        await forever()

    got: list[str | bytes] = []
    async with raw_server(endless) as url:
        link = await open_link(url, got)
        reason = await asyncio.wait_for(link.closed, 5 * UNIT)
        await wait_for(lambda: codes, 5 * UNIT, "the server sees the close")
    assert codes == [1009]
    assert reason is not None and "too many fragments" in reason
    assert got == []
    async with raw_server(at_the_cap) as url:
        link = await open_link(url, got)
        await wait_for(lambda: got, 5 * UNIT, "the message")
        link.abandon()
    assert got == ["a" + "b" * 4094 + "c"]


# ---- 2. fairness and the read queue ----------------------------------------------------


async def test_a_burst_is_handed_on_in_batches_with_the_loop_turning_between() -> None:
    """A burst in one read is handed on at most BATCH messages per loop turn, in order."""
    count = 3000
    burst = b"".join(frame(TEXT, b"%d" % i) for i in range(count))
    turns = 0
    stop = False

    def tick() -> None:
        nonlocal turns
        turns += 1
        if not stop:
            asyncio.get_running_loop().call_soon(tick)

    per_turn: dict[int, int] = {}
    got: list[str | bytes] = []

    def keep(message: str | bytes) -> None:
        got.append(message)
        per_turn[turns] = per_turn.get(turns, 0) + 1

    async def send(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(burst)
        await forever()

    async with raw_server(send) as url:
        link = Link(keep, 20 * UNIT, 20 * UNIT)
        await connect(url, link, headers=[], open_timeout=5 * UNIT, ssl_context=None)
        tick()
        await wait_for(lambda: len(got) == count, 10 * UNIT, "every message")
        stop = True
        link.abandon()
    assert got == [str(i) for i in range(count)]
    assert max(per_turn.values()) <= ws_frames.BATCH


async def test_a_full_queue_stops_reading_until_it_drains(monkeypatch: pytest.MonkeyPatch) -> None:
    """Over the high mark the socket is paused: the queue stays bounded, nothing is lost."""
    monkeypatch.setattr(ws_frames, "HIGH_MESSAGES", 50)
    monkeypatch.setattr(ws_frames, "LOW_MESSAGES", 10)
    monkeypatch.setattr(ws_frames, "BATCH", 5)
    count = 5000
    burst = b"".join(frame(TEXT, b"%05d" % i) for i in range(count))
    got: list[str | bytes] = []
    longest = 0
    paused = 0
    link: Link | None = None

    def keep(message: str | bytes) -> None:
        nonlocal longest, paused
        got.append(message)
        assert link is not None and link.transport is not None
        longest = max(longest, len(link._queue))
        paused += not link.transport.underlying_transport.is_reading()

    async def send(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(burst + close_frame(1000))
        await forever()

    async with raw_server(send) as url:
        link = Link(keep, 20 * UNIT, 20 * UNIT)
        await connect(url, link, headers=[], open_timeout=5 * UNIT, ssl_context=None)
        reason = await asyncio.wait_for(link.closed, 10 * UNIT)
    assert reason is None
    assert got == [f"{i:05d}" for i in range(count)]  # all, in order, before ``closed``
    assert paused > 0
    # The high mark plus what one read (of a buffer that grows to 64 KiB at most) holds.
    assert longest <= 50 + 65536 // 7 + 1


# ---- 3. headers (settings) -------------------------------------------------------------


@pytest.mark.parametrize(
    "environ",
    [
        {"OTEL_BRIDGE_UPSTREAM_HEADERS": "x-api-key=k\rX-Injected: evil"},
        {"OTEL_BRIDGE_UPSTREAM_HEADERS": "bad name=evil"},
        {"OTEL_BRIDGE_UPSTREAM_API_KEY": "SECRET\nX: evil"},
        {"OTEL_BRIDGE_UPSTREAM_ORIGIN": "https://evil\x00b"},
    ],
)
def test_header_settings_with_cr_lf_nul_or_a_bad_name_are_refused(
    environ: dict[str, str],
) -> None:
    """CR, LF or NUL in a header value, or a name not a token: the bridge will not start."""
    with pytest.raises(SettingsError, match="not shown") as caught:
        load_settings(None, environ)
    assert "evil" not in str(caught.value) and "SECRET" not in str(caught.value)
    ok = {"OTEL_BRIDGE_UPSTREAM_HEADERS": "X-Ok=a b", "OTEL_BRIDGE_UPSTREAM_API_KEY": "k"}
    assert load_settings(None, ok).upstream_header_list() == [("X-Ok", "a b"), ("x-api-key", "k")]


# ---- 4. masking keys -------------------------------------------------------------------

SEND_ONE = """
import asyncio, sys
from otel_bridge.sources.ws_client import Link, connect
async def main():
    link = Link(lambda m: None, 20.0, 20.0)
    await connect(sys.argv[1], link, headers=[], open_timeout=5.0, ssl_context=None)
    link.send("x")
    await link.closed
asyncio.run(main())
"""


async def test_two_processes_mask_with_different_keys() -> None:
    """The libc rand() is seeded per process: two processes' first masking keys differ."""
    keys: list[bytes] = []

    async def first_key(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, key, payload = await read_frame(reader)
        assert payload == b"x"
        keys.append(key)
        writer.write(close_frame(1000))

    async with raw_server(first_key) as url:
        for _ in range(2):
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-c", SEND_ONE, url, stdout=subprocess.DEVNULL
            )
            assert await asyncio.wait_for(process.wait(), 20 * UNIT) == 0
    assert len(keys) == 2 and keys[0] != keys[1]


# ---- 5. redirects ----------------------------------------------------------------------


async def test_a_redirect_is_refused_not_followed() -> None:
    """A 302 raises Refused(302); the client never goes where it points."""
    requests: list[bytes] = []

    async def never(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(b"request")

    async with raw_server(never) as elsewhere:
        answer = f"HTTP/1.1 302 Found\r\nLocation: {elsewhere}\r\nContent-Length: 0\r\n\r\n"
        async with raw_server(never, answer=answer.encode()) as url:
            with pytest.raises(Refused) as caught:
                await open_link(url, [])
    assert caught.value.status == 302
    assert len(requests) == 1  # the redirecting server's own; none went elsewhere


# ---- 6. write back-pressure ------------------------------------------------------------


async def test_sends_to_a_server_that_does_not_read_are_dropped_and_pings_still_fail_it() -> None:
    """Past the write buffer cap send() returns False and counts; the pong deadline still hits."""

    async def deaf(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await forever()

    big = "x" * 65536
    async with raw_server(deaf) as url:
        link = await open_link(url, [], interval=0.2, timeout=1.0)
        assert link.transport is not None
        sent = 0
        while link.send(big) and sent < 2000:  # at most 125 MiB
            sent += 1
        assert sent < 2000
        assert link.dropped_sends == 1
        buffered = link.transport.underlying_transport.get_write_buffer_size()
        assert buffered <= ws_frames.WRITE_BUFFER_CAP + len(big) + 16
        reason = await asyncio.wait_for(link.closed, 10 * UNIT)
    assert reason is not None and "keepalive ping timeout" in reason


# ---- 7. closes and frame rules ---------------------------------------------------------


@pytest.mark.parametrize("code", [1006, 1015, 5000, 65535])
async def test_a_close_code_a_peer_may_not_send_is_answered_with_1002(code: int) -> None:
    """1006, 1015 or codes past 4999 from the server: 1002, never an echo; abnormal."""
    codes: list[int] = []

    async def bad_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(close_frame(code, b"r"))
        codes.append(await client_close_code(reader))

    async with raw_server(bad_close) as url:
        link = await open_link(url, [])
        reason = await asyncio.wait_for(link.closed, 5 * UNIT)
        await wait_for(lambda: codes, 5 * UNIT, "the client's close")
    assert codes == [1002]
    assert reason is not None


@pytest.mark.parametrize(
    "wire",
    [
        frame(TEXT, b"hi", rsv=0x40) + frame(TEXT, b"after"),  # RSV1, no extension
        frame(TEXT, b"a", fin=False) + close_frame(1000),  # close mid-message
    ],
    ids=["rsv1", "close-mid-message"],
)
async def test_reserved_bits_and_a_close_mid_message_fail_with_1002(wire: bytes) -> None:
    """RSV bits set, or a close inside a fragmented message: 1002, abnormal, nothing handed on."""
    codes: list[int] = []

    async def send(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(wire)
        codes.append(await client_close_code(reader))

    got: list[str | bytes] = []
    async with raw_server(send) as url:
        link = await open_link(url, got)
        reason = await asyncio.wait_for(link.closed, 5 * UNIT)
        await wait_for(lambda: codes, 5 * UNIT, "the client's close")
    assert codes == [1002]
    assert reason is not None
    assert got == []


async def test_data_after_the_servers_close_is_ignored() -> None:
    """Frames after the server's close frame are not handed on; ones before it are."""

    async def late(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(frame(TEXT, b"early") + close_frame(1000) + frame(TEXT, b"late"))
        await forever()

    got: list[str | bytes] = []
    async with raw_server(late) as url:
        link = await open_link(url, got)
        reason = await asyncio.wait_for(link.closed, 5 * UNIT)
    assert reason is None
    assert got == ["early"]


# ---- 8. the subscription's side --------------------------------------------------------


class StubEngine:
    """Takes every frame, makes nothing of it."""

    def receive(self, message: str | bytes, run: object, received_ns: int) -> list[object]:
        """No outputs."""
        return []

    def trace_id_of(self, flow_name: str, run_name: str) -> int:
        """A fixed trace id."""
        return 1


class StubRouter:
    """Emits nowhere."""

    metrics = None

    def emit(self, outputs: object) -> None:
        """Nothing."""


class Client:
    """A pass-through client that keeps frames, or fails on each."""

    def __init__(self, broken: bool = False) -> None:
        self.broken = broken
        self.frames: list[str | bytes] = []

    def offer(self, frame: str | bytes) -> None:
        """Keep it, or fail."""
        if self.broken:
            raise RuntimeError("client broke")
        self.frames.append(frame)


async def test_a_failing_pass_through_client_does_not_stop_the_others_and_stop_ends_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One client's offer() failing leaves the others fed, logged once; stop() ends handling."""
    engine, router = cast(Engine, StubEngine()), cast(Router, StubRouter())
    sub = Subscription("F", "r", Settings(), engine, router)
    good, bad, other = Client(), Client(broken=True), Client()
    for client in (good, bad, other):
        sub.attach(cast(ClientChannel, client))
    sub._on_message("one")
    sub._on_message("two")
    assert good.frames == other.frames == ["one", "two"]
    failures = [r for r in caplog.records if "could not take a frame" in r.getMessage()]
    assert len(failures) == 1 and getattr(failures[0], "url", None) == sub.display_url
    await sub.stop()
    sub._on_message("three")
    assert sub.frames == 2 and good.frames == ["one", "two"]


async def test_a_handshake_that_never_answers_times_out_with_the_old_wording() -> None:
    """No answer to the upgrade: TimeoutError 'timed out during opening handshake'."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await forever()

    async with raw_server(silent, answer=b"") as url:
        link = Link(lambda m: None, 20.0, 20.0)
        with pytest.raises(TimeoutError, match="timed out during opening handshake"):
            await connect(url, link, headers=[], open_timeout=0.3 * UNIT, ssl_context=None)


class StateSeen(StubEngine):
    """Keeps the subscription's state and connect count as each message is handled."""

    def __init__(self) -> None:
        self.sub: Subscription | None = None
        self.seen: list[tuple[str, int]] = []

    def receive(self, message: str | bytes, run: object, received_ns: int) -> list[object]:
        """Record, make nothing."""
        assert self.sub is not None
        self.seen.append((str(self.sub.state), self.sub.connects))
        return []


@pytest.mark.parametrize("greetings", [1, 200])
async def test_a_message_in_the_handshakes_packet_is_handled_connected(greetings: int) -> None:
    """Frames sent with the 101 are handled once the subscription counts itself connected."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        writer.write(accept(request) + frame(0x1, b"connection established") * greetings)
        await writer.drain()
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            writer.write(close_frame(await client_close_code(reader)))  # answer the close
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, LOOPBACK, 0)
    port = server.sockets[0].getsockname()[1]
    engine = StateSeen()
    settings = Settings(upstream_url=f"ws://{LOOPBACK}:{port}")
    sub = Subscription("F", "r", settings, cast(Engine, engine), cast(Router, StubRouter()))
    engine.sub = sub
    try:
        sub.start()
        await wait_for(lambda: len(engine.seen) == greetings, 10 * UNIT, "the greetings handled")
        assert set(engine.seen) == {("connected", 1)}
        assert sub.connects == 1
    finally:
        await sub.stop()
        server.close()
        await server.wait_closed()
