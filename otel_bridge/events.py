"""Where frames come in: the LAO event model and the classification of raw frames.

A frame is one WebSocket message as received. :func:`classify_frame` turns it into one of

- an :data:`Event` (the six documented types, or :class:`UnknownEvent`),
- :class:`Noise` (greetings, ``Echoing:`` echoes, keepalive/ping/pong, plain text), ignored,
- :class:`Rejected` (not usable: broken JSON, not an object, no event type), counted.

Every field is optional and type-tolerant, as the real socket is (lao-protocol.md):
timestamps in seconds, milliseconds or ISO-8601; ``error`` as an object or a string;
unknown fields kept in ``model_extra``. The size limit counts UTF-8 bytes; JSON nested
deeper than :data:`MAX_PAYLOAD_DEPTH` is cut there (the event is kept).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
)

from otel_bridge.timestamps import parse_timestamp

KNOWN_EVENT_TYPES = (
    "flow_started",
    "task_started",
    "task_completed",
    "task_failed",
    "flow_completed",
    "flow_error",
)
NOISE_EVENT_TYPES = frozenset({"keepalive", "ping", "pong", "heartbeat"})
MAX_SECONDS = 10 * 365 * 86400.0
_LONE_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
MAX_FRAME_BYTES = 16 * 1024 * 1024
# JSON nested deeper than this is cut (the deeper value becomes DEPTH_CUT): redaction,
# serialisation and pydantic all recurse, and a legal frame may nest ~1000 levels.
MAX_PAYLOAD_DEPTH = 64
DEPTH_CUT = "[nested too deep]"


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


@dataclass(frozen=True)
class Noise:
    """A frame the real socket sends that carries no run information; ignored."""

    reason: Literal["greeting", "echo", "keepalive", "system", "text"]


@dataclass(frozen=True)
class Rejected:
    """A frame that could not be used; counted and logged with its reason."""

    reason: Literal[
        "not_utf8", "too_large", "invalid_json", "not_an_object", "no_event_type", "invalid"
    ]
    detail: str = ""


Classified = FlowStarted | TaskStarted | TaskCompleted | TaskFailed | FlowCompleted | FlowError
Frame = Classified | UnknownEvent | Noise | Rejected


def _text_noise(text: str) -> Noise:
    lowered = text.lower()
    if lowered.startswith("echoing:"):
        return Noise("echo")
    if "connection established" in lowered or lowered.startswith("connected"):
        return Noise("greeting")
    return Noise("text")


def _frame_size(frame: str | bytes) -> int:
    """Return the frame's size in bytes (UTF-8 for text), computed only when it could matter."""
    if isinstance(frame, str) and MAX_FRAME_BYTES // 4 < len(frame) <= MAX_FRAME_BYTES:
        return len(frame.encode("utf-8", errors="surrogatepass"))
    return len(frame)


def classify_frame(frame: str | bytes) -> Frame:
    """Classify one received WebSocket frame."""
    size = _frame_size(frame)
    if size > MAX_FRAME_BYTES:
        return Rejected("too_large", f"{size} bytes")
    if isinstance(frame, bytes):
        try:
            frame = frame.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Rejected("not_utf8", str(exc))
    text = frame.strip()
    if not text.startswith(("{", "[")):
        return _text_noise(text)
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return Rejected("invalid_json", str(exc)[:200])
    if _LONE_SURROGATE.search(text):
        # Cut first: the scrub recurses, and valid JSON may nest deeper than the stack.
        if isinstance(data, dict | list) and _depth_exceeds(data, MAX_PAYLOAD_DEPTH):
            data = _cut_depth(data, MAX_PAYLOAD_DEPTH)
        data = _scrub_surrogates(data)
    return classify_object(data)


def _scrub_surrogates(value: Any) -> Any:
    """Replace lone UTF-16 surrogates (valid JSON escapes, invalid text) in every string."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_scrub_surrogates(k): _scrub_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_surrogates(v) for v in value]
    return value


def classify_object(data: Any) -> Frame:
    """Classify an already decoded JSON value (a recorded frame, a test's dict)."""
    if not isinstance(data, dict):
        return Rejected("not_an_object", type(data).__name__)
    kind = data.get("event_type")
    if kind is None:
        return _untyped_noise(data)
    if not isinstance(kind, str) or not kind:
        return Rejected("no_event_type", f"event_type is {kind!r}")
    if kind.lower() in NOISE_EVENT_TYPES:
        return Noise("keepalive")
    if _depth_exceeds(data, MAX_PAYLOAD_DEPTH):
        data = _cut_depth(data, MAX_PAYLOAD_DEPTH)
    try:
        return EVENT_ADAPTER.validate_python(data)
    except ValidationError as exc:  # pragma: no cover - every field is tolerant
        return Rejected("invalid", str(exc)[:200])


def _untyped_noise(data: dict[str, Any]) -> Frame:
    kind = data.get("type")
    if isinstance(kind, str) and kind.lower() in NOISE_EVENT_TYPES:
        return Noise("keepalive")
    message = data.get("message")
    if isinstance(message, str) and message.lower().startswith("echoing:"):
        return Noise("echo")
    if kind == "system":
        return Noise("system")
    if isinstance(message, str) and len(data) <= 2:
        return _text_noise(message)
    return Rejected("no_event_type", "object without event_type")


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Tell, without recursing, whether dicts/lists nest deeper than ``limit`` levels."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, dict | list):
                if depth >= limit:
                    return True
                stack.append((child, depth + 1))
    return False


def _cut_depth(value: Any, levels: int) -> Any:
    """Copy ``value``, replacing containers nested deeper than ``levels`` by DEPTH_CUT."""
    if not isinstance(value, dict | list):
        return value
    if levels <= 0:
        return DEPTH_CUT
    if isinstance(value, dict):
        return {k: _cut_depth(v, levels - 1) for k, v in value.items()}
    return [_cut_depth(v, levels - 1) for v in value]
