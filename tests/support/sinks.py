"""Sinks and stats for export tests: real implementations of the protocols, that record."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence

from otel_bridge.core.records import SpanRecord


class RecordingStats:
    """ExportStats that keeps every count it is told (a real implementation, for tests)."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.depths: list[int] = []
        self._lock = threading.Lock()

    def exported(self, exporter: str, count: int) -> None:
        """Count delivered spans."""
        with self._lock:
            self.counts["exported", ""] += count

    def failed(self, exporter: str, count: int) -> None:
        """Count spans a sink failed to deliver."""
        with self._lock:
            self.counts["failed", ""] += count

    def dropped(self, exporter: str, reason: str, count: int) -> None:
        """Count dropped spans by reason."""
        with self._lock:
            self.counts["dropped", reason] += count

    def queue_depth(self, exporter: str, depth: int) -> None:
        """Keep queue depths."""
        with self._lock:
            self.depths.append(depth)


class BlockingSink:
    """A sink whose export waits until released (a stalled collector)."""

    name = "blocking"

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.records: list[SpanRecord] = []

    def export(self, records: Sequence[SpanRecord]) -> None:
        """Wait for release, then keep the records."""
        self.entered.set()
        self.release.wait(10)
        self.records.extend(records)

    def shutdown(self) -> None:
        """Let any waiting export finish."""
        self.release.set()


class FailingSink:
    """A sink that always fails, with ExportError or with an unexpected exception."""

    name = "failing"

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    def export(self, records: Sequence[SpanRecord]) -> None:
        """Fail."""
        self.calls += 1
        raise self.error

    def shutdown(self) -> None:
        """Nothing to release."""
