"""quick_init: the one-step __init__ of frozen records behaves as the dataclass's own."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest

from otel_bridge.core.outputs import EventReceived
from otel_bridge.core.records import Result, SpanRecord, StatusCode, quick_init


def make(trace_state: str = "") -> SpanRecord:
    """A task record built with positional arguments (and one keyword)."""
    attrs = {"k": "v"}
    return SpanRecord(
        "task", "F", "r", "t", 1, 2, 3, False, "execute_task t", 10, 20, attrs, (),
        StatusCode.OK, None, Result.SUCCESS, trace_state=trace_state,
    )  # fmt: skip


def test_a_record_has_its_fields_and_defaults() -> None:
    """Positional and keyword arguments land in their fields; unset ones take the defaults."""
    record = make(trace_state="k=v")
    assert record.kind == "task"
    assert record.attributes == {"k": "v"}
    assert record.result is Result.SUCCESS
    assert (record.error_type, record.sampled, record.client) == (None, True, False)
    assert record.trace_state == "k=v"
    assert list(inspect.signature(SpanRecord).parameters) == [
        f.name for f in dataclasses.fields(SpanRecord)
    ]


def test_a_record_stays_frozen_comparable_and_replaceable() -> None:
    """Equality, repr, replace() and the frozen refusal work as with the generated __init__."""
    record = make()
    assert record == make()
    assert dataclasses.replace(record, end_ns=30).end_ns == 30
    assert repr(record).startswith("SpanRecord(kind='task', flow_name='F'")
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.end_ns = 5  # type: ignore[misc]
    event = EventReceived("F", "r", "task_started", None)
    named = EventReceived(flow_name="F", run_name="r", event_type="task_started", lag_s=None)
    assert event == named


def test_a_missing_argument_is_refused() -> None:
    """A required field left out raises TypeError, as a dataclass does."""
    with pytest.raises(TypeError):
        EventReceived("F", "r", "task_started")  # type: ignore[call-arg]


def test_a_default_factory_is_refused_at_class_creation() -> None:
    """quick_init refuses a class with a default_factory (it could not share the default)."""

    @dataclasses.dataclass(frozen=True)
    class WithFactory:
        items: list[int] = dataclasses.field(default_factory=list)

    with pytest.raises(TypeError, match="default_factory"):
        quick_init(WithFactory)


def _post_init() -> type:
    @dataclasses.dataclass(frozen=True)
    class WithPost:
        a: int

        def __post_init__(self) -> None:
            raise AssertionError("skipped by the one-step __init__")

    return WithPost


def _init_false() -> type:
    @dataclasses.dataclass(frozen=True)
    class WithInitFalse:
        a: int
        b: int = dataclasses.field(default=0, init=False)

    return WithInitFalse


def _kw_only() -> type:
    @dataclasses.dataclass(frozen=True)
    class WithKwOnly:
        a: int
        b: int = dataclasses.field(default=0, kw_only=True)

    return WithKwOnly


def _slots() -> type:
    @dataclasses.dataclass(frozen=True, slots=True)
    class WithSlots:
        a: int

    return WithSlots


@pytest.mark.parametrize("make_class", [_post_init, _init_false, _kw_only, _slots])
def test_quick_init_refuses_what_it_cannot_reproduce(make_class: Any) -> None:
    """__post_init__, init=False, kw_only and slots=True raise TypeError, not a wrong __init__."""
    with pytest.raises(TypeError, match="not supported"):
        quick_init(make_class())
