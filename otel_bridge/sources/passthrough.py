"""The pass-through socket: apps point their own LAO socket client at the bridge.

``ws://bridge:PORT/ws/{flow}/{run}`` behaves like LAO's run socket. The bridge keeps one
upstream connection per run however many clients watch it, passes every upstream frame
unchanged to every client (fan-out), forwards the clients' text frames (their JSON pings)
upstream, and records the run as it passes.

A client that connects late gets what LAO sends from then on (LAO has no replay either).
Each client has a bounded buffer: a client that falls behind by ``client_buffer_frames``
never stalls the others or the telemetry; it is disconnected with close code 1013 (try
again later) and the frames it missed are counted.

What a client sends goes upstream only as small text frames (``MAX_CLIENT_FRAME_BYTES``),
at most ``CLIENT_FRAMES_PER_S`` a second per client (bursts of ``CLIENT_FRAME_BURST``);
anything else is dropped and counted by outcome. A run only pass-through clients asked for
is dropped when the last of them leaves (``Bridge.passthrough_client_left``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import WSMessage, WSMsgType, web
from prometheus_client import CollectorRegistry, Counter, Gauge

from otel_bridge.errors import InvalidName, RunConflict, TooManySubscriptions
from otel_bridge.names import validate_name

if TYPE_CHECKING:  # the bridge imports this module (its subscriptions fan out to clients)
    from otel_bridge.bridge import Bridge
    from otel_bridge.sources.upstream import Subscription

log = logging.getLogger(__name__)

CLOSE_TOO_SLOW = 1013
_END = object()
MAX_CLIENT_FRAME_BYTES = 4096  # LAO's clients send {"type":"ping"}; nothing bigger goes up
MAX_CLIENT_MESSAGE_BYTES = 64 * 1024  # read at most; a bigger frame closes the client (1009)
CLIENT_FRAMES_PER_S = 5.0
CLIENT_FRAME_BURST = 10
# Browsers cannot set headers on a WebSocket: the control token may come as the subprotocol
# "bearer.<token>". A client offering "otel-bridge" too gets that one selected, so the
# token is not echoed back in the handshake answer.
BEARER_PROTOCOL = "bearer."
PLAIN_PROTOCOL = "otel-bridge"


class PassthroughMetrics:
    """Pass-through clients and the frames they missed."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.clients = Gauge(
            "otel_bridge_passthrough_clients",
            "Clients connected to the pass-through socket.",
            registry=registry,
        )
        self.dropped = Counter(
            "otel_bridge_passthrough_frames_dropped",
            "Frames not delivered to a pass-through client, by reason.",
            ["reason"],
            registry=registry,
        )
        self.forwarded = Counter(
            "otel_bridge_passthrough_client_frames",
            "Client frames by outcome: sent upstream, upstream_down, or dropped as "
            "binary, too_large, rate_limited, invalid.",
            ["outcome"],
            registry=registry,
        )


class TokenBucket:
    """``rate`` events a second on average, ``burst`` at once."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()

    def take(self) -> bool:
        """Spend one token if there is one."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


def offered_protocols(request: web.Request) -> list[str]:
    """The subprotocols a WebSocket client offers (``Sec-WebSocket-Protocol``)."""
    values = request.headers.getall("Sec-WebSocket-Protocol", [])
    return [p.strip() for value in values for p in value.split(",") if p.strip()]


def selected_protocol(offered: list[str]) -> tuple[str, ...]:
    """What the handshake answers selects: ``otel-bridge`` if offered, else the bearer one.

    A browser that offered subprotocols fails the connection unless one is selected.
    """
    if PLAIN_PROTOCOL in offered:
        return (PLAIN_PROTOCOL,)
    return tuple(p for p in offered if p.startswith(BEARER_PROTOCOL))[:1]


class ClientChannel:
    """One pass-through client: a bounded queue of frames and the task writing them."""

    def __init__(self, ws: web.WebSocketResponse, max_frames: int, metrics: PassthroughMetrics):
        self.ws = ws
        self.metrics = metrics
        self._queue: asyncio.Queue[object] = asyncio.Queue(max_frames)
        self._cut = False
        self._closer: asyncio.Future[bool] | None = None

    def offer(self, frame: str | bytes) -> None:
        """Queue a frame for this client without waiting; cut the client when it lags."""
        if self._cut:
            self.metrics.dropped.labels("client_cut").inc()
            return
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            self._cut = True
            self.metrics.dropped.labels("client_too_slow").inc()
            log.warning("pass-through client too slow, disconnecting")
            self._closer = asyncio.ensure_future(
                self.ws.close(code=CLOSE_TOO_SLOW, message=b"client too slow: buffer full")
            )

    def finish(self) -> None:
        """Close the client once what is queued has been sent (the run's socket ended)."""
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(_END)
            return
        self._closer = asyncio.ensure_future(self.ws.close())

    async def pump(self) -> None:
        """Write queued frames to the client until told to finish."""
        while True:
            frame = await self._queue.get()
            if frame is _END or self.ws.closed:
                await self.ws.close()
                return
            try:
                if isinstance(frame, bytes):
                    await self.ws.send_bytes(frame)
                else:
                    await self.ws.send_str(str(frame))
            except (ConnectionError, RuntimeError):
                return


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _forward(sub: Subscription, message: WSMessage, bucket: TokenBucket) -> str:
    """Send a client's frame upstream if it may go; return the outcome."""
    if message.type is WSMsgType.BINARY:
        return "binary"
    if message.type is not WSMsgType.TEXT:
        return "invalid"  # a protocol error, a frame over MAX_CLIENT_MESSAGE_BYTES
    text = str(message.data)
    if len(text) > MAX_CLIENT_FRAME_BYTES or len(text.encode()) > MAX_CLIENT_FRAME_BYTES:
        return "too_large"
    if not bucket.take():
        return "rate_limited"
    return "sent" if await sub.send_upstream(text) else "upstream_down"


def passthrough_handler(bridge: Bridge, metrics: PassthroughMetrics) -> Handler:
    """The ``GET /ws/{flow}/{run}`` handler: a LAO-compatible run socket on the bridge."""

    async def passthrough(request: web.Request) -> web.StreamResponse:
        """Upstream frames fanned out to this client; its text frames forwarded upstream."""
        try:
            flow = validate_name("flow_name", request.match_info["flow"])
            run = validate_name("run_name", request.match_info["run"])
        except InvalidName as exc:
            return _error(400, str(exc))
        if not bridge.ready:
            return _error(503, "bridge is shutting down")
        try:
            sub, _ = bridge.subscribe(flow, run, relay=True)
        except TooManySubscriptions as exc:
            return _error(429, str(exc))
        except RunConflict as exc:
            return _error(503, str(exc))
        ws = web.WebSocketResponse(
            heartbeat=bridge.settings.ws_ping_interval_s,
            compress=False,
            protocols=selected_protocol(offered_protocols(request)),
            max_msg_size=MAX_CLIENT_MESSAGE_BYTES,
        )
        client = ClientChannel(ws, bridge.settings.client_buffer_frames, metrics)
        sub.attach(client)
        try:
            await ws.prepare(request)
        except BaseException:
            sub.detach(client)
            bridge.passthrough_client_left(sub)
            raise
        metrics.clients.inc()
        writer = asyncio.create_task(client.pump())
        bucket = TokenBucket(CLIENT_FRAMES_PER_S, CLIENT_FRAME_BURST)
        try:
            async for message in ws:
                metrics.forwarded.labels(await _forward(sub, message, bucket)).inc()
        finally:
            sub.detach(client)
            bridge.passthrough_client_left(sub)
            metrics.clients.dec()
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        return ws

    return passthrough
