"""The ``x-sim`` simulation hints of a run-dag body (our extension; LAO ignores them).

On a task: ``duration`` and ``delay`` (simulated seconds: running time, and wait before
task_started), ``fail`` (true or an error object with type, message, code, details,
partial_results), ``hang`` (true: started but never reported done while the flow goes on;
``"forever"``: never ends, nor does its run), ``output``, ``branch`` (``"true"``/``"false"``
or a route value) and ``task_id``.

On the body: ``duration`` (the default task duration), ``task_id`` (the run-level id of
flow_started, flow_error and the run-dag answer), ``complete_task_id`` (flow_completed's
id, default ``"pipeline-complete"``), ``message`` (flow_started's), ``output`` (merged into
flow_completed's output), ``error`` and ``partial_results`` (flow_error's),
``omit_task_ids`` and ``timestamps`` (override the socket quirks for this run).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from otel_bridge.simulator.checks import (
    JSON,
    FlowError,
    branch_value,
    require_name,
    require_number,
    require_object,
)

HangMode = Literal["none", "unreported", "forever"]
TIMESTAMP_STYLES = ("seconds", "milliseconds", "iso")


@dataclass(frozen=True)
class Failure:
    """How a task fails: the ``error`` object and ``partial_results`` of its task_failed."""

    type: str = "TaskExecutionError"
    message: str = "task failed"
    code: str = "TASK_FAILED"
    details: JSON = field(default_factory=dict)
    partial_results: JSON = field(default_factory=dict)

    def error(self) -> JSON:
        """Return the event's ``error`` object."""
        return {
            "type": self.type,
            "message": self.message,
            "code": self.code,
            "details": self.details,
        }


@dataclass(frozen=True)
class TaskHints:
    """A task's ``x-sim`` hints; None means "let the seeded planner choose".

    ``hang``: ``"unreported"`` (``"hang": true``) starts the task and never reports its end,
    though the flow goes on (the seed's send_notifications); ``"forever"`` never ends it.
    """

    duration: float | None = None
    delay: float = 0.0
    fail: Failure | None = None
    hang: HangMode = "none"
    output: JSON | None = None
    branch: str | None = None
    task_id: str | None = None


@dataclass(frozen=True)
class FlowHints:
    """The body's top-level ``x-sim`` hints: run-level ids, messages and task defaults."""

    duration: float | None = None
    task_id: str | None = None
    complete_task_id: str = "pipeline-complete"
    message: str | None = None
    output: JSON = field(default_factory=dict)
    error: JSON | None = None
    partial_results: JSON | None = None
    omit_task_ids: bool | None = None
    timestamps: str | None = None


def parse_task_hints(raw: object, name: str) -> TaskHints:
    """Parse the ``x-sim`` object of the task called ``name``."""
    where = f"task {name!r} x-sim"
    hints = require_object(raw, where)
    duration = hints.get("duration")
    fail = hints.get("fail")
    failure: Failure | None = None
    if fail is True:
        failure = Failure(message=f"task {name} failed")
    elif isinstance(fail, dict):
        failure = Failure(
            type=str(fail.get("type", "TaskExecutionError")),
            message=str(fail.get("message", f"task {name} failed")),
            code=str(fail.get("code", "TASK_FAILED")),
            details=require_object(fail.get("details", {}), f"{where}.fail.details"),
            partial_results=require_object(
                fail.get("partial_results", {}), f"{where}.fail.partial_results"
            ),
        )
    elif fail not in (None, False):
        raise FlowError(f"{where}.fail must be true or an error object")
    hang = hints.get("hang", False)
    if hang not in (False, True, "forever"):
        raise FlowError(f"{where}.hang must be true, false or 'forever'")
    output = hints.get("output")
    branch = hints.get("branch")
    task_id = hints.get("task_id")
    return TaskHints(
        duration=None if duration is None else require_number(duration, f"{where}.duration"),
        delay=require_number(hints.get("delay", 0.0), f"{where}.delay"),
        fail=failure,
        hang="forever" if hang == "forever" else ("unreported" if hang else "none"),
        output=None if output is None else require_object(output, f"{where}.output"),
        branch=None if branch is None else branch_value(branch),
        task_id=None if task_id is None else require_name(task_id, f"{where}.task_id"),
    )


def parse_flow_hints(raw: object) -> FlowHints:
    """Parse the body's top-level ``x-sim`` object."""
    hints = require_object(raw, "body.x-sim")
    duration = hints.get("duration")
    error = hints.get("error")
    partial = hints.get("partial_results")
    omit = hints.get("omit_task_ids")
    style = hints.get("timestamps")
    if style is not None and style not in TIMESTAMP_STYLES:
        raise FlowError(f"body.x-sim.timestamps must be one of {', '.join(TIMESTAMP_STYLES)}")
    task_id, message = hints.get("task_id"), hints.get("message")
    return FlowHints(
        duration=None if duration is None else require_number(duration, "body.x-sim.duration"),
        task_id=None if task_id is None else require_name(task_id, "body.x-sim.task_id"),
        complete_task_id=require_name(
            hints.get("complete_task_id", "pipeline-complete"), "body.x-sim.complete_task_id"
        ),
        message=None if message is None else str(message),
        output=require_object(hints.get("output", {}), "body.x-sim.output"),
        error=None if error is None else require_object(error, "body.x-sim.error"),
        partial_results=None
        if partial is None
        else require_object(partial, "body.x-sim.partial_results"),
        omit_task_ids=None if omit is None else bool(omit),
        timestamps=None if style is None else str(style),
    )
