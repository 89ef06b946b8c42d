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
from dataclasses import dataclass, field, replace
from typing import Any

import msgspec

from otel_bridge.core import snapshot as snapshots
from otel_bridge.core.events import TrackedEvent, UnknownEvent
from otel_bridge.core.frames import (
    MAX_FRAME_BYTES,
    classify_frame,
    classify_object,
    oversized_envelope,
)
from otel_bridge.core.ids import TraceParent
from otel_bridge.core.json_redaction import redact_json
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
from otel_bridge.core.redaction import MARGIN_CHARS, PayloadPolicy, compact_json, redact_text
from otel_bridge.core.run_state import RunKey
from otel_bridge.core.sampling import Sampler
from otel_bridge.core.tracker import Tracker

RawFrame = str | bytes | Mapping[str, Any]
RunNames = tuple[str | None, str | None]
PREVIEW_CHARS = 160
NO_NAMES = "event names no flow_name/run_name"


def preview(frame: object, limit: int = PREVIEW_CHARS) -> str:
    """A short, redacted rendering of a frame for logs (cut first: never scan megabytes)."""
    if isinstance(frame, bytes):
        frame = frame[: limit * 4 + MARGIN_CHARS].decode("utf-8", errors="replace")
    text = frame if isinstance(frame, str) else compact_json(frame)
    return redact_text(redact_json(text[: limit + MARGIN_CHARS]))[:limit]


def _names_differ(event: TrackedEvent, flow_name: str | None, run_name: str | None) -> bool:
    """An event that names a flow or run other than the socket's (never merged into it)."""
    return (flow_name is not None and event.flow_name not in (None, flow_name)) or (
        run_name is not None and event.run_name not in (None, run_name)
    )


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


@dataclass(frozen=True)
class Limits:
    """Every bound of the engine; what passes one is counted (a drop or reject reason)."""

    max_frame_bytes: int = MAX_FRAME_BYTES
    max_open_runs: int = 100_000
    max_open_tasks: int = 1_000  # per run, each holding its capped input
    max_executions: int = 100_000  # task executions per run
    max_root_events: int = 128  # undocumented events kept on a run's root span
    remember_closed: int = 100_000  # ended runs remembered (late events dropped, not reopened)
    max_past_s: float = 86_400.0  # event timestamps older than receive time minus this...
    max_future_s: float = 300.0  # ...or later than receive time plus this are replaced
    sampler: Sampler = field(default_factory=Sampler)  # which runs are exported


class Engine:
    """Turns the frames of many interleaved runs into span records and notices."""

    def __init__(self, policy: PayloadPolicy | None = None, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._tracker = Tracker(
            policy,
            max_root_events=self.limits.max_root_events,
            remember_closed=self.limits.remember_closed,
            max_open_tasks=self.limits.max_open_tasks,
            max_executions=self.limits.max_executions,
            max_open_runs=self.limits.max_open_runs,
            sampler=self.limits.sampler,
        )
        self._past_ns = int(self.limits.max_past_s * 1e9)
        self._future_ns = int(self.limits.max_future_s * 1e9)
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

        ``run`` is the (flow_name, run_name) of the socket the frame came on: an event that
        names another run is rejected (``wrong_run``). A name that is None there is taken
        from the event itself. ``recorded`` frames come from a file whose names (given)
        override the events' own: their time is the event's own timestamp, else the latest
        seen, else ``received_ns``. Live events whose timestamp is implausibly far from
        ``received_ns`` get ``received_ns`` instead (``lao.timestamp.adjusted``).
        """
        try:
            if isinstance(frame, str | bytes):  # first: an ABC check costs more
                classified = classify_frame(frame, self.limits.max_frame_bytes)
            elif isinstance(frame, Mapping):
                classified = classify_object(dict(frame))
            else:  # a list of pairs, bytearray, None...: not a frame (dict() would take some)
                return [FrameRejected(RejectReason.NOT_AN_OBJECT, type(frame).__name__)]
        except Exception as exc:  # a bug or an input we did not foresee: this frame only
            return [InternalError(*(run or (None, None)), "classify", exc)]
        if isinstance(classified, FrameIgnored):
            return [classified]
        if isinstance(classified, FrameRejected):
            notice = replace(classified, preview=preview(frame))
            if notice.reason is RejectReason.TOO_LARGE and not isinstance(frame, Mapping):
                envelope = oversized_envelope(frame, len(frame))
                if envelope is not None:  # keep what the run needs: it may be its last event
                    return [notice, *self._events(envelope, frame, run, received_ns, recorded)]
            return [notice]
        return self._events(classified, frame, run, received_ns, recorded)

    def _events(
        self,
        classified: TrackedEvent,
        frame: RawFrame,
        run: RunNames | None,
        received_ns: int,
        recorded: bool,
    ) -> list[Output]:
        """The event of a frame: checked against its socket, timed, fed to the tracker."""
        socket_flow, socket_run = run if run is not None else (None, None)
        if not recorded and _names_differ(classified, socket_flow, socket_run):
            detail = "event names another flow or run than its socket"
            return [FrameRejected(RejectReason.WRONG_RUN, detail, preview(frame))]
        flow_name = socket_flow or classified.flow_name
        run_name = socket_run or classified.run_name
        if flow_name is None or run_name is None:
            return [FrameRejected(RejectReason.INVALID, NO_NAMES, preview(frame))]
        adjusted = False
        if recorded:
            received_ns = self._recorded_time(classified.timestamp_ns, received_ns)
        elif classified.timestamp_ns is not None and not (
            received_ns - self._past_ns <= classified.timestamp_ns <= received_ns + self._future_ns
        ):
            classified = msgspec.structs.replace(classified, timestamp_ns=received_ns)
            adjusted = True
        return self.receive_event(
            classified,
            flow_name=flow_name,
            run_name=run_name,
            received_ns=received_ns,
            adjusted=adjusted,
        )

    def _recorded_time(self, stamp: int | None, fallback_ns: int) -> int:
        if stamp is None:
            return self._clock_ns if self._clock_ns is not None else fallback_ns
        self._clock_ns = stamp if self._clock_ns is None else max(self._clock_ns, stamp)
        return stamp

    def receive_event(
        self,
        event: TrackedEvent,
        *,
        flow_name: str,
        run_name: str,
        received_ns: int,
        adjusted: bool = False,
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
                    event,
                    flow_name=flow_name,
                    run_name=run_name,
                    received_ns=received_ns,
                    adjusted=adjusted,
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

    def close_all(
        self, result: Result = Result.CANCELLATION, reason: str | None = None
    ) -> list[Output]:
        """End every open run as incomplete (shutdown, end of replay input)."""
        out: list[Output] = []
        for flow_name, run_name in self._tracker.open_runs():
            out.extend(self.close_run(flow_name, run_name, result, reason))
        return out

    def expire(
        self, now_ns: int, *, inactivity_ns: int, max_duration_ns: int | None = None
    ) -> list[Output]:
        """Close runs idle for ``inactivity_ns`` or older than ``max_duration_ns`` (timeout)."""
        out: list[Output] = []
        for flow_name, run_name in self._tracker.expired_runs(
            now_ns, inactivity_ns=inactivity_ns, max_duration_ns=max_duration_ns
        ):
            idle_s = self._tracker.idle_ns(flow_name, run_name, now_ns) / 1e9
            if idle_s >= inactivity_ns / 1e9:
                reason = f"no event for {idle_s:.0f}s (inactivity timeout)"
            else:
                reason = "open longer than the maximum run duration"
            out.extend(self.close_run(flow_name, run_name, Result.TIMEOUT, reason))
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

    def snapshot_run(self, flow_name: str, run_name: str) -> dict[str, Any] | None:
        """One open run as an item of a snapshot's ``open_runs``; ``None`` if not open."""
        return snapshots.run_document(self._tracker, (flow_name, run_name))

    @staticmethod
    def snapshot_of(runs: list[Any], closed: list[Any]) -> dict[str, Any]:
        """A snapshot document from saved ``snapshot_run`` items and ``[flow, run, trace]``."""
        return snapshots.document(runs, closed)

    def restore(self, state: Any, *, now_ns: int | None = None) -> list[Output]:
        """Reopen the runs of a :meth:`snapshot`; one ``RunOpened(resumed=True)`` each.

        With ``now_ns`` (a bridge restarting), the restored runs' inactivity clocks start
        again from then: the time nobody was listening is not the run's silence.
        Raise :class:`~otel_bridge.core.errors.StateError` for a document that cannot be
        used (nothing is restored then).
        """
        out: list[Output] = []
        for flow_name, run_name in snapshots.restore(self._tracker, state):
            if now_ns is not None:
                self._tracker.runs[(flow_name, run_name)].last_activity_ns = now_ns
            trace_id = self._tracker.trace_id_of(flow_name, run_name)
            out.append(RunOpened(flow_name, run_name, trace_id, resumed=True))
        return out
