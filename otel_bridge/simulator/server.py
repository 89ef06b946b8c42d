"""The simulator's HTTP and WebSocket routes, shaped like LAO's.

- ``POST /run-dag/`` (and ``/run-dag``): the bare flow body ->
  ``{"status": "processing", "task_id": ...}``; a bad body (the ``workflow_data`` wrapper, a
  cycle, an unknown dependency) -> 422 ``{"detail": [{"loc", "msg", "type"}]}`` as FastAPI
  answers.
- ``GET /task-status/{task_id}`` -> ``{"status": ..., "results": {...}}``, 404 if unknown.
- ``GET /ws/{flow_name}/{run_name}``: the run socket; segments are percent-decoded.
- ``GET /sim/runs`` and ``GET /health``: simulator-only, for scripts and tests.
"""

from __future__ import annotations

import hmac
import json
import random
from typing import Any, Protocol

from aiohttp import web
from aiohttp.typedefs import Handler

from otel_bridge.simulator.connection import Session
from otel_bridge.simulator.flow import FlowError
from otel_bridge.simulator.hub import Hub
from otel_bridge.simulator.quirks import Quirks

JSON = dict[str, Any]


class Control(Protocol):
    """What the routes need from the simulator that owns them."""

    @property
    def quirks(self) -> Quirks:
        """The socket quirks."""

    @property
    def api_key(self) -> str | None:
        """The x-api-key value required on every request, if any."""

    def hub(self, flow_name: str, run_name: str) -> Hub:
        """Return the broadcast hub of a run socket, creating it if needed."""

    def session_rng(self, hub: Hub, index: int) -> random.Random:
        """Return the random generator of one socket connection."""

    def add_session(self, session: Session) -> None:
        """Track a live socket so that stopping can close it."""

    def remove_session(self, session: Session) -> None:
        """Forget a socket that ended."""

    async def start_run(self, body: object) -> str:
        """Validate and start a run; return its task_id or raise FlowError."""

    def task_status(self, task_id: str) -> JSON | None:
        """Return a run's status document, or None if the id is unknown."""

    def runs(self) -> list[JSON]:
        """Return a summary of every run started."""


def build_app(control: Control) -> web.Application:
    """Return the aiohttp application serving ``control``'s runs."""
    routes = _Routes(control)
    app = web.Application(middlewares=[routes.check_api_key])
    app.router.add_post("/run-dag/", routes.run_dag)
    app.router.add_post("/run-dag", routes.run_dag)
    app.router.add_get("/task-status/{task_id}", routes.task_status)
    app.router.add_get("/ws/{flow_name}/{run_name}", routes.run_socket)
    app.router.add_get("/sim/runs", routes.runs)
    app.router.add_get("/health", routes.health)
    return app


def unprocessable(message: str, loc: list[str] | None = None) -> web.Response:
    """Return a FastAPI-style 422 response carrying ``message``."""
    detail = [{"loc": loc or ["body"], "msg": message, "type": "value_error"}]
    return web.json_response({"detail": detail}, status=422)


class _Routes:
    def __init__(self, control: Control) -> None:
        self._control = control

    @web.middleware
    async def check_api_key(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        expected = self._control.api_key
        if expected is not None and request.path != "/health":
            given = request.headers.get("x-api-key", "")
            if not hmac.compare_digest(given.encode(), expected.encode()):
                return web.json_response({"detail": "Invalid or missing x-api-key"}, status=401)
        return await handler(request)

    async def run_dag(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.text())
        except ValueError as error:
            return unprocessable(f"JSON decode error: {error}")
        try:
            task_id = await self._control.start_run(body)
        except FlowError as error:
            return unprocessable(str(error))
        return web.json_response({"status": "processing", "task_id": task_id})

    async def task_status(self, request: web.Request) -> web.Response:
        status = self._control.task_status(request.match_info["task_id"])
        if status is None:
            return web.json_response({"detail": "Task not found"}, status=404)
        return web.json_response(status)

    async def runs(self, request: web.Request) -> web.Response:
        return web.json_response({"runs": self._control.runs()})

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def run_socket(self, request: web.Request) -> web.StreamResponse:
        control = self._control
        hub = control.hub(request.match_info["flow_name"], request.match_info["run_name"])
        refuse = control.quirks.refuse_reconnects
        if refuse is not None and hub.connections > 0:
            hub.connections += 1
            return web.Response(status=refuse, text="run socket gone")
        ws = web.WebSocketResponse(autoping=False)
        # Subscribe before the handshake completes: a client whose connect() returned
        # is sure to get every event published afterwards.
        subscriber = hub.subscribe(resend=control.quirks.resend_history)
        session: Session | None = None
        try:
            await ws.prepare(request)
            rng = control.session_rng(hub, subscriber.index)
            session = Session(ws, request.transport, hub, subscriber, control.quirks, rng)
            control.add_session(session)
            await session.run()
        finally:
            hub.unsubscribe(subscriber)
            if session is not None:
                control.remove_session(session)
        return ws
