"""The state database: one SQLite file (WAL) in ``state_dir``, owner-only.

Tables: ``runs`` (the engine's snapshot of each open run, as JSON), ``closed`` (ended runs
and their trace ids, so a run is not followed twice), ``subscriptions`` (the runs followed,
to resubscribe after a restart) and ``spans`` (per exporter, the span records not yet
acknowledged, in the order they were finished). Everything in it went through the egress
policy first: run snapshots hold only exported forms and digests of ids, spans are stored as
exported.

Only the writer thread (:mod:`.writer`) writes; reading happens at start-up and, for spans
spilled past the memory queue, on a second connection (WAL lets it read while the writer
writes).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from otel_bridge.core.errors import StateError

FILE_NAME = "otel-bridge.sqlite3"
SCHEMA_VERSION = 2
REMEMBER_CLOSED = 100_000

RunKey = tuple[str, str]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    flow TEXT NOT NULL, run TEXT NOT NULL, doc BLOB NOT NULL, PRIMARY KEY (flow, run)
);
CREATE TABLE IF NOT EXISTS closed (
    id INTEGER PRIMARY KEY AUTOINCREMENT, flow TEXT NOT NULL, run TEXT NOT NULL,
    trace TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS subscriptions (
    flow TEXT NOT NULL, run TEXT NOT NULL, parent TEXT NOT NULL, PRIMARY KEY (flow, run)
);
CREATE TABLE IF NOT EXISTS spans (
    exporter TEXT NOT NULL, seq INTEGER NOT NULL, root INTEGER NOT NULL,
    record BLOB NOT NULL, PRIMARY KEY (exporter, seq)
);
"""


@dataclass
class Changes:
    """One transaction's worth of writes, coalesced by the writer."""

    runs: dict[RunKey, bytes | None] = field(default_factory=dict)  # None: the run ended
    closed: list[tuple[str, str, int]] = field(default_factory=list)
    subscriptions: dict[RunKey, str | None] = field(default_factory=dict)  # None: dropped
    spans: list[tuple[str, int, bool, bytes]] = field(default_factory=list)
    acks: list[tuple[str, int]] = field(default_factory=list)

    def __len__(self) -> int:
        return (
            len(self.runs)
            + len(self.closed)
            + len(self.subscriptions)
            + len(self.spans)
            + len(self.acks)
        )


@dataclass
class Saved:
    """What a state directory held at start-up."""

    runs: dict[RunKey, bytes]
    closed: list[tuple[str, str, str]]
    subscriptions: list[tuple[str, str, str]]
    span_counts: dict[str, int]
    span_bytes: int
    last_seq: dict[str, int]


WAL_LIMIT_BYTES = 16 * 1024 * 1024
VACUUM_PAGES = 256


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    # Before the first table: pages freed by delivered spans go back to the file system
    # (incremental_vacuum after commits), so the file shrinks after an outage.
    connection.execute("PRAGMA page_size=16384")  # ~2 KiB span records pack 7 to a page
    connection.execute("PRAGMA auto_vacuum=INCREMENTAL")
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
    # NORMAL in WAL mode: a commit survives a crash of the process (SIGKILL, OOM); only a
    # power loss can take the last commits. No fsync per commit.
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA busy_timeout=5000")
    return connection


def _lock(directory: Path) -> int:
    """Hold an exclusive lock on ``directory/lock``: one bridge per state dir."""
    fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        raise StateError(
            f"state_dir {directory} is in use by another otel-bridge process "
            "(a state dir belongs to one bridge)"
        ) from exc
    return fd


class StateDatabase:
    """The SQLite file of a state directory."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.path = self.directory / FILE_NAME
            if not self.path.exists():
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
            self._lock_file = _lock(self.directory)
            self._db = _connect(self.path)
            self._db.executescript(_SCHEMA)
            self._check_version()
            self._reader = _connect(self.path)
        except (OSError, sqlite3.Error) as exc:
            if hasattr(self, "_lock_file"):
                os.close(self._lock_file)
            raise StateError(
                f"state_dir {self.directory}: cannot open the database ({exc}); "
                "move the directory away to start afresh"
            ) from exc
        self._read_lock = threading.Lock()

    def _check_version(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        elif row[0] != str(SCHEMA_VERSION):
            raise StateError(
                f"state_dir {self.directory}: schema {row[0]} unknown to this version "
                f"(expects {SCHEMA_VERSION}); move the directory away to start afresh"
            )

    def load(self) -> Saved:
        """Everything the directory holds except the span records themselves."""
        db = self._db
        runs = {(f, r): bytes(doc) for f, r, doc in db.execute("SELECT flow, run, doc FROM runs")}
        closed = [
            (f, r, t) for f, r, t in db.execute("SELECT flow, run, trace FROM closed ORDER BY id")
        ]
        subs = [(f, r, p) for f, r, p in db.execute("SELECT flow, run, parent FROM subscriptions")]
        counts: dict[str, int] = {}
        last: dict[str, int] = {}
        span_bytes = 0
        for exporter, count, top, size in db.execute(
            "SELECT exporter, COUNT(*), MAX(seq), SUM(LENGTH(record)) FROM spans GROUP BY exporter"
        ):
            counts[exporter], last[exporter] = int(count), int(top)
            span_bytes += int(size or 0)
        return Saved(runs, closed, subs, counts, span_bytes, last)

    def read_spans(self, exporter: str, from_seq: int, limit: int) -> list[tuple[int, bytes]]:
        """Up to ``limit`` stored spans of ``exporter`` from ``from_seq`` on, in order."""
        with self._read_lock:
            rows = self._reader.execute(
                "SELECT seq, record FROM spans WHERE exporter=? AND seq>=? ORDER BY seq LIMIT ?",
                (exporter, from_seq, limit),
            ).fetchall()
        return [(int(seq), bytes(record)) for seq, record in rows]

    def apply(self, changes: Changes) -> None:
        """Write one batch of changes in one transaction."""
        db = self._db
        db.execute("BEGIN")
        try:
            if changes.spans:
                db.executemany(
                    "INSERT OR REPLACE INTO spans VALUES (?, ?, ?, ?)",
                    ((e, s, int(r), b) for e, s, r, b in changes.spans),
                )
            if changes.acks:
                db.executemany("DELETE FROM spans WHERE exporter=? AND seq=?", changes.acks)
            self._upsert("runs", list(changes.runs.items()))
            if changes.closed:
                db.executemany(
                    "INSERT INTO closed (flow, run, trace) VALUES (?, ?, ?)",
                    ((f, r, f"{t:032x}") for f, r, t in changes.closed),
                )
                db.execute(
                    "DELETE FROM closed WHERE id <= (SELECT MAX(id) FROM closed) - ?",
                    (REMEMBER_CLOSED,),
                )
            self._upsert("subscriptions", list(changes.subscriptions.items()))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _upsert(self, table: str, items: Sequence[tuple[RunKey, object | None]]) -> None:
        """Write rows keyed by (flow, run) into ``runs`` or ``subscriptions``; ``None`` deletes."""
        upserts = [(*key, value) for key, value in items if value is not None]
        deletes = [key for key, value in items if value is None]
        if upserts:
            self._db.executemany(f"INSERT OR REPLACE INTO {table} VALUES (?, ?, ?)", upserts)
        if deletes:
            self._db.executemany(f"DELETE FROM {table} WHERE flow=? AND run=?", deletes)

    def release_free_pages(self) -> int:
        """Give up to VACUUM_PAGES free pages back to the file system; how many were free."""
        free = int(self._db.execute("PRAGMA freelist_count").fetchone()[0])
        if free:
            # executescript steps it to the end (execute would free one page only)
            self._db.executescript(f"PRAGMA incremental_vacuum({VACUUM_PAGES});")
        return free

    def size_on_disk(self) -> int:
        """Bytes of the database file and its write-ahead log."""
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                total += os.stat(str(self.path) + suffix).st_size
        return total

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the main file (at shutdown, after the last commit)."""
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        """Close both connections and let go of the directory."""
        for connection in (self._reader, self._db):
            connection.close()
        os.close(self._lock_file)  # closing the descriptor releases the lock
