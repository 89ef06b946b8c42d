"""Per-run broadcast of events to the sockets subscribed to ``/ws/{flow}/{run}``.

There is no replay: a subscriber gets only what is published after it subscribed, so
events published while nobody listens are lost, as on the real socket. The quirk
``resend_history`` asks for the opposite: what was published is kept (up to
:data:`MAX_HISTORY` events) and queued first for every new subscriber.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from otel_bridge.simulator.flow import JSON

MAX_HISTORY = 10_000


@dataclass(eq=False)
class Subscriber:
    """One socket's queue of events; ``index`` counts the run socket's connections from 0."""

    index: int
    queue: asyncio.Queue[JSON] = field(default_factory=asyncio.Queue)


class Hub:
    """The subscribers of one ``flow_name``/``run_name`` socket."""

    def __init__(self, flow_name: str, run_name: str) -> None:
        self.flow_name = flow_name
        self.run_name = run_name
        self.connections = 0
        self.history: list[JSON] = []
        self._subscribers: list[Subscriber] = []
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

    @property
    def subscribers(self) -> int:
        """How many sockets are subscribed right now."""
        return len(self._subscribers)

    def subscribe(self, *, resend: bool = False) -> Subscriber:
        """Add a subscriber that receives every event published from now on.

        With ``resend`` it first gets every event published before (the history).
        """
        subscriber = Subscriber(self.connections)
        if resend:
            for event in self.history:
                subscriber.queue.put_nowait(event)
        self.connections += 1
        self._subscribers.append(subscriber)
        self._notify()
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Remove a subscriber; events it had not sent yet are dropped."""
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)
            self._notify()

    def publish(self, event: JSON) -> None:
        """Queue ``event`` for every current subscriber."""
        if len(self.history) < MAX_HISTORY:
            self.history.append(event)
        for subscriber in self._subscribers:
            subscriber.queue.put_nowait(event)

    async def wait_subscribers(self, count: int) -> None:
        """Wait until at least ``count`` sockets are subscribed."""
        await self._wait(lambda: len(self._subscribers) >= count)

    async def wait_connections(self, count: int) -> None:
        """Wait until the socket has been connected ``count`` times in all."""
        await self._wait(lambda: self.connections >= count)

    async def _wait(self, condition: Callable[[], bool]) -> None:
        if condition():
            return
        waiter = (condition, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            await waiter[1]
        finally:
            self._waiters.remove(waiter)

    def _notify(self) -> None:
        for condition, future in self._waiters:
            if not future.done() and condition():
                future.set_result(None)
