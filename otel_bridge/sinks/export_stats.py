"""Where an export queue reports what happened to spans: the metrics (or nowhere), the log."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Protocol

log = logging.getLogger("otel_bridge.sinks.export_queue")  # where operators look for it
LOG_INTERVAL_S = 10.0


class ExportStats(Protocol):
    """Where an export queue reports what happened to spans (the metrics)."""

    def exported(self, exporter: str, count: int) -> None:
        """Spans delivered."""

    def failed(self, exporter: str, count: int) -> None:
        """Spans in an export attempt that failed (they are retried)."""

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


class ExportLog:
    """Drops counted and logged with totals, per reason at most every LOG_INTERVAL_S.

    Never one line per span; failed export attempts are logged the same way.
    """

    def __init__(self, exporter: str, stats: ExportStats) -> None:
        self.exporter = exporter
        self.stats = stats
        self.dropped: Counter[str] = Counter()
        self._unlogged: Counter[str] = Counter()
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def drop(self, reason: str, count: int, detail: str = "") -> None:
        """Count ``count`` dropped spans; log if this reason's interval has passed."""
        if count <= 0:
            return
        self.stats.dropped(self.exporter, reason, count)
        with self._lock:
            self.dropped[reason] += count
            self._unlogged[reason] += count
        self.drops(detail)

    def drops(self, detail: str = "", final: bool = False) -> None:
        """One line per reason with drops not yet logged (``final``: whatever the interval)."""
        if not self._unlogged:
            return
        lines = []
        with self._lock:
            now = time.monotonic()
            for reason in list(self._unlogged):
                if final or now - self._last.get(reason, float("-inf")) >= LOG_INTERVAL_S:
                    self._last[reason] = now
                    lines.append((reason, self._unlogged.pop(reason), self.dropped[reason]))
        for reason, since, total in lines:
            extra = {"exporter": self.exporter, "reason": reason, "count": since, "total": total}
            log.warning("spans dropped", extra={**extra, **({"error": detail} if detail else {})})

    def failure(self, exc: Exception, spans: int, attempts: int, waiting: int) -> None:
        """A failed export attempt: the first of a streak, then at most every interval."""
        now = time.monotonic()
        if attempts > 1 and now - self._last.get("failed", float("-inf")) < LOG_INTERVAL_S:
            return
        self._last["failed"] = now
        log.error(
            "span export failed; retrying",
            extra={
                "exporter": self.exporter,
                "spans": spans,
                "attempts": attempts,
                "waiting": waiting,
                "error": str(exc),
            },
        )
