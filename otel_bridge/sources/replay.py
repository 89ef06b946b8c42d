"""The replay path in: recorded streams (one WebSocket frame per line, as received) to spans.

Each line is one frame: a JSON object (an event or a JSON noise frame) or plain text. Bad
lines are reported with their line number and reason, counted, and skipped; valid lines are
never lost because of them. At the end of the input, open runs are closed as incomplete
(``cancellation``), unless a state file carries them over to the next invocation
(``--state FILE``: the engine's :meth:`~otel_bridge.core.engine.Engine.snapshot`, as JSON,
owner-only).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from otel_bridge.core.engine import Engine
from otel_bridge.core.errors import StateError
from otel_bridge.core.outputs import (
    EventReceived,
    FrameIgnored,
    FrameRejected,
    InternalError,
    Output,
    RunOpened,
)
from otel_bridge.core.records import Result, SpanRecord
from otel_bridge.sinks.router import Router


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

    def count(self, outputs: Iterable[Output]) -> str | None:
        """Count one line's outputs; return the problem to report for it, if any."""
        problem = None
        for output in outputs:
            match output:
                case EventReceived():
                    self.events += 1
                case FrameIgnored():
                    self.noise += 1
                case FrameRejected():
                    detail = output.detail
                    problem = f"{output.reason}: {detail}" if detail else str(output.reason)
                case InternalError():
                    problem = f"internal: {type(output.error).__name__}"
                case RunOpened(resumed=False):
                    self.runs_opened += 1
                case SpanRecord():
                    self.spans += 1
                    self.runs_finished += output.kind == "run"
        return problem


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
    engine: Engine,
    router: Router,
    paths: Iterable[Path],
    *,
    flow_name: str | None = None,
    run_name: str | None = None,
    state_file: Path | None = None,
    keep_open: bool = False,
    on_bad_line: Callable[[str, int, str], None] | None = None,
) -> ReplayReport:
    """Replay recordings through the engine into the router; return the report.

    Open runs are closed at the end, unless carried over: in ``state_file``, or by the
    caller (``keep_open``: the state dir's keeper saves them).
    """
    report = ReplayReport()
    if state_file is not None:
        router.emit(load_state(engine, state_file))
    names = (flow_name, run_name)
    for path in paths:
        for number, raw in read_frames(path):
            report.lines += 1
            outputs = engine.receive(raw, run=names, received_ns=time.time_ns(), recorded=True)
            router.emit(outputs)
            problem = report.count(outputs)
            if problem is not None:
                report.rejected.append((str(path), number, problem))
                if on_bad_line is not None:
                    on_bad_line(str(path), number, problem)
    if state_file is not None:
        report.carried_over = save_state(engine, state_file)
    elif not keep_open:
        outputs = engine.close_all(Result.ERROR, "the replay input ended")
        router.emit(outputs)
        report.count(outputs)
    return report


def save_state(engine: Engine, path: str | Path) -> int:
    """Write the engine's open runs to ``path`` (atomically, owner-only); return how many."""
    document = engine.snapshot()
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    # Owner-only: the state holds task inputs (redacted, but still the user's data).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(json.dumps(document))
    tmp.replace(target)
    return len(document["open_runs"])


def load_state(engine: Engine, path: str | Path) -> list[Output]:
    """Restore the open runs saved in ``path`` (a missing file is no runs); their outputs.

    Raise :class:`StateError` naming the file when it cannot be used.
    """
    source = Path(path)
    if not source.exists():
        return []
    try:
        document = json.loads(source.read_text(encoding="utf-8"))
        return engine.restore(document)
    except StateError as exc:
        raise StateError(f"{source}: {exc}") from exc
    except (OSError, ValueError) as exc:
        raise StateError(f"{source}: not a usable state file ({exc})") from exc
