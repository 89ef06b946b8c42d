"""The LAO event model: the six documented event types and the unknown ones.

Every field is optional and type-tolerant, as the real socket is (lao-protocol.md):
timestamps in seconds, milliseconds or ISO-8601; ``error`` as an object or a string;
unknown fields kept in ``model_extra``. Frames become events in :mod:`.frames`.

The events are msgspec Structs, built two ways with the same result:

- the fast way, :data:`FAST_DECODER` then :func:`settle`: one C-level decode of a frame's
  text for the common shape (known type, string names, no unknown field); anything else
  fails that decode (or :func:`settle`) and takes
- the tolerant way, :func:`event_from_dict`, on the decoded object: every conversion, the
  unknown fields kept.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import msgspec

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
    if isinstance(value, bool | float):
        return str(value)
    if isinstance(value, int):
        if _INT_MIN <= value < _INT_END or value.__class__ is KeptInt:
            return str(value)
        raise ArithmeticError(_WIDE)
    if _holds_wide(value):
        raise ArithmeticError(_WIDE)
    return json.dumps(value, separators=(",", ":"), default=str)


# Integers beyond 64 bits as the frame parser before msgspec (issue 12) left them. Frames
# were parsed by orjson: it made an integer outside [-2^63, 2^64) a float, unless the frame
# failed it (NaN, a lone surrogate, an integer beyond a float...) and json.loads parsed it,
# keeping the integer. msgspec keeps every integer's digits. Where such a value makes an
# identity, the old form is kept so that identities hold across the upgrade: a name or id
# (its span id), and the duplicate digest of an event without a timestamp, which saved
# states hold (run_state.legacy_json). Payloads keep their digits.
_INT_MIN = -(2**63)
_INT_END = 2**64
_FLOAT_END = 2**1024


class KeptInt(int):
    """An integer beyond 64 bits that the previous parser kept (json.loads parsed its frame)."""

    __slots__ = ()


def parse_int(digits: str) -> int:
    """json.loads' ``parse_int``: an integer, marked as kept when beyond 64 bits."""
    number = int(digits)
    return number if _INT_MIN <= number < _INT_END else KeptInt(number)


def _map_ints(value: Any, convert: Callable[[int], Any]) -> Any:
    """A JSON value with ``convert`` applied to its integers (bools excepted): a copy."""
    if isinstance(value, int) and not isinstance(value, bool):
        return convert(value)
    if isinstance(value, dict):
        return {k: _map_ints(v, convert) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_ints(v, convert) for v in value]
    return value


def _any_int(value: Any, test: Callable[[int], bool]) -> bool:
    """Whether an integer of a JSON value passes ``test``."""
    if isinstance(value, int):
        return test(value)
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, list):
        return False
    return any(_any_int(item, test) for item in value)


def _as_parsed(number: int) -> int | float:
    """An integer as orjson parsed it: beyond 64 bits a float, unless kept or beyond a float."""
    if _INT_MIN <= number < _INT_END or number.__class__ is KeptInt:
        return number
    try:
        return float(number)
    except OverflowError:
        return number


def numbers_as_parsed(value: Any) -> Any:
    """A JSON value with its integers as orjson parsed them (a copy, when it has any)."""
    return _map_ints(value, _as_parsed)


def beyond_float(value: Any) -> bool:
    """Whether a JSON value holds an integer beyond a float's range."""
    return _any_int(value, lambda number: abs(number) >= _FLOAT_END)


def _kept(value: Any) -> Any:
    """A JSON value with its integers beyond 64 bits marked as kept (a copy)."""
    return _map_ints(value, lambda n: n if _INT_MIN <= n < _INT_END else KeptInt(n))


# Raised (as an ArithmeticError) for a name, stamp or duration of an integer beyond 64 bits:
_WIDE = "an integer beyond 64 bits"  # event_from_dict then builds it as the old version did


def _holds_wide(value: Any) -> bool:  # a plain integer beyond 64 bits (not bool or KeptInt)
    return _any_int(value, lambda n: n.__class__ is int and not _INT_MIN <= n < _INT_END)


def _names_as_parsed(data: dict[str, Any]) -> dict[str, Any]:
    """The frame with its names' integers as orjson parsed them (its payloads unchanged)."""
    data = {k: numbers_as_parsed(v) if k in _NAMES else v for k, v in data.items()}
    error = data.get("error")
    if isinstance(error, dict):
        data["error"] = {k: numbers_as_parsed(v) if k in _TEXTS else v for k, v in error.items()}
    elif "error" in data:
        data["error"] = numbers_as_parsed(error)
    return data


def _opt_float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    except OverflowError:  # an integer beyond a float: as absent
        if value.__class__ is int:
            raise ArithmeticError(_WIDE) from None
        return None
    # Durations beyond ten years are nonsense and would overflow nanosecond arithmetic.
    return number if math.isfinite(number) and 0 <= number <= MAX_SECONDS else None


# What the fast decode accepts as is; any other value fails it (the tolerant way converts).
_Name = Annotated[str, msgspec.Meta(min_length=1)] | None
_Seconds = Annotated[float, msgspec.Meta(ge=0, le=MAX_SECONDS)] | None


class ErrorInfo(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """An event's ``error``: an object with type/message/code/details, or a plain string."""

    type: _Name = None
    message: _Name = None
    code: _Name = None
    details: Any = None
    model_extra: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    """The error object's fields beyond these (``UNSET``, falsy, when it has none)."""

    @property
    def error_type(self) -> str:
        """The error's type for ``error.type``: type, else code, else ``_OTHER``."""
        return self.type or self.code or "_OTHER"

    @property
    def description(self) -> str:
        """A human description: the message, else the type or code."""
        return self.message or self.type or self.code or "error"


class _EventBase(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    flow_name: _Name = None
    run_name: _Name = None
    task_id: _Name = None
    task_name: _Name = None
    message: _Name = None
    if TYPE_CHECKING:
        timestamp_ns: int | None = None
    else:  # the wire value until settle() (or the tolerant way) converts it
        timestamp_ns: str | int | float | None = msgspec.field(default=None, name="timestamp")
    model_extra: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    """The event's fields beyond the model's (``UNSET``, falsy, when it has none)."""


class FlowStarted(_EventBase, tag_field="event_type", tag="flow_started"):
    """``flow_started``: the workflow began."""

    event_type: ClassVar[str] = "flow_started"


class TaskStarted(_EventBase, tag_field="event_type", tag="task_started"):
    """``task_started``: a node began executing; ``input`` holds its resolved params."""

    event_type: ClassVar[str] = "task_started"
    input: Any = None


class TaskCompleted(_EventBase, tag_field="event_type", tag="task_completed"):
    """``task_completed``: a node finished; ``execution_time`` in seconds."""

    event_type: ClassVar[str] = "task_completed"
    execution_time: _Seconds = None
    output: Any = None


class _Failure(_EventBase):
    if TYPE_CHECKING:
        error: ErrorInfo | None = None
    else:  # a string until settle() makes it an ErrorInfo
        error: ErrorInfo | str | None = None
    partial_results: Any = None


class TaskFailed(_Failure, tag_field="event_type", tag="task_failed"):
    """``task_failed``: a node failed with ``error``."""

    event_type: ClassVar[str] = "task_failed"
    execution_time: _Seconds = None


class FlowCompleted(_EventBase, tag_field="event_type", tag="flow_completed"):
    """``flow_completed``: the workflow finished; ``output`` is keyed by task name."""

    event_type: ClassVar[str] = "flow_completed"
    total_execution_time: _Seconds = None
    output: Any = None


class FlowError(_Failure, tag_field="event_type", tag="flow_error"):
    """``flow_error``: the workflow failed with ``error``."""

    event_type: ClassVar[str] = "flow_error"


class UnknownEvent(_EventBase):
    """An event of a type LAO does not document; kept as a span event on the run."""

    event_type: str = ""


TaskEnd = TaskCompleted | TaskFailed
TerminalEvent = FlowCompleted | FlowError


Classified = FlowStarted | TaskStarted | TaskCompleted | TaskFailed | FlowCompleted | FlowError
TrackedEvent = Classified | UnknownEvent

FAST_DECODER = msgspec.json.Decoder(Classified)
"""Decodes the common frame (see the module's docstring); raises for any other."""


def settle(event: Classified) -> bool:
    """Finish a fast-decoded event in place; False if it needs the tolerant way instead.

    Fields that only the tolerant way sets (``model_extra``; ``timestamp_ns`` under its own
    name) cannot come from the fast decode: a frame with such a key is not the common shape
    (a ``model_extra`` key decodes into that field, or fails the decode when null).
    """
    if event.model_extra is not msgspec.UNSET:
        return False
    stamp: Any = event.timestamp_ns
    if stamp is not None:
        event.timestamp_ns = parse_timestamp(stamp)
    if isinstance(event, _Failure):
        error: Any = event.error
        if error.__class__ is str:
            event.error = ErrorInfo(message=error or None)
        elif error is not None and error.model_extra is not msgspec.UNSET:
            return False
    return True


# The tolerant way ------------------------------------------------------------------------


def _raw(value: Any) -> Any:
    return value


def _opt_error(value: Any) -> ErrorInfo | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        return ErrorInfo(message=_opt_str(value))
    error = ErrorInfo(
        type=_opt_str(value.get("type")),
        message=_opt_str(value.get("message")),
        code=_opt_str(value.get("code")),
        details=value.get("details"),
    )
    extra = {k: v for k, v in value.items() if k not in _ERROR_FIELDS}
    if extra:
        error.model_extra = extra
    return error


_ERROR_FIELDS = frozenset({"type", "message", "code", "details"})
_TEXTS = ("type", "message", "code")
_NAMES = ("flow_name", "run_name", "task_id", "task_name", "message")
_OWN_FIELDS: dict[type[_EventBase], tuple[tuple[str, Callable[[Any], Any]], ...]] = {
    FlowStarted: (),
    TaskStarted: (("input", _raw),),
    TaskCompleted: (("execution_time", _opt_float), ("output", _raw)),
    TaskFailed: (("execution_time", _opt_float), ("error", _opt_error), ("partial_results", _raw)),
    FlowCompleted: (("total_execution_time", _opt_float), ("output", _raw)),
    FlowError: (("error", _opt_error), ("partial_results", _raw)),
    UnknownEvent: (),
}
_CLASSES: dict[str, type[_EventBase]] = {
    cls.event_type: cls
    for cls in (FlowStarted, TaskStarted, TaskCompleted, TaskFailed, FlowCompleted, FlowError)
}


def event_from_dict(data: dict[str, Any]) -> TrackedEvent:
    """Build the event of a decoded frame whose ``event_type`` is a non-empty string.

    ``timestamp`` may also be given as ``timestamp_ns`` (when ``timestamp`` is absent);
    every other field the model does not know goes to ``model_extra``, in frame order.
    """
    try:
        return _event(data)
    except ArithmeticError as exc:  # a name, stamp or duration made of an integer beyond 64 bits
        if exc.args != (_WIDE,):
            raise
    # Before issue 12, orjson parsed the frame, unless it held an integer beyond a float:
    # then json.loads did, keeping every integer; these are marked as kept.
    return _event(_kept(data) if beyond_float(data) else _names_as_parsed(data))


def _event(data: dict[str, Any]) -> TrackedEvent:
    kind = data["event_type"]
    cls = _CLASSES.get(kind, UnknownEvent)
    fields: dict[str, Any] = {name: _opt_str(data.get(name)) for name in _NAMES}
    stamp_key = "timestamp" if "timestamp" in data else "timestamp_ns"
    stamp = data.get(stamp_key)
    fields["timestamp_ns"] = parse_timestamp(stamp)
    if fields["timestamp_ns"] is None and stamp.__class__ is int and abs(stamp) >= _FLOAT_END:
        raise ArithmeticError(
            _WIDE
        )  # the duplicate digest of an event without a timestamp sees the payloads
    known = {"event_type", stamp_key, *_NAMES}
    for name, convert in _OWN_FIELDS[cls]:
        known.add(name)
        fields[name] = convert(data.get(name))
    if cls is UnknownEvent:
        fields["event_type"] = kind
    event: TrackedEvent = cls(**fields)  # type: ignore[assignment]
    extra = {k: v for k, v in data.items() if k not in known}
    if extra:
        event.model_extra = extra
    return event


def event_fields(event: TrackedEvent) -> dict[str, Any]:
    """The event as a dict: ``event_type``, its fields (``timestamp`` in ns), then the rest."""
    fields: dict[str, Any] = {"event_type": event.event_type}
    for name in event.__struct_fields__:
        if name == "model_extra" or name == "event_type":
            continue
        value = getattr(event, name)
        if name == "timestamp_ns":
            fields["timestamp"] = value
        elif isinstance(value, ErrorInfo):
            fields[name] = error_fields(value)
        else:
            fields[name] = value
    if isinstance(event.model_extra, dict):
        fields.update(event.model_extra)
    return fields


def error_fields(error: ErrorInfo) -> dict[str, Any]:
    """The error as a dict: its fields, then its unknown ones."""
    fields = {"type": error.type, "message": error.message, "code": error.code}
    fields["details"] = error.details
    if isinstance(error.model_extra, dict):
        fields.update(error.model_extra)
    return fields


LEGACY_ORDER = {
    cls: ("event_type", *_NAMES, "timestamp_ns", *(n for n, _ in own))
    for cls, own in _OWN_FIELDS.items()
}
"""Each event class's fields in its pydantic model's order (before issue 12)."""
