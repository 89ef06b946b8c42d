"""A LAO run socket that holds the rest of a run for whichever socket connects next.

The test releases a run's events in steps; each released event goes to the socket connected
at that moment, or waits until one connects (the bridge was killed and is restarting), and
goes out exactly once. Events come from the simulator's :class:`EventBuilder`, so they have
LAO's shape, with timestamps a test can compare spans against.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from otel_bridge.simulator.events import EventBuilder

from .ports import LOOPBACK

JSON = dict[str, Any]


class HeldRun:
    """Events released by the test, delivered once to the current (or next) socket."""

    def __init__(self) -> None:
        self.released: asyncio.Queue[JSON] = asyncio.Queue()
        self.connections = 0
        self.sent = 0
        self._changed = asyncio.Condition()

    def release(self, *events: JSON) -> None:
        """Let these events go out, in order."""
        for event in events:
            self.released.put_nowait(event)

    async def wait_connections(self, count: int, seconds: float) -> None:
        """Wait until the socket has been connected ``count`` times in all."""
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: self.connections >= count), seconds
            )

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Serve ``/ws/{flow}/{run}``: send released events until the client leaves."""
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        async with self._changed:
            self.connections += 1
            self._changed.notify_all()
        reader = asyncio.ensure_future(ws.receive())
        try:
            while not ws.closed:
                getter = asyncio.ensure_future(self.released.get())
                done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if reader in done:
                    getter.cancel()
                    if getter.done() and not getter.cancelled():  # raced: keep the event
                        self._requeue_front(getter.result())
                    message = reader.result()
                    if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR):
                        break
                    reader = asyncio.ensure_future(ws.receive())  # a ping: ignore
                    continue
                event = getter.result()
                await ws.send_str(orjson.dumps(event).decode())
                self.sent += 1
        finally:
            reader.cancel()
        return ws

    def _requeue_front(self, event: JSON) -> None:
        items = [event]
        while not self.released.empty():
            items.append(self.released.get_nowait())
        for item in items:
            self.released.put_nowait(item)


@asynccontextmanager
async def serving_held_run(held: HeldRun) -> AsyncIterator[str]:
    """Serve ``held`` on a free loopback port; yields the ws:// base URL."""
    app = web.Application()
    app.router.add_get("/ws/{flow}/{run}", held.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, LOOPBACK, 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        yield f"ws://{LOOPBACK}:{port}"
    finally:
        await runner.cleanup()


class FakeClock:
    """A clock that moves only when told (event timestamps a test knows exactly)."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() - 60 if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        """Move on; return the new time."""
        self.now += seconds
        return self.now


def run_script(flow: str, run: str, tasks: int, clock: FakeClock) -> list[JSON]:
    """A whole run's events: flow_started, each task started then completed, flow_completed.

    Tasks overlap pairwise (task i+1 starts before task i completes), every 4th fails.
    """
    build = EventBuilder(flow, run, timestamps="iso", clock=clock)
    events = [build.flow_started(f"{run}-id", "go")]
    for index in range(tasks):
        name = f"step {index}"
        clock.advance(0.5)
        events.append(build.task_started(f"t{index}", name, {"n": index}))
        clock.advance(0.25)
        if index % 4 == 3:
            events.append(
                build.task_failed(f"t{index}", name, 0.75, {"type": "Boom", "message": "no"}, {})
            )
        else:
            events.append(build.task_completed(f"t{index}", name, 0.75, {"out": index}))
    clock.advance(0.5)
    events.append(build.flow_completed(f"{run}-done", 10.0, {"ok": True}))
    return events
