"""Exporting never blocks receiving: a bounded queue and a worker thread in front of each sink.

``submit`` never waits. When the queue is full the span is dropped, counted
(``otel_bridge_spans_dropped_total{reason="queue_full"}``) and logged. Export failures are
counted and logged, never raised into the pipeline.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Protocol

from otel_bridge.core.records import SpanRecord
from otel_bridge.sinks.span_sinks import SpanSink

log = logging.getLogger(__name__)
DROP_LOG_INTERVAL_S = 10.0


class ExportStats(Protocol):
    """Where an export queue reports what happened to spans (the metrics)."""

    def exported(self, exporter: str, count: int) -> None:
        """Spans delivered."""

    def failed(self, exporter: str, count: int) -> None:
        """Spans a sink failed to deliver."""

    def dropped(self, exporter: str, reason: str, count: int) -> None:
        """Spans dropped before export."""

    def queue_depth(self, exporter: str, depth: int) -> None:
        """Spans waiting."""


class NullStats:
    """Stats that go nowhere (tools that need no metrics)."""

    def exported(self, exporter: str, count: int) -> None:
        """Ignore."""

    def failed(self, exporter: str, count: int) -> None:
        """Ignore."""

    def dropped(self, exporter: str, reason: str, count: int) -> None:
        """Ignore."""

    def queue_depth(self, exporter: str, depth: int) -> None:
        """Ignore."""


class ExportQueue:
    """A bounded queue drained by one worker thread into one sink, in batches."""

    def __init__(
        self,
        sink: SpanSink,
        stats: ExportStats | None = None,
        *,
        max_queue: int = 20_000,
        max_batch: int = 512,
        delay_s: float = 0.2,
    ) -> None:
        self.sink = sink
        self.stats: ExportStats = stats or NullStats()
        self.max_queue = max_queue
        self.max_batch = max_batch
        self.delay_s = delay_s
        self._items: deque[SpanRecord] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._last_drop_log = float("-inf")
        self._drops_unlogged = 0
        self._busy = False
        self._flushing = 0
        self._thread = threading.Thread(target=self._run, name=f"export-{sink.name}", daemon=True)
        self._thread.start()

    def submit(self, record: SpanRecord) -> bool:
        """Queue one span without waiting; False (counted, logged) when it was dropped."""
        with self._cond:
            if self._closing:
                reason = "shutdown"
            elif len(self._items) >= self.max_queue:
                reason = "queue_full"
            else:
                self._items.append(record)
                depth = len(self._items)
                if depth == 1 or depth >= self.max_batch:
                    self._cond.notify_all()
                reason = ""
        if reason:
            self.stats.dropped(self.sink.name, reason, 1)
            self._log_drop(reason, record)
            return False
        self.stats.queue_depth(self.sink.name, depth)
        return True

    def _batch_ready(self) -> bool:
        return self._closing or self._flushing > 0 or len(self._items) >= self.max_batch

    def _log_drop(self, reason: str, record: SpanRecord) -> None:
        """Log drops at most once per DROP_LOG_INTERVAL_S, with the count since the last line."""
        self._drops_unlogged += 1
        now = time.monotonic()
        if now - self._last_drop_log < DROP_LOG_INTERVAL_S:
            return
        log.warning(
            "spans dropped",
            extra={
                "exporter": self.sink.name,
                "reason": reason,
                "count": self._drops_unlogged,
                "last_span": record.name,
            },
        )
        self._last_drop_log, self._drops_unlogged = now, 0

    def _take(self) -> list[SpanRecord]:
        """Wait for a first span, then up to ``delay_s`` for a full batch (or flush, close)."""
        with self._cond:
            self._cond.wait_for(lambda: self._items or self._closing, timeout=self.delay_s)
            if self._items:
                self._cond.wait_for(self._batch_ready, timeout=self.delay_s)
            batch = [self._items.popleft() for _ in range(min(self.max_batch, len(self._items)))]
            self._busy = bool(batch)
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch:
                self._deliver(batch)
            with self._cond:
                self._busy = False
                self._cond.notify_all()
                if self._closing and not self._items:
                    return

    def _deliver(self, batch: Sequence[SpanRecord]) -> None:
        self.stats.queue_depth(self.sink.name, len(self._items))
        try:
            self.sink.export(batch)
        except Exception as exc:  # a sink's failure must never reach the pipeline
            self.stats.failed(self.sink.name, len(batch))
            log.error(
                "span export failed",
                extra={"exporter": self.sink.name, "spans": len(batch), "error": str(exc)},
            )
        else:
            self.stats.exported(self.sink.name, len(batch))

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until every queued span has been handed to the sink; False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            self._flushing += 1
            try:
                self._cond.notify_all()
                while self._items or self._busy:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._cond.wait(min(remaining, 0.05))
            finally:
                self._flushing -= 1
        return True

    def close(self, timeout_s: float = 30.0) -> None:
        """Deliver what is queued, stop the worker and shut the sink down."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            with self._cond:
                left = len(self._items)
                self._items.clear()
            self.stats.dropped(self.sink.name, "shutdown_timeout", left)
            log.error("export queue did not drain", extra={"exporter": self.sink.name})
        try:
            self.sink.shutdown()
        except Exception as exc:  # a sink's failure must never reach the pipeline
            log.error(
                "span sink shutdown failed",
                extra={"exporter": self.sink.name, "error": str(exc)},
            )
