"""What the tracker remembers about a run in flight: its open tasks, what it has seen.

Plain data; :mod:`.tracker` changes it, :mod:`.spans` reads it to build span records and
:mod:`.snapshot` saves and restores it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from otel_bridge.core.events import TrackedEvent
from otel_bridge.core.ids import TraceParent
from otel_bridge.core.records import SpanEvent

RunKey = tuple[str, str]
Identity = tuple[str, str | None, str | None, int | None, str | None]


def identity(event: TrackedEvent) -> Identity:
    """Return what makes two events the same event: a second one is a duplicate.

    Same type, task, timestamp and message. An event without a timestamp is identified by a
    digest of all of it instead. Identities are saved with the run (``replay --state``), so
    they never carry payloads, or the secrets in them, to disk: the message is a digest too.
    """
    if event.timestamp_ns is None:
        extra: str | None = hashlib.sha256(event.model_dump_json().encode()).hexdigest()
    elif event.message is not None:
        extra = hashlib.sha256(event.message.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    else:
        extra = None
    return (event.event_type, event.task_id, event.task_name, event.timestamp_ns, extra)


@dataclass
class TaskState:
    """A task execution whose start has been seen and whose end has not."""

    task_name: str
    task_id: str | None
    occurrence: int
    span_id: int
    start_ns: int
    input: Any = None


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
    flow_task_id: str | None = None
    message: str | None = None
    open_by_id: dict[str, TaskState] = field(default_factory=dict)
    open_by_name: dict[str, list[TaskState]] = field(default_factory=dict)
    occurrences: dict[str, int] = field(default_factory=dict)
    finished_ids: set[str] = field(default_factory=set)
    unmatched_ends: dict[str, list[int]] = field(default_factory=dict)
    seen: set[Identity] = field(default_factory=set)
    root_events: list[SpanEvent] = field(default_factory=list)
    spans_exported: bool = False

    @property
    def key(self) -> RunKey:
        """(flow_name, run_name)."""
        return (self.flow_name, self.run_name)

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

    def open_tasks(self) -> Iterator[TaskState]:
        """Every open task execution, in start order."""
        tasks = list(self.open_by_id.values())
        for queue in self.open_by_name.values():
            tasks.extend(queue)
        return iter(sorted(tasks, key=lambda t: (t.start_ns, t.task_name)))
