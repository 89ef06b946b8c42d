"""Finished span records: what a run and its task executions become.

Plain frozen data, no OpenTelemetry objects: the sinks turn a :class:`SpanRecord` into
whatever their wire format needs, and the metrics read the same records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from enum import StrEnum
from typing import Any, Literal, TypeVar

AttributeValue = str | bool | int | float | Sequence[str]
Attributes = Mapping[str, AttributeValue]


_Frozen = TypeVar("_Frozen", bound=type[Any])


def quick_init(cls: _Frozen) -> _Frozen:
    """Give a frozen dataclass an ``__init__`` that fills its ``__dict__`` in one step.

    The generated one sets each field through ``object.__setattr__`` (a frozen class refuses
    plain assignment), about 4x slower for a record of 20 fields. Same parameters, defaults,
    equality, repr and immutability. Not supported (``TypeError``): ``__post_init__``,
    ``slots=True``, fields with a ``default_factory``, ``init=False`` or ``kw_only``.
    """
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: __post_init__ is not supported")
    if "__slots__" in cls.__dict__:
        raise TypeError(f"{cls.__name__}: slots=True is not supported (no __dict__)")
    params, items, defaults = [], [], {}
    for f in fields(cls):
        if f.default_factory is not MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: default_factory is not supported")
        if not f.init or f.kw_only:
            raise TypeError(f"{cls.__name__}.{f.name}: init=False and kw_only are not supported")
        if f.default is MISSING:
            params.append(f.name)
        else:
            params.append(f"{f.name}=_default_{f.name}")
            defaults[f"_default_{f.name}"] = f.default
        items.append(f"{f.name!r}: {f.name}")
    body = f"self.__dict__.update({{{', '.join(items)}}})"
    exec(f"def __init__(self, {', '.join(params)}):\n    {body}\n", defaults)  # own field names
    init = defaults["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init
    return cls


class StatusCode(StrEnum):
    """Span status, as in OpenTelemetry."""

    UNSET = "UNSET"
    OK = "OK"
    ERROR = "ERROR"


class Result(StrEnum):
    """``cicd.pipeline.result`` / ``cicd.pipeline.task.run.result`` values (CI/CD conventions).

    ``cancellation`` means someone cancelled (``DELETE /v1/runs``, the last pass-through
    client leaving); a run the bridge itself gives up on is ``timeout`` (no event for too
    long, upstream unreachable) or ``error`` (the bridge shut down, the replay input ended,
    LAO refused the run's socket), with ``lao.run.close_reason`` saying which.
    """

    SUCCESS = "success"
    FAILURE = "failure"
    ERROR = "error"
    CANCELLATION = "cancellation"
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class SpanEvent:
    """A timestamped event on a span (an exception, an unknown LAO event)."""

    name: str
    time_ns: int
    attributes: Attributes = field(default_factory=dict)


@quick_init
@dataclass(frozen=True)
class SpanRecord:
    """One finished span: the run's root (``kind="run"``) or a task execution."""

    kind: Literal["run", "task"]
    flow_name: str
    run_name: str
    task_name: str | None
    trace_id: int
    span_id: int
    parent_span_id: int | None
    parent_is_remote: bool
    name: str
    start_ns: int
    end_ns: int
    attributes: Attributes
    events: tuple[SpanEvent, ...]
    status: StatusCode
    status_message: str | None
    result: Result
    error_type: str | None = None
    sampled: bool = True  # False: the run's sampler said no; metrics only, not exported
    client: bool = False  # span kind CLIENT (a remote agent call), else INTERNAL
    trace_state: str = ""

    @property
    def duration_s(self) -> float:
        """The span's duration in seconds."""
        return (self.end_ns - self.start_ns) / 1e9

    @property
    def trace_id_hex(self) -> str:
        """The trace id as 32 lowercase hex digits."""
        return f"{self.trace_id:032x}"

    @property
    def span_id_hex(self) -> str:
        """The span id as 16 lowercase hex digits."""
        return f"{self.span_id:016x}"
