"""Playing a planned run: tasks in dependency order, independent siblings concurrently.

:class:`Schedule` is the pure part (which tasks may start, which are skipped); :func:`play`
drives it with asyncio, sleeping each task's planned duration times ``time_scale`` and
emitting events as it goes. A failure halts the schedule: no new task starts, tasks
already running finish (their events are sent), then flow_error. A task planned to hang
"forever" never finishes, so neither does its run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from otel_bridge.simulator.events import EventBuilder
from otel_bridge.simulator.flow import JSON, Flow, resolve_params
from otel_bridge.simulator.plan import RunPlan

Emit = Callable[[JSON], None]


class Schedule:
    """Which tasks of a flow may start, given what finished and which branches were chosen.

    Call :meth:`take_ready` for the tasks to start now, then :meth:`finish` or :meth:`fail`
    for each as it ends. A task is skipped (never started, no events) when a parent was
    skipped or a conditional edge into it was not taken.
    """

    def __init__(self, flow: Flow) -> None:
        self._flow = flow
        self.pending: list[str] = [task.name for task in flow.tasks]
        self.running: set[str] = set()
        self.finished: dict[str, str | None] = {}
        self.skipped: set[str] = set()
        self.failed: set[str] = set()

    @property
    def halted(self) -> bool:
        """Whether a task failed, so nothing more may start."""
        return bool(self.failed)

    @property
    def settled(self) -> bool:
        """Whether nothing runs and nothing more can start."""
        return not self.running and (self.halted or not self.pending)

    def take_ready(self) -> list[str]:
        """Mark and return the tasks that may start now; skip the ones that never will."""
        if self.halted:
            return []
        ready: list[str] = []
        for name in list(self.pending):
            parents = self._flow.parents[name]
            if any(parent in self.skipped for parent in parents):
                self._skip(name)
            elif all(parent in self.finished for parent in parents):
                if self._branches_taken(name):
                    self.pending.remove(name)
                    self.running.add(name)
                    ready.append(name)
                else:
                    self._skip(name)
        return ready

    def finish(self, name: str, branch: str | None = None) -> None:
        """Record that ``name`` completed, having chosen ``branch`` if it branches."""
        self.running.discard(name)
        self.finished[name] = branch

    def fail(self, name: str) -> None:
        """Record that ``name`` failed, which halts the schedule."""
        self.running.discard(name)
        self.failed.add(name)

    def _skip(self, name: str) -> None:
        self.pending.remove(name)
        self.skipped.add(name)

    def _branches_taken(self, name: str) -> bool:
        by_source: dict[str, set[str | None]] = {}
        for edge in self._flow.edges_into(name):
            by_source.setdefault(edge.source, set()).add(edge.condition)
        for source, conditions in by_source.items():
            if None not in conditions and self.finished.get(source) not in conditions:
                return False
        return True


@dataclass
class RunState:
    """A run's live status and the events it played, as the server reports them."""

    task_id: str
    flow_name: str
    run_name: str
    status: str = "processing"
    results: JSON = field(default_factory=dict)
    events: list[JSON] = field(default_factory=list)
    finished: asyncio.Event = field(default_factory=asyncio.Event)


async def play(
    flow: Flow,
    plan: RunPlan,
    state: RunState,
    emit: Emit,
    *,
    time_scale: float = 1.0,
    clock: Callable[[], float] = time.time,
) -> None:
    """Play ``plan`` for ``flow``: record each event in ``state.events`` and pass it to ``emit``."""
    builder = EventBuilder(
        flow.flow_name,
        flow.run_name,
        timestamps=plan.timestamps,
        omit_task_ids=plan.omit_task_ids,
        clock=clock,
    )
    order = {task.name: index for index, task in enumerate(flow.tasks)}
    outputs: JSON = {}

    def send(event: JSON) -> None:
        state.events.append(event)
        emit(event)

    async def run_task(name: str) -> float:
        task_plan = plan.tasks[name]
        if task_plan.delay:
            await asyncio.sleep(task_plan.delay * time_scale)
        task_input = resolve_params(flow.task(name), flow.default_inputs, outputs)
        send(builder.task_started(task_plan.task_id, name, task_input))
        started = clock()
        if task_plan.outcome == "forever":
            return 0.0
        seconds = task_plan.duration * time_scale
        if task_plan.progress:
            await asyncio.sleep(seconds / 2)
            send(builder.task_progress(task_plan.task_id, name, 0.5))
            seconds /= 2
        await asyncio.sleep(seconds)
        return clock() - started

    schedule = Schedule(flow)
    running: dict[asyncio.Task[float], str] = {}
    start = clock()
    send(builder.flow_started(plan.run_id, plan.message))
    try:
        while True:
            for name in schedule.take_ready():
                running[asyncio.create_task(run_task(name))] = name
            if not running:
                break
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for finished in sorted(done, key=lambda item: order[running[item]]):
                name = running.pop(finished)
                elapsed = finished.result()
                task_plan = plan.tasks[name]
                if task_plan.outcome == "failed":
                    error, partial = task_plan.error or {}, task_plan.partial_results or {}
                    send(builder.task_failed(task_plan.task_id, name, elapsed, error, partial))
                    schedule.fail(name)
                elif task_plan.outcome != "forever":
                    outputs[name] = state.results[name] = task_plan.output
                    if task_plan.outcome == "completed":
                        send(
                            builder.task_completed(
                                task_plan.task_id, name, elapsed, task_plan.output
                            )
                        )
                    schedule.finish(name, task_plan.branch)
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running)
    if schedule.halted:
        failed = min(schedule.failed, key=order.__getitem__)
        error = plan.flow_error or _default_flow_error(failed, plan.tasks[failed].error)
        flow_partial = plan.flow_partial_results
        partial_results = dict(outputs) if flow_partial is None else flow_partial
        send(builder.flow_error(plan.run_id, error, partial_results))
        state.status = "failed"
    elif not schedule.settled:
        await asyncio.Event().wait()  # a task hangs forever: so does the run
    else:
        total = clock() - start
        send(builder.flow_completed(plan.complete_task_id, total, {**outputs, **plan.extra_output}))
        state.status = "completed"
    state.finished.set()


def _default_flow_error(task_name: str, task_error: JSON | None) -> JSON:
    reason = (task_error or {}).get("message", "task failed")
    return {
        "type": "FlowExecutionError",
        "message": f"Task {task_name} failed: {reason}; stopping pipeline",
        "code": "TASK_FAILED",
        "failed_task": task_name,
    }
