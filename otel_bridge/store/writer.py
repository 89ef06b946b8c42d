"""The one thread that writes the state database, in batches.

Callers (the event loop, the export workers) only hand changes over, coalesced in memory: a
run changed fifty times between two commits is written once, and a span is written at the
commit after next, so the many an exporter delivers within that time never touch the disk.
The thread commits every ``interval_s`` (or at once on :meth:`StateWriter.poke`), so a
SIGKILL loses at most the run changes of the last interval and the spans of the last two.
The disk budget is kept here: span records past it are refused (the caller counts and logs
the drop); task spans are refused at 90% of the budget, so a run's root span still finds
room after its children were turned away.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable

from otel_bridge.store.database import Changes, RunKey, StateDatabase

log = logging.getLogger(__name__)
CHILD_SHARE = 0.9  # of the budget that task spans may fill; the rest is kept for roots


class StateWriter:
    """Coalesces state changes and commits them from one thread."""

    def __init__(
        self,
        database: StateDatabase,
        *,
        interval_s: float = 0.2,
        max_bytes: int = 256 * 1024 * 1024,
        stored_bytes: int = 0,
        run_sizes: dict[RunKey, int] | None = None,
        on_commit: Callable[[int, float], None] | None = None,
    ) -> None:
        self.database = database
        self.interval_s = interval_s
        self.max_bytes = max_bytes
        self.commits = 0
        self.failures = 0
        self._on_commit = on_commit
        self._pending = Changes()
        self._pending_spans: dict[tuple[str, int], int] = {}  # (exporter, seq) -> index
        # Spans handed over since the last commit: written at the next one but one, so the
        # many an exporter delivers within that time never touch the disk.
        self._young: dict[tuple[str, int], tuple[str, int, bool, bytes]] = {}
        # Flushes wait for a commit covering every change handed over before they were
        # called: _handed counts hand-overs, _committed the count the last full commit covered.
        self._handed = 0
        self._committed = 0
        self._flush_target = 0
        self._covering = 0
        self._bytes = stored_bytes  # span and run bytes stored or about to be
        self._run_sizes: dict[RunKey, int] = dict(run_sizes or {})  # saved runs, already counted
        self._cond = threading.Condition()
        self._poked = False
        self._closing = False
        self._writing = False
        self._thread = threading.Thread(target=self._run, name="state-writer", daemon=True)
        self._thread.start()

    # -- handing changes over (any thread) ------------------------------------------------
    @property
    def stored_bytes(self) -> int:
        """Bytes of span records and run snapshots in the database or about to be."""
        return self._bytes

    @property
    def unsaved(self) -> int:
        """Changes handed over and not yet committed."""
        with self._cond:
            return len(self._pending) + len(self._young) + (1 if self._writing else 0)

    def put_run(self, key: RunKey, doc: bytes | None) -> None:
        """An open run's snapshot (``None``: forget it, it ended without a record)."""
        with self._cond:
            self._handed += 1
            self._bytes += (len(doc) if doc else 0) - self._run_sizes.pop(key, 0)
            if doc is not None:
                self._run_sizes[key] = len(doc)
            self._pending.runs[key] = doc

    def close_run(self, key: RunKey, trace_id: int) -> None:
        """A run ended: drop its snapshot, remember it as ended."""
        with self._cond:
            self._handed += 1
            self._bytes -= self._run_sizes.pop(key, 0)
            self._pending.runs[key] = None
            self._pending.closed.append((*key, trace_id))

    def put_subscription(self, key: RunKey, parent: str | None) -> None:
        """A followed run (with its traceparent, or "") or ``None``: no longer followed."""
        with self._cond:
            self._handed += 1
            self._pending.subscriptions[key] = parent

    def add_span(self, exporter: str, seq: int, root: bool, record: bytes) -> bool:
        """Keep an undelivered span; False when the disk budget has no room for it."""
        size = len(record)
        limit = self.max_bytes if root else self.max_bytes * CHILD_SHARE
        with self._cond:
            if self._bytes + size > limit:
                return False
            self._bytes += size
            self._handed += 1
            self._young[(exporter, seq)] = (exporter, seq, root, record)
        return True

    def ack_spans(self, exporter: str, seqs: list[tuple[int, int]]) -> None:
        """Spans delivered (``(seq, size)`` pairs): delete them, or never write them."""
        with self._cond:
            self._handed += 1
            spans = self._pending.spans
            for seq, size in seqs:
                self._bytes -= size
                if self._young.pop((exporter, seq), None) is not None:
                    continue
                index = self._pending_spans.pop((exporter, seq), None)
                if index is None:
                    self._pending.acks.append((exporter, seq))
                else:
                    spans[index] = (exporter, -1, False, b"")  # a hole; skipped on commit

    def poke(self) -> None:
        """Commit now rather than at the next interval."""
        with self._cond:
            self._poked = True
            self._cond.notify_all()

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Commit everything handed over so far; False if that took longer than the timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            target = self._handed
            self._flush_target = max(self._flush_target, target)
            self._poked = True
            self._cond.notify_all()
            while self._committed < target:
                if not self._thread.is_alive():
                    return False
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.05))
        return True

    def close(self, timeout_s: float = 10.0) -> bool:
        """Commit what is left, stop the thread, close the database; False if it timed out."""
        done = self.flush(timeout_s)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout_s)
        if done and not self._thread.is_alive():
            try:
                self.database.checkpoint()
                self.database.close()
            except sqlite3.Error as exc:
                log.error("state database did not close cleanly", extra={"error": str(exc)})
        return done

    # -- the thread ----------------------------------------------------------------------
    def _take(self) -> Changes | None:
        with self._cond:
            self._cond.wait_for(lambda: self._poked or self._closing, timeout=self.interval_s)
            self._poked = False
            everything = self._closing or self._flush_target > self._committed
            if not len(self._pending) and not self._young:
                if everything:  # nothing left to write: every hand-over so far is committed
                    self._committed = self._handed
                    self._cond.notify_all()
                return None if self._closing else Changes()
            self._covering = self._handed if everything else 0
            changes, self._pending = self._pending, Changes()
            young, self._young = list(self._young.values()), {}
            if everything:
                changes.spans.extend(young)
                self._pending_spans = {}
            else:  # the young spans wait one more round (unless delivered by then)
                self._pending.spans = young
                self._pending_spans = {(e, q): i for i, (e, q, _, _) in enumerate(young)}
            changes.spans = [row for row in changes.spans if row[1] >= 0]
            self._writing = bool(len(changes))
            self._cond.notify_all()
        return changes

    def _run(self) -> None:
        while True:
            changes = self._take()
            if changes is None:
                return
            if not len(changes):
                continue
            started = time.perf_counter()
            failed = False
            try:
                self.database.apply(changes)
            except sqlite3.Error as exc:
                # Kept in memory and tried again: a full disk may free up.
                self.failures += 1
                failed = True
                log.error("state not saved; will retry", extra={"error": str(exc)})
                self._restore(changes)
            else:
                self.commits += 1
                with self._cond:
                    self._committed = max(self._committed, self._covering)
                if changes.acks:
                    self._release()
                if self._on_commit is not None:
                    self._on_commit(len(changes), time.perf_counter() - started)
            finally:
                with self._cond:
                    self._writing = False
                    self._cond.notify_all()
            if failed and not self._closing:
                time.sleep(min(self.interval_s * 5, 1.0))

    def _release(self) -> None:
        try:
            self.database.release_free_pages()
        except sqlite3.Error as exc:  # only space not given back: not worth more than a line
            log.warning("state file not shrunk", extra={"error": str(exc)})

    def _restore(self, changes: Changes) -> None:
        """Put a failed batch back in front of what arrived since (newer values win)."""
        with self._cond:
            newer = self._pending
            changes.runs.update(newer.runs)
            changes.closed.extend(newer.closed)
            changes.subscriptions.update(newer.subscriptions)
            acked = set(newer.acks)
            changes.spans = [
                row for row in [*changes.spans, *newer.spans] if (row[0], row[1]) not in acked
            ]
            changes.acks.extend(newer.acks)  # deleting a row never written is harmless
            self._pending = changes
            self._pending_spans = {
                (e, s): i for i, (e, s, _, _) in enumerate(changes.spans) if s >= 0
            }
