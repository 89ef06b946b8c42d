"""What the bridge keeps in ``state_dir`` and gets back after a restart.

The keeper watches the router's outputs: a run that changed is marked, and every
``state_flush_interval_s`` the marked runs' snapshots (``Engine.snapshot_run``: exported forms
and digests only) are handed to the writer, which commits them with the spans the export
queues keep (:class:`~otel_bridge.store.spool.SpanSpool`) and the runs followed. On start,
:meth:`StateKeeper.restore` reopens the saved runs in the engine; the bridge resubscribes the
saved subscriptions and the export queues resend the saved spans.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from dataclasses import dataclass

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from otel_bridge.core.engine import Engine
from otel_bridge.core.errors import StateError, TraceParentError
from otel_bridge.core.ids import TraceParent, parse_traceparent, parse_tracestate
from otel_bridge.core.outputs import EventDropped, EventReceived, Output, RunClosed, RunOpened
from otel_bridge.core.redaction import clean_name
from otel_bridge.store.database import RunKey, Saved, StateDatabase
from otel_bridge.store.spool import SpanSpool
from otel_bridge.store.writer import StateWriter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Followed:
    """A run that was followed when the state was saved."""

    flow_name: str
    run_name: str
    parent: TraceParent | None


MAX_UNSTORED = 10_000


def spool_key(exporter: str) -> str:
    """The name an exporter's spans are kept under: OTLP over gRPC or HTTP is one backlog."""
    return "otlp" if exporter.startswith("otlp") else exporter


def storable(key: RunKey) -> bool:
    """Whether a run's names may be written to the state dir as they are (egress policy).

    Names holding a secret shape (or too long) would be written redacted or cut, and could
    not be followed again with them; such runs are kept in memory only.
    """
    return all(clean_name(name) == name for name in key)


def _parent_text(parent: TraceParent | None) -> str:
    if parent is None:
        return ""
    return orjson.dumps({"traceparent": str(parent), "tracestate": parent.state}).decode()


def _parent_of(text: str) -> TraceParent | None:
    if not text:
        return None
    data = orjson.loads(text)
    parent = parse_traceparent(data["traceparent"])
    state = parse_tracestate(data.get("tracestate", ""))
    return TraceParent(parent.trace_id, parent.span_id, parent.sampled, state)


class StateKeeper:
    """The state directory of one bridge: runs, subscriptions and undelivered spans."""

    def __init__(
        self,
        directory: str,
        *,
        interval_s: float = 0.2,
        max_bytes: int = 256 * 1024 * 1024,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.directory = directory
        self.interval_s = interval_s
        self.database = StateDatabase(directory)
        try:
            self.saved: Saved = self.database.load()
        except sqlite3.Error as exc:
            self.database.close()
            raise StateError(
                f"state_dir {directory}: the database cannot be read ({exc}); "
                "move the directory away to start afresh"
            ) from exc
        self._dirty: set[RunKey] = set()
        self._unstored: set[RunKey] = set()
        self._commit_seconds: Histogram | None = None
        run_sizes = {key: len(doc) for key, doc in self.saved.runs.items()}
        self.writer = StateWriter(
            self.database,
            interval_s=interval_s,
            max_bytes=max_bytes,
            stored_bytes=self.saved.span_bytes + sum(run_sizes.values()),
            run_sizes=run_sizes,
            on_commit=self._committed,
        )
        if registry is not None:
            self._metrics(registry)
        self._task: asyncio.Task[None] | None = None

    def _metrics(self, registry: CollectorRegistry) -> None:
        Gauge(
            "otel_bridge_state_bytes",
            "Bytes of run snapshots and undelivered spans in state_dir (against state_max_bytes).",
            registry=registry,
        ).set_function(lambda: self.writer.stored_bytes)
        Gauge(
            "otel_bridge_state_max_bytes",
            "The disk budget of state_dir (state_max_bytes).",
            registry=registry,
        ).set(self.writer.max_bytes)
        Gauge(
            "otel_bridge_state_file_bytes",
            "Size of the state database on disk (file and write-ahead log).",
            registry=registry,
        ).set_function(self.database.size_on_disk)
        Gauge(
            "otel_bridge_state_unsaved_changes",
            "Changed runs and spans not yet committed to state_dir.",
            registry=registry,
        ).set_function(lambda: len(self._dirty) + self.writer.unsaved)
        self._commits = Counter(
            "otel_bridge_state_commits", "Transactions committed to state_dir.", registry=registry
        )
        self._commit_seconds = Histogram(
            "otel_bridge_state_commit_seconds",
            "Time one state_dir transaction took.",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=registry,
        )

    def _committed(self, changes: int, seconds: float) -> None:
        if self._commit_seconds is not None:
            self._commits.inc()
            self._commit_seconds.observe(seconds)

    # -- start ----------------------------------------------------------------------------
    def spool_for(self, exporter: str) -> SpanSpool:
        """The spool of one exporter (its spans numbered after the saved ones)."""
        key = spool_key(exporter)
        return SpanSpool(self.writer, self.database, key, self.saved.last_seq.get(key, 0))

    def saved_spans(self, exporter: str) -> int:
        """How many spans of ``exporter`` the state directory holds from before."""
        return self.saved.span_counts.get(spool_key(exporter), 0)

    def forget_exporters(self, current: set[str]) -> None:
        """Warn about saved spans of exporters this process does not have.

        They are kept (and count against the budget) for a later start that has the exporter
        again: a start with OTLP off or another endpoint must not delete an outage's backlog.
        """
        keys = {spool_key(name) for name in current}
        for exporter, count in self.saved.span_counts.items():
            if exporter not in keys:
                log.warning(
                    "saved spans of an exporter not configured now are kept for a later start",
                    extra={"exporter": exporter, "count": count, "state_dir": self.directory},
                )

    def restore(self, engine: Engine, now_ns: int) -> list[Output]:
        """Reopen the saved runs in the engine; their ``RunOpened(resumed=True)`` outputs."""
        ended = {(f, r) for f, r, _ in self.saved.closed}
        both = [key for key in self.saved.runs if key in ended]
        if both:  # saved open and ended: ended wins (its root was exported already)
            log.warning(
                "saved runs also recorded as ended are not reopened", extra={"count": len(both)}
            )
        try:
            runs = [orjson.loads(doc) for key, doc in self.saved.runs.items() if key not in ended]
        except orjson.JSONDecodeError as exc:
            raise StateError(f"state_dir {self.directory}: a saved run is damaged ({exc})") from exc
        closed = [list(item) for item in self.saved.closed]
        try:
            outputs = engine.restore(engine.snapshot_of(runs, closed), now_ns=now_ns)
        except StateError as exc:
            raise StateError(f"state_dir {self.directory}: {exc}") from exc
        if outputs:
            log.info(
                "runs restored from state_dir",
                extra={"count": len(outputs), "state_dir": self.directory},
            )
        return outputs

    def followed(self) -> list[Followed]:
        """The runs followed when the state was saved (a damaged parent is left out)."""
        out = []
        for flow, run, parent in self.saved.subscriptions:
            try:
                out.append(Followed(flow, run, _parent_of(parent)))
            except (TraceParentError, ValueError, KeyError, TypeError):
                log.warning("saved traceparent unusable; run followed without it")
                out.append(Followed(flow, run, None))
        return out

    # -- while running --------------------------------------------------------------------
    def follow(self, key: RunKey, parent: TraceParent | None) -> None:
        """A run is followed (registered): resubscribe it after a restart."""
        if self._storable(key):
            self.writer.put_subscription(key, _parent_text(parent))

    def _storable(self, key: RunKey) -> bool:
        if storable(key):
            return True
        if key not in self._unstored and len(self._unstored) < MAX_UNSTORED:
            self._unstored.add(key)
            log.warning(
                "run kept in memory only: its name holds a secret shape or is too long "
                "for the state dir",
                extra={"flow_name": clean_name(key[0]), "run_name": clean_name(key[1])},
            )
        return False

    def unfollow(self, key: RunKey) -> None:
        """A run is no longer followed."""
        self.writer.put_subscription(key, None)

    def observe(self, output: Output) -> None:
        """Router listener: mark changed runs; an ended run is dropped and remembered."""
        if isinstance(output, EventReceived | RunOpened | EventDropped):
            key = (output.flow_name, output.run_name)
            if key not in self._dirty and self._storable(key):
                self._dirty.add(key)
        elif isinstance(output, RunClosed):
            key = (output.flow_name, output.run_name)
            if not self._storable(key):
                return
            self._dirty.discard(key)
            self.writer.close_run(key, output.trace_id)
            self.writer.put_subscription(key, None)

    def save(self, engine: Engine, everything: bool = False) -> None:
        """Hand the marked runs' snapshots (or every open run's) to the writer; commit soon."""
        keys = {k for k in engine.open_runs() if storable(k)} if everything else self._dirty
        for key in keys:
            doc = engine.snapshot_run(*key)
            if doc is not None:
                self.writer.put_run(key, orjson.dumps(doc))
        self._dirty = set()
        self.writer.poke()

    def start(self, engine: Engine) -> None:
        """Save marked runs every ``interval_s`` on the running loop."""
        self._task = asyncio.create_task(self._saving(engine), name="state saver")

    async def _saving(self, engine: Engine) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            if self._dirty:
                try:
                    self.save(engine)
                except Exception:  # the saver must outlive any one bad run
                    log.exception("saving the state failed")

    async def close(self, engine: Engine, timeout_s: float) -> bool:
        """Save every open run, commit, close the database; False if that timed out."""
        if self._task is not None:
            self._task.cancel()
        try:
            self.save(engine, everything=True)
        except Exception:  # what was saved before still is: commit it and the acks
            log.exception("saving the open runs at shutdown failed")
        return await asyncio.to_thread(self.writer.close, max(timeout_s, 0.5))
