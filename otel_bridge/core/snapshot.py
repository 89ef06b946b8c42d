"""The tracker's open runs as JSON-able data, and back: what ``--state`` files hold.

:func:`snapshot` and :func:`restore` are pure; the drivers read and write the files
(:mod:`otel_bridge.sources.replay`). The document carries a version number; one of another
version is refused with a clear :class:`StateError`. The run state holds only what the
spans would export (inputs redacted and capped, names cleaned) and digests of ids, so a
state file holds no secret the spans would not.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from otel_bridge.core.errors import StateError
from otel_bridge.core.ids import TraceParent
from otel_bridge.core.records import SpanEvent
from otel_bridge.core.run_state import RunKey, RunState, TaskState
from otel_bridge.core.tracker import Tracker

VERSION = 2


def _task(data: dict[str, Any]) -> TaskState:
    return TaskState(**data)


def _task_to_json(task: TaskState) -> dict[str, Any]:
    """An open task, as exported (its input already redacted and capped).

    Its fields are all scalars, so a shallow copy is the whole of ``asdict`` (which costs
    ten times as much: it is run for every open task at every save of a state dir).
    """
    return dict(vars(task))


def _run_to_json(run: RunState) -> dict[str, Any]:
    return {
        "flow_name": run.flow_name,
        "run_name": run.run_name,
        "trace_id": f"{run.trace_id:032x}",
        "root_span_id": f"{run.root_span_id:016x}",
        "parent": str(run.parent) if run.parent else None,
        "parent_state": run.parent.state if run.parent else "",
        "sampled": run.sampled,
        "opened_at_ns": run.opened_at_ns,
        "last_activity_ns": run.last_activity_ns,
        "first_ns": run.first_ns,
        "last_ns": run.last_ns,
        "started_ns": run.started_ns,
        "min_task_start_ns": run.min_task_start_ns,
        "max_task_end_ns": run.max_task_end_ns,
        "flow_task_id": run.flow_task_id,
        "message": run.message,
        "executions": run.executions,
        "adjusted": run.adjusted,
        "open_by_id": {k: _task_to_json(t) for k, t in run.open_by_id.items()},
        "open_by_name": {k: [_task_to_json(t) for t in q] for k, q in run.open_by_name.items()},
        "occurrences": run.occurrences,
        "finished_ids": sorted(run.finished_ids),
        "unmatched_ends": run.unmatched_ends,
        "seen": sorted(run.seen),
        "spans_exported": run.spans_exported,
        "root_events": [
            {"name": e.name, "time_ns": e.time_ns, "attributes": dict(e.attributes)}
            for e in run.root_events
        ],
    }


def _run_from_json(data: dict[str, Any]) -> RunState:
    parent = None
    if data["parent"]:
        _, trace_hex, span_hex, flags = data["parent"].split("-")
        parent = TraceParent(
            int(trace_hex, 16), int(span_hex, 16), flags == "01", str(data["parent_state"])
        )
    run = RunState(
        flow_name=data["flow_name"],
        run_name=data["run_name"],
        trace_id=int(data["trace_id"], 16),
        root_span_id=int(data["root_span_id"], 16),
        parent=parent,
        opened_at_ns=data["opened_at_ns"],
        last_activity_ns=data["last_activity_ns"],
        first_ns=data["first_ns"],
        last_ns=data["last_ns"],
        started_ns=data["started_ns"],
        min_task_start_ns=data["min_task_start_ns"],
        max_task_end_ns=data["max_task_end_ns"],
        flow_task_id=data["flow_task_id"],
        message=data["message"],
        executions=int(data["executions"]),
        adjusted=bool(data["adjusted"]),
        open_by_name={k: deque(_task(t) for t in q) for k, q in data["open_by_name"].items()},
        occurrences={str(k): int(v) for k, v in data["occurrences"].items()},
        finished_ids={str(i) for i in data["finished_ids"]},
        unmatched_ends={k: sorted(int(e) for e in v) for k, v in data["unmatched_ends"].items()},
        seen={str(i) for i in data["seen"]},
        spans_exported=bool(data["spans_exported"]),
        sampled=bool(data["sampled"]),
        root_events=[
            SpanEvent(e["name"], e["time_ns"], e["attributes"]) for e in data["root_events"]
        ],
    )
    for task in (_task(t) for t in data["open_by_id"].values()):
        run.add_open_id(task)
    return run


def snapshot(tracker: Tracker) -> dict[str, Any]:
    """The tracker's open runs and remembered ended runs, as a JSON-able document."""
    return {
        "version": VERSION,
        "open_runs": [_run_to_json(run) for run in tracker.runs.values()],
        "closed_runs": [[f, r, f"{t:032x}"] for f, r, t in tracker.closed_runs()],
    }


def run_document(tracker: Tracker, key: RunKey) -> dict[str, Any] | None:
    """One open run as a JSON-able item of ``open_runs`` (``None`` if it is not open)."""
    run = tracker.runs.get(key)
    return None if run is None else _run_to_json(run)


def document(runs: list[Any], closed: list[Any]) -> dict[str, Any]:
    """A snapshot document assembled from stored items (runs and ``[flow, run, trace]``)."""
    return {"version": VERSION, "open_runs": runs, "closed_runs": closed}


def restore(tracker: Tracker, document: Any) -> list[RunKey]:
    """Restore a :func:`snapshot` into the tracker; return the runs it reopened.

    Raise :class:`StateError` saying what is wrong with a document that cannot be used;
    the tracker is then left as it was.
    """
    if not isinstance(document, dict):
        raise StateError("state is not a JSON object")
    if document.get("version") != VERSION:
        raise StateError(f"state version {document.get('version')!r} unknown")
    try:
        runs = [_run_from_json(item) for item in document["open_runs"]]
        closed = [(f, r, int(t, 16)) for f, r, t in document["closed_runs"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StateError(f"not a usable state ({type(exc).__name__}: {exc})") from exc
    for run in runs:
        tracker.runs[run.key] = run
    for flow, run_name, trace_id in closed:
        tracker.remember_closed_run(flow, run_name, trace_id)
    return [run.key for run in runs]
