"""The state dir: what is saved, what comes back, and that it holds no secret."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import pytest

from helpers import NO_TIMESTAMP_NS, run_events, seed_events
from otel_bridge.core.engine import Engine
from otel_bridge.core.errors import StateError
from otel_bridge.core.ids import TraceParent
from otel_bridge.core.outputs import Output, RunOpened
from otel_bridge.errors import ExportError
from otel_bridge.sinks.export_queue import ExportQueue
from otel_bridge.sinks.router import Router
from otel_bridge.store.codec import decode_record, encode_record
from otel_bridge.store.database import FILE_NAME, StateDatabase
from otel_bridge.store.keeper import StateKeeper
from otel_bridge.store.writer import StateWriter
from planted import T0, planted_run
from support.sinks import FailingSink

NS = 1_000_000_000
FLOW, RUN = "Keep_Flow", "run_1"


def frames(count: int) -> list[str]:
    """The first ``count`` frames of a run: flow_started, then tasks started and completed."""
    out = [{"event_type": "flow_started", "timestamp": T0, "message": "go"}]
    for index in range(10):
        name = f"task {index}"
        out.append({"event_type": "task_started", "task_name": name, "timestamp": T0 + index})
        out.append(
            {"event_type": "task_completed", "task_name": name, "timestamp": T0 + index + 0.5}
        )
    base = {"flow_name": FLOW, "run_name": RUN}
    return [json.dumps({**base, **frame}) for frame in out[:count]]


class Kept:
    """An engine and router whose outputs a keeper watches (a bridge without sockets)."""

    def __init__(self, directory: Path, queues: list[ExportQueue] | None = None) -> None:
        self.keeper = StateKeeper(str(directory), interval_s=0.01)
        self.engine = Engine()
        self.router = Router(queues or [])
        self.router.listeners.append(self.keeper.observe)

    def feed(self, items: list[str], start: int = 0) -> None:
        """Receive frames on the run's socket."""
        for index, frame in enumerate(items, start=start):
            received = int((T0 + index) * NS)
            self.router.emit(self.engine.receive(frame, run=(FLOW, RUN), received_ns=received))

    def save_and_close(self) -> None:
        """Save everything, commit, close the database."""
        self.keeper.save(self.engine, everything=True)
        assert self.keeper.writer.close(5)


def test_open_runs_come_back_with_their_tasks(tmp_path: Path) -> None:
    """A run saved mid-way is reopened by the next keeper and ends with every task span."""
    first = Kept(tmp_path)
    first.feed(frames(6))  # flow_started, tasks 0-1 done, task 2 started
    first.save_and_close()
    second = Kept(tmp_path)
    restored = second.keeper.restore(second.engine, now_ns=NO_TIMESTAMP_NS)
    assert restored == [RunOpened(FLOW, RUN, second.engine.trace_id_of(FLOW, RUN), resumed=True)]
    spans: list[Output] = []
    second.router.listeners.append(spans.append)
    second.feed(frames(21)[6:], start=6)
    names = sorted(s.name for s in spans if hasattr(s, "kind") and s.kind == "task")
    assert names == sorted(f"execute_task task {i}" for i in range(2, 10))


def test_ended_runs_are_remembered_across_restarts(tmp_path: Path) -> None:
    """A run that ended before the restart is still known as ended after it."""
    first = Kept(tmp_path)
    first.feed(frames(3))
    first.router.emit(first.engine.close_all())
    first.save_and_close()
    second = Kept(tmp_path)
    second.keeper.restore(second.engine, now_ns=NO_TIMESTAMP_NS)
    assert second.engine.is_closed(FLOW, RUN)
    assert not second.engine.is_open(FLOW, RUN)


def test_restored_runs_restart_their_inactivity_clock(tmp_path: Path) -> None:
    """Time the bridge was down is not the run's silence: idle counts from the restart."""
    first = Kept(tmp_path)
    first.feed(frames(2))
    first.save_and_close()
    second = Kept(tmp_path)
    later = int((T0 + 10_000) * NS)
    second.keeper.restore(second.engine, now_ns=later)
    assert second.engine.expire(later + NS, inactivity_ns=60 * NS) == []
    assert second.engine.expire(later + 61 * NS, inactivity_ns=60 * NS) != []


def test_followed_runs_and_their_parents_come_back(tmp_path: Path) -> None:
    """Subscriptions are saved with traceparent and tracestate; unfollowed ones are not."""
    parent = TraceParent(0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, True, "k=v")
    first = Kept(tmp_path)
    first.keeper.follow((FLOW, RUN), parent)
    first.keeper.follow((FLOW, "plain"), None)
    first.keeper.follow((FLOW, "gone"), None)
    first.keeper.unfollow((FLOW, "gone"))
    first.save_and_close()
    followed = {(f.flow_name, f.run_name): f.parent for f in Kept(tmp_path).keeper.followed()}
    assert followed == {(FLOW, RUN): parent, (FLOW, "plain"): None}


def test_state_files_are_owner_only(tmp_path: Path) -> None:
    """The state dir is 0700 and the database 0600: it holds the users' (redacted) data."""
    directory = tmp_path / "state"
    Kept(directory).save_and_close()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / FILE_NAME).stat().st_mode) == 0o600


def test_a_database_of_another_schema_is_refused_clearly(tmp_path: Path) -> None:
    """A state dir written by an unknown version: StateError naming the dir, nothing read."""
    StateDatabase(tmp_path).close()
    with sqlite3.connect(tmp_path / FILE_NAME) as db:
        db.execute("UPDATE meta SET value='99' WHERE key='schema'")
    with pytest.raises(StateError, match=r"schema 99 unknown.*move the directory away"):
        StateDatabase(tmp_path)


def test_state_dir_holds_no_planted_secret(tmp_path: Path) -> None:
    """Open runs and undelivered spans on disk carry none of the planted secrets."""
    items, secrets = planted_run(FLOW, RUN)
    down = FailingSink(ExportError("collector down"))
    keeper = StateKeeper(str(tmp_path), interval_s=0.01)
    queue = ExportQueue(down, spool=keeper.spool_for(down.name), retry_initial_s=60)
    engine, router = Engine(), Router([queue])
    router.listeners.append(keeper.observe)
    for index, frame in enumerate(items[:-1]):  # the run stays open; its tasks' spans wait
        received = int((T0 + index) * NS)
        text = frame if isinstance(frame, str) else json.dumps(frame)
        router.emit(engine.receive(text, run=(FLOW, RUN), received_ns=received))
    keeper.follow((FLOW, RUN), None)
    keeper.save(engine, everything=True)
    assert keeper.writer.flush(5)
    written = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert keeper.database.load().span_counts  # spans are there, waiting
    assert [s for s in secrets if s.encode() in written] == []
    queue.close(0.1)
    keeper.writer.close(5)


def test_the_file_stays_near_the_budget_and_shrinks_after_delivery(tmp_path: Path) -> None:
    """2 KiB spans take about their own size on disk, and the space goes back once delivered."""
    database = StateDatabase(tmp_path)
    writer = StateWriter(database, interval_s=0.01)
    record = b"r" * 2048
    for seq in range(1, 5001):
        assert writer.add_span("otlp", seq, False, record)
    assert writer.flush(10)
    database.checkpoint()
    counted = writer.stored_bytes
    assert database.size_on_disk() < counted * 1.25
    writer.ack_spans("otlp", [(seq, len(record)) for seq in range(1, 5001)])
    assert writer.flush(10)
    for _ in range(100):  # each commit gives back a slice of the free pages
        if not database.release_free_pages():
            break
    database.checkpoint()
    assert database.size_on_disk() < counted / 10
    writer.close()


def test_span_records_come_back_equal_from_their_stored_bytes() -> None:
    """Every seed span (events, sequences, parents) survives the codec unchanged."""
    records = run_events(seed_events())
    assert records
    for record in records:
        assert decode_record(encode_record(record)) == record


def test_one_bridge_per_state_dir(tmp_path: Path) -> None:
    """A second bridge on a state dir in use is refused with a clear error, not let in."""
    first = StateDatabase(tmp_path)
    with pytest.raises(StateError, match="in use by another otel-bridge"):
        StateDatabase(tmp_path)
    first.close()
    StateDatabase(tmp_path).close()  # free again once the first has gone


def test_a_damaged_database_is_a_clear_error(tmp_path: Path) -> None:
    """A state file that is not a database: StateError saying to move the directory away."""
    (tmp_path / FILE_NAME).write_bytes(b"not a database" * 1000)
    with pytest.raises(StateError, match="move the directory away"):
        StateKeeper(str(tmp_path))


def test_a_run_saved_open_and_ended_stays_ended(tmp_path: Path) -> None:
    """Damaged state listing a run as open and as ended: it is not reopened (no second root)."""
    first = Kept(tmp_path)
    first.feed(frames(3))
    first.save_and_close()
    with sqlite3.connect(tmp_path / FILE_NAME) as db:
        db.execute("INSERT INTO closed (flow, run, trace) VALUES (?, ?, ?)", (FLOW, RUN, "ab" * 16))
    second = Kept(tmp_path)
    assert second.keeper.restore(second.engine, now_ns=NO_TIMESTAMP_NS) == []
    assert second.engine.is_closed(FLOW, RUN) and not second.engine.is_open(FLOW, RUN)


def test_the_budget_counts_a_restored_run_once(tmp_path: Path) -> None:
    """Saving a restored run again replaces its size in the budget; its end frees it."""
    first = Kept(tmp_path)
    first.feed(frames(4))
    first.save_and_close()
    second = Kept(tmp_path)
    before = second.keeper.writer.stored_bytes
    assert before > 0
    second.keeper.restore(second.engine, now_ns=NO_TIMESTAMP_NS)
    second.keeper.save(second.engine, everything=True)
    assert abs(second.keeper.writer.stored_bytes - before) < before // 2
    second.router.emit(second.engine.close_all())
    assert second.keeper.writer.stored_bytes == 0
    second.keeper.writer.close()


def test_spans_of_an_exporter_not_configured_now_are_kept(tmp_path: Path) -> None:
    """A start without an exporter keeps its undelivered spans for a later start."""
    keeper = StateKeeper(str(tmp_path), interval_s=0.01)
    assert keeper.writer.add_span("otlp", 1, False, b"x" * 100)
    assert keeper.writer.close()
    again = StateKeeper(str(tmp_path), interval_s=0.01)
    again.forget_exporters({"file"})
    assert again.writer.close()
    assert StateDatabase(tmp_path).load().span_counts == {"otlp": 1}


def test_a_run_named_with_a_secret_shape_stays_out_of_the_state_dir(tmp_path: Path) -> None:
    """Names the egress policy would redact are not written; such a run is memory-only."""
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    run = f"run-{token}"
    keeper = StateKeeper(str(tmp_path), interval_s=0.01)
    engine, router = Engine(), Router([])
    router.listeners.append(keeper.observe)
    frame = json.dumps({"event_type": "flow_started", "flow_name": FLOW, "run_name": run})
    router.emit(engine.receive(frame, run=(FLOW, run), received_ns=int(T0 * NS)))
    keeper.follow((FLOW, run), None)
    keeper.save(engine, everything=True)
    router.emit(engine.close_all())
    assert keeper.writer.close()
    assert engine.is_closed(FLOW, run)
    written = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert token.encode() not in written
