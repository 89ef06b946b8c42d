"""The export queue: never blocks, retries across outages, keeps roots, spills to the state dir."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from helpers import run_events, seed_events
from otel_bridge.core.records import SpanRecord
from otel_bridge.errors import ExportError, ExportRejected
from otel_bridge.sinks.export_queue import ExportQueue
from otel_bridge.sinks.span_sinks import MemorySink
from otel_bridge.store.codec import encode_record
from otel_bridge.store.database import StateDatabase
from otel_bridge.store.spool import SpanSpool
from otel_bridge.store.writer import StateWriter
from support.sinks import BlockingSink, FailingSink, RecordingStats

FAST = {"delay_s": 0.01, "retry_initial_s": 0.01, "retry_max_s": 0.05}


def spans(count: int, roots_every: int = 10) -> list[SpanRecord]:
    """``count`` distinct spans; every ``roots_every``-th is a run's root."""
    task, root = [], []
    for record in run_events(seed_events("Customer_Support_Pipeline")):
        (root if record.kind == "run" else task).append(record)
    return [
        replace(root[0] if i % roots_every == roots_every - 1 else task[0], span_id=i + 1)
        for i in range(count)
    ]


class FlakySink(MemorySink):
    """Fails its first ``failures`` exports with ExportError (a collector that is down)."""

    def __init__(self, failures: int, delivered: int = 0) -> None:
        super().__init__("flaky")
        self.failures = failures
        self.delivered_first = delivered
        self.attempts = 0

    def export(self, records: Sequence[SpanRecord]) -> None:
        """Fail (keeping ``delivered`` records of the first failure), then keep records."""
        self.attempts += 1
        if self.failures > 0:
            self.failures -= 1
            kept = self.delivered_first
            self.delivered_first = 0
            super().export(records[:kept])
            raise ExportError("collector down", delivered=kept)
        super().export(records)


class RejectingSink(MemorySink):
    """Keeps the first ``delivered`` records of each batch, refuses the rest for good."""

    def __init__(self, delivered: int) -> None:
        super().__init__("rejecting")
        self.delivered = delivered
        self.attempts = 0

    def export(self, records: Sequence[SpanRecord]) -> None:
        """Refuse."""
        self.attempts += 1
        super().export(records[: self.delivered])
        raise ExportRejected("INVALID_ARGUMENT", delivered=self.delivered)


def ids(records: Sequence[SpanRecord]) -> list[int]:
    """Span ids, in order."""
    return [r.span_id for r in records]


def test_full_queue_drops_task_spans_never_roots_and_never_blocks() -> None:
    """A stalled sink: submit returns at once; past max_queue task spans drop, roots are kept."""
    sink, stats = BlockingSink(), RecordingStats()
    queue = ExportQueue(sink, stats, max_queue=5, max_batch=1, **FAST)
    records = spans(40, roots_every=10)  # 36 task spans, 4 roots
    assert queue.submit(records[0])
    assert sink.entered.wait(5)  # the worker is now stuck inside export
    began = time.monotonic()
    accepted = [queue.submit(r) for r in records[1:]]
    assert time.monotonic() - began < 0.5
    kept_roots = [r for r, ok in zip(records[1:], accepted, strict=True) if ok and r.kind == "run"]
    assert len(kept_roots) == 4  # roots have their own places
    assert stats.counts["dropped", "queue_full"] == accepted.count(False)
    assert all(r.kind == "task" for r, ok in zip(records[1:], accepted, strict=True) if not ok)
    sink.release.set()
    assert queue.flush(5)
    queue.close()
    assert len(sink.records) == 1 + accepted.count(True)


def test_submit_after_close_is_dropped_as_shutdown() -> None:
    """A span submitted after close is dropped and counted with reason shutdown."""
    stats = RecordingStats()
    queue = ExportQueue(MemorySink(), stats, **FAST)
    queue.close()
    assert not queue.submit(spans(1)[0])
    assert stats.counts["dropped", "shutdown"] == 1


def test_outage_is_retried_until_every_span_arrives_once() -> None:
    """A sink down for several attempts: spans retried, then each delivered exactly once."""
    sink, stats = FlakySink(failures=4, delivered=3), RecordingStats()
    queue = ExportQueue(sink, stats, max_batch=8, **FAST)
    records = spans(20)
    for record in records:
        assert queue.submit(record)
    assert queue.flush(10)
    queue.close()
    assert sorted(ids(sink.records)) == sorted(ids(records))  # once each: no duplicates
    assert queue.retries == 4
    assert stats.counts["failed", ""] > 0
    assert stats.counts["exported", ""] == 20


def test_refused_spans_are_dropped_as_rejected_not_retried() -> None:
    """ExportRejected: the delivered front is exported, the rest dropped (rejected), no retry."""
    sink, stats = RejectingSink(delivered=2), RecordingStats()
    queue = ExportQueue(sink, stats, max_batch=5, **FAST)
    for record in spans(5):
        queue.submit(record)
    assert queue.flush(5)
    queue.close()
    assert sink.attempts == 1
    assert len(sink.records) == 2
    assert stats.counts["dropped", "rejected"] == 3
    assert queue.dropped["rejected"] == 3


@pytest.mark.parametrize("error", [ExportError("collector down"), ValueError("bug in a sink")])
def test_close_gives_up_at_the_deadline_and_counts_the_loss(error: Exception) -> None:
    """A sink that never recovers: close returns by its deadline; the spans count as lost."""
    sink, stats = FailingSink(error), RecordingStats()
    queue = ExportQueue(sink, stats, max_batch=2, **FAST)
    records = spans(7)
    for record in records:
        assert queue.submit(record)
    began = time.monotonic()
    left = queue.close(0.5)
    assert time.monotonic() - began < 2.0
    assert left == 7
    assert stats.counts["dropped", "shutdown_timeout"] == 7
    assert sink.calls > 1  # it was retried, not given up on after one failure


def test_close_cuts_an_export_hung_on_a_silent_receiver() -> None:
    """An export that never returns is cut at the deadline (the sink is shut down)."""
    sink, stats = BlockingSink(), RecordingStats()
    queue = ExportQueue(sink, stats, max_batch=1, **FAST)
    queue.submit(spans(1)[0])
    assert sink.entered.wait(5)
    began = time.monotonic()
    queue.close(0.3)
    assert time.monotonic() - began < 2.0


def spooled(
    directory: Path, sink: MemorySink | FlakySink, **options: object
) -> tuple[ExportQueue, StateWriter, RecordingStats]:
    """An export queue with a spool in ``directory`` (a fresh database connection)."""
    database = StateDatabase(directory)
    saved = database.load()
    writer = StateWriter(database, interval_s=0.02, stored_bytes=saved.span_bytes)
    spool = SpanSpool(writer, database, sink.name, saved.last_seq.get(sink.name, 0))
    stats = RecordingStats()
    queue = ExportQueue(sink, stats, spool=spool, **{**FAST, **options})  # type: ignore[arg-type]
    queue.resume(saved.span_counts.get(sink.name, 0))
    return queue, writer, stats


def test_spans_past_memory_wait_on_disk_and_come_back_in_order(tmp_path: Path) -> None:
    """With a spool, spans past max_queue are kept on disk and delivered in order, once."""
    sink = FlakySink(failures=3)
    queue, writer, stats = spooled(tmp_path, sink, max_queue=10, max_batch=4)
    records = spans(100, roots_every=1000)  # task spans only: one FIFO order
    assert all(queue.submit(r) for r in records)
    assert queue.flush(10)
    queue.close()
    writer.close()
    assert ids(sink.records) == ids(records)
    assert stats.counts["dropped", "state_full"] == 0
    assert StateDatabase(tmp_path).load().span_counts == {}  # all acknowledged


def test_undelivered_spans_survive_into_the_next_process(tmp_path: Path) -> None:
    """Spans not delivered by the shutdown deadline are sent by the next queue on the dir."""
    down = FailingSink(ExportError("collector down"))
    down.name = "flaky"
    queue, writer, stats = spooled(tmp_path, down, max_queue=10)  # type: ignore[arg-type]
    records = spans(30)
    for record in records:
        queue.submit(record)
    assert queue.close(0.2) == 30
    assert stats.counts["dropped", "shutdown_timeout"] == 0  # kept, not lost
    assert writer.close()
    sink = FlakySink(failures=0)
    queue, writer, _ = spooled(tmp_path, sink, max_queue=10)
    assert queue.flush(10)
    queue.close()
    writer.close()
    assert sorted(ids(sink.records)) == sorted(ids(records))


def test_disk_budget_turns_task_spans_away_before_roots(tmp_path: Path) -> None:
    """Past 90% of the disk budget task spans are dropped (state_full); roots still fit."""
    sink = BlockingSink()
    sink.name = "stalled"
    database = StateDatabase(tmp_path)
    record = spans(1)[0]
    size = len(encode_record(record))
    writer = StateWriter(database, interval_s=0.02, max_bytes=size * 10)
    stats = RecordingStats()
    queue = ExportQueue(
        sink, stats, spool=SpanSpool(writer, database, "stalled"), max_batch=1, **FAST
    )
    tasks = spans(12, roots_every=1000)
    accepted = [queue.submit(r) for r in tasks]
    assert accepted.count(True) == 9  # 90% of the budget
    root = replace(spans(10, roots_every=10)[9], span_id=999)
    assert queue.submit(root)  # the root still finds room
    assert stats.counts["dropped", "state_full"] == 3
    sink.release.set()
    assert queue.flush(5)
    queue.close()
    writer.close()
    assert 999 in ids(sink.records)


def test_writer_coalesces_spans_acknowledged_before_commit(tmp_path: Path) -> None:
    """A span delivered before its row was committed is never written; the budget is freed."""
    database = StateDatabase(tmp_path)
    writer = StateWriter(database, interval_s=60)
    assert writer.add_span("otlp", 1, False, b"x" * 100)
    writer.ack_spans("otlp", [(1, 100)])
    assert writer.stored_bytes == 0
    assert writer.flush(5)
    writer.close()
    assert StateDatabase(tmp_path).load().span_counts == {}


def test_concurrent_submitters_lose_nothing(tmp_path: Path) -> None:
    """Spans submitted while the worker drains a spilled backlog all arrive exactly once."""
    sink = FlakySink(failures=2)
    queue, writer, _ = spooled(tmp_path, sink, max_queue=8, max_batch=3)
    records = spans(300, roots_every=7)
    done = threading.Event()

    def submit_all() -> None:
        for record in records:
            queue.submit(record)
        done.set()

    thread = threading.Thread(target=submit_all)
    thread.start()
    assert done.wait(10)
    assert queue.flush(20)
    queue.close()
    writer.close()
    assert sorted(ids(sink.records)) == sorted(ids(records))


def test_drop_totals_reach_the_log_even_inside_the_rate_limit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Drops after the first line of an interval are logged with their total at close."""
    sink = BlockingSink()
    queue = ExportQueue(sink, RecordingStats(), max_queue=2, max_batch=1, **FAST)
    records = spans(12, roots_every=1000)
    queue.submit(records[0])
    assert sink.entered.wait(5)
    for record in records[1:]:
        queue.submit(record)
    sink.release.set()
    with caplog.at_level(logging.WARNING, logger="otel_bridge.sinks.export_queue"):
        queue.close(5)
    lines = [r for r in caplog.records if r.getMessage() == "spans dropped"]
    assert lines and lines[-1].total == 9  # type: ignore[attr-defined]
