"""The bridge's HTTP API, on two listeners (``server.py`` runs them).

Control listener (``control_host:control_port``, loopback unless a token is set):

- ``POST /v1/runs`` ``{"flow_name", "run_name", "traceparent"?}`` subscribes (201; 200 if
  already followed); ``GET /v1/runs`` lists; ``GET``/``DELETE /v1/runs/{flow}/{run}``;
- ``GET /ws/{flow}/{run}``, the pass-through socket (``sources/passthrough.py``);
- ``GET /healthz``, ``GET /readyz``.

Metrics listener (``listen_host:port``, may face the whole network): ``GET /metrics``,
``GET /healthz`` (alive), ``GET /readyz`` (ready to take runs).

With ``control_token`` set, ``/v1/*`` and ``/ws/*`` need it, as ``Authorization: Bearer
<token>`` or, since browsers cannot set headers on a WebSocket, as the subprotocol
``bearer.<token>`` in ``Sec-WebSocket-Protocol``. Tokens are compared as SHA-256 digests in
constant time (neither their text nor their length shows in the timing).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from dataclasses import replace

from aiohttp import web
from aiohttp.typedefs import Middleware

from otel_bridge.bridge import Bridge
from otel_bridge.core.ids import TraceParent, parse_traceparent, parse_tracestate
from otel_bridge.errors import InvalidName, RunConflict, TooManySubscriptions, TraceParentError
from otel_bridge.names import validate_name
from otel_bridge.sinks.exposition import render
from otel_bridge.sources.passthrough import (
    BEARER_PROTOCOL,
    Handler,
    PassthroughMetrics,
    offered_protocols,
    passthrough_handler,
)

BRIDGE_KEY: web.AppKey[Bridge] = web.AppKey("bridge", Bridge)
MAX_BODY_BYTES = 64 * 1024
MAX_JSON_DEPTH = 32  # a registration is two levels deep; deeper bodies are refused (400)
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def presented_tokens(request: web.Request) -> list[str]:
    """The tokens a request presents: its bearer credential and ``bearer.<token>`` protocols."""
    found = []
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        found.append(credential.strip())
    offered = offered_protocols(request)
    found += [p.removeprefix(BEARER_PROTOCOL) for p in offered if p.startswith(BEARER_PROTOCOL)]
    return found


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """With a token, everything but health needs it (decided by route, not by path text)."""
    token = request.app[BRIDGE_KEY].settings.control_token
    if token and request.match_info.handler not in (healthz, readyz):
        expected = _digest(token)
        # Every presented token is compared (no early exit on the first mismatch).
        matches = [hmac.compare_digest(_digest(t), expected) for t in presented_tokens(request)]
        if not any(matches):
            challenge = {"WWW-Authenticate": 'Bearer realm="otel-bridge"'}
            return _error(401, "missing or wrong bearer token", challenge)
    return await handler(request)


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """Whether JSON text nests arrays/objects deeper than ``limit`` (strings are skipped)."""
    depth = 0
    for byte in _JSON_STRING.sub(b'""', body):
        if byte in b"[{":
            depth += 1
            if depth > limit:
                return True
        elif byte in b"]}":
            depth -= 1
    return False


async def _json_body(request: web.Request) -> object:
    """The request's JSON body; raise HTTPException (400, 408) when it is not acceptable."""
    timeout = request.app[BRIDGE_KEY].settings.http_header_timeout_s
    try:
        async with asyncio.timeout(timeout):
            raw = await request.read()
    except TimeoutError:
        raise web.HTTPRequestTimeout(text="request body too slow") from None
    if json_depth_exceeds(raw, MAX_JSON_DEPTH):
        raise web.HTTPBadRequest(text=f"body nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError included
        raise web.HTTPBadRequest(text="body must be a JSON object") from None


async def post_run(request: web.Request) -> web.Response:
    """Subscribe to a run."""
    bridge = request.app[BRIDGE_KEY]
    try:
        body = await _json_body(request)
    except web.HTTPException as exc:
        return _error(exc.status, exc.text or exc.reason)
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
    """Readiness: started, both listeners bound, and not shutting down."""
    bridge = request.app[BRIDGE_KEY]
    if bridge.ready and bridge.listening:
        return web.json_response({"status": "ready"})
    return _error(503, "not ready")


async def metrics(request: web.Request) -> web.Response:
    """Prometheus exposition; OpenMetrics (with exemplars) when the scraper asks for it."""
    body, content_type = render(request.app[BRIDGE_KEY].registry, request.headers.get("Accept"))
    return web.Response(body=body, headers={"Content-Type": content_type})


def _app(bridge: Bridge, middlewares: Sequence[Middleware], max_body: int) -> web.Application:
    app = web.Application(middlewares=middlewares, client_max_size=max_body)
    app[BRIDGE_KEY] = bridge
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


def build_control_app(bridge: Bridge, middlewares: Sequence[Middleware] = ()) -> web.Application:
    """The control listener's application: /v1/*, /ws/*, health; token-guarded when set."""
    app = _app(bridge, [*middlewares, _auth], MAX_BODY_BYTES)
    app.router.add_post("/v1/runs", post_run)
    app.router.add_get("/v1/runs", list_runs)
    app.router.add_get("/v1/runs/{flow}/{run}", get_run)
    app.router.add_delete("/v1/runs/{flow}/{run}", delete_run)
    passthrough = passthrough_handler(bridge, PassthroughMetrics(bridge.registry))
    app.router.add_get("/ws/{flow}/{run}", passthrough)
    return app


def build_metrics_app(bridge: Bridge, middlewares: Sequence[Middleware] = ()) -> web.Application:
    """The metrics listener's application: /metrics and health, nothing that changes state."""
    app = _app(bridge, middlewares, 1024)
    app.router.add_get("/metrics", metrics)
    return app
