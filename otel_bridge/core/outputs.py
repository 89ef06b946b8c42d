"""Everything the engine emits: span records and the notices the sinks count and log.

:meth:`Engine.receive <otel_bridge.core.engine.Engine.receive>` returns a list of these;
the router (:mod:`otel_bridge.sinks.router`) hands each one to the export queues, the
metrics and the listeners. Reasons are enums, so a typo is a type error and never a new
metric series.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from otel_bridge.core.records import Result, SpanRecord, quick_init


class NoiseReason(StrEnum):
    """Why a frame carried no run information (``otel_bridge_frames_ignored_total``)."""

    GREETING = "greeting"
    ECHO = "echo"
    KEEPALIVE = "keepalive"
    SYSTEM = "system"
    TEXT = "text"


class RejectReason(StrEnum):
    """Why a frame could not be used (``otel_bridge_frames_rejected_total``)."""

    NOT_UTF8 = "not_utf8"
    TOO_LARGE = "too_large"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    NO_EVENT_TYPE = "no_event_type"
    INVALID = "invalid"
    WRONG_RUN = "wrong_run"
    INTERNAL = "internal"


class DropReason(StrEnum):
    """Why the tracker did not use an event (``otel_bridge_events_dropped_total``)."""

    DUPLICATE = "duplicate"
    LATE_START = "late_start"
    AFTER_END = "after_end"
    NO_TASK_IDENTITY = "no_task_identity"
    ROOT_EVENTS_FULL = "root_events_full"
    TASKS_FULL = "tasks_full"
    RUNS_FULL = "runs_full"


# Drops that mean the event was old news: a server resending what was already seen.
STALE_DROPS = frozenset({DropReason.DUPLICATE, DropReason.AFTER_END, DropReason.LATE_START})


@dataclass(frozen=True)
class FrameIgnored:
    """A frame that carries no run information (greeting, echo, keepalive, text)."""

    reason: NoiseReason


@dataclass(frozen=True)
class FrameRejected:
    """A frame that could not be used; ``preview`` is short and already redacted."""

    reason: RejectReason
    detail: str = ""
    preview: str = ""


@quick_init
@dataclass(frozen=True)
class EventReceived:
    """An event of a run was accepted for tracking; ``lag_s`` is receive minus event time."""

    flow_name: str
    run_name: str
    event_type: str
    lag_s: float | None


@dataclass(frozen=True)
class RunOpened:
    """The engine began following a run (its first event, or restored from saved state)."""

    flow_name: str
    run_name: str
    trace_id: int
    resumed: bool = False


@dataclass(frozen=True)
class RunClosed:
    """A run ended: exactly one per opened run, right after its root span.

    ``without_root`` says no root span was built (building it failed): the sinks then count
    the run's end from this notice alone.
    """

    flow_name: str
    run_name: str
    trace_id: int
    result: Result
    reason: str | None = None
    without_root: bool = False


@dataclass(frozen=True)
class EventDropped:
    """An event the tracker did not use, and why (counted, logged, never silent)."""

    flow_name: str
    run_name: str
    event_type: str
    reason: DropReason


@dataclass(frozen=True)
class InternalError:
    """The engine failed on an input it did not foresee; the input was skipped."""

    flow_name: str | None
    run_name: str | None
    stage: str
    error: BaseException


Output = (
    SpanRecord
    | FrameIgnored
    | FrameRejected
    | EventReceived
    | RunOpened
    | RunClosed
    | EventDropped
    | InternalError
)
TrackerOutput = SpanRecord | RunOpened | RunClosed | EventDropped
