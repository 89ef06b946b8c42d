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
from collections.abc import Callable, Iterator
from urllib.parse import quote

from otel_bridge.core.engine import Engine, is_fresh_event
from otel_bridge.core.ids import root_span_id
from otel_bridge.core.outputs import Output
from otel_bridge.core.records import Result
from otel_bridge.core.redaction import clean_name, redact_text
from otel_bridge.settings import Settings
from otel_bridge.sinks.router import Router
from otel_bridge.sources.backoff import backoff
from otel_bridge.sources.passthrough import ClientChannel
from otel_bridge.sources.states import ConnectOutcome, SubscriptionState
from otel_bridge.sources.ws_client import Link, connect
from otel_bridge.sources.ws_common import BadURL, HandshakeFailed, Refused, Upstream
from otel_bridge.sources.ws_deflate import DeflateLink

log = logging.getLogger(__name__)

APP_PING = '{"type":"ping"}'
# Handshake answers that retrying will not fix.
FATAL_STATUS = frozenset({400, 401, 403, 405, 410})
# Once the run has started, a 404 means the run socket is gone too: LAO has no replay, so
# nothing more of this run will come; the run is closed at once instead of by the watchdog.
FATAL_STATUS_AFTER_START = FATAL_STATUS | {404}


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
    """Follows one run's socket and feeds its frames to the engine, its outputs to the router."""

    def __init__(
        self,
        flow_name: str,
        run_name: str,
        settings: Settings,
        engine: Engine,
        router: Router,
        on_state: Callable[[Subscription], None] = lambda s: None,
        *,
        relay_only: bool = False,
    ) -> None:
        self.flow_name = flow_name
        self.run_name = run_name
        self.settings = settings
        self.engine = engine
        self.router = router
        self.url = run_url(settings.upstream_url, flow_name, run_name)
        self.state = SubscriptionState.PENDING
        self.error: str | None = None
        self.connects = 0
        self.frames = 0
        self.events = 0  # new LAO events (not greetings, keepalives, resends or rejects)
        self.created_at = time.time()
        self.ended = False  # the run is over for the telemetry (the socket may still be read)
        self._on_state = on_state
        self._stopping = False
        self._ws: Upstream | None = None
        self._task: asyncio.Task[None] | None = None
        self.clients: set[ClientChannel] = set()
        self.display_url = redact_text(self.url)
        self._lao_done = False
        self._waker: asyncio.Future[None] | None = None  # only while waiting to reconnect
        self._offer_logged = False
        if relay_only:  # the run already ended: relay LAO's frames to clients, record nothing
            self.ended = True

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
        trace_id = self.engine.trace_id_of(self.flow_name, self.run_name)
        return {
            "flow_name": clean_name(self.flow_name),
            "run_name": clean_name(self.run_name),
            "state": self.state,
            "url": self.display_url,
            "trace_id": f"{trace_id:032x}",
            "connects": self.connects,
            "frames": self.frames,
            "error": redact_text(self.error) if self.error else None,
        }

    @property
    def active(self) -> bool:
        """Still following (or trying to follow) the run."""
        return self.state.active

    def _log_fields(self) -> dict[str, str]:
        """What every log line about this run carries: its URL, trace id and root span id.

        The ids let log backends link the line to the run's trace.
        """
        return {
            "url": self.display_url,
            "trace_id": f"{self.engine.trace_id_of(self.flow_name, self.run_name):032x}",
            "span_id": f"{root_span_id(self.flow_name, self.run_name):016x}",
        }

    def _set_state(self, state: SubscriptionState) -> None:
        if state != self.state:
            self.state = state
            self._on_state(self)

    def _finished(self) -> bool:
        """Nothing more to read: stopped, or the run ended and no pass-through client needs LAO."""
        return self._stopping or (self.ended and (self._lao_done or not self.clients))

    async def follow(self) -> None:
        """Connect, read, reconnect until the run ends, it is stopped, or we give up."""
        # Made at the first failure: an idle subscription holds no generator.
        delays: Iterator[float] | None = None
        failing_since: float | None = None
        try:
            while not self._finished():
                self._set_state(
                    SubscriptionState.CONNECTING
                    if self.connects == 0
                    else SubscriptionState.RECONNECTING
                )
                started = time.monotonic()
                events_before = self.events
                outcome = await self._connect_once()
                if self._finished() or (outcome is ConnectOutcome.CLOSED and self.ended):
                    break
                if outcome is ConnectOutcome.FATAL:  # already logged
                    self._refused()
                    return
                reason = self.error or "closed by the server"
                # A connection counts as healthy (and resets the backoff) only when it carried
                # events or stayed up a while: a server that accepts, greets (LAO greets every
                # connection) then drops at once must not make the bridge reconnect at full
                # speed forever, nor keep it from giving up.
                healthy = self.events > events_before or (
                    time.monotonic() - started >= self.settings.reconnect_max_s
                )
                if healthy or failing_since is None or delays is None:
                    failing_since = time.monotonic()
                    delays = backoff(
                        self.settings.reconnect_initial_s, self.settings.reconnect_max_s
                    )
                self._set_state(SubscriptionState.RECONNECTING)
                if time.monotonic() - failing_since >= self.settings.give_up_after_s:
                    self._give_up(reason)
                    return
                delay = next(delays)
                if self.router.metrics is not None:
                    self.router.metrics.reconnects.inc()
                log.warning(
                    "upstream lost, reconnecting",
                    extra={**self._log_fields(), "reason": reason, "delay_s": round(delay, 2)},
                )
                self._waker = asyncio.get_running_loop().create_future()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._waker, delay)
                self._waker = None
        finally:
            if self.state is not SubscriptionState.FAILED:
                self._set_state(SubscriptionState.DONE)
            for client in tuple(self.clients):
                client.finish()

    def _wake(self) -> None:
        """Cut a reconnect delay short (the run ended, or we stop)."""
        if self._waker is not None and not self._waker.done():
            self._waker.set_result(None)

    def _give_up(self, reason: str) -> None:
        self.error = f"gave up after {self.settings.give_up_after_s:g}s: {reason}"
        log.error("upstream unreachable, giving up", extra={**self._log_fields(), "reason": reason})
        outputs = self.engine.close_run(self.flow_name, self.run_name, Result.TIMEOUT, self.error)
        self.router.emit(outputs)
        self._set_state(SubscriptionState.FAILED)

    def _refused(self) -> None:
        """Upstream refused us for good: a run already under way ends now, with the reason."""
        if self.engine.is_open(self.flow_name, self.run_name):
            reason = f"upstream refused the subscription: {self.error}"
            outputs = self.engine.close_run(self.flow_name, self.run_name, Result.ERROR, reason)
            self.router.emit(outputs)
        self._set_state(SubscriptionState.FAILED)

    def _fatal_status(self) -> frozenset[int]:
        started = self.events > 0 or self.engine.is_open(self.flow_name, self.run_name)
        return FATAL_STATUS_AFTER_START if started else FATAL_STATUS

    async def _connect_once(self) -> ConnectOutcome:
        """One connection; return how it ended (``self.error`` says why, if abnormally)."""
        try:
            ws = await self._open()
        except Refused as exc:
            self.error = f"upstream answered HTTP {exc.status}"
            if exc.status in self._fatal_status():
                log.error(
                    "upstream refused the subscription",
                    extra={**self._log_fields(), "status": exc.status},
                )
                return ConnectOutcome.FATAL
            return ConnectOutcome.RETRY
        except BadURL as exc:
            self.error = f"invalid upstream URL: {exc}"
            log.error("invalid upstream URL", extra=self._log_fields())
            return ConnectOutcome.FATAL
        except HandshakeFailed as exc:
            self.error = str(exc)
            return ConnectOutcome.RETRY
        except (OSError, TimeoutError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            return ConnectOutcome.RETRY
        self._ws = ws
        try:
            if self._finished():  # stopped or ended during the handshake
                ws.close()
                await ws.closed
                return ConnectOutcome.CLOSED
            if self.state is not SubscriptionState.CONNECTED:  # no message came first
                self._connected()
            reason = await ws.closed
        except BaseException:  # cancelled: hang up
            ws.abandon()
            raise
        finally:
            self._ws = None
        if reason is None:
            return ConnectOutcome.CLOSED
        self.error = reason
        return ConnectOutcome.RETRY

    async def _open(self) -> Upstream:
        """The run socket, open: picows, or websockets when compression is offered."""
        settings = self.settings
        headers = settings.upstream_header_list()
        interval, timeout = settings.ws_ping_interval_s, settings.ws_ping_timeout_s
        if settings.upstream_compression:
            deflate = DeflateLink(self._on_message, interval, timeout)
            await deflate.open(
                self.url,
                headers=headers,
                open_timeout=settings.connect_timeout_s,
                ssl_context=ssl_context(settings),
            )
            return deflate
        link = Link(self._on_message, interval, timeout)
        await connect(
            self.url,
            link,
            headers=headers,
            open_timeout=settings.connect_timeout_s,
            ssl_context=ssl_context(settings),
        )
        return link

    def _on_message(self, message: str | bytes) -> None:
        """One upstream message (called by the client as it reads): engine, router, clients."""
        if self._stopping:
            return
        if self.state is not SubscriptionState.CONNECTED:  # handed on before open() returned
            self._connected()
        self.frames += 1
        try:
            outputs: list[Output] = self.engine.receive(
                message, run=self.key, received_ns=time.time_ns()
            )
            self.router.emit(outputs)
            if is_fresh_event(outputs):
                self.events += 1
        except Exception:  # never let one frame end the subscription
            log.exception("frame could not be handled", extra=self._log_fields())
        if self.clients:
            for client in tuple(self.clients):
                try:
                    client.offer(message)
                except Exception:  # one client's failure must not stop the others
                    self._offer_failed()

    def _connected(self) -> None:
        """The socket is open: counted and logged once, before its first message is handled."""
        self.connects += 1
        self.error = None
        self._set_state(SubscriptionState.CONNECTED)
        log.info("upstream connected", extra=self._log_fields())

    def _offer_failed(self) -> None:
        """A pass-through client could not take a frame: logged once per subscription."""
        if not self._offer_logged:
            self._offer_logged = True
            log.exception("pass-through client could not take a frame", extra=self._log_fields())

    async def app_ping(self) -> None:
        """Send LAO's JSON ping ``{"type":"ping"}`` if connected.

        The bridge's one pinger calls this for every subscription (no task per socket: an
        idle subscription costs less memory).
        """
        ws = self._ws
        if ws is not None:
            await ws.send_text(APP_PING)

    def attach(self, client: ClientChannel) -> None:
        """Fan this run's upstream frames out to a pass-through client too."""
        self.clients.add(client)

    def detach(self, client: ClientChannel) -> None:
        """Stop sending frames to a pass-through client; the last one out closes an ended run."""
        self.clients.discard(client)
        if not self.clients and self.ended:
            self._close_soon(0.0)

    async def send_upstream(self, frame: str) -> bool:
        """Forward a client's frame (its JSON ping) to LAO; False when not connected."""
        ws = self._ws
        if ws is None:
            return False
        return await ws.send_text(frame)

    def run_ended(self, result: Result) -> None:
        """Told when the tracker closed this run.

        After a terminal event (``success``/``failure``) LAO is done: read the grace, close.
        After a watchdog timeout the telemetry is done, but pass-through clients still get
        what LAO sends until it closes or the last client leaves.
        """
        self.ended = True
        self._wake()
        self._lao_done = self._lao_done or result in (Result.SUCCESS, Result.FAILURE)
        if self._lao_done or not self.clients:
            self._close_soon(self.settings.terminal_grace_s)

    def _close_soon(self, delay_s: float) -> None:
        ws = self._ws
        if ws is not None:
            asyncio.get_running_loop().call_later(delay_s, ws.close)

    async def stop(self) -> None:
        """Stop following the run now (also while a handshake is under way)."""
        self._stopping = True
        self.ended = True
        self._wake()
        if self._ws is not None:
            self._ws.close()
        if self._task is not None and not self._task.done():
            if self._ws is None:
                self._task.cancel()
            await asyncio.wait({self._task})
