"""Saving and restoring the tracker's open runs, so a replay split over invocations is one trace.

``otel-bridge replay --state FILE`` loads the runs a previous invocation left open, replays,
and saves what is still open (instead of closing it as incomplete). The format is JSON with
a version number; a file of another version is refused with a clear error.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from otel_bridge.ids import TraceParent
from otel_bridge.redaction import redact
from otel_bridge.spans import SpanEvent
from otel_bridge.tracker import RunState, TaskState, Tracker

VERSION = 1


class StateError(ValueError):
    """A state file that cannot be used."""


def _task(data: dict[str, Any]) -> TaskState:
    return TaskState(**data)


def _task_to_json(task: TaskState) -> dict[str, Any]:
    """An open task, its input redacted: secrets never reach the state file."""
    data = asdict(task)
    data["input"] = redact(task.input)
    return data


def _run_to_json(run: RunState) -> dict[str, Any]:
    return {
        "flow_name": run.flow_name,
        "run_name": run.run_name,
        "trace_id": f"{run.trace_id:032x}",
        "root_span_id": f"{run.root_span_id:016x}",
        "parent": str(run.parent) if run.parent else None,
        "opened_at_ns": run.opened_at_ns,
        "last_activity_ns": run.last_activity_ns,
        "first_ns": run.first_ns,
        "last_ns": run.last_ns,
        "started_ns": run.started_ns,
        "min_task_start_ns": run.min_task_start_ns,
        "max_task_end_ns": run.max_task_end_ns,
        "flow_task_id": run.flow_task_id,
        "message": run.message,
        "open_by_id": {k: _task_to_json(t) for k, t in run.open_by_id.items()},
        "open_by_name": {k: [_task_to_json(t) for t in q] for k, q in run.open_by_name.items()},
        "occurrences": run.occurrences,
        "finished_ids": sorted(run.finished_ids),
        "unmatched_ends": run.unmatched_ends,
        "seen": [list(i) for i in run.seen],
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
        parent = TraceParent(int(trace_hex, 16), int(span_hex, 16), flags == "01")
    return RunState(
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
        open_by_id={k: _task(t) for k, t in data["open_by_id"].items()},
        open_by_name={k: [_task(t) for t in q] for k, q in data["open_by_name"].items()},
        occurrences=dict(data["occurrences"]),
        finished_ids=set(data["finished_ids"]),
        unmatched_ends={k: list(v) for k, v in data["unmatched_ends"].items()},
        seen={(i[0], i[1], i[2], i[3], i[4]) for i in data["seen"]},
        spans_exported=bool(data.get("spans_exported", False)),
        root_events=[
            SpanEvent(e["name"], e["time_ns"], e["attributes"]) for e in data["root_events"]
        ],
    )


def save_state(tracker: Tracker, path: str | Path) -> int:
    """Write the tracker's open runs and remembered ended runs; return the open count."""
    document = {
        "version": VERSION,
        "open_runs": [_run_to_json(run) for run in tracker.runs.values()],
        "closed_runs": [[f, r, f"{t:032x}"] for f, r, t in tracker.closed_runs()],
    }
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    # Owner-only: the state holds task inputs (redacted, but still the user's data).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(json.dumps(document))
    tmp.replace(target)
    return len(tracker.runs)


def load_state(tracker: Tracker, path: str | Path) -> int:
    """Restore open runs saved by :func:`save_state`; return how many. Missing file: 0."""
    source = Path(path)
    if not source.exists():
        return 0
    try:
        document = json.loads(source.read_text(encoding="utf-8"))
        if document.get("version") != VERSION:
            raise StateError(f"{source}: state version {document.get('version')!r} unknown")
        for item in document["open_runs"]:
            run = _run_from_json(item)
            tracker.runs[(run.flow_name, run.run_name)] = run
        for flow, run_name, trace_hex in document["closed_runs"]:
            tracker.remember_closed_run(flow, run_name, int(trace_hex, 16))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, StateError):
            raise
        raise StateError(f"{source}: not a usable state file ({exc})") from exc
    return len(document["open_runs"])
