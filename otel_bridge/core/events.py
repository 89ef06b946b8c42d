"""The LAO event model: the six documented event types and the unknown ones.

Every field is optional and type-tolerant, as the real socket is (lao-protocol.md):
timestamps in seconds, milliseconds or ISO-8601; ``error`` as an object or a string;
unknown fields kept in ``model_extra``. Frames become events in :mod:`.frames`.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
)

from otel_bridge.core.timestamps import parse_timestamp

KNOWN_EVENT_TYPES = (
    "flow_started",
    "task_started",
    "task_completed",
    "task_failed",
    "flow_completed",
    "flow_error",
)
MAX_SECONDS = 10 * 365 * 86400.0


def _opt_str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value if value != "" else None
    if isinstance(value, bool | int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), default=str)


def _opt_float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    # Durations beyond ten years are nonsense and would overflow nanosecond arithmetic.
    return number if math.isfinite(number) and 0 <= number <= MAX_SECONDS else None


OptStr = Annotated[str | None, BeforeValidator(_opt_str)]
OptSeconds = Annotated[float | None, BeforeValidator(_opt_float)]
TimestampNs = Annotated[int | None, BeforeValidator(parse_timestamp)]


class ErrorInfo(BaseModel):
    """An event's ``error``: an object with type/message/code/details, or a plain string."""

    model_config = ConfigDict(extra="allow")

    type: OptStr = None
    message: OptStr = None
    code: OptStr = None
    details: Any = None

    @property
    def error_type(self) -> str:
        """The error's type for ``error.type``: type, else code, else ``_OTHER``."""
        return self.type or self.code or "_OTHER"

    @property
    def description(self) -> str:
        """A human description: the message, else the type or code."""
        return self.message or self.type or self.code or "error"


def _error_info(value: Any) -> Any:
    if value is None or isinstance(value, dict):
        return value
    if isinstance(value, str):
        return {"message": value}
    return {"message": _opt_str(value)}


OptError = Annotated[ErrorInfo | None, BeforeValidator(_error_info)]


class _EventBase(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    event_type: str
    flow_name: OptStr = None
    run_name: OptStr = None
    task_id: OptStr = None
    task_name: OptStr = None
    message: OptStr = None
    timestamp_ns: TimestampNs = Field(default=None, alias="timestamp")


class FlowStarted(_EventBase):
    """``flow_started``: the workflow began."""

    event_type: Literal["flow_started"]


class TaskStarted(_EventBase):
    """``task_started``: a node began executing; ``input`` holds its resolved params."""

    event_type: Literal["task_started"]
    input: Any = None


class TaskCompleted(_EventBase):
    """``task_completed``: a node finished; ``execution_time`` in seconds."""

    event_type: Literal["task_completed"]
    execution_time: OptSeconds = None
    output: Any = None


class TaskFailed(_EventBase):
    """``task_failed``: a node failed with ``error``."""

    event_type: Literal["task_failed"]
    execution_time: OptSeconds = None
    error: OptError = None
    partial_results: Any = None


class FlowCompleted(_EventBase):
    """``flow_completed``: the workflow finished; ``output`` is keyed by task name."""

    event_type: Literal["flow_completed"]
    total_execution_time: OptSeconds = None
    output: Any = None


class FlowError(_EventBase):
    """``flow_error``: the workflow failed with ``error``."""

    event_type: Literal["flow_error"]
    error: OptError = None
    partial_results: Any = None


class UnknownEvent(_EventBase):
    """An event of a type LAO does not document; kept as a span event on the run."""


def _tag(value: Any) -> str:
    kind = value.get("event_type") if isinstance(value, dict) else None
    return kind if kind in KNOWN_EVENT_TYPES else "unknown"


Event = Annotated[
    Annotated[FlowStarted, Tag("flow_started")]
    | Annotated[TaskStarted, Tag("task_started")]
    | Annotated[TaskCompleted, Tag("task_completed")]
    | Annotated[TaskFailed, Tag("task_failed")]
    | Annotated[FlowCompleted, Tag("flow_completed")]
    | Annotated[FlowError, Tag("flow_error")]
    | Annotated[UnknownEvent, Tag("unknown")],
    Discriminator(_tag),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)

TaskEnd = TaskCompleted | TaskFailed
TerminalEvent = FlowCompleted | FlowError


Classified = FlowStarted | TaskStarted | TaskCompleted | TaskFailed | FlowCompleted | FlowError
TrackedEvent = Classified | UnknownEvent
