"""Where an export queue reports what happened to spans: the metrics, or nowhere."""

from __future__ import annotations

from typing import Protocol


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
