"""Event dicts in exactly the shape of the LAO docs' examples.

Keys come in the seed's order: ``event_type``, ``task_id``, ``task_name``, ``flow_name``,
``run_name``, ``timestamp``, then the event's payload. Run-level events carry a run-level
``task_id`` (``"cust-support-001"``, ``"pipeline-complete"``); with ``omit_task_ids`` no
event carries one (the seed's Financial_Data_Pipeline).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

JSON = dict[str, Any]

DOCUMENTED_EVENTS = (
    "flow_started",
    "task_started",
    "task_completed",
    "task_failed",
    "flow_completed",
    "flow_error",
)
TERMINAL_EVENTS = frozenset({"flow_completed", "flow_error"})


def format_timestamp(seconds: float, style: str) -> float | int | str:
    """Render epoch seconds as LAO would in ``style``: seconds, milliseconds or iso."""
    if style == "milliseconds":
        return round(seconds * 1000)
    if style == "iso":
        moment = datetime.fromtimestamp(seconds, UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return round(seconds, 6)


def is_terminal(event: JSON) -> bool:
    """Whether an event ends its run (flow_completed or flow_error)."""
    return event.get("event_type") in TERMINAL_EVENTS


@dataclass
class EventBuilder:
    """Builds one run's events, stamping each with the clock at build time."""

    flow_name: str
    run_name: str
    timestamps: str = "seconds"
    omit_task_ids: bool = False
    clock: Callable[[], float] = field(default=time.time)

    def _event(self, event_type: str, task_id: str | None, task_name: str | None) -> JSON:
        event: JSON = {"event_type": event_type}
        if task_id is not None and not self.omit_task_ids:
            event["task_id"] = task_id
        if task_name is not None:
            event["task_name"] = task_name
        event["flow_name"] = self.flow_name
        event["run_name"] = self.run_name
        event["timestamp"] = format_timestamp(self.clock(), self.timestamps)
        return event

    def flow_started(self, run_id: str, message: str) -> JSON:
        """Return a flow_started event."""
        return {**self._event("flow_started", run_id, None), "message": message}

    def task_started(self, task_id: str, task_name: str, task_input: JSON) -> JSON:
        """Return a task_started event whose ``input`` is the task's resolved params."""
        return {**self._event("task_started", task_id, task_name), "input": task_input}

    def task_progress(self, task_id: str, task_name: str, progress: float) -> JSON:
        """Return an undocumented ``task_progress`` event (for the unknown-event quirk)."""
        event = self._event("task_progress", task_id, task_name)
        return {**event, "progress": round(progress, 3), "message": f"{task_name} in progress"}

    def task_completed(
        self, task_id: str, task_name: str, execution_time: float, output: JSON
    ) -> JSON:
        """Return a task_completed event."""
        event = self._event("task_completed", task_id, task_name)
        return {**event, "execution_time": round(execution_time, 3), "output": output}

    def task_failed(
        self,
        task_id: str,
        task_name: str,
        execution_time: float,
        error: JSON,
        partial_results: JSON,
    ) -> JSON:
        """Return a task_failed event."""
        event = self._event("task_failed", task_id, task_name)
        return {
            **event,
            "execution_time": round(execution_time, 3),
            "error": error,
            "partial_results": partial_results,
        }

    def flow_completed(self, complete_id: str, total_execution_time: float, output: JSON) -> JSON:
        """Return a flow_completed event (``task_name`` "flow", output keyed by task name)."""
        event = self._event("flow_completed", complete_id, "flow")
        return {
            **event,
            "total_execution_time": round(total_execution_time, 3),
            "output": output,
        }

    def flow_error(self, run_id: str, error: JSON, partial_results: JSON) -> JSON:
        """Return a flow_error event."""
        event = self._event("flow_error", run_id, None)
        return {**event, "error": error, "partial_results": partial_results}
