"""The bridge's HTTP API: control API, health, /metrics; the pass-through socket joins it.

- ``POST /v1/runs`` ``{"flow_name", "run_name", "traceparent"?}`` subscribes (201; 200 if
  already followed); ``GET /v1/runs`` lists; ``GET``/``DELETE /v1/runs/{flow}/{run}``.
- ``GET /healthz`` (alive), ``GET /readyz`` (ready to take runs), ``GET /metrics``.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import replace

from aiohttp import web

from otel_bridge.bridge import Bridge
from otel_bridge.core.ids import TraceParent, parse_traceparent, parse_tracestate
from otel_bridge.errors import InvalidName, RunConflict, TooManySubscriptions, TraceParentError
from otel_bridge.names import validate_name
from otel_bridge.sinks.exposition import render
from otel_bridge.sources.passthrough import Handler, PassthroughMetrics, passthrough_handler

BRIDGE_KEY: web.AppKey[Bridge] = web.AppKey("bridge", Bridge)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


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
    except InvalidName as exc:
        return _error(400, str(exc))
    parent: TraceParent | None = None
    if body.get("traceparent") is not None:
        try:
            parent = parse_traceparent(body["traceparent"])
            state = body.get("tracestate")
            if state is not None:
                parent = replace(parent, state=parse_tracestate(state))
        except TraceParentError as exc:
            return _error(400, str(exc))
    if not bridge.ready:
        return _error(503, "bridge is shutting down")
    try:
        sub, created = bridge.subscribe(flow, run, parent)
    except TooManySubscriptions as exc:
        return _error(429, str(exc))
    except RunConflict as exc:
        return _error(409 if bridge.ready else 503, str(exc))
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


def build_app(bridge: Bridge) -> web.Application:
    """The aiohttp application of a bridge."""
    app = web.Application(middlewares=[_auth], client_max_size=64 * 1024)
    app[BRIDGE_KEY] = bridge
    app.router.add_post("/v1/runs", post_run)
    app.router.add_get("/v1/runs", list_runs)
    app.router.add_get("/v1/runs/{flow}/{run}", get_run)
    app.router.add_delete("/v1/runs/{flow}/{run}", delete_run)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    passthrough = passthrough_handler(bridge, PassthroughMetrics(bridge.registry))
    app.router.add_get("/ws/{flow}/{run}", passthrough)
    return app
