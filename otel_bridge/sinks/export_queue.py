"""Exporting never blocks receiving, and an outage loses nothing the budgets can hold.

One bounded queue and one worker thread in front of each sink. ``submit`` never waits. A
failed export is retried with backoff and jitter (up to ``retry_max_s`` between attempts)
for as long as the receiver stays away; meanwhile spans pile up in memory up to
``max_queue`` task spans plus ``max_queue`` root spans (roots are held apart, so a flood of
task spans never pushes a run's root out). With a :class:`~otel_bridge.store.spool.SpanSpool`
(``state_dir``), every span is also kept on disk until delivered: what does not fit in
memory waits on disk only and is read back in order, and what is not delivered at shutdown
is sent after the next start. Past the bounds (memory without a state dir, the disk budget
with one) spans are dropped, counted (``otel_bridge_spans_dropped_total{reason}``) and
logged with totals, never one line per span. A receiver that refuses spans for good
(:class:`~otel_bridge.errors.ExportRejected`) gets them dropped the same way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator

from otel_bridge.core.errors import StateError
from otel_bridge.core.records import SpanRecord
from otel_bridge.errors import ExportError, ExportRejected
from otel_bridge.sinks.export_stats import ExportLog, ExportStats, NullStats
from otel_bridge.sinks.span_sinks import SpanSink
from otel_bridge.sources.backoff import backoff
from otel_bridge.store.spool import Kept, SpanSpool

log = logging.getLogger(__name__)


class ExportQueue:
    """Bounded queues (roots apart) drained by one worker thread into one sink, in batches."""

    def __init__(
        self,
        sink: SpanSink,
        stats: ExportStats | None = None,
        *,
        max_queue: int = 20_000,
        max_batch: int = 512,
        delay_s: float = 0.2,
        spool: SpanSpool | None = None,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 30.0,
    ) -> None:
        self.sink = sink
        self.stats: ExportStats = stats or NullStats()
        self.max_queue = max_queue
        self.max_batch = max_batch
        self.delay_s = delay_s
        self.spool = spool
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.retries = 0
        self._log = ExportLog(sink.name, self.stats)
        self.dropped = self._log.dropped  # spans dropped, by reason (what the metric counts)
        self._roots: deque[Kept] = deque()
        self._children: deque[Kept] = deque()
        self._on_disk = 0  # spans kept on disk only, from seq _disk_from on
        self._disk_from = 0
        self._inflight = 0
        self._order = 0  # numbers spans in memory when there is no spool (to keep FIFO order)
        self._lock = threading.Lock()  # entered directly on the hot path (submit)
        self._cond = threading.Condition(self._lock)
        self._closing = False
        self._deadline = float("inf")
        self._abandoned = False
        self._busy = False
        self._flushing = 0
        self._thread = threading.Thread(target=self._run, name=f"export-{sink.name}", daemon=True)
        self._thread.start()

    def resume(self, on_disk: int) -> None:
        """Send the ``on_disk`` spans an earlier process kept in the spool (before any submit)."""
        if self.spool is None or on_disk <= 0:
            return
        with self._cond:
            self._on_disk += on_disk
            self._disk_from = 0
            self._cond.notify_all()

    # -- in -------------------------------------------------------------------------------
    def submit(self, record: SpanRecord) -> bool:
        """Queue one span without waiting; False (counted, logged) when it was dropped."""
        root = record.kind == "run"
        if self.spool is not None:
            data = self.spool.encode(record)
            with self._cond:  # numbered and placed together: a refill sees it once
                kept = self.spool.keep(record, data)
                if kept is None:
                    depth = -1
                elif self._on_disk == 0 and self._has_room(root):
                    self._append(kept, root)
                else:  # memory is full: it waits on disk, read back in order
                    if self._on_disk == 0:
                        self._disk_from = kept[1]
                    self._on_disk += 1
                if kept is not None:
                    depth = self._depth()
            if depth < 0:
                return self._drop("state_full", 1)
        else:  # the hot path: the lock itself, no helper calls
            with self._lock:
                queue = self._roots if root else self._children
                if self._closing or len(queue) >= self.max_queue:
                    reason = "shutdown" if self._closing else "queue_full"
                else:
                    self._order += 1
                    queue.append((record, self._order, 0))
                    queued = len(self._roots) + len(self._children)
                    if queued == 1 or queued >= self.max_batch:
                        self._cond.notify_all()
                    depth = queued + self._on_disk + self._inflight
                    reason = ""
            if reason:
                return self._drop(reason, 1)
        self.stats.queue_depth(self.sink.name, depth)
        return True

    def _has_room(self, root: bool) -> bool:
        return len(self._roots if root else self._children) < self.max_queue

    def _append(self, kept: Kept, root: bool) -> None:
        (self._roots if root else self._children).append(kept)
        queued = len(self._roots) + len(self._children)
        if queued == 1 or queued >= self.max_batch:
            self._cond.notify_all()

    def _depth(self) -> int:
        return len(self._roots) + len(self._children) + self._on_disk + self._inflight

    # -- out ------------------------------------------------------------------------------
    def _batch_ready(self) -> bool:
        queued = len(self._roots) + len(self._children)
        return self._closing or self._flushing > 0 or queued >= self.max_batch

    def _refill(self) -> None:
        """Read spans waiting on disk back into memory (worker thread, lock not held)."""
        assert self.spool is not None
        with self._cond:
            room = self.max_queue - len(self._children)
            if not self._on_disk or room < self.max_queue // 2:
                return
            start = self._disk_from
        try:
            kept, next_seq, consumed = self.spool.read(start, min(room, 4 * self.max_batch))
        except StateError as exc:  # kept on disk (and counted); tried again shortly
            self._log_failure(exc, self._on_disk, 1)
            with self._cond:
                self._cond.wait(min(1.0, self.retry_max_s))
            return
        with self._cond:
            for item in kept:
                self._append(item, item[0].kind == "run")
            self._disk_from = next_seq
            # No row from there on although some were counted: gone (deleted by hand?).
            self._on_disk = 0 if not consumed else max(0, self._on_disk - consumed)

    def _take(self) -> list[Kept] | None:
        """The next batch; ``None`` when the worker should stop."""
        if self.spool is not None:
            self._refill()
        with self._cond:
            self._cond.wait_for(
                lambda: self._roots or self._children or self._on_disk or self._closing,
                timeout=self.delay_s,
            )
            if self._roots or self._children:
                self._cond.wait_for(self._batch_ready, timeout=self.delay_s)
            if self._abandoned or (self._closing and time.monotonic() >= self._deadline):
                return None
            batch = self._pop_batch()
            if not batch and self._closing and not self._on_disk:
                return None
            self._inflight = len(batch)
            self._busy = bool(batch)
            return batch

    def _take_safely(self) -> list[Kept] | None:
        """:meth:`_take`, surviving a bug: the worker must outlive any one bad read."""
        try:
            return self._take()
        except Exception:
            log.exception("export queue could not take a batch; going on")
            with self._cond:
                self._cond.wait(0.5)
            return []

    def _pop_batch(self) -> list[Kept]:
        """Up to ``max_batch`` spans in the order they were finished (lock held)."""
        roots, children = self._roots, self._children
        batch: list[Kept] = []
        while len(batch) < self.max_batch and (roots or children):
            if not roots or (children and children[0][1] < roots[0][1]):
                batch.append(children.popleft())
            else:
                batch.append(roots.popleft())
        return batch

    def _run(self) -> None:
        try:
            while (batch := self._take_safely()) is not None:
                if batch:
                    self.stats.queue_depth(self.sink.name, self._depth() - len(batch))
                    self._deliver(batch)
                with self._cond:
                    self._busy = False
                    self._inflight = 0
                    self._cond.notify_all()
                self._log.drops()
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def _deliver(self, batch: list[Kept]) -> None:
        """Export a batch, retrying until it is delivered, refused for good, or time is up."""
        pending = batch
        delays: Iterator[float] | None = None
        attempts = 0
        while pending:
            try:
                self.sink.export([item[0] for item in pending])
            except ExportRejected as exc:
                self._delivered(pending[: exc.delivered])
                refused = pending[exc.delivered :]
                self._forget(refused)
                self._drop("rejected", len(refused), str(exc))
                return
            except Exception as exc:  # ExportError, or a sink's bug: both retried
                done = exc.delivered if isinstance(exc, ExportError) else 0
                self._delivered(pending[:done])
                pending = pending[done:]
                attempts += 1
                self.retries += 1
                self.stats.failed(self.sink.name, len(pending))
                self._log_failure(exc, len(pending), attempts)
                delays = delays or backoff(self.retry_initial_s, self.retry_max_s)
                if not self._wait_retry(next(delays)):
                    self._put_back(pending)
                    return
            else:
                self._delivered(pending)
                if attempts:
                    log.info(
                        "span export recovered",
                        extra={"exporter": self.sink.name, "attempts": attempts + 1},
                    )
                return

    def _wait_retry(self, seconds: float) -> bool:
        """Wait before a retry; False when the shutdown deadline has passed."""
        with self._cond:
            until = min(time.monotonic() + seconds, self._deadline)
            while not self._abandoned and (remaining := until - time.monotonic()) > 0:
                self._cond.wait(remaining)
            return not self._abandoned and time.monotonic() < self._deadline

    def _put_back(self, pending: list[Kept]) -> None:
        with self._cond:
            for item in reversed(pending):
                (self._roots if item[0].kind == "run" else self._children).appendleft(item)

    def _delivered(self, items: list[Kept]) -> None:
        if items:
            self._forget(items)
            self.stats.exported(self.sink.name, len(items))

    def _forget(self, items: list[Kept]) -> None:
        if self.spool is not None:
            self.spool.delivered([(seq, size) for _, seq, size in items])

    # -- telling people -------------------------------------------------------------------
    def _drop(self, reason: str, count: int, detail: str = "") -> bool:
        """Count and log dropped spans (see :class:`ExportLog`); False, for ``submit``."""
        self._log.drop(reason, count, detail)
        return False

    def _log_failure(self, exc: Exception, spans: int, attempts: int) -> None:
        self._log.failure(exc, spans, attempts, self._depth())

    # -- waiting and stopping -------------------------------------------------------------
    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until every queued span has been delivered (or dropped); False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            self._flushing += 1
            try:
                self._cond.notify_all()
                while self._roots or self._children or self._on_disk or self._busy:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not self._thread.is_alive():
                        return False
                    self._cond.wait(min(remaining, 0.05))
            finally:
                self._flushing -= 1
        return True

    def begin_close(self, deadline: float) -> None:
        """Stop taking spans; deliver what is queued until ``deadline`` (time.monotonic)."""
        with self._cond:
            self._closing = True
            self._deadline = deadline
            self._cond.notify_all()

    def finish_close(self) -> int:
        """Wait for the worker (until the deadline), shut the sink; spans left undelivered.

        Left spans stay in the state directory when there is one; else they are dropped
        (``shutdown_timeout``), counted and logged.
        """
        self.wait_worker()
        self.abandon()
        return self.collect()

    def wait_worker(self) -> None:
        """Wait for the worker to drain, until the deadline."""
        if self._thread.is_alive():
            self._thread.join(max(0.0, self._deadline - time.monotonic()))

    def abandon(self) -> None:
        """Stop retrying and shut the sink down (cutting an export a silent receiver holds)."""
        with self._cond:
            self._abandoned = True
            self._cond.notify_all()
        self._shutdown_sink()

    def collect(self, grace_s: float = 1.0) -> int:
        """After :meth:`abandon`: give the worker ``grace_s`` to stop; the spans left."""
        if self._thread.is_alive():
            self._thread.join(grace_s)
        with self._cond:
            left = self._depth() if self._thread.is_alive() else self._depth() - self._inflight
            self._roots.clear()
            self._children.clear()
        if left and self.spool is None:
            self._drop("shutdown_timeout", left)
        self._log.drops(final=True)  # the last totals, even inside the rate limit
        if left and self.spool is None:
            log.error(
                "export queue did not drain before the deadline; spans lost",
                extra={"exporter": self.sink.name, "count": left},
            )
        elif left:
            log.warning(
                "export queue did not drain before the deadline; spans kept in state_dir "
                "for the next start",
                extra={"exporter": self.sink.name, "count": left},
            )
        return left

    def close(self, timeout_s: float = 30.0) -> int:
        """Deliver what is queued (for up to ``timeout_s``), stop the worker, shut the sink."""
        self.begin_close(time.monotonic() + timeout_s)
        return self.finish_close()

    def _shutdown_sink(self) -> None:
        try:
            self.sink.shutdown()
        except Exception as exc:  # a sink's failure must never reach the pipeline
            log.error(
                "span sink shutdown failed",
                extra={"exporter": self.sink.name, "error": str(exc)},
            )
