"""One exporter's spans kept in the state database until the exporter has delivered them."""

from __future__ import annotations

import logging
import sqlite3

from otel_bridge.core.errors import StateError
from otel_bridge.core.records import SpanRecord
from otel_bridge.store.codec import decode_record, encode_record
from otel_bridge.store.database import StateDatabase
from otel_bridge.store.writer import StateWriter

log = logging.getLogger(__name__)

Kept = tuple[SpanRecord, int, int]  # the record, its sequence number, its stored size


class SpanSpool:
    """Spans of one exporter, numbered in the order they were finished."""

    def __init__(
        self, writer: StateWriter, database: StateDatabase, exporter: str, last_seq: int = 0
    ) -> None:
        self.writer = writer
        self.database = database
        self.exporter = exporter
        self._seq = last_seq
        self.unreadable = 0

    @staticmethod
    def encode(record: SpanRecord) -> bytes:
        """A record's stored form (done outside the export queue's lock)."""
        return encode_record(record)

    def keep(self, record: SpanRecord, data: bytes) -> Kept | None:
        """Number and store a span until delivered; ``None`` when the budget has no room.

        The export queue calls it under its lock, so numbering and its choice of memory or
        disk happen together.
        """
        self._seq += 1
        if not self.writer.add_span(self.exporter, self._seq, record.kind == "run", data):
            return None
        return record, self._seq, len(data)

    def delivered(self, items: list[tuple[int, int]]) -> None:
        """Spans (``(seq, size)``) the exporter delivered or dropped for good: forget them."""
        if items:
            self.writer.ack_spans(self.exporter, items)

    def read(self, from_seq: int, limit: int) -> tuple[list[Kept], int, int]:
        """Up to ``limit`` stored spans from ``from_seq`` on, the next seq, the rows read.

        A row that cannot be read back (damaged) is logged, deleted and skipped.
        """
        if not self.writer.flush():
            raise StateError("spans waiting on disk cannot be read yet: the state is not saved")
        try:
            rows = self.database.read_spans(self.exporter, from_seq, limit)
        except sqlite3.Error as exc:
            raise StateError(f"spans waiting on disk cannot be read: {exc}") from exc
        kept: list[Kept] = []
        bad: list[tuple[int, int]] = []
        for seq, data in rows:
            try:
                kept.append((decode_record(data), seq, len(data)))
            except StateError as exc:
                bad.append((seq, len(data)))
                log.error(
                    "stored span unreadable; skipped",
                    extra={"exporter": self.exporter, "seq": seq, "error": str(exc)},
                )
        if bad:
            self.unreadable += len(bad)
            self.delivered(bad)
        next_seq = rows[-1][0] + 1 if rows else from_seq
        return kept, next_seq, len(rows)
