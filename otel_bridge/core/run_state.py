"""What the tracker remembers about a run in flight: its open tasks, what it has seen.

Plain data; :mod:`.tracker` changes it, :mod:`.spans` reads it to build span records and
:mod:`.snapshot` saves and restores it. Nothing here holds a raw payload or a raw id: task
inputs are kept as their exported form (redacted and capped when the task starts), names
and ids as their exported form (:func:`~.redaction.clean_name`), and the keys that pair
starts with ends are digests. So a saved state holds no more than the spans would.
"""

from __future__ import annotations

import hashlib
import heapq
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson
from pydantic import TypeAdapter

from otel_bridge.core.events import (
    LEGACY_ORDER,
    ErrorInfo,
    TrackedEvent,
    beyond_float,
    error_fields,
    numbers_as_parsed,
)
from otel_bridge.core.ids import TraceParent
from otel_bridge.core.records import SpanEvent

RunKey = tuple[str, str]


def digest(text: str) -> str:
    """A short stable digest of a raw id or name: what pairing keys are made of."""
    if len(text) <= 128:  # task names repeat: short ones are cached (bounded, never huge keys)
        return _short_digest(text)
    return _digest(text)


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


_short_digest = lru_cache(maxsize=16384)(_digest)


def identity(event: TrackedEvent) -> str:
    """What makes two events the same event (a second one is a duplicate), as a digest.

    Same type, task, timestamp and message; an event without a timestamp is identified by
    all of it instead: its JSON as written before issue 12 (:func:`legacy_json`), so the
    digests in a state saved by the previous version still match.
    """
    if event.timestamp_ns is None:
        return hashlib.blake2b(legacy_json(event), digest_size=12).hexdigest()
    parts = (event.event_type, event.task_id, event.task_name, event.timestamp_ns, event.message)
    return _digest(repr(parts))  # unique per event: the cache of short digests would only churn


# Before issue 12 the text was pydantic's model_dump_json: the model's fields in order
# (``timestamp_ns`` by name), then the unknown ones; a frame's own ``timestamp_ns`` next to
# ``timestamp`` was an unknown field, so the key then appears twice (pydantic wrote both).
_ANY = TypeAdapter[Any](Any)


def legacy_json(event: TrackedEvent) -> bytes:
    """The event's JSON as its pydantic model wrote it before issue 12 (``model_dump_json``)."""
    fields = {name: getattr(event, name) for name in LEGACY_ORDER[event.__class__]}
    error = fields.get("error")
    if error is not None and error.__class__ is ErrorInfo:
        fields["error"] = error_fields(error)
    extra = event.model_extra
    try:
        text = orjson.dumps(fields)
        return text[:-1] + b"," + orjson.dumps(extra)[1:] if extra else text
    except TypeError:  # big integers, odd keys or values: pydantic's own encoder
        return _legacy_slow(fields, extra or None)


def _legacy_slow(fields: dict[str, Any], extra: dict[str, Any] | None) -> bytes:
    # Integers as orjson parsed them (a float beyond 64 bits), unless the frame held one
    # beyond a float, which orjson refused (json.loads kept them all); NaN and inf as null.
    parts = [fields, extra] if extra else [fields]
    if not beyond_float(parts):
        parts = [numbers_as_parsed(part) for part in parts]
    try:
        texts = [_ANY.dump_json(part, fallback=str) for part in parts]
    except (TypeError, ValueError):  # surrogates, keys pydantic refuses: a stand-in (it raised)
        return repr(parts).encode("utf-8", "surrogatepass")
    return texts[0][:-1] + b"," + texts[1][1:] if extra else texts[0]


@dataclass
class TaskState:
    """A task execution whose start has been seen and whose end has not."""

    task_name: str  # as exported
    task_id: str | None  # as exported
    name_key: str
    id_key: str | None
    occurrence: int
    span_id: int
    start_ns: int
    input_text: str | None = None
    input_truncated: bool = False
    agent_id: str | None = None
    agent_name: str | None = None
    conversation_id: str | None = None
    server_address: str | None = None
    server_port: int | None = None
    adjusted: bool = False  # its start timestamp was implausible and replaced


@dataclass
class RunState:
    """Everything the tracker remembers about one run in flight."""

    flow_name: str
    run_name: str
    trace_id: int
    root_span_id: int
    parent: TraceParent | None
    opened_at_ns: int
    last_activity_ns: int
    first_ns: int | None = None
    last_ns: int | None = None
    started_ns: int | None = None
    min_task_start_ns: int | None = None
    max_task_end_ns: int | None = None
    flow_task_id: str | None = None  # as exported
    message: str | None = None  # as exported
    executions: int = 0  # task executions seen (bounded per run)
    adjusted: bool = False  # some timestamp of the run was implausible and replaced
    open_by_id: dict[str, TaskState] = field(default_factory=dict)
    open_by_name: dict[str, deque[TaskState]] = field(default_factory=dict)
    # Per name, (start, id_key) of open executions with a task_id: a heap, stale entries
    # skipped when popped (an end without task_id pairs with the earliest start).
    ids_by_name: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    occurrences: dict[str, int] = field(default_factory=dict)
    finished_ids: set[str] = field(default_factory=set)
    unmatched_ends: dict[str, list[int]] = field(default_factory=dict)  # sorted
    seen: set[str] = field(default_factory=set)
    root_events: list[SpanEvent] = field(default_factory=list)
    spans_exported: bool = False
    sampled: bool = True

    @property
    def key(self) -> RunKey:
        """(flow_name, run_name)."""
        return (self.flow_name, self.run_name)

    @property
    def open_count(self) -> int:
        """How many task executions are open."""
        return len(self.open_by_id) + sum(len(q) for q in self.open_by_name.values())

    def note_time(self, ts: int) -> None:
        """Widen the run's seen time range."""
        self.first_ns = ts if self.first_ns is None else min(self.first_ns, ts)
        self.last_ns = ts if self.last_ns is None else max(self.last_ns, ts)

    def note_task_span(self, start_ns: int, end_ns: int) -> None:
        """Widen the range covered by the run's exported task spans."""
        low, high = self.min_task_start_ns, self.max_task_end_ns
        self.min_task_start_ns = start_ns if low is None else min(low, start_ns)
        self.max_task_end_ns = end_ns if high is None else max(high, end_ns)
        self.spans_exported = True

    def add_open_id(self, task: TaskState) -> None:
        """Open an execution that carries a task_id."""
        assert task.id_key is not None
        self.open_by_id[task.id_key] = task
        heapq.heappush(self.ids_by_name.setdefault(task.name_key, []), (task.start_ns, task.id_key))

    def pop_open_id_by_name(self, name_key: str) -> TaskState | None:
        """Take the earliest-started open execution of a name that has a task_id."""
        heap = self.ids_by_name.get(name_key)
        while heap:
            _, id_key = heapq.heappop(heap)
            task = self.open_by_id.get(id_key)
            if task is not None and task.name_key == name_key:
                del self.open_by_id[id_key]
                return task
        self.ids_by_name.pop(name_key, None)
        return None

    def pop_by_name(self, name_key: str) -> TaskState | None:
        """Take the oldest open execution of a name that started without a task_id."""
        queue = self.open_by_name.get(name_key)
        if not queue:
            return None
        task = queue.popleft()
        if not queue:
            del self.open_by_name[name_key]
        return task

    def open_tasks(self) -> Iterator[TaskState]:
        """Every open task execution, in start order."""
        tasks = list(self.open_by_id.values())
        for queue in self.open_by_name.values():
            tasks.extend(queue)
        return iter(sorted(tasks, key=lambda t: (t.start_ns, t.task_name)))
