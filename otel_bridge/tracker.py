"""Where events become spans: the run tracker, the pure core of the bridge.

Events in, finished :class:`SpanRecord` out; no asyncio, no sockets, no clock reads (the
caller passes the receive time). One :class:`RunState` per (flow_name, run_name); the work
per event does not grow with the number of runs in flight.

Behaviour on the real stream (see docs/telemetry-contract.md):

- duplicates (same type, task, timestamp and message) are dropped;
- a task end with no start becomes a span with a synthetic start (end - execution_time);
  its late start, when it comes, is dropped, never exported twice;
- tasks without ``task_id`` pair start and end by ``task_name``, first in first out;
- a run first seen mid-way gets a synthetic root start (earliest event seen);
- the terminal event ends open tasks with the run; events after it are dropped;
- a run closed without a terminal event (watchdog, shutdown, end of input) is incomplete.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from otel_bridge import attributes as A
from otel_bridge.events import (
    FlowCompleted,
    FlowError,
    FlowStarted,
    TaskCompleted,
    TaskFailed,
    TaskStarted,
    UnknownEvent,
)
from otel_bridge.ids import TraceParent, root_span_id, run_trace_id, task_key, task_span_id
from otel_bridge.redaction import PayloadPolicy
from otel_bridge.spans import (
    AttributeValue,
    EventDropped,
    Result,
    RunOpened,
    SpanEvent,
    SpanRecord,
    StatusCode,
    TrackerOutput,
)
from otel_bridge.timestamps import seconds_to_ns

TrackedEvent = (
    FlowStarted
    | TaskStarted
    | TaskCompleted
    | TaskFailed
    | FlowCompleted
    | FlowError
    | UnknownEvent
)
RunKey = tuple[str, str]
Identity = tuple[str, str | None, str | None, int | None, str | None]


def _identity(event: TrackedEvent) -> Identity:
    """Return what makes two events the same event: a second one is a duplicate."""
    extra: str | None = None
    if event.timestamp_ns is None:
        # A digest, not the event: identities are saved by ``replay --state`` and must not
        # carry payloads (or the secrets in them) to disk.
        extra = hashlib.sha256(event.model_dump_json().encode()).hexdigest()
    elif isinstance(event, UnknownEvent):
        extra = event.message
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

    def note_time(self, ts: int) -> None:
        """Widen the run's seen time range."""
        self.first_ns = ts if self.first_ns is None else min(self.first_ns, ts)
        self.last_ns = ts if self.last_ns is None else max(self.last_ns, ts)

    def open_tasks(self) -> Iterator[TaskState]:
        """Every open task execution, in start order."""
        tasks = list(self.open_by_id.values())
        for queue in self.open_by_name.values():
            tasks.extend(queue)
        return iter(sorted(tasks, key=lambda t: (t.start_ns, t.task_name)))


class Tracker:
    """Turns LAO events of many interleaved runs into finished span records."""

    def __init__(
        self,
        policy: PayloadPolicy | None = None,
        *,
        max_root_events: int = 128,
        remember_closed: int = 100_000,
    ) -> None:
        self.policy = policy or PayloadPolicy()
        self.max_root_events = max_root_events
        self.remember_closed = remember_closed
        self.runs: dict[RunKey, RunState] = {}
        self._parents: dict[RunKey, TraceParent] = {}
        # Closed runs (most recent last) and the trace id each was exported in.
        self._closed: OrderedDict[RunKey, int] = OrderedDict()

    # -- registration and lookup ------------------------------------------------------
    def set_parent(self, flow_name: str, run_name: str, parent: TraceParent | None) -> bool:
        """Make a run's root a child of a caller's span (from a registered traceparent).

        The run's trace id becomes the traceparent's. A run that has already exported
        spans keeps its trace (moving would split it in two); False says so.
        """
        key = (flow_name, run_name)
        if key in self._closed:
            return False
        run = self.runs.get(key)
        if run is not None and run.spans_exported:
            return False
        if parent is None:
            self._parents.pop(key, None)
        else:
            self._parents[key] = parent
        if run is not None:
            run.parent = parent
            run.trace_id = parent.trace_id if parent else run_trace_id(flow_name, run_name)
        return True

    def is_closed(self, flow_name: str, run_name: str) -> bool:
        """Tell whether a run has ended (recently enough to be remembered)."""
        return (flow_name, run_name) in self._closed

    def closed_runs(self) -> list[tuple[str, str, int]]:
        """The ended runs remembered (oldest first) with their trace ids."""
        return [(flow, run, trace) for (flow, run), trace in self._closed.items()]

    def remember_closed_run(self, flow_name: str, run_name: str, trace_id: int) -> None:
        """Remember a run as ended in ``trace_id`` (restoring saved state)."""
        self._closed[(flow_name, run_name)] = trace_id
        while len(self._closed) > self.remember_closed:
            self._closed.popitem(last=False)

    def trace_id_of(self, flow_name: str, run_name: str) -> int:
        """Return the run's trace id: the one it is (or was) exported in, else the planned one."""
        key = (flow_name, run_name)
        run = self.runs.get(key)
        if run is not None:
            return run.trace_id
        closed = self._closed.get(key)
        if closed is not None:
            return closed
        parent = self._parents.get(key)
        return parent.trace_id if parent else run_trace_id(flow_name, run_name)

    # -- events -------------------------------------------------------------------------
    def feed(
        self, event: TrackedEvent, *, flow_name: str, run_name: str, received_ns: int
    ) -> list[TrackerOutput]:
        """Apply one event of run (flow_name, run_name); return what it finished."""
        key = (flow_name, run_name)
        if key in self._closed:
            return [EventDropped(flow_name, run_name, event.event_type, "after_end")]
        out: list[TrackerOutput] = []
        run = self.runs.get(key)
        if run is None:
            run = self._open(key, received_ns)
            out.append(RunOpened(flow_name, run_name, run.trace_id))
        ident = _identity(event)
        if ident in run.seen:
            out.append(EventDropped(flow_name, run_name, event.event_type, "duplicate"))
            return out
        run.seen.add(ident)
        run.last_activity_ns = received_ns
        ts = event.timestamp_ns if event.timestamp_ns is not None else received_ns
        run.note_time(ts)
        match event:
            case FlowStarted():
                self._flow_started(run, event, ts)
            case TaskStarted():
                self._task_started(run, event, ts, out)
            case TaskCompleted() | TaskFailed():
                self._task_ended(run, event, ts, out)
            case FlowCompleted() | FlowError():
                out.extend(self._finish(run, ts, event))
            case UnknownEvent():
                self._unknown(run, event, ts, out)
        return out

    def _open(self, key: RunKey, received_ns: int) -> RunState:
        flow, run_name = key
        parent = self._parents.get(key)
        run = RunState(
            flow_name=flow,
            run_name=run_name,
            trace_id=parent.trace_id if parent else run_trace_id(flow, run_name),
            root_span_id=root_span_id(flow, run_name),
            parent=parent,
            opened_at_ns=received_ns,
            last_activity_ns=received_ns,
        )
        self.runs[key] = run
        return run

    def _flow_started(self, run: RunState, event: FlowStarted, ts: int) -> None:
        run.started_ns = ts if run.started_ns is None else min(run.started_ns, ts)
        run.flow_task_id = run.flow_task_id or event.task_id
        run.message = run.message or event.message

    def _task_started(
        self, run: RunState, event: TaskStarted, ts: int, out: list[TrackerOutput]
    ) -> None:
        name = event.task_name or event.task_id
        if name is None:
            out.append(self._drop(run, event, "no_task_identity"))
            return
        if event.task_id is not None:
            if event.task_id in run.finished_ids:
                out.append(self._drop(run, event, "late_start"))
                return
            if event.task_id in run.open_by_id:
                out.append(self._drop(run, event, "duplicate"))
                return
            task = self._new_task(run, name, event.task_id, ts, event.input)
            run.open_by_id[event.task_id] = task
            return
        ends = run.unmatched_ends.get(name)
        if ends:
            match = next((i for i, end in enumerate(ends) if end >= ts), None)
            if match is not None:
                del ends[match]
                out.append(self._drop(run, event, "late_start"))
                return
        task = self._new_task(run, name, None, ts, event.input)
        run.open_by_name.setdefault(name, []).append(task)

    def _new_task(
        self, run: RunState, name: str, task_id: str | None, start_ns: int, task_input: Any
    ) -> TaskState:
        occurrence = 0
        if task_id is None:
            occurrence = run.occurrences.get(name, 0) + 1
            run.occurrences[name] = occurrence
        key = task_key(task_id, name, occurrence)
        span_id = task_span_id(run.flow_name, run.run_name, key)
        return TaskState(name, task_id, occurrence, span_id, start_ns, task_input)

    def _task_ended(
        self, run: RunState, event: TaskCompleted | TaskFailed, ts: int, out: list[TrackerOutput]
    ) -> None:
        name = event.task_name or event.task_id
        if name is None:
            out.append(self._drop(run, event, "no_task_identity"))
            return
        task: TaskState | None = None
        synthetic = False
        if event.task_id is not None:
            if event.task_id in run.finished_ids:
                out.append(self._drop(run, event, "duplicate"))
                return
            task = run.open_by_id.pop(event.task_id, None)
            if task is None and event.task_name is not None:
                # The start carried no task_id: pair by name.
                task = self._pop_by_name(run, event.task_name)
        else:
            task = self._pop_by_name(run, name)
            if task is None:
                # The start carried a task_id that the end lacks: pair by name.
                task = self._pop_open_id_by_name(run, name)
        if task is None:
            synthetic = True
            start = ts - seconds_to_ns(event.execution_time or 0.0)
            if start <= 0:  # an execution_time longer than the epoch is not usable
                start = ts
            task = self._new_task(run, name, event.task_id, start, None)
            if event.task_id is None:
                run.unmatched_ends.setdefault(name, []).append(ts)
        for finished_id in (event.task_id, task.task_id):
            if finished_id is not None:
                run.finished_ids.add(finished_id)
        out.append(self._task_span(run, task, max(ts, task.start_ns), event, synthetic))

    @staticmethod
    def _pop_by_name(run: RunState, name: str) -> TaskState | None:
        """Take the oldest open execution of ``name`` that started without a task_id."""
        queue = run.open_by_name.get(name)
        if not queue:
            return None
        task = queue.pop(0)
        if not queue:
            del run.open_by_name[name]
        return task

    @staticmethod
    def _pop_open_id_by_name(run: RunState, name: str) -> TaskState | None:
        """Take the earliest-started open execution of ``name`` that has a task_id."""
        candidates = [(t.start_ns, k) for k, t in run.open_by_id.items() if t.task_name == name]
        if not candidates:
            return None
        return run.open_by_id.pop(min(candidates)[1])

    def _unknown(
        self, run: RunState, event: UnknownEvent, ts: int, out: list[TrackerOutput]
    ) -> None:
        if len(run.root_events) >= self.max_root_events:
            out.append(self._drop(run, event, "root_events_full"))
            return
        fields = event.model_dump(by_alias=True)
        run.root_events.append(A.unknown_event(event.event_type, ts, fields, self.policy))

    @staticmethod
    def _drop(run: RunState, event: TrackedEvent, reason: Any) -> EventDropped:
        return EventDropped(run.flow_name, run.run_name, event.event_type, reason)

    # -- closing runs -----------------------------------------------------------------
    def close_run(self, flow_name: str, run_name: str, result: Result) -> list[TrackerOutput]:
        """End a run that had no terminal event (``timeout`` or ``cancellation``)."""
        run = self.runs.get((flow_name, run_name))
        if run is None:
            return []
        end = run.last_ns if run.last_ns is not None else run.last_activity_ns
        return list(self._finish(run, end, None, result))

    def close_all(self, result: Result = Result.CANCELLATION) -> list[TrackerOutput]:
        """End every open run as incomplete (shutdown, end of replay input)."""
        out: list[TrackerOutput] = []
        for flow, run_name in list(self.runs):
            out.extend(self.close_run(flow, run_name, result))
        return out

    def expire(
        self, now_ns: int, *, inactivity_ns: int, max_duration_ns: int | None = None
    ) -> list[TrackerOutput]:
        """Close runs idle for ``inactivity_ns`` or older than ``max_duration_ns`` (timeout)."""
        out: list[TrackerOutput] = []
        for key in self.expired_runs(
            now_ns, inactivity_ns=inactivity_ns, max_duration_ns=max_duration_ns
        ):
            out.extend(self.close_run(*key, Result.TIMEOUT))
        return out

    def expired_runs(
        self, now_ns: int, *, inactivity_ns: int, max_duration_ns: int | None = None
    ) -> list[RunKey]:
        """The runs idle for ``inactivity_ns`` or older than ``max_duration_ns``."""
        return [
            key
            for key, run in self.runs.items()
            if now_ns - run.last_activity_ns >= inactivity_ns
            or (max_duration_ns is not None and now_ns - run.opened_at_ns >= max_duration_ns)
        ]

    def _finish(
        self,
        run: RunState,
        terminal_ns: int,
        terminal: FlowCompleted | FlowError | None,
        result: Result | None = None,
    ) -> list[TrackerOutput]:
        out: list[TrackerOutput] = []
        open_tasks = list(run.open_tasks())
        end = terminal_ns
        for candidate in (run.max_task_end_ns, *(t.start_ns for t in open_tasks)):
            if candidate is not None:
                end = max(end, candidate)
        completed_keys: set[str] = set()
        if isinstance(terminal, FlowCompleted) and isinstance(terminal.output, dict):
            completed_keys = {str(k) for k in terminal.output}
        for task in open_tasks:
            task_result = (
                Result.SUCCESS if task.task_name in completed_keys else Result.CANCELLATION
            )
            out.append(self._incomplete_task_span(run, task, end, task_result))
        out.append(self._root_span(run, end, terminal, result))
        key = (run.flow_name, run.run_name)
        del self.runs[key]
        self._parents.pop(key, None)
        self._closed[key] = run.trace_id
        while len(self._closed) > self.remember_closed:
            self._closed.popitem(last=False)
        return out

    # -- span records -------------------------------------------------------------------
    def _task_base_attrs(self, run: RunState, task: TaskState) -> dict[str, AttributeValue]:
        run_id = task.task_id or f"{task.task_name}#{task.occurrence}"
        attrs: dict[str, AttributeValue] = {
            "lao.flow.name": run.flow_name,
            "lao.run.name": run.run_name,
            "lao.task.name": task.task_name,
            "cicd.pipeline.task.name": task.task_name,
            "cicd.pipeline.task.run.id": run_id,
        }
        if task.task_id is not None:
            attrs["lao.task.id"] = task.task_id
        agent_id = A.agent_id_of(task.input)
        if agent_id:
            attrs["gen_ai.operation.name"] = "invoke_agent"
            attrs["gen_ai.agent.id"] = agent_id
            agent_name = A.agent_name_of(task.input)
            if agent_name:
                attrs["gen_ai.agent.name"] = agent_name
        A.put_payload(attrs, "lao.task.input", task.input, self.policy)
        return attrs

    def _task_record(
        self,
        run: RunState,
        task: TaskState,
        end_ns: int,
        attrs: dict[str, AttributeValue],
        status: StatusCode,
        message: str | None,
        result: Result,
        events: tuple[SpanEvent, ...] = (),
        error_type: str | None = None,
    ) -> SpanRecord:
        run.min_task_start_ns = (
            task.start_ns
            if run.min_task_start_ns is None
            else min(run.min_task_start_ns, task.start_ns)
        )
        run.max_task_end_ns = (
            end_ns if run.max_task_end_ns is None else max(run.max_task_end_ns, end_ns)
        )
        attrs["cicd.pipeline.task.run.result"] = result.value
        run.spans_exported = True
        return SpanRecord(
            kind="task",
            flow_name=run.flow_name,
            run_name=run.run_name,
            task_name=task.task_name,
            trace_id=run.trace_id,
            span_id=task.span_id,
            parent_span_id=run.root_span_id,
            parent_is_remote=False,
            name=A.task_span_name(task.task_name, A.agent_id_of(task.input)),
            start_ns=task.start_ns,
            end_ns=end_ns,
            attributes=attrs,
            events=events,
            status=status,
            status_message=message,
            result=result,
            error_type=error_type,
        )

    def _task_span(
        self,
        run: RunState,
        task: TaskState,
        end_ns: int,
        event: TaskCompleted | TaskFailed,
        synthetic: bool,
    ) -> SpanRecord:
        attrs = self._task_base_attrs(run, task)
        if synthetic:
            attrs["lao.span.synthetic_start"] = True
        if event.execution_time is not None:
            attrs["lao.task.execution_time_s"] = event.execution_time
        if isinstance(event, TaskCompleted):
            A.put_payload(attrs, "lao.task.output", event.output, self.policy)
            return self._task_record(run, task, end_ns, attrs, StatusCode.OK, None, Result.SUCCESS)
        error_type, description = A.put_error(attrs, event.error, self.policy)
        A.put_payload(attrs, "lao.partial_results", event.partial_results, self.policy)
        events = (A.exception_event(end_ns, error_type, description),)
        return self._task_record(
            run,
            task,
            end_ns,
            attrs,
            StatusCode.ERROR,
            description,
            Result.FAILURE,
            events,
            error_type,
        )

    def _incomplete_task_span(
        self, run: RunState, task: TaskState, end_ns: int, result: Result
    ) -> SpanRecord:
        attrs = self._task_base_attrs(run, task)
        attrs["lao.task.incomplete"] = True
        return self._task_record(run, task, end_ns, attrs, StatusCode.UNSET, None, result)

    def _root_span(
        self,
        run: RunState,
        end_ns: int,
        terminal: FlowCompleted | FlowError | None,
        closed_as: Result | None,
    ) -> SpanRecord:
        attrs: dict[str, AttributeValue] = {
            "lao.flow.name": run.flow_name,
            "lao.run.name": run.run_name,
            "cicd.pipeline.name": run.flow_name,
            "cicd.pipeline.run.id": run.run_name,
            "gen_ai.operation.name": "invoke_workflow",
            "gen_ai.workflow.name": run.flow_name,
        }
        if terminal is not None:
            run.flow_task_id = run.flow_task_id or terminal.task_id
            run.message = run.message or terminal.message
        if run.flow_task_id:
            attrs["lao.flow.task_id"] = run.flow_task_id
        if run.message:
            attrs["lao.message"] = self.policy.text(run.message)
        start = run.started_ns
        if start is None:
            attrs["lao.span.synthetic_start"] = True
            start = run.first_ns if run.first_ns is not None else end_ns
        if run.min_task_start_ns is not None:
            start = min(start, run.min_task_start_ns)
        start = min(start, end_ns)
        events = list(run.root_events)
        status, message, error_type = StatusCode.UNSET, None, None
        if isinstance(terminal, FlowCompleted):
            result, status = Result.SUCCESS, StatusCode.OK
            if terminal.total_execution_time is not None:
                attrs["lao.flow.total_execution_time_s"] = terminal.total_execution_time
            A.put_payload(attrs, "lao.flow.output", terminal.output, self.policy)
        elif isinstance(terminal, FlowError):
            result, status = Result.FAILURE, StatusCode.ERROR
            error_type, message = A.put_error(attrs, terminal.error, self.policy)
            A.put_payload(attrs, "lao.partial_results", terminal.partial_results, self.policy)
            events.append(A.exception_event(end_ns, error_type, message))
        else:
            result = closed_as or Result.CANCELLATION
            attrs["lao.run.incomplete"] = True
        attrs["cicd.pipeline.result"] = result.value
        return SpanRecord(
            kind="run",
            flow_name=run.flow_name,
            run_name=run.run_name,
            task_name=None,
            trace_id=run.trace_id,
            span_id=run.root_span_id,
            parent_span_id=run.parent.span_id if run.parent else None,
            parent_is_remote=run.parent is not None,
            name=A.root_span_name(run.flow_name),
            start_ns=start,
            end_ns=end_ns,
            attributes=attrs,
            events=tuple(sorted(events, key=lambda e: e.time_ns)),
            status=status,
            status_message=message,
            result=result,
            error_type=error_type,
        )
