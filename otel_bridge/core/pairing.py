"""Pairing a run's task starts with their ends: by task_id, else by name, first in first out.

- a task end with no start becomes a span with a synthetic start (end - execution_time);
  its late start, when it comes, is dropped, never exported twice;
- tasks without ``task_id`` pair start and end by ``task_name``, first in first out; an end
  without ``task_id`` also pairs with the earliest open start of that name that had one;
- bounded: at most ``max_open_tasks`` open executions per run (each holding its capped
  input) and ``max_executions`` in all; past either, starts are dropped as ``tasks_full``.

Every lookup is a dict, a heap or a bisect: the work per event does not grow with the
number of tasks in the run.
"""

from __future__ import annotations

import bisect
from collections import deque

from otel_bridge.core import attributes as A
from otel_bridge.core import spans
from otel_bridge.core.events import TaskCompleted, TaskFailed, TaskStarted, TrackedEvent
from otel_bridge.core.ids import task_key, task_span_id
from otel_bridge.core.outputs import DropReason, EventDropped, TrackerOutput
from otel_bridge.core.redaction import PayloadPolicy, clean_name
from otel_bridge.core.run_state import RunState, TaskState, digest
from otel_bridge.core.timestamps import seconds_to_ns

MAX_UNMATCHED_ENDS = 10_000
"""Ends without a start remembered per task name (to drop their late starts); oldest go."""


def _drop(run: RunState, event: TrackedEvent, reason: DropReason) -> list[TrackerOutput]:
    return [EventDropped(run.flow_name, run.run_name, event.event_type, reason)]


def _keys(event: TrackedEvent) -> tuple[str, str | None, str] | None:
    """(name, digest of its task_id or None, digest of its name); None: it names no task."""
    name = event.task_name or event.task_id
    if name is None:
        return None
    return name, digest(event.task_id) if event.task_id is not None else None, digest(name)


class Pairing:
    """Task starts and ends of runs in, task span records out."""

    def __init__(self, policy: PayloadPolicy, max_open_tasks: int, max_executions: int) -> None:
        self.policy = policy
        self.max_open_tasks = max_open_tasks
        self.max_executions = max_executions

    def started(
        self,
        run: RunState,
        event: TaskStarted,
        ts: int,
        adjusted: bool,
    ) -> list[TrackerOutput]:
        """Open a task execution (nothing to export yet, unless it is dropped)."""
        keys = _keys(event)
        if keys is None:
            return _drop(run, event, DropReason.NO_TASK_IDENTITY)
        name, id_key, name_key = keys
        if id_key is not None:
            if id_key in run.finished_ids:
                return _drop(run, event, DropReason.LATE_START)
            if id_key in run.open_by_id:
                return _drop(run, event, DropReason.DUPLICATE)
        else:
            ends = run.unmatched_ends.get(name_key)
            if ends:
                at = bisect.bisect_left(ends, ts)
                if at < len(ends):
                    del ends[at]
                    return _drop(run, event, DropReason.LATE_START)
        if run.open_count >= self.max_open_tasks or run.executions >= self.max_executions:
            return _drop(run, event, DropReason.TASKS_FULL)
        task = self._new_task(run, name, event.task_id, ts, adjusted)
        text, truncated = self.policy.payload(event.input)
        task.input_text, task.input_truncated = text, truncated
        agent_id = A.agent_id_of(event.input)
        if agent_id:
            task.agent_id = clean_name(agent_id)
            agent_name = A.agent_name_of(event.input)
            task.agent_name = clean_name(agent_name) if agent_name else None
            conversation = A.conversation_id_of(event.input)
            task.conversation_id = clean_name(conversation) if conversation else None
            server = A.server_of(event.input)
            if server is not None:
                task.server_address, task.server_port = clean_name(server[0]), server[1]
        if id_key is not None:
            run.add_open_id(task)
        else:
            run.open_by_name.setdefault(name_key, deque()).append(task)
        return []

    def _new_task(
        self, run: RunState, name: str, task_id: str | None, start_ns: int, adjusted: bool
    ) -> TaskState:
        name_key = digest(name)
        occurrence = 0
        if task_id is None:
            occurrence = run.occurrences.get(name_key, 0) + 1
            run.occurrences[name_key] = occurrence
        run.executions += 1
        span_id = task_span_id(run.flow_name, run.run_name, task_key(task_id, name, occurrence))
        return TaskState(
            task_name=clean_name(name),
            task_id=clean_name(task_id) if task_id is not None else None,
            name_key=name_key,
            id_key=digest(task_id) if task_id is not None else None,
            occurrence=occurrence,
            span_id=span_id,
            start_ns=start_ns,
            adjusted=adjusted,
        )

    def ended(
        self,
        run: RunState,
        event: TaskCompleted | TaskFailed,
        ts: int,
        adjusted: bool,
    ) -> list[TrackerOutput]:
        """End a task execution: its span (with a synthetic start if none was seen)."""
        keys = _keys(event)
        if keys is None:
            return _drop(run, event, DropReason.NO_TASK_IDENTITY)
        name, id_key, name_key = keys
        task: TaskState | None = None
        synthetic = False
        if id_key is not None:
            if id_key in run.finished_ids:
                return _drop(run, event, DropReason.DUPLICATE)
            task = run.open_by_id.pop(id_key, None)
            if task is None and event.task_name is not None:
                # The start carried no task_id: pair by name.
                task = run.pop_by_name(digest(event.task_name))
        else:
            task = run.pop_by_name(name_key)
            if task is None:
                # The start carried a task_id that the end lacks: pair by name.
                task = run.pop_open_id_by_name(name_key)
        if task is None:
            if run.executions >= self.max_executions:
                return _drop(run, event, DropReason.TASKS_FULL)
            synthetic = True
            start = ts - seconds_to_ns(event.execution_time or 0.0)
            if start <= 0:  # an execution_time longer than the epoch is not usable
                start = ts
            task = self._new_task(run, name, event.task_id, start, adjusted)
            if id_key is None:
                ends = run.unmatched_ends.setdefault(name_key, [])
                bisect.insort(ends, ts)
                if len(ends) > MAX_UNMATCHED_ENDS:
                    del ends[0]
        for finished in (id_key, task.id_key):
            if finished is not None:
                run.finished_ids.add(finished)
        end = max(ts, task.start_ns)
        return [spans.task_span(run, task, end, event, synthetic, self.policy, adjusted)]
