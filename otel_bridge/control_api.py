"""The bridge's HTTP server: control API, health, /metrics (the pass-through socket joins it).

- ``POST /v1/runs`` ``{"flow_name", "run_name", "traceparent"?}`` subscribes (201; 200 if
  already followed); ``GET /v1/runs`` lists; ``GET``/``DELETE /v1/runs/{flow}/{run}``.
- ``GET /healthz`` (alive), ``GET /readyz`` (ready to take runs), ``GET /metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import unicodedata
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

from otel_bridge.bridge import Bridge, RunConflict, TooManySubscriptions
from otel_bridge.exposition import render
from otel_bridge.ids import TraceParent, TraceParentError, parse_traceparent
from otel_bridge.passthrough import ClientChannel, PassthroughMetrics

MAX_NAME_BYTES = 512
BRIDGE_KEY: web.AppKey[Bridge] = web.AppKey("bridge", Bridge)
PASSTHROUGH_KEY: web.AppKey[PassthroughMetrics] = web.AppKey("passthrough", PassthroughMetrics)


class NameError_(ValueError):
    """A flow or run name the bridge will not put into an upstream URL."""


def validate_name(field: str, value: Any) -> str:
    """Return a valid flow/run name or raise with a message saying what is wrong."""
    if not isinstance(value, str):
        raise NameError_(f"{field} must be a string")
    if not value.strip():
        raise NameError_(f"{field} must not be empty")
    if len(value.encode("utf-8")) > MAX_NAME_BYTES:
        raise NameError_(f"{field} is longer than {MAX_NAME_BYTES} bytes")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in value):
        raise NameError_(f"{field} contains control characters")
    if value in (".", ".."):
        raise NameError_(f"{field} must not be '.' or '..'")
    return value


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    token = request.app[BRIDGE_KEY].settings.control_token
    if token and request.path.startswith("/v1/"):
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return _error(401, "missing or wrong bearer token")
    return await handler(request)


async def post_run(request: web.Request) -> web.Response:
    """Subscribe to a run."""
    bridge = request.app[BRIDGE_KEY]
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _error(400, "body must be a JSON object")
    if not isinstance(body, dict):
        return _error(400, "body must be a JSON object")
    try:
        flow = validate_name("flow_name", body.get("flow_name"))
        run = validate_name("run_name", body.get("run_name"))
    except NameError_ as exc:
        return _error(400, str(exc))
    parent: TraceParent | None = None
    if body.get("traceparent") is not None:
        try:
            parent = parse_traceparent(body["traceparent"])
        except TraceParentError as exc:
            return _error(400, str(exc))
    if not bridge.ready:
        return _error(503, "bridge is shutting down")
    try:
        sub, created = bridge.subscribe(flow, run, parent)
    except RunConflict as exc:
        return _error(409 if bridge.ready else 503, str(exc))
    except TooManySubscriptions as exc:
        return _error(429, str(exc))
    return web.json_response(sub.describe(), status=201 if created else 200)


async def list_runs(request: web.Request) -> web.Response:
    """List subscriptions."""
    bridge = request.app[BRIDGE_KEY]
    return web.json_response({"runs": [s.describe() for s in bridge.subscriptions.values()]})


def _names(request: web.Request) -> tuple[str, str]:
    return request.match_info["flow"], request.match_info["run"]


async def get_run(request: web.Request) -> web.Response:
    """Describe one subscription."""
    sub = request.app[BRIDGE_KEY].subscriptions.get(_names(request))
    if sub is None:
        return _error(404, "no such run subscription")
    return web.json_response(sub.describe())


async def delete_run(request: web.Request) -> web.Response:
    """Stop following a run."""
    if not await request.app[BRIDGE_KEY].unsubscribe(*_names(request)):
        return _error(404, "no such run subscription")
    return web.Response(status=204)


async def healthz(request: web.Request) -> web.Response:
    """Liveness."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: started and not shutting down."""
    if request.app[BRIDGE_KEY].ready:
        return web.json_response({"status": "ready"})
    return _error(503, "not ready")


async def metrics(request: web.Request) -> web.Response:
    """Prometheus exposition; OpenMetrics (with exemplars) when the scraper asks for it."""
    body, content_type = render(request.app[BRIDGE_KEY].registry, request.headers.get("Accept"))
    return web.Response(body=body, headers={"Content-Type": content_type})


async def passthrough(request: web.Request) -> web.StreamResponse:
    """A LAO-compatible run socket: upstream frames fanned out, client frames forwarded."""
    bridge = request.app[BRIDGE_KEY]
    try:
        flow = validate_name("flow_name", request.match_info["flow"])
        run = validate_name("run_name", request.match_info["run"])
    except NameError_ as exc:
        return _error(400, str(exc))
    if not bridge.ready:
        return _error(503, "bridge is shutting down")
    try:
        sub, _ = bridge.subscribe(flow, run, relay=True)
    except RunConflict as exc:
        return _error(503, str(exc))
    except TooManySubscriptions as exc:
        return _error(429, str(exc))
    ws = web.WebSocketResponse(heartbeat=bridge.settings.ws_ping_interval_s, compress=False)
    client = ClientChannel(ws, bridge.settings.client_buffer_frames, request.app[PASSTHROUGH_KEY])
    sub.attach(client)
    try:
        await ws.prepare(request)
    except BaseException:
        sub.detach(client)
        raise
    metrics = request.app[PASSTHROUGH_KEY]
    metrics.clients.inc()
    writer = asyncio.create_task(client.pump())
    try:
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                sent = await sub.send_upstream(message.data)
                metrics.forwarded.labels("sent" if sent else "upstream_down").inc()
    finally:
        sub.detach(client)
        metrics.clients.dec()
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
    return ws


def build_app(bridge: Bridge) -> web.Application:
    """The aiohttp application of a bridge."""
    app = web.Application(middlewares=[_auth], client_max_size=64 * 1024)
    app[BRIDGE_KEY] = bridge
    app[PASSTHROUGH_KEY] = PassthroughMetrics(bridge.registry)
    app.router.add_post("/v1/runs", post_run)
    app.router.add_get("/v1/runs", list_runs)
    app.router.add_get("/v1/runs/{flow}/{run}", get_run)
    app.router.add_delete("/v1/runs/{flow}/{run}", delete_run)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/ws/{flow}/{run}", passthrough)
    return app
