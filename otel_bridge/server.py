"""Running a bridge: the HTTP server and the bridge started and stopped together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from types import TracebackType

from aiohttp import web
from prometheus_client import CollectorRegistry

from otel_bridge.bridge import Bridge
from otel_bridge.http_api import build_app
from otel_bridge.settings import Settings
from otel_bridge.sinks.span_sinks import SpanSink

log = logging.getLogger(__name__)


class BridgeServer:
    """A bridge with its HTTP server on ``settings.listen_host:settings.port``."""

    def __init__(
        self,
        settings: Settings,
        *,
        registry: CollectorRegistry | None = None,
        sinks: Sequence[SpanSink] | None = None,
    ) -> None:
        self.settings = settings
        self.bridge = Bridge(settings, registry=registry, sinks=sinks)
        self.app = build_app(self.bridge)
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._stopped = False

    @property
    def url(self) -> str:
        """``http://host:port`` of the server."""
        return f"http://{self.settings.listen_host}:{self.port}"

    async def start(self) -> None:
        """Start the bridge and listen."""
        await self.bridge.start()
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.listen_host, self.settings.port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.settings.port
        log.info("listening", extra={"url": self.url})

    async def stop(self) -> None:
        """Stop taking requests, then stop the bridge (flushing every exporter); idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self.bridge.ready = False
        await self.bridge.stop()
        if self._runner is not None:
            await self._runner.cleanup()

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


async def serve_until_signal(server: BridgeServer) -> None:
    """Run until SIGTERM or SIGINT; then end open runs as incomplete and flush."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await server.start()
    try:
        await stop.wait()
        log.info("signal received, shutting down")
    finally:
        await server.stop()
