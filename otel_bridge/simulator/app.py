"""The :class:`Simulator`: an LAO look-alike serving run-dag, task-status and run sockets."""

from __future__ import annotations

import asyncio
import logging
import random
from types import TracebackType
from typing import Any
from urllib.parse import quote

from aiohttp import web

from otel_bridge.simulator.connection import Session
from otel_bridge.simulator.flow import JSON, parse_flow
from otel_bridge.simulator.hub import Hub
from otel_bridge.simulator.plan import plan_run
from otel_bridge.simulator.player import RunState, play
from otel_bridge.simulator.quirks import Quirks
from otel_bridge.simulator.server import build_app

log = logging.getLogger(__name__)


class Simulator:
    """A simulated LAO: start it, post flows (or call :meth:`start_run`), watch its sockets.

    ``time_scale`` multiplies every simulated duration (tests use 0.01); ``seed`` makes the
    unhinted durations, outputs, ids and socket noise reproducible; with ``api_key`` set,
    every request must carry that ``x-api-key`` header.
    """

    def __init__(
        self,
        quirks: Quirks | None = None,
        *,
        time_scale: float = 1.0,
        seed: int = 0,
        api_key: str | None = None,
    ) -> None:
        if time_scale < 0:
            raise ValueError("time_scale must be >= 0")
        self._quirks = quirks if quirks is not None else Quirks()
        self._api_key = api_key
        self.time_scale = time_scale
        self.seed = seed
        self._rng = random.Random(seed)
        self._hubs: dict[tuple[str, str], Hub] = {}
        self._runs: dict[str, RunState] = {}
        self._latest: dict[tuple[str, str], RunState] = {}
        self._run_started: dict[tuple[str, str], asyncio.Event] = {}
        self._players: set[asyncio.Task[None]] = set()
        self._sessions: set[Session] = set()
        self._runner: web.AppRunner | None = None
        self._address: tuple[str, int] | None = None

    async def __aenter__(self) -> Simulator:
        if self._runner is None:
            await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def quirks(self) -> Quirks:
        """The socket quirks."""
        return self._quirks

    @property
    def api_key(self) -> str | None:
        """The x-api-key value required on every request, if any."""
        return self._api_key

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on ``host:port``; port 0 picks a free one (see :attr:`port`)."""
        if self._runner is not None:
            raise RuntimeError("simulator already started")
        runner = web.AppRunner(
            build_app(self), handle_signals=False, access_log=None, shutdown_timeout=2.0
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        bound_port = int(runner.addresses[0][1])
        self._address = (host, bound_port)

    @property
    def port(self) -> int:
        """The TCP port served."""
        if self._address is None:
            raise RuntimeError("simulator not started")
        return self._address[1]

    @property
    def http_url(self) -> str:
        """The base URL of the HTTP API, e.g. ``http://127.0.0.1:8765``."""
        if self._address is None:
            raise RuntimeError("simulator not started")
        host, port = self._address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def ws_url(self) -> str:
        """The base URL of the run sockets, e.g. ``ws://127.0.0.1:8765``."""
        return "ws" + self.http_url[4:]

    def socket_url(self, flow_name: str, run_name: str) -> str:
        """Return the run socket URL of a run, each name percent-encoded."""
        return f"{self.ws_url}/ws/{quote(flow_name, safe='')}/{quote(run_name, safe='')}"

    async def start_run(self, body: object) -> str:
        """Start a run as ``POST /run-dag/`` does and return its task_id.

        Raises :class:`~otel_bridge.simulator.flow.FlowError` (a ValueError) for a bad body.
        """
        flow = parse_flow(body)
        plan = plan_run(flow, random.Random(self._rng.getrandbits(64)), self._quirks)
        task_id = plan.run_id
        suffix = 1
        while task_id in self._runs:
            suffix += 1
            task_id = f"{plan.run_id}-{suffix}"
        state = RunState(task_id, flow.flow_name, flow.run_name)
        self._runs[task_id] = state
        self._latest[(flow.flow_name, flow.run_name)] = state
        self._run_started.pop((flow.flow_name, flow.run_name), asyncio.Event()).set()
        hub = self.hub(flow.flow_name, flow.run_name)
        player = asyncio.create_task(
            play(flow, plan, state, hub.publish, time_scale=self.time_scale),
            name=f"lao-sim run {flow.flow_name}/{flow.run_name}",
        )
        self._players.add(player)
        player.add_done_callback(lambda task: self._player_done(task, state))
        return task_id

    async def wait_run(
        self,
        flow_name: str,
        run_name: str,
        timeout: float | None = 10.0,  # noqa: ASYNC109 - the API the bridge's tests call
    ) -> str:
        """Wait for the latest run of that name to end; return its status.

        Raises TimeoutError after ``timeout`` seconds (None waits forever).
        """
        async with asyncio.timeout(timeout):
            key = (flow_name, run_name)
            if key not in self._latest:
                await self._run_started.setdefault(key, asyncio.Event()).wait()
            state = self._latest[key]
            await state.finished.wait()
        return state.status

    async def wait_subscribers(
        self,
        flow_name: str,
        run_name: str,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - the documented API
    ) -> None:
        """Wait until at least ``count`` sockets are subscribed to a run."""
        async with asyncio.timeout(timeout):
            await self.hub(flow_name, run_name).wait_subscribers(count)

    async def wait_connections(
        self,
        flow_name: str,
        run_name: str,
        count: int,
        timeout: float = 5.0,  # noqa: ASYNC109 - the documented API
    ) -> None:
        """Wait until a run socket has been connected ``count`` times in all."""
        async with asyncio.timeout(timeout):
            await self.hub(flow_name, run_name).wait_connections(count)

    def events_sent(self, flow_name: str, run_name: str) -> list[JSON]:
        """Return the events the latest run of that name played so far, in order."""
        state = self._latest.get((flow_name, run_name))
        return list(state.events) if state is not None else []

    def run_state(self, flow_name: str, run_name: str) -> RunState | None:
        """Return the latest run of that name, if any."""
        return self._latest.get((flow_name, run_name))

    def task_status(self, task_id: str) -> JSON | None:
        """Return ``{"status", "results"}`` as ``GET /task-status/{task_id}`` does."""
        state = self._runs.get(task_id)
        if state is None:
            return None
        return {"status": state.status, "results": dict(state.results)}

    def runs(self) -> list[JSON]:
        """Return a summary of every run started, oldest first."""
        return [
            {
                "task_id": state.task_id,
                "flow_name": state.flow_name,
                "run_name": state.run_name,
                "status": state.status,
                "events": len(state.events),
            }
            for state in self._runs.values()
        ]

    def hub(self, flow_name: str, run_name: str) -> Hub:
        """Return the broadcast hub of a run socket, creating it if needed."""
        key = (flow_name, run_name)
        if key not in self._hubs:
            self._hubs[key] = Hub(flow_name, run_name)
        return self._hubs[key]

    def session_rng(self, hub: Hub, index: int) -> random.Random:
        """Return the reproducible random generator of one socket connection."""
        return random.Random(f"{self.seed}\0{hub.flow_name}\0{hub.run_name}\0{index}")

    def add_session(self, session: Session) -> None:
        """Track a live socket so that :meth:`stop` can close it."""
        self._sessions.add(session)

    def remove_session(self, session: Session) -> None:
        """Forget a socket that ended."""
        self._sessions.discard(session)

    async def stop(self) -> None:
        """Cancel running runs, close every socket (1001) and stop serving."""
        players = list(self._players)
        for player in players:
            player.cancel()
        if players:
            await asyncio.wait(players)
        sessions = list(self._sessions)
        if sessions:
            await asyncio.gather(*(session.shutdown() for session in sessions))
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def _player_done(self, task: asyncio.Task[Any], state: RunState) -> None:
        self._players.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("simulated run %s failed to play", state.task_id, exc_info=error)
            state.status = "error"
            state.finished.set()
