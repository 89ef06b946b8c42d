"""The engine: the one way in from every driver, frames in, outputs out.

Every driver, the live run sockets, the pass-through socket and the replay of recorded
files, is ``router.emit(engine.receive(frame, run=..., received_ns=...))``. The engine
classifies the frame, feeds events to the :class:`~.tracker.Tracker` and returns every
:data:`~.outputs.Output`: span records, and notices the sinks count and log (noise,
rejected frames, drops, runs opened and closed, internal errors). It never raises for an
input: an input it did not foresee becomes an :class:`~.outputs.InternalError` output.

Nothing outside ``core/`` touches the tracker: state leaves through :meth:`Engine.snapshot`
and comes back through :meth:`Engine.restore`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from otel_bridge.core import snapshot as snapshots
from otel_bridge.core.events import TrackedEvent, UnknownEvent
from otel_bridge.core.frames import classify_frame, classify_object
from otel_bridge.core.ids import TraceParent
from otel_bridge.core.outputs import (
    STALE_DROPS,
    EventDropped,
    EventReceived,
    FrameIgnored,
    FrameRejected,
    InternalError,
    Output,
    RejectReason,
    RunOpened,
)
from otel_bridge.core.records import Result
from otel_bridge.core.redaction import PayloadPolicy, redact_text
from otel_bridge.core.run_state import RunKey
from otel_bridge.core.tracker import Tracker

RawFrame = str | bytes | Mapping[str, Any]
RunNames = tuple[str | None, str | None]
PREVIEW_CHARS = 160
NO_NAMES = "event names no flow_name/run_name"


def preview(frame: object, limit: int = PREVIEW_CHARS) -> str:
    """A short, redacted rendering of a frame for logs."""
    if isinstance(frame, bytes):
        frame = frame.decode("utf-8", errors="replace")
    return redact_text(str(frame))[:limit]


def is_fresh_event(outputs: Iterable[Output]) -> bool:
    """Tell whether outputs show a new event of a run (not noise, a resend or a rejected frame).

    A server that resends old events and drops the socket is not healthy: only new events
    count as upstream progress.
    """
    received = False
    for output in outputs:
        if isinstance(output, EventReceived):
            received = True
        elif (isinstance(output, EventDropped) and output.reason in STALE_DROPS) or isinstance(
            output, InternalError
        ):
            return False
    return received


class Engine:
    """Turns the frames of many interleaved runs into span records and notices."""

    def __init__(
        self,
        policy: PayloadPolicy | None = None,
        *,
        max_root_events: int = 128,
        remember_closed: int = 100_000,
    ) -> None:
        self._tracker = Tracker(
            policy, max_root_events=max_root_events, remember_closed=remember_closed
        )
        self._clock_ns: int | None = None  # the latest event time of a recorded stream

    @property
    def policy(self) -> PayloadPolicy:
        """The payload policy (capture mode, size cap) of every span built."""
        return self._tracker.policy

    # -- frames in ------------------------------------------------------------------------
    def receive(
        self,
        frame: RawFrame,
        *,
        run: RunNames | None = None,
        received_ns: int,
        recorded: bool = False,
    ) -> list[Output]:
        """Handle one frame; return what it caused.

        ``run`` is the (flow_name, run_name) of the socket the frame came on; a name that is
        None there (a recording of many runs) is taken from the event itself. ``recorded``
        frames come from a file: their time is the event's own timestamp, else the latest
        seen, else ``received_ns``.
        """
        try:
            if isinstance(frame, Mapping):
                classified = classify_object(dict(frame))
            else:
                classified = classify_frame(frame)
        except Exception as exc:  # a bug or an input we did not foresee: this frame only
            return [InternalError(*(run or (None, None)), "classify", exc)]
        if isinstance(classified, FrameIgnored):
            return [classified]
        if isinstance(classified, FrameRejected):
            return [replace(classified, preview=preview(frame))]
        flow_name, run_name = run if run is not None else (None, None)
        flow_name = flow_name or classified.flow_name
        run_name = run_name or classified.run_name
        if flow_name is None or run_name is None:
            return [FrameRejected(RejectReason.INVALID, NO_NAMES, preview(frame))]
        if recorded:
            received_ns = self._recorded_time(classified.timestamp_ns, received_ns)
        return self.receive_event(
            classified, flow_name=flow_name, run_name=run_name, received_ns=received_ns
        )

    def _recorded_time(self, stamp: int | None, fallback_ns: int) -> int:
        if stamp is None:
            return self._clock_ns if self._clock_ns is not None else fallback_ns
        self._clock_ns = stamp if self._clock_ns is None else max(self._clock_ns, stamp)
        return stamp

    def receive_event(
        self, event: TrackedEvent, *, flow_name: str, run_name: str, received_ns: int
    ) -> list[Output]:
        """Handle one already classified event of run (flow_name, run_name)."""
        event_type = "unknown" if isinstance(event, UnknownEvent) else event.event_type
        lag_s = None
        if event.timestamp_ns is not None:
            lag_s = max(0.0, (received_ns - event.timestamp_ns) / 1e9)
        out: list[Output] = [EventReceived(flow_name, run_name, event_type, lag_s)]
        try:
            out.extend(
                self._tracker.feed(
                    event, flow_name=flow_name, run_name=run_name, received_ns=received_ns
                )
            )
        except Exception as exc:  # isolate it to this event; the run goes on
            out.append(InternalError(flow_name, run_name, event.event_type, exc))
        return out

    # -- closing runs ---------------------------------------------------------------------
    def close_run(
        self, flow_name: str, run_name: str, result: Result, reason: str | None = None
    ) -> list[Output]:
        """End a run that had no terminal event; ``reason`` goes on its root span.

        When building its spans fails, the run is still closed (a ``RunClosed`` without a
        root span follows the ``InternalError``), so gauges stay right and later events of
        the run are dropped as ``after_end`` instead of reopening it.
        """
        try:
            return list(self._tracker.close_run(flow_name, run_name, result, reason))
        except Exception as exc:
            out: list[Output] = [InternalError(flow_name, run_name, "close", exc)]
            if self._tracker.is_open(flow_name, run_name):
                why = f"internal error while closing: {type(exc).__name__}"
                out.append(self._tracker.forget_run(flow_name, run_name, result, why))
            return out

    def close_all(self, result: Result = Result.CANCELLATION) -> list[Output]:
        """End every open run as incomplete (shutdown, end of replay input)."""
        out: list[Output] = []
        for flow_name, run_name in self._tracker.open_runs():
            out.extend(self.close_run(flow_name, run_name, result))
        return out

    def expire(
        self, now_ns: int, *, inactivity_ns: int, max_duration_ns: int | None = None
    ) -> list[Output]:
        """Close runs idle for ``inactivity_ns`` or older than ``max_duration_ns`` (timeout)."""
        out: list[Output] = []
        for flow_name, run_name in self._tracker.expired_runs(
            now_ns, inactivity_ns=inactivity_ns, max_duration_ns=max_duration_ns
        ):
            out.extend(self.close_run(flow_name, run_name, Result.TIMEOUT))
        return out

    # -- runs -----------------------------------------------------------------------------
    def set_parent(self, flow_name: str, run_name: str, parent: TraceParent | None) -> bool:
        """Make a run's root a child of a caller's span; False if it exported spans already."""
        return self._tracker.set_parent(flow_name, run_name, parent)

    def is_open(self, flow_name: str, run_name: str) -> bool:
        """Tell whether a run is in flight."""
        return self._tracker.is_open(flow_name, run_name)

    def is_closed(self, flow_name: str, run_name: str) -> bool:
        """Tell whether a run has ended (recently enough to be remembered)."""
        return self._tracker.is_closed(flow_name, run_name)

    def open_runs(self) -> Sequence[RunKey]:
        """The (flow_name, run_name) of every run in flight."""
        return list(self._tracker.open_runs())

    def trace_id_of(self, flow_name: str, run_name: str) -> int:
        """The run's trace id: the one it is (or was) exported in, else the planned one."""
        return self._tracker.trace_id_of(flow_name, run_name)

    # -- state ----------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Open runs and remembered ended runs as a JSON-able document (payloads redacted)."""
        return snapshots.snapshot(self._tracker)

    def restore(self, state: Any) -> list[Output]:
        """Reopen the runs of a :meth:`snapshot`; one ``RunOpened(resumed=True)`` each.

        Raise :class:`~otel_bridge.core.errors.StateError` for a document that cannot be
        used (nothing is restored then).
        """
        out: list[Output] = []
        for flow_name, run_name in snapshots.restore(self._tracker, state):
            trace_id = self._tracker.trace_id_of(flow_name, run_name)
            out.append(RunOpened(flow_name, run_name, trace_id, resumed=True))
        return out
