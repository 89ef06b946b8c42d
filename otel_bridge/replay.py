"""The replay path in: recorded streams (one WebSocket frame per line, as received) to spans.

Each line is one frame: a JSON object (an event or a JSON noise frame) or plain text. Bad
lines are reported with their line number and reason, counted, and skipped; valid lines are
never lost because of them. At the end of the input, open runs are closed as incomplete
(``cancellation``), unless a state file carries them over to the next invocation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from otel_bridge.events import Noise, Rejected, classify_frame
from otel_bridge.pipeline import Pipeline
from otel_bridge.spans import Result, RunOpened, SpanRecord, TrackerOutput
from otel_bridge.tracker_state import load_state, save_state


@dataclass
class ReplayReport:
    """What a replay did."""

    lines: int = 0
    events: int = 0
    noise: int = 0
    rejected: list[tuple[str, int, str]] = field(default_factory=list)
    runs_opened: int = 0
    runs_finished: int = 0
    spans: int = 0
    carried_over: int = 0

    def summary(self) -> str:
        """One line for the terminal."""
        text = (
            f"replayed {self.lines} lines: {self.events} events, {self.noise} noise frames, "
            f"{len(self.rejected)} rejected; {self.runs_finished} runs ended, {self.spans} spans"
        )
        if self.carried_over:
            text += f"; {self.carried_over} runs left open in the state file"
        return text


def read_frames(path: Path) -> Iterable[tuple[int, bytes]]:
    """Yield (line number, frame bytes) of a recording; blank lines are skipped.

    Bytes, not text: a line that is not UTF-8 is rejected by the frame classifier (and
    reported) like any other bad frame, instead of reaching the tracker half-decoded.
    """
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            frame = line.rstrip(b"\r\n")
            if frame.strip():
                yield number, frame


def replay(
    pipeline: Pipeline,
    paths: Iterable[Path],
    *,
    flow_name: str | None = None,
    run_name: str | None = None,
    state_file: Path | None = None,
    on_bad_line: Callable[[str, int, str], None] | None = None,
) -> ReplayReport:
    """Replay recordings through the pipeline; return the report."""
    report = ReplayReport()

    def count(output: TrackerOutput) -> None:
        if isinstance(output, RunOpened):
            report.runs_opened += 1
        elif isinstance(output, SpanRecord):
            report.spans += 1
            if output.kind == "run":
                report.runs_finished += 1

    pipeline.listeners.append(count)
    if state_file is not None:
        load_state(pipeline.tracker, state_file)
    clock: int | None = None
    try:
        for path in paths:
            for number, raw in read_frames(path):
                report.lines += 1
                try:
                    clock, problem = _replay_line(pipeline, raw, clock, flow_name, run_name, report)
                except Exception as exc:  # one poison line never loses the others
                    problem = f"internal: {type(exc).__name__}"
                if problem is not None:
                    report.rejected.append((str(path), number, problem))
                    if on_bad_line is not None:
                        on_bad_line(str(path), number, problem)
        if state_file is not None:
            report.carried_over = save_state(pipeline.tracker, state_file)
        else:
            pipeline.close_all(Result.CANCELLATION)
    finally:
        pipeline.listeners.remove(count)
    return report


def _replay_line(
    pipeline: Pipeline,
    raw: bytes,
    clock: int | None,
    flow_name: str | None,
    run_name: str | None,
    report: ReplayReport,
) -> tuple[int | None, str | None]:
    """Handle one line; return the replay clock (latest event timestamp) and any problem."""
    frame = classify_frame(raw)
    if isinstance(frame, Noise):
        report.noise += 1
        return clock, None
    if isinstance(frame, Rejected):
        pipeline.reject(frame, raw)
        return clock, f"{frame.reason}: {frame.detail}" if frame.detail else frame.reason
    flow = flow_name or frame.flow_name
    run = run_name or frame.run_name
    if flow is None or run is None:
        reason = "event names no flow_name/run_name (use --flow/--run)"
        pipeline.reject(Rejected("invalid", reason), raw)
        return clock, f"invalid: {reason}"
    stamp = frame.timestamp_ns
    received = stamp if stamp is not None else (clock if clock is not None else time.time_ns())
    report.events += 1
    pipeline.handle_event(frame, flow_name=flow, run_name=run, received_ns=received)
    if stamp is not None:
        clock = stamp if clock is None else max(clock, stamp)
    return clock, None
