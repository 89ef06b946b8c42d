"""One subscriber's run socket: its events, sent with the configured quirks.

The socket is an aiohttp ``WebSocketResponse(autoping=False)``: protocol pings are answered
here, by hand, so that a stalled socket can stop answering them and a client's ping timeout
fires. Three loops share the socket: the reader (echoes, pongs, the client's close), the
event sender (noise, duplicates, drops, stalls, the close after a terminal event) and the
keepalive ticker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random

from aiohttp import WSMsgType, web

from otel_bridge.simulator.events import is_terminal
from otel_bridge.simulator.hub import Hub, Subscriber
from otel_bridge.simulator.quirks import (
    Quirks,
    echo_frame,
    greeting_frame,
    is_client_ping,
    keepalive_frame,
    noise_frame,
    pong_frame,
)

CLOSE_INTERNAL_ERROR = 1011
CLOSE_GOING_AWAY = 1001
CLOSE_NORMAL = 1000
_END_TYPES = frozenset({WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR})


class Session:
    """A subscriber's socket for the lifetime of one connection."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        transport: asyncio.BaseTransport | None,
        hub: Hub,
        subscriber: Subscriber,
        quirks: Quirks,
        rng: random.Random,
    ) -> None:
        self._ws = ws
        self._transport = transport
        self._hub = hub
        self._subscriber = subscriber
        self._quirks = quirks
        self._rng = rng
        self._sender_closing = False
        self.stalled = False
        self.event_frames = 0
        self.frames_sent = 0

    async def run(self) -> None:
        """Greet, then serve the socket until either side closes it."""
        greeting = greeting_frame(
            self._quirks.greeting, self._subscriber.index, self._hub.flow_name, self._hub.run_name
        )
        if greeting is not None:
            await self._send(greeting)
        sender = asyncio.create_task(self._send_events())
        background = [sender]
        if self._quirks.keepalive_interval is not None:
            background.append(
                asyncio.create_task(self._keepalives(self._quirks.keepalive_interval))
            )
        try:
            await self._read()
        finally:
            for task in background:
                if not (task is sender and self._sender_closing):  # let it finish closing
                    task.cancel()
            await asyncio.gather(*background, return_exceptions=True)

    async def shutdown(self) -> None:
        """Close the socket because the server stops (1001), or abort it if it is stalled."""
        if self.stalled:
            self._abort()
            return
        try:
            async with asyncio.timeout(1.0):
                await self._ws.close(code=CLOSE_GOING_AWAY, message=b"simulator stopping")
        except (TimeoutError, ConnectionError):
            self._abort()

    async def _read(self) -> None:
        echoes = 0
        while True:
            message = await self._ws.receive()
            if message.type in _END_TYPES:
                return
            if self.stalled:
                continue
            if message.type is WSMsgType.PING:
                with contextlib.suppress(ConnectionError):
                    await self._ws.pong(message.data)
            elif message.type is WSMsgType.TEXT:
                text = str(message.data)
                if self._quirks.echo:
                    await self._send(echo_frame(text, echoes))
                    echoes += 1
                if self._quirks.answer_ping and is_client_ping(text):
                    await self._send(pong_frame())

    async def _send_events(self) -> None:
        quirks = self._quirks
        index = self._subscriber.index
        drop_after = quirks.disconnect_after if index < quirks.disconnect_connections else None
        stall_after = quirks.stall_after if index < quirks.stall_connections else None
        while True:
            if drop_after is not None and self.event_frames >= drop_after:
                await self._drop()
                return
            if stall_after is not None and self.event_frames >= stall_after:
                self.stalled = True
            event = await self._subscriber.queue.get()
            if self.stalled:
                continue
            if quirks.noise_probability and self._rng.random() < quirks.noise_probability:
                await self._send(noise_frame(self._rng))
            text = json.dumps(event)
            await self._send(text)
            if quirks.duplicate_events and self._rng.random() < quirks.duplicate_events:
                await self._send(text)
            self.event_frames += 1
            dropping = drop_after is not None and self.event_frames >= drop_after
            stalling = stall_after is not None and self.event_frames >= stall_after
            delay = quirks.close_after_terminal
            if is_terminal(event) and delay is not None and not (dropping or stalling):
                await asyncio.sleep(delay)
                await self._close(CLOSE_NORMAL, b"run finished")
                return

    async def _keepalives(self, interval: float) -> None:
        count = 0
        while True:
            await asyncio.sleep(interval)
            if not self.stalled:
                await self._send(keepalive_frame(count))
                count += 1

    async def _send(self, text: str) -> None:
        if self._ws.closed:
            return
        try:
            await self._ws.send_str(text)
        except ConnectionError:
            return
        self.frames_sent += 1

    async def _close(self, code: int, message: bytes) -> None:
        self._sender_closing = True
        with contextlib.suppress(ConnectionError):
            await self._ws.close(code=code, message=message)

    async def _drop(self) -> None:
        if self._quirks.disconnect_mode == "abort":
            self._sender_closing = True
            self._abort()
        else:
            await self._close(CLOSE_INTERNAL_ERROR, b"internal error")

    def _abort(self) -> None:
        transport = self._transport
        if transport is not None and isinstance(transport, asyncio.WriteTransport):
            transport.abort()
