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

from collections import OrderedDict
from collections.abc import Iterator

from otel_bridge.core import attributes as A
from otel_bridge.core import spans
from otel_bridge.core.events import (
    FlowCompleted,
    FlowError,
    FlowStarted,
    TaskCompleted,
    TaskFailed,
    TaskStarted,
    TrackedEvent,
    UnknownEvent,
    event_fields,
)
from otel_bridge.core.ids import TraceParent, root_span_id, run_trace_id
from otel_bridge.core.outputs import DropReason, EventDropped, RunClosed, RunOpened, TrackerOutput
from otel_bridge.core.pairing import Pairing
from otel_bridge.core.records import Result
from otel_bridge.core.redaction import PayloadPolicy, clean_name
from otel_bridge.core.run_state import RunKey, RunState, digest, identity
from otel_bridge.core.sampling import Sampler


class Tracker:
    """Turns LAO events of many interleaved runs into finished span records."""

    def __init__(
        self,
        policy: PayloadPolicy | None = None,
        *,
        max_root_events: int = 128,
        remember_closed: int = 100_000,
        max_open_tasks: int = 1_000,
        max_executions: int = 100_000,
        max_open_runs: int = 100_000,
        sampler: Sampler | None = None,
    ) -> None:
        self.policy = policy or PayloadPolicy()
        self.max_root_events = max_root_events
        self.remember_closed = remember_closed
        self.max_open_tasks = max_open_tasks
        self.max_executions = max_executions
        self.max_open_runs = max_open_runs
        self.sampler = sampler or Sampler()
        self._pairing = Pairing(self.policy, max_open_tasks, max_executions)
        self._runs: dict[RunKey, RunState] = {}
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
        run = self._runs.get(key)
        if run is not None and run.spans_exported:
            return False
        if parent is None:
            self._parents.pop(key, None)
        else:
            self._parents[key] = parent
            while len(self._parents) > self.remember_closed:  # runs registered, never seen
                del self._parents[next(iter(self._parents))]
        if run is not None:
            run.parent = parent
            run.trace_id = parent.trace_id if parent else run_trace_id(flow_name, run_name)
            run.sampled = self.sampler.sampled(run.trace_id, parent)
        return True

    @property
    def runs(self) -> dict[RunKey, RunState]:
        """The runs in flight, by (flow_name, run_name); the engine's snapshot reads them."""
        return self._runs

    def open_runs(self) -> Iterator[RunKey]:
        """The (flow_name, run_name) of every run in flight."""
        return iter(list(self._runs))

    def is_open(self, flow_name: str, run_name: str) -> bool:
        """Tell whether a run is in flight."""
        return (flow_name, run_name) in self._runs

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
        run = self._runs.get(key)
        if run is not None:
            return run.trace_id
        closed = self._closed.get(key)
        if closed is not None:
            return closed
        parent = self._parents.get(key)
        return parent.trace_id if parent else run_trace_id(flow_name, run_name)

    # -- events -------------------------------------------------------------------------
    def feed(
        self,
        event: TrackedEvent,
        *,
        flow_name: str,
        run_name: str,
        received_ns: int,
        adjusted: bool = False,
    ) -> list[TrackerOutput]:
        """Apply one event of run (flow_name, run_name); return what it finished.

        ``adjusted`` says the event's timestamp was implausible and replaced by the receive
        time (the spans it touches say so: ``lao.timestamp.adjusted``).
        """
        key = (flow_name, run_name)
        if key in self._closed:
            return [EventDropped(flow_name, run_name, event.event_type, DropReason.AFTER_END)]
        out: list[TrackerOutput] = []
        run = self._runs.get(key)
        if run is None:
            if len(self._runs) >= self.max_open_runs:
                return [EventDropped(flow_name, run_name, event.event_type, DropReason.RUNS_FULL)]
            run = self._open(key, received_ns)
            out.append(RunOpened(flow_name, run_name, run.trace_id))
        ident = identity(event)
        if ident in run.seen:
            out.append(EventDropped(flow_name, run_name, event.event_type, DropReason.DUPLICATE))
            return out
        run.seen.add(ident)
        run.last_activity_ns = received_ns
        run.adjusted = run.adjusted or adjusted
        ts = event.timestamp_ns if event.timestamp_ns is not None else received_ns
        run.note_time(ts)
        match event:
            case FlowStarted():
                self._flow_started(run, event, ts)
            case TaskStarted():
                out.extend(self._pairing.started(run, event, ts, adjusted))
            case TaskCompleted() | TaskFailed():
                out.extend(self._pairing.ended(run, event, ts, adjusted))
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
        run.sampled = self.sampler.sampled(run.trace_id, parent)
        self._runs[key] = run
        return run

    def _flow_started(self, run: RunState, event: FlowStarted, ts: int) -> None:
        run.started_ns = ts if run.started_ns is None else min(run.started_ns, ts)
        self._note_flow_fields(run, event)

    def _note_flow_fields(self, run: RunState, event: TrackedEvent) -> None:
        """Keep the flow event's task_id and message, in their exported form."""
        if run.flow_task_id is None and event.task_id is not None:
            run.flow_task_id = clean_name(event.task_id)
        if run.message is None and event.message is not None:
            run.message = self.policy.text(event.message)

    def _unknown(
        self, run: RunState, event: UnknownEvent, ts: int, out: list[TrackerOutput]
    ) -> None:
        if len(run.root_events) >= self.max_root_events:
            out.append(self._drop(run, event, DropReason.ROOT_EVENTS_FULL))
            return
        fields = event_fields(event)
        run.root_events.append(A.unknown_event(event.event_type, ts, fields, self.policy))

    @staticmethod
    def _drop(run: RunState, event: TrackedEvent, reason: DropReason) -> EventDropped:
        return EventDropped(run.flow_name, run.run_name, event.event_type, reason)

    # -- closing runs -----------------------------------------------------------------
    def close_run(
        self, flow_name: str, run_name: str, result: Result, reason: str | None = None
    ) -> list[TrackerOutput]:
        """End a run that had no terminal event (``timeout`` or ``cancellation``).

        ``reason`` says why (``lao.run.close_reason`` on the root span).
        """
        run = self._runs.get((flow_name, run_name))
        if run is None:
            return []
        end = run.last_ns if run.last_ns is not None else run.last_activity_ns
        return list(self._finish(run, end, None, result, reason))

    def forget_run(self, flow_name: str, run_name: str, result: Result, reason: str) -> RunClosed:
        """Drop a run without building its spans (closing it failed); remember it as ended."""
        run = self._runs[(flow_name, run_name)]
        self._retire(run)
        return RunClosed(flow_name, run_name, run.trace_id, result, reason, without_root=True)

    def close_all(self, result: Result = Result.CANCELLATION) -> list[TrackerOutput]:
        """End every open run as incomplete (shutdown, end of replay input)."""
        out: list[TrackerOutput] = []
        for flow, run_name in list(self._runs):
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
            for key, run in self._runs.items()
            if now_ns - run.last_activity_ns >= inactivity_ns
            or (max_duration_ns is not None and now_ns - run.opened_at_ns >= max_duration_ns)
        ]

    def idle_ns(self, flow_name: str, run_name: str, now_ns: int) -> int:
        """How long a run in flight has had no event."""
        return now_ns - self._runs[(flow_name, run_name)].last_activity_ns

    def _finish(
        self,
        run: RunState,
        terminal_ns: int,
        terminal: FlowCompleted | FlowError | None,
        result: Result | None = None,
        reason: str | None = None,
    ) -> list[TrackerOutput]:
        out: list[TrackerOutput] = []
        open_tasks = list(run.open_tasks())
        end = terminal_ns
        for candidate in (run.max_task_end_ns, *(t.start_ns for t in open_tasks)):
            if candidate is not None:
                end = max(end, candidate)
        completed_keys: set[str] = set()
        if isinstance(terminal, FlowCompleted) and isinstance(terminal.output, dict):
            completed_keys = {digest(str(k)) for k in terminal.output}
        if terminal is not None:
            self._note_flow_fields(run, terminal)
        for task in open_tasks:
            task_result = Result.SUCCESS if task.name_key in completed_keys else Result.CANCELLATION
            out.append(spans.incomplete_task_span(run, task, end, task_result, self.policy))
        root = spans.root_span(run, end, terminal, result, self.policy, reason)
        out.append(root)
        self._retire(run)
        out.append(RunClosed(run.flow_name, run.run_name, run.trace_id, root.result, reason))
        return out

    def _retire(self, run: RunState) -> None:
        """Forget an open run and remember it as ended."""
        key = run.key
        del self._runs[key]
        self._parents.pop(key, None)
        self.remember_closed_run(run.flow_name, run.run_name, run.trace_id)
