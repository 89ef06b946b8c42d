"""A trace as a waterfall in the terminal: the run on top, its tasks as bars beneath."""

from __future__ import annotations

from collections.abc import Sequence

from otel_bridge.core.records import SpanRecord, StatusCode

MARK = {StatusCode.OK: "ok", StatusCode.ERROR: "ERROR", StatusCode.UNSET: "open"}


def _bar(start: int, end: int, origin: int, total: int, width: int) -> str:
    if total <= 0:
        return "█".ljust(width)
    left = int((start - origin) / total * width)
    right = max(left + 1, round((end - origin) / total * width))
    left, right = min(left, width - 1), min(right, width)
    return (" " * left + "█" * (right - left)).ljust(width)


def render_trace(spans: Sequence[SpanRecord], width: int = 36) -> str:
    """Render the spans of one trace (root plus tasks) as lines of text."""
    roots = [s for s in spans if s.kind == "run"]
    tasks = sorted((s for s in spans if s.kind == "task"), key=lambda s: (s.start_ns, s.name))
    if not roots:
        return ""
    root = roots[0]
    origin, total = root.start_ns, root.end_ns - root.start_ns
    label_width = max([len(root.name)] + [len(t.name) + 3 for t in tasks]) + 1
    head = (
        f"{root.flow_name} / {root.run_name}   trace {root.trace_id_hex}   "
        f"{root.result.value} in {root.duration_s:.2f}s"
    )
    lines = [head]
    lines.append(
        f"{root.name:<{label_width}} |{_bar(root.start_ns, root.end_ns, origin, total, width)}| "
        f"{root.duration_s:7.2f}s {MARK[root.status]}"
    )
    for i, task in enumerate(tasks):
        branch = "└─ " if i == len(tasks) - 1 else "├─ "
        note = MARK[task.status]
        if task.status is StatusCode.ERROR and task.status_message:
            note += f": {task.status_message[:60]}"
        elif task.status is StatusCode.UNSET:
            note = f"never ended ({task.result.value})"
        bar = _bar(task.start_ns, task.end_ns, origin, total, width)
        lines.append(f"{branch + task.name:<{label_width}} |{bar}| {task.duration_s:7.2f}s {note}")
    if root.status is StatusCode.ERROR and root.status_message:
        lines.append(f"  run failed: {root.status_message[:100]}")
    return "\n".join(lines)
