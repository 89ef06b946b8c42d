"""Running a bridge: its two HTTP listeners and the bridge, started and stopped together.

- the **metrics listener** (``listen_host:port``): ``/metrics``, ``/healthz``, ``/readyz``;
- the **control listener** (``control_host:control_port``): ``/v1/*``, ``/ws/*`` and health.

Each listener guards its connections (:class:`Door`): at most ``http_max_connections``
open (more are closed at once), a request head must arrive within
``http_header_timeout_s`` of the connection opening or of the first byte after the
previous answer, and a kept-alive connection idle for ``http_keepalive_timeout_s`` is
closed (aiohttp's keep-alive timer). So half-open requests cannot pile up, and a flood of
the control port leaves ``/healthz`` on the metrics port answering.

:class:`RepeatFilter` keeps repeated warnings and errors from flooding the log: one line
per logger and message every :data:`REPEAT_WINDOW_S`, the next one carrying the count of
those held back (``repeated=N``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CollectorRegistry, Counter, Gauge

from otel_bridge.bridge import Bridge
from otel_bridge.http_api import build_control_app, build_metrics_app
from otel_bridge.settings import Settings
from otel_bridge.sinks.span_sinks import SpanSink

log = logging.getLogger(__name__)

REPEAT_WINDOW_S = 10.0
_HEAD_END = (b"\r\n\r\n", b"\n\n")
_CUT_MESSAGES = {
    "limit": "HTTP connection refused: too many open",
    "header_timeout": "HTTP connection closed: request head too slow",
}


class HttpMetrics:
    """Connections of the HTTP listeners and those the bridge cut."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.open = Gauge(
            "otel_bridge_http_connections",
            "Open HTTP connections, by listener (control, metrics).",
            ["listener"],
            registry=registry,
        )
        self.cut = Counter(
            "otel_bridge_http_connections_cut",
            "HTTP connections the bridge closed, by listener and reason "
            "(limit: too many open; header_timeout: request head too slow).",
            ["listener", "reason"],
            registry=registry,
        )


@dataclass
class Door:
    """One listener's connection rules and its count of open connections."""

    name: str
    max_connections: int
    header_timeout_s: float
    metrics: HttpMetrics
    open: int = field(default=0, init=False)

    def cut(self, reason: str) -> None:
        """Count (and log, rate-limited by :class:`RepeatFilter`) a connection cut."""
        self.metrics.cut.labels(self.name, reason).inc()
        log.warning(_CUT_MESSAGES[reason], extra={"listener": self.name})


class Guard(asyncio.Protocol):
    """Wraps aiohttp's protocol for one connection: counted, capped, request heads timed."""

    def __init__(self, door: Door, make: Callable[[], asyncio.Protocol]) -> None:
        self._door = door
        self._make = make
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._awaiting_head = True  # bytes now are a request head (not a body or frames)
        self._tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Refuse the connection over the cap; else hand it to aiohttp and time its head."""
        assert isinstance(transport, asyncio.Transport)
        door = self._door
        if door.open >= door.max_connections:
            transport.abort()
            door.cut("limit")
            return
        door.open += 1
        door.metrics.open.labels(door.name).inc()
        self._transport = transport
        self._inner = self._make()
        self._inner.connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._door.header_timeout_s, self._too_slow)

    def _too_slow(self) -> None:
        self._timer = None
        if self._transport is not None and self._awaiting_head:
            self._door.cut("header_timeout")
            self._transport.abort()

    def data_received(self, data: bytes) -> None:
        """Pass the bytes on; a complete request head stops its timer."""
        if self._inner is None:
            return
        if self._awaiting_head:
            if self._timer is None:
                self._arm()
            seen = self._tail + data
            if any(end in seen for end in _HEAD_END):
                self._awaiting_head = False
                self._stop_timer()
            self._tail = seen[-3:]
        self._inner.data_received(data)

    def request_handled(self) -> None:
        """The next bytes start a new request head (timed from its first byte)."""
        self._awaiting_head = True
        self._tail = b""

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def eof_received(self) -> bool | None:
        """Pass on."""
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        """Pass on."""
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        """Pass on."""
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        """Uncount the connection, pass on."""
        self._stop_timer()
        if self._inner is None:
            return
        self._door.open -= 1
        self._door.metrics.open.labels(self._door.name).dec()
        self._transport = None
        self._inner.connection_lost(exc)


@web.middleware
async def _next_head(request: web.Request, handler: Handler) -> web.StreamResponse:
    """After each request, time the connection's next request head afresh."""
    try:
        return await handler(request)
    finally:
        transport = request.transport
        guard = transport.get_protocol() if transport is not None else None
        if isinstance(guard, Guard):
            guard.request_handled()


@dataclass
class _Listener:
    door: Door
    app: web.Application
    host: str
    port: int
    runner: web.AppRunner | None = None
    server: asyncio.Server | None = None


class BridgeServer:
    """A bridge with its control and metrics listeners."""

    def __init__(
        self,
        settings: Settings,
        *,
        registry: CollectorRegistry | None = None,
        sinks: Sequence[SpanSink] | None = None,
    ) -> None:
        self.settings = settings
        self.bridge = Bridge(settings, registry=registry, sinks=sinks)
        http = HttpMetrics(self.bridge.registry)
        self.control_app = build_control_app(self.bridge, [_next_head])
        self.metrics_app = build_metrics_app(self.bridge, [_next_head])
        self._control = self._listener("control", self.control_app, http)
        self._metrics = self._listener("metrics", self.metrics_app, http)
        self._stopped = False

    def _listener(self, name: str, app: web.Application, http: HttpMetrics) -> _Listener:
        s = self.settings
        door = Door(name, s.http_max_connections, s.http_header_timeout_s, http)
        if name == "control":
            return _Listener(door, app, s.control_host, s.control_port)
        return _Listener(door, app, s.listen_host, s.port)

    @property
    def port(self) -> int:
        """The metrics listener's port (once started: the one bound)."""
        return self._metrics.port

    @property
    def control_port(self) -> int:
        """The control listener's port (once started: the one bound)."""
        return self._control.port

    @property
    def url(self) -> str:
        """``http://host:port`` of the control listener (the control API, /ws)."""
        return _url(self._control)

    @property
    def metrics_url(self) -> str:
        """``http://host:port`` of the metrics listener (/metrics, health)."""
        return _url(self._metrics)

    async def start(self) -> None:
        """Start the bridge and listen; on failure, undo what was started and raise."""
        self.bridge.listening = False
        try:
            await self.bridge.start()
            for listener in (self._metrics, self._control):
                await self._listen(listener)
            self.bridge.listening = True
            self.bridge.resubscribe()
        except BaseException:
            await self.stop()
            raise
        log.info("listening", extra={"url": self.url, "metrics_url": self.metrics_url})

    async def _listen(self, listener: _Listener) -> None:
        runner = web.AppRunner(
            listener.app,
            access_log=None,
            handle_signals=False,
            keepalive_timeout=self.settings.http_keepalive_timeout_s,
        )
        await runner.setup()
        listener.runner = runner
        factory = runner.server
        assert factory is not None
        loop = asyncio.get_running_loop()
        try:
            listener.server = await loop.create_server(
                lambda: Guard(listener.door, factory),
                listener.host,
                listener.port,
                reuse_address=True,
            )
        except OSError as exc:
            where = f"{listener.host}:{listener.port}"
            message = f"cannot listen on {where} ({listener.door.name}): {exc.strerror}"
            raise OSError(exc.errno, message) from exc
        listener.port = listener.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop taking requests, then stop the bridge (flushing every exporter); idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self.bridge.ready = False
        try:
            await self.bridge.stop()
        finally:
            for listener in (self._control, self._metrics):
                if listener.server is not None:
                    listener.server.close()
                if listener.runner is not None:
                    await listener.runner.cleanup()

    async def __aenter__(self) -> BridgeServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


def _url(listener: _Listener) -> str:
    host = listener.host
    return f"http://[{host}]:{listener.port}" if ":" in host else f"http://{host}:{listener.port}"


@dataclass
class _Seen:
    at: float
    held: int = 0


class RepeatFilter(logging.Filter):
    """At most one warning or error per logger and message every ``window_s``.

    The next line let through carries ``repeated=N``, the count held back meanwhile;
    :meth:`held_back` lists what is still held (reported at shutdown).
    """

    MAX_KEYS = 1024

    def __init__(
        self, window_s: float = REPEAT_WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.window_s = window_s
        self._clock = clock
        self._seen: dict[tuple[str, int, str], _Seen] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """Let the record through, or hold it back and count it."""
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, str(record.msg).split("\n", 1)[0][:200])
        now = self._clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen.at < self.window_s:
            seen.held += 1
            return False
        if seen is not None and seen.held:
            record.repeated = seen.held
        self._seen.pop(key, None)
        self._seen[key] = _Seen(now)
        if len(self._seen) > self.MAX_KEYS:  # forget the least recently let through
            del self._seen[next(iter(self._seen))]
        return True

    def held_back(self) -> list[tuple[str, str, int]]:
        """(logger, message, count) of every line held back since it was last let through."""
        return [(name, msg, seen.held) for (name, _, msg), seen in self._seen.items() if seen.held]


@contextlib.contextmanager
def limited_repeats(logger: logging.Logger | None = None) -> Iterator[None]:
    """A :class:`RepeatFilter` on each handler of ``logger`` (the root) while inside.

    On leaving, what is still held back is logged once per message, with its count.
    """
    target = logger or logging.getLogger()
    placed = [(handler, RepeatFilter()) for handler in target.handlers]
    for handler, repeat_filter in placed:
        handler.addFilter(repeat_filter)
    try:
        yield
    finally:
        for handler, repeat_filter in placed:
            handler.removeFilter(repeat_filter)
        for name, message, count in placed[0][1].held_back() if placed else []:
            log.info(
                "repeated log lines held back",
                extra={"source": name, "held_message": message, "repeated": count},
            )


async def serve_until_signal(server: BridgeServer) -> None:
    """Run until SIGTERM or SIGINT; then end open runs as incomplete and flush."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    with limited_repeats():
        await server.start()
        try:
            await stop.wait()
            log.info("signal received, shutting down")
        finally:
            await server.stop()
