"""The LAO simulator and a real bridge wired together on free loopback ports.

    async with running_rig(Quirks.quiet(), time_scale=0.1 * UNIT) as rig:
        spans = await rig.play(body)  # register over the control API, run, wait, flush

:func:`running_bridge` is a bridge alone (for tests that bring their own upstream, such as
:func:`running_upstream`); :func:`running_rig` adds a
:class:`~otel_bridge.simulator.Simulator` as its upstream and a
:class:`~otel_bridge.sinks.span_sinks.MemorySink` as its first exporter. The ``rig`` fixture
(tests/conftest.py) is one of these per test. :func:`serving_process` is the real
``otel-bridge serve`` process.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

from otel_bridge.core.records import SpanRecord
from otel_bridge.server import BridgeServer
from otel_bridge.settings import Settings
from otel_bridge.simulator import Quirks, Simulator
from otel_bridge.sinks.span_sinks import MemorySink, SpanSink
from otel_bridge.sources.upstream import run_url

from .ports import LOOPBACK
from .timing import UNIT, wait_for

JSON = dict[str, Any]

# A bridge that reconnects at once and closes a finished run's socket quickly.
FAST_RECONNECT: JSON = {
    "reconnect_initial_s": 0.05 * UNIT,
    "reconnect_max_s": 0.2 * UNIT,
    "terminal_grace_s": 0.05 * UNIT,
}


@asynccontextmanager
async def running_bridge(
    upstream_url: str, *, sinks: Sequence[SpanSink] | None = None, **settings: Any
) -> AsyncIterator[BridgeServer]:
    """A bridge on free loopback ports with a fresh registry; leaving it stops (flushes) it.

    ``server.url`` is its control listener, ``server.metrics_url`` its metrics listener.
    ``sinks`` defaults to one :class:`MemorySink`; ``settings`` are :class:`Settings` fields.
    """
    server = BridgeServer(
        Settings(**{"port": 0, "control_port": 0, "upstream_url": upstream_url, **settings}),
        registry=CollectorRegistry(),
        sinks=[MemorySink()] if sinks is None else sinks,
    )
    async with server:
        yield server


class Rig:
    """A simulator and a bridge following its runs, driven like a user drives them: over HTTP."""

    def __init__(
        self, sim: Simulator, server: BridgeServer, sink: MemorySink, http: aiohttp.ClientSession
    ) -> None:
        self.sim = sim
        self.server = server
        self.sink = sink
        self.http = http

    def run_api_url(self, flow: str, run: str) -> str:
        """``/v1/runs/{flow}/{run}`` of the control API, each name percent-encoded."""
        return f"{self.server.url}/v1/runs/{quote(flow, safe='')}/{quote(run, safe='')}"

    def socket_url(self, flow: str, run: str) -> str:
        """The bridge's pass-through socket of a run."""
        return run_url(f"ws://{LOOPBACK}:{self.server.control_port}", flow, run)

    async def post_run(self, flow: str, run: str, **extra: Any) -> aiohttp.ClientResponse:
        """``POST /v1/runs`` whatever it answers; the response, its body read."""
        body = {"flow_name": flow, "run_name": run, **extra}
        async with self.http.post(f"{self.server.url}/v1/runs", json=body) as response:
            await response.read()
        return response

    async def register(self, flow: str, run: str, **extra: Any) -> JSON:
        """``POST /v1/runs``, which must create a subscription; return it as the API shows it."""
        response = await self.post_run(flow, run, **extra)
        assert response.status == 201, await response.text()
        answer: JSON = await response.json()
        return answer

    async def start(self, body: JSON) -> None:
        """Start a run in the simulator once the bridge's socket to it is open."""
        await self.sim.wait_subscribers(body["flow_name"], body["run_name"], timeout=5 * UNIT)
        await self.sim.start_run(body)

    async def follow(self, body: JSON) -> JSON:
        """Register a run with the bridge, then start it; return the subscription."""
        registered = await self.register(body["flow_name"], body["run_name"])
        await self.start(body)
        return registered

    async def describe(self, flow: str, run: str) -> JSON:
        """``GET /v1/runs/{flow}/{run}``: the bridge's subscription to a run."""
        async with self.http.get(self.run_api_url(flow, run)) as response:
            assert response.status == 200, await response.text()
            described: JSON = await response.json()
        return described

    async def finish(self, flow: str, run: str, status: str | None = None) -> JSON:
        """Wait for the simulator to end a run (with ``status``, if given), then for the bridge.

        Return the subscription once it is done; a failed subscription fails the test.
        """
        ended = await self.sim.wait_run(flow, run, timeout=20 * UNIT)
        if status is not None:
            assert ended == status

        async def done() -> JSON | None:
            described = await self.describe(flow, run)
            assert described["state"] != "failed", described
            return described if described["state"] == "done" else None

        return await wait_for(done, 20 * UNIT, f"the bridge to be done with {flow}/{run}")

    async def flush(self) -> None:
        """Hand every span the bridge has finished to its exporters."""
        assert await asyncio.to_thread(self.server.bridge.router.flush)

    def spans(self, run: str) -> list[SpanRecord]:
        """The spans of a run the memory sink holds so far."""
        return [s for s in self.sink.records if s.run_name == run]

    async def play(self, body: JSON, status: str | None = None) -> list[SpanRecord]:
        """Follow a run to its end (see :meth:`finish`), flush, return its spans."""
        await self.follow(body)
        await self.finish(body["flow_name"], body["run_name"], status)
        await self.flush()
        return self.spans(body["run_name"])

    async def wait_root(self, run: str) -> SpanRecord:
        """Wait until the root span of a run has been exported; return it."""

        def root() -> SpanRecord | None:
            return next((s for s in self.spans(run) if s.kind == "run"), None)

        return await wait_for(root, message=f"the root span of {run}")

    def events_received(self, event_type: str) -> float:
        """How many LAO events of that type the bridge has received (``lao_events_total``)."""
        registry = self.server.bridge.registry
        return registry.get_sample_value("lao_events_total", {"event_type": event_type}) or 0.0


@asynccontextmanager
async def running_rig(
    quirks: Quirks | None = None,
    *,
    time_scale: float = UNIT,
    seed: int = 0,
    sinks: Sequence[SpanSink] = (),
    **settings: Any,
) -> AsyncIterator[Rig]:
    """A simulator (quiet unless ``quirks``) and a bridge following it; leaving stops both.

    The bridge exports to a memory sink, then to ``sinks``; ``settings`` are
    :class:`Settings` fields. Simulated seconds last ``time_scale`` real seconds.
    """
    sink = MemorySink()
    async with (
        Simulator(quirks or Quirks.quiet(), time_scale=time_scale, seed=seed) as sim,
        running_bridge(sim.ws_url, sinks=[sink, *sinks], **settings) as server,
        aiohttp.ClientSession() as http,
    ):
        yield Rig(sim, server, sink, http)


@asynccontextmanager
async def running_upstream(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[str]:
    """A scripted run socket: ``handler`` serves ``/ws/{flow}/{run}``; yields its ws:// base."""
    app = web.Application()
    app.router.add_get("/ws/{flow}/{run}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, LOOPBACK, 0)
        await site.start()
        yield f"ws://{LOOPBACK}:{site.port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def serving_process(
    *args: str, env: dict[str, str]
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``python -m otel_bridge serve ARGS`` with stderr piped; killed on leaving if still up."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "otel_bridge", "serve", *args, env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def sigterm(proc: asyncio.subprocess.Process) -> str:
    """Send SIGTERM, wait for the process to end; return what it wrote to stderr."""
    proc.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(proc.communicate(), 30 * UNIT)
    return err.decode()
