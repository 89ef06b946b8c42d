"""The bridge assembled: settings → engine, router (queues, metrics), subscriptions, watchdog."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine, Sequence

from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry

from otel_bridge.core import semconv as K
from otel_bridge.core.engine import Engine, Limits
from otel_bridge.core.ids import TraceParent
from otel_bridge.core.outputs import Output, RunClosed
from otel_bridge.core.records import Result
from otel_bridge.core.redaction import PayloadPolicy
from otel_bridge.errors import RunConflict, SettingsError, TooManySubscriptions
from otel_bridge.otel_env import OtelEnv, read_otel_env
from otel_bridge.settings import Settings
from otel_bridge.sinks.export_queue import ExportQueue
from otel_bridge.sinks.metrics import SUBSCRIPTION_STATES, Metrics
from otel_bridge.sinks.router import Router
from otel_bridge.sinks.span_sinks import ConsoleSink, FileSink, SpanSink, otlp_sink_from_env
from otel_bridge.sources.upstream import Subscription
from otel_bridge.store.keeper import StateKeeper

log = logging.getLogger(__name__)

DEFAULT_SERVICE_NAME = "lao-workflows"
KEEP_FINISHED = 1000
WATCHDOG_PERIOD_S = 1.0
DEFAULT_BATCH = 512  # spans per export request (OTEL_BSP_MAX_EXPORT_BATCH_SIZE)
DEFAULT_DELAY_S = 0.05  # longest wait for a full batch (OTEL_BSP_SCHEDULE_DELAY, ms): lag


def make_resource(extra: dict[str, str] | None = None) -> Resource:
    """The resource of exported spans: OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES win."""
    resource = Resource.create(extra or {}).merge(Resource({}, schema_url=K.SCHEMA_URL))
    service = str(resource.attributes.get("service.name", ""))
    if not service or service.startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": DEFAULT_SERVICE_NAME}))
    return resource


def build_sinks(
    settings: Settings, resource: Resource, otel: OtelEnv | None = None
) -> list[SpanSink]:
    """The sinks the settings and OTEL_* ask for: OTLP (gRPC or HTTP), console, a file."""
    otel = otel or read_otel_env()
    sinks: list[SpanSink] = []
    try:
        if otel.disabled:
            log.info("OTEL_SDK_DISABLED=true: spans are not exported (metrics still are)")
        else:
            if settings.otlp_enabled(exporters=otel.exporters):
                sinks.append(
                    otlp_sink_from_env(
                        resource, max_request_bytes=settings.export_max_request_bytes
                    )
                )
            if "console" in otel.exporters:
                sinks.append(ConsoleSink(resource))
        if settings.traces_out:
            sinks.append(FileSink(settings.traces_out, resource))
    except (ValueError, OSError) as exc:
        raise SettingsError(f"cannot set up span export: {exc}") from exc
    return sinks


class Bridge:
    """One bridge process: engine, router, subscriptions and their watchdog."""

    def __init__(
        self,
        settings: Settings,
        *,
        registry: CollectorRegistry | None = None,
        sinks: Sequence[SpanSink] | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = Metrics(
            self.registry,
            flow_allow=settings.flow_allow,
            flow_deny=settings.flow_deny,
            task_allow=settings.task_allow,
            task_deny=settings.task_deny,
            max_label_values=settings.max_label_values,
            runtime=True,
        )
        self.resource = make_resource()
        otel = read_otel_env()
        chosen = list(sinks) if sinks is not None else build_sinks(settings, self.resource, otel)
        self.keeper: StateKeeper | None = None
        if settings.state_dir:
            self.keeper = StateKeeper(
                settings.state_dir,
                interval_s=settings.state_flush_interval_s,
                max_bytes=settings.state_max_bytes,
                registry=self.registry,
            )
            self.keeper.forget_exporters({sink.name for sink in chosen})
        keeper = self.keeper
        self.queues = [
            ExportQueue(
                sink,
                self.metrics,
                max_queue=otel.queue_size or settings.export_queue_size,
                max_batch=otel.batch_size or DEFAULT_BATCH,
                delay_s=otel.delay_s or DEFAULT_DELAY_S,
                spool=keeper.spool_for(sink.name) if keeper else None,
                retry_max_s=settings.export_retry_max_s,
            )
            for sink in chosen
        ]
        for queue in self.queues:
            self.metrics.register_exporter(queue.sink.name)
        policy = PayloadPolicy(settings.capture, settings.max_payload_bytes)
        limits = Limits(
            max_frame_bytes=settings.max_frame_bytes,
            max_open_tasks=settings.max_open_tasks,
            max_past_s=settings.timestamp_max_age_s,
            max_future_s=settings.timestamp_max_skew_s,
            sampler=otel.sampler,
        )
        self.engine = Engine(policy, limits)
        self.router = Router(self.queues, self.metrics, trace_of=self.engine.trace_id_of)
        self.router.listeners.append(self._on_output)
        if self.keeper is not None:
            self.router.listeners.append(self.keeper.observe)
        self.subscriptions: dict[tuple[str, str], Subscription] = {}
        self._counted: dict[tuple[str, str], str] = {}
        self._state_counts: dict[str, int] = dict.fromkeys(SUBSCRIPTION_STATES, 0)
        # Runs subscribed for pass-through clients only (never registered over /v1/runs):
        # dropped when the last of their clients leaves.
        self._passthrough_only: set[tuple[str, str]] = set()
        self.ready = False
        # Set by the server once both listeners are bound: /readyz waits for it too, so a
        # startup probe never lets the app register a run before the control port listens.
        self.listening = True
        self._watchdog: asyncio.Task[None] | None = None
        self._pinger: asyncio.Task[None] | None = None
        self._stoppers: set[asyncio.Future[None]] = set()

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        """Restore the saved state (if any) and start the watchdog (see :meth:`resubscribe`)."""
        if self.keeper is not None:
            self.router.emit(self.keeper.restore(self.engine, time.time_ns()))
            for queue in self.queues:
                queue.resume(self.keeper.saved_spans(queue.sink.name))
            self.keeper.start(self.engine)
        self._watchdog = asyncio.create_task(self._watch(), name="watchdog")
        if self.settings.app_ping_interval_s > 0:
            self._pinger = asyncio.create_task(self._app_pings(), name="app pings")
        self.ready = True
        log.info(
            "bridge started",
            extra={
                "upstream": self.settings.upstream_url,
                "exporters": ",".join(q.sink.name for q in self.queues) or "none",
            },
        )

    def resubscribe(self) -> None:
        """Follow again the runs followed when the state was saved (after :meth:`start`).

        The server calls it once it listens, so a large resume does not hold up /readyz.
        """
        keeper = self.keeper
        if keeper is None:
            return
        for item in keeper.followed():
            try:
                self.subscribe(item.flow_name, item.run_name, item.parent)
            except RunConflict as exc:
                if not isinstance(exc, TooManySubscriptions):  # else kept: a later start may fit
                    keeper.unfollow((item.flow_name, item.run_name))
                names = {"flow_name": item.flow_name, "run_name": item.run_name}
                log.warning("saved run not followed again", extra={**names, "error": str(exc)})

    async def stop(self) -> None:
        """Stop subscriptions, flush every exporter within ``shutdown_timeout_s`` in all.

        With a state dir, open runs stay open in it (they continue after the next start) and
        undelivered spans stay there too; without one, open runs end as ``error`` and what is
        not delivered by the deadline is dropped (counted, logged).
        """
        deadline = time.monotonic() + self.settings.shutdown_timeout_s
        left = 0
        self.ready = False
        if self._pinger is not None:
            self._pinger.cancel()
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        try:
            stopping = asyncio.gather(
                *(s.stop() for s in list(self.subscriptions.values())),
                *list(self._stoppers),  # subscriptions ending in the background
                return_exceptions=True,
            )
            budget = max(0.1, (deadline - time.monotonic()) / 4)
            results = await asyncio.wait_for(stopping, budget)
            for failure in (r for r in results if isinstance(r, BaseException)):
                log.error("subscription did not stop cleanly", exc_info=failure)
        except TimeoutError:
            log.error("subscriptions did not stop in time; going on with the shutdown")
        finally:
            keep = self.keeper is not None and self.settings.shutdown_open_runs == "keep"
            if not keep:
                self.router.emit(self.engine.close_all(Result.ERROR, "the bridge shut down"))
            left = await asyncio.to_thread(
                self.router.close, max(0.0, deadline - time.monotonic() - 0.5)
            )
            if self.keeper is not None:
                await self.keeper.close(self.engine, deadline - time.monotonic())
        log.info(
            "bridge stopped",
            extra={
                "undelivered": left,
                "open_runs_kept": len(self.engine.open_runs()),
            },
        )

    async def _app_pings(self) -> None:
        """Every ``app_ping_interval_s``, LAO's JSON ping on every connected run socket."""
        while True:
            await asyncio.sleep(self.settings.app_ping_interval_s)
            subs = [s for s in self.subscriptions.values() if s.active]
            await asyncio.gather(*(s.app_ping() for s in subs), return_exceptions=True)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCHDOG_PERIOD_S)
            try:
                expired = self.engine.expire(
                    time.time_ns(),
                    inactivity_ns=int(self.settings.inactivity_timeout_s * 1e9),
                    max_duration_ns=int(self.settings.max_run_duration_s * 1e9),
                )
                self.router.emit(expired)
                self._stop_silent_subscriptions(time.time())
            except Exception:  # the watchdog must outlive any one bad run
                log.exception("watchdog tick failed")

    # -- subscriptions --------------------------------------------------------------------
    def subscribe(
        self,
        flow_name: str,
        run_name: str,
        parent: TraceParent | None = None,
        *,
        relay: bool = False,
    ) -> tuple[Subscription, bool]:
        """Follow a run; return (subscription, created).

        Raise :class:`RunConflict` if the run already ended (unless ``relay``: then the
        pass-through socket still relays LAO's frames, recording nothing), or when
        ``max_subscriptions`` are active, or the bridge is shutting down.
        """
        if not self.ready:
            raise RunConflict("bridge is shutting down")
        key = (flow_name, run_name)
        existing = self.subscriptions.get(key)
        if existing is not None and existing.active:
            if parent is not None:
                self.engine.set_parent(flow_name, run_name, parent)
            if not relay:  # registered now: followed whoever watches it
                self._passthrough_only.discard(key)
                self._follow(key, parent)
            return existing, False
        ended = self.engine.is_closed(flow_name, run_name)
        if ended and not relay:
            raise RunConflict(f"run {flow_name}/{run_name} has already ended")
        active = sum(s.active for s in self.subscriptions.values())
        if active >= self.settings.max_subscriptions:
            limit = self.settings.max_subscriptions
            raise TooManySubscriptions(
                f"{active} runs followed already (max_subscriptions={limit})"
            )
        if not ended:
            self.engine.set_parent(flow_name, run_name, parent)
        sub = Subscription(
            flow_name,
            run_name,
            self.settings,
            self.engine,
            self.router,
            self._state_changed,
            relay_only=ended,
        )
        self.subscriptions[key] = sub
        if relay:
            self._passthrough_only.add(key)
        else:
            self._passthrough_only.discard(key)
            if not ended:
                self._follow(key, parent)
        sub.start()
        self._prune()
        self._state_changed(sub)
        log.info("run subscribed", extra={"flow_name": flow_name, "run_name": run_name})
        return sub, True

    async def unsubscribe(self, flow_name: str, run_name: str) -> bool:
        """Stop following a run; its open spans end as cancelled. False if unknown."""
        key = (flow_name, run_name)
        sub = self.subscriptions.pop(key, None)
        self._passthrough_only.discard(key)
        if self.keeper is not None:
            self.keeper.unfollow(key)
        if sub is None:
            return False
        await self._end(sub)
        return True

    def _follow(self, key: tuple[str, str], parent: TraceParent | None) -> None:
        if self.keeper is not None:
            self.keeper.follow(key, parent)

    async def _end(self, sub: Subscription) -> None:
        await sub.stop()
        self.router.emit(self.engine.close_run(*sub.key, Result.CANCELLATION))
        self._state_changed(sub)

    def passthrough_client_left(self, sub: Subscription) -> None:
        """A pass-through client left: a run only such clients asked for goes with the last.

        Its subscription is stopped and its open spans end as cancelled, as on DELETE.
        """
        key = sub.key
        if (
            sub.clients
            or key not in self._passthrough_only
            or self.subscriptions.get(key) is not sub
        ):
            return
        self._passthrough_only.discard(key)
        del self.subscriptions[key]  # now, so a client arriving next gets a new subscription
        log.info(
            "last pass-through client left, unsubscribing",
            extra={"flow_name": key[0], "run_name": key[1]},
        )
        self._in_background(self._end(sub))

    def _in_background(self, work: Coroutine[object, object, None]) -> None:
        task = asyncio.ensure_future(work)
        self._stoppers.add(task)
        task.add_done_callback(self._stoppers.discard)

    def _on_output(self, output: Output) -> None:
        if isinstance(output, RunClosed):
            sub = self.subscriptions.get((output.flow_name, output.run_name))
            if sub is not None:
                sub.run_ended(output.result)

    def _stop_silent_subscriptions(self, now: float) -> None:
        """Stop subscriptions that never saw an event of their run within the inactivity limit."""
        limit = self.settings.inactivity_timeout_s
        for key, sub in list(self.subscriptions.items()):
            if (
                sub.active
                and not sub.clients
                and not self.engine.is_open(*key)
                and not self.engine.is_closed(*key)
                and now - sub.created_at >= limit
            ):
                sub.error = f"no event of the run within {limit:g}s"
                if self.keeper is not None:
                    self.keeper.unfollow(key)
                log.warning(
                    "run never started, unsubscribing",
                    extra={"flow_name": key[0], "run_name": key[1]},
                )
                self._in_background(sub.stop())

    def _state_changed(self, sub: Subscription) -> None:
        self._recount(sub.key)
        self.metrics.set_subscriptions(self._state_counts)

    def _recount(self, key: tuple[str, str]) -> None:
        """Count the run's subscription (if still known) in its state, once; no full recount."""
        old = self._counted.pop(key, None)
        if old is not None:
            self._state_counts[old] -= 1
        current = self.subscriptions.get(key)
        if current is not None:
            self._counted[key] = current.state
            self._state_counts[current.state] = self._state_counts.get(current.state, 0) + 1

    def _prune(self) -> None:
        finished = [k for k, s in self.subscriptions.items() if not s.active]
        for key in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self.subscriptions[key]
            self._recount(key)
