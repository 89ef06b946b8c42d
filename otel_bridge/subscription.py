"""The live path in: one WebSocket client per run, reconnecting until the run ends.

Liveness rests on WebSocket protocol pings (a stalled upstream misses the pong and the
connection is dropped); like LAO's own client the bridge also sends the JSON text frame
``{"type":"ping"}`` every 30 s. After an abnormal close or a stall it reconnects with
exponential backoff and jitter until the run ends or ``give_up_after_s`` of failures; after
the terminal event it reads for a short grace, then closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from otel_bridge.backoff import backoff
from otel_bridge.events import Noise, Rejected
from otel_bridge.passthrough import ClientChannel
from otel_bridge.pipeline import Pipeline
from otel_bridge.redaction import redact_text
from otel_bridge.settings import Settings
from otel_bridge.spans import Result

log = logging.getLogger(__name__)

APP_PING = '{"type":"ping"}'
MAX_FRAME_BYTES = 16 * 1024 * 1024
# Handshake answers that retrying will not fix.
CLOSED_NORMALLY = "closed by the server"
FATAL_STATUS = frozenset({400, 401, 403, 405, 410})


def run_url(base_url: str, flow_name: str, run_name: str) -> str:
    """The run socket URL, each path segment percent-encoded."""
    return f"{base_url.rstrip('/')}/ws/{quote(flow_name, safe='')}/{quote(run_name, safe='')}"


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """TLS settings for a wss:// upstream (None for ws://)."""
    if not settings.upstream_url.startswith("wss://"):
        return None
    context = ssl.create_default_context(cafile=settings.tls_ca_file)
    if settings.tls_insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class Subscription:
    """Follows one run's socket and feeds its frames to the pipeline."""

    def __init__(
        self,
        flow_name: str,
        run_name: str,
        settings: Settings,
        pipeline: Pipeline,
        on_state: Callable[[Subscription], None] = lambda s: None,
        *,
        relay_only: bool = False,
    ) -> None:
        self.flow_name = flow_name
        self.run_name = run_name
        self.settings = settings
        self.pipeline = pipeline
        self.url = run_url(settings.upstream_url, flow_name, run_name)
        self.state = "pending"
        self.error: str | None = None
        self.connects = 0
        self.frames = 0
        self.events = 0  # frames that were LAO events (not greetings or keepalives)
        self.created_at = time.time()
        self.ended = asyncio.Event()
        self._on_state = on_state
        self._stopping = False
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self.clients: set[ClientChannel] = set()
        self.display_url = redact_text(self.url)
        self._lao_done = False
        self._wake = asyncio.Event()
        self._closers: set[asyncio.Future[None]] = set()
        if relay_only:  # the run already ended: relay LAO's frames to clients, record nothing
            self.ended.set()

    @property
    def key(self) -> tuple[str, str]:
        """(flow_name, run_name)."""
        return (self.flow_name, self.run_name)

    def start(self) -> None:
        """Start following the run in a background task."""
        self._task = asyncio.create_task(self.follow(), name=f"subscription {self.url}")

    async def wait(self) -> None:
        """Wait until the subscription has finished."""
        if self._task is not None:
            await asyncio.shield(self._task)

    def describe(self) -> dict[str, object]:
        """A JSON-able summary for ``GET /v1/runs``."""
        trace_id = self.pipeline.tracker.trace_id_of(self.flow_name, self.run_name)
        return {
            "flow_name": self.flow_name,
            "run_name": self.run_name,
            "state": self.state,
            "url": self.display_url,
            "trace_id": f"{trace_id:032x}",
            "connects": self.connects,
            "frames": self.frames,
            "error": redact_text(self.error) if self.error else None,
        }

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self._on_state(self)

    def _finished(self) -> bool:
        """Nothing more to read: stopped, or the run ended and no pass-through client needs LAO."""
        return self._stopping or (self.ended.is_set() and (self._lao_done or not self.clients))

    async def follow(self) -> None:
        """Connect, read, reconnect until the run ends, it is stopped, or we give up."""
        delays = backoff(self.settings.reconnect_initial_s, self.settings.reconnect_max_s)
        failing_since: float | None = None
        try:
            while not self._finished():
                self._set_state("connecting" if self.connects == 0 else "reconnecting")
                started = time.monotonic()
                events_before = self.events
                reason = await self._connect_once()
                if self._finished() or (reason == CLOSED_NORMALLY and self.ended.is_set()):
                    break
                if reason is None:  # fatal, already logged
                    self._set_state("failed")
                    return
                # A connection counts as healthy (and resets the backoff) only when it carried
                # events or stayed up a while: a server that accepts, greets (LAO greets every
                # connection) then drops at once must not make the bridge reconnect at full
                # speed forever, nor keep it from giving up.
                healthy = self.events > events_before or (
                    time.monotonic() - started >= self.settings.reconnect_max_s
                )
                if healthy or failing_since is None:
                    failing_since = time.monotonic()
                    delays = backoff(
                        self.settings.reconnect_initial_s, self.settings.reconnect_max_s
                    )
                self._set_state("reconnecting")
                if time.monotonic() - failing_since >= self.settings.give_up_after_s:
                    self._give_up(reason)
                    return
                delay = next(delays)
                if self.pipeline.metrics:
                    self.pipeline.metrics.reconnects.inc()
                log.warning(
                    "upstream lost, reconnecting",
                    extra={"url": self.display_url, "reason": reason, "delay_s": round(delay, 2)},
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                self._wake.clear()
        finally:
            if self.state != "failed":
                self._set_state("done")
            for client in tuple(self.clients):
                client.finish()

    def _give_up(self, reason: str) -> None:
        self.error = f"gave up after {self.settings.give_up_after_s:g}s: {reason}"
        log.error(
            "upstream unreachable, giving up", extra={"url": self.display_url, "reason": reason}
        )
        self.pipeline.close_run(self.flow_name, self.run_name, Result.TIMEOUT)
        self._set_state("failed")

    async def _connect_once(self) -> str | None:
        """One connection; return why it ended (None when retrying is pointless)."""
        try:
            async with connect(
                self.url,
                additional_headers=self.settings.upstream_header_list(),
                open_timeout=self.settings.connect_timeout_s,
                ping_interval=self.settings.ws_ping_interval_s,
                ping_timeout=self.settings.ws_ping_timeout_s,
                compression="deflate" if self.settings.upstream_compression else None,
                max_size=MAX_FRAME_BYTES,
                ssl=ssl_context(self.settings),
                user_agent_header="otel-bridge",
            ) as ws:
                self._ws = ws
                if self._finished():  # stopped or ended during the handshake
                    return CLOSED_NORMALLY
                self.connects += 1
                self.error = None
                self._set_state("connected")
                log.info("upstream connected", extra={"url": self.display_url})
                await self._read(ws)
                return CLOSED_NORMALLY
        except InvalidStatus as exc:
            status = exc.response.status_code
            self.error = f"upstream answered HTTP {status}"
            if status in FATAL_STATUS:
                log.error(
                    "upstream refused the subscription",
                    extra={"url": self.display_url, "status": status},
                )
                return None
            return self.error
        except InvalidURI as exc:
            self.error = f"invalid upstream URL: {exc}"
            log.error("invalid upstream URL", extra={"url": self.display_url})
            return None
        except ConnectionClosed as exc:
            self.error = f"connection closed: {exc}"
            return self.error
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            return self.error
        finally:
            self._ws = None

    async def _read(self, ws: ClientConnection) -> None:
        """Feed every frame to the pipeline; an abnormal close raises ConnectionClosed."""
        pinger = asyncio.create_task(self._app_pings(ws))
        try:
            async for message in ws:
                self.frames += 1
                try:
                    frame = self.pipeline.handle_frame(
                        message,
                        flow_name=self.flow_name,
                        run_name=self.run_name,
                        received_ns=time.time_ns(),
                    )
                    if not isinstance(frame, Noise | Rejected):
                        self.events += 1
                except Exception:  # never let one frame end the subscription
                    log.exception("frame could not be handled", extra={"url": self.display_url})
                for client in tuple(self.clients):
                    client.offer(message)
        finally:
            pinger.cancel()

    async def _app_pings(self, ws: ClientConnection) -> None:
        interval = self.settings.app_ping_interval_s
        if interval <= 0:
            return
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(ConnectionClosed):
                await ws.send(APP_PING)

    def attach(self, client: ClientChannel) -> None:
        """Fan this run's upstream frames out to a pass-through client too."""
        self.clients.add(client)

    def detach(self, client: ClientChannel) -> None:
        """Stop sending frames to a pass-through client; the last one out closes an ended run."""
        self.clients.discard(client)
        if not self.clients and self.ended.is_set():
            self._close_soon(0.0)

    async def send_upstream(self, frame: str) -> bool:
        """Forward a client's frame (its JSON ping) to LAO; False when not connected."""
        ws = self._ws
        if ws is None:
            return False
        try:
            await ws.send(frame)
        except ConnectionClosed:
            return False
        return True

    def run_ended(self, result: Result) -> None:
        """Told when the tracker closed this run.

        After a terminal event (``success``/``failure``) LAO is done: read the grace, close.
        After a watchdog timeout the telemetry is done, but pass-through clients still get
        what LAO sends until it closes or the last client leaves.
        """
        self.ended.set()
        self._wake.set()
        self._lao_done = self._lao_done or result in (Result.SUCCESS, Result.FAILURE)
        if self._lao_done or not self.clients:
            self._close_soon(self.settings.terminal_grace_s)

    def _close_soon(self, delay_s: float) -> None:
        ws = self._ws
        if ws is None:
            return

        def close() -> None:
            closer = asyncio.ensure_future(ws.close())
            self._closers.add(closer)
            closer.add_done_callback(self._closers.discard)

        asyncio.get_running_loop().call_later(delay_s, close)

    async def stop(self) -> None:
        """Stop following the run now (also while a handshake is under way)."""
        self._stopping = True
        self.ended.set()
        self._wake.set()
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None and not self._task.done():
            if self._ws is None:
                self._task.cancel()
            await asyncio.wait({self._task})
