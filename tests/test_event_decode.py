"""The two ways a frame becomes an event (one C-level decode, the tolerant way) agree."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from otel_bridge.core.engine import Engine
from otel_bridge.core.events import (
    FAST_DECODER,
    ErrorInfo,
    TaskFailed,
    TaskStarted,
    UnknownEvent,
    event_fields,
    settle,
)
from otel_bridge.core.frames import Noise, Rejected, classify_frame, classify_object
from otel_bridge.core.records import SpanRecord

TS_ISO = "2026-12-02T01:44:55.883026+00:00"
TS_NS = 1796175895883026000

FRAMES: list[dict[str, Any]] = [
    {"event_type": "flow_started", "flow_name": "F", "run_name": "r", "timestamp": TS_ISO},
    {"event_type": "task_started", "task_id": "t", "task_name": "a", "input": {"k": [1, 2.5]}},
    {"event_type": "task_completed", "execution_time": 3, "output": None, "timestamp": 1.5e9},
    {"event_type": "task_completed", "execution_time": -1.0, "output": "x"},
    {"event_type": "task_completed", "execution_time": 1e12, "timestamp": 1756806125043},
    {"event_type": "task_completed", "execution_time": "0.5", "timestamp": "1756806125"},
    {"event_type": "task_failed", "error": "boom", "partial_results": [True]},
    {"event_type": "task_failed", "error": "", "timestamp": True},
    {"event_type": "task_failed", "error": {"type": "E", "code": "C", "details": {"a": 1}}},
    {"event_type": "task_failed", "error": {"type": "", "code": 7, "threshold": 0.9}},
    {"event_type": "task_failed", "error": {"message": "m", "model_extra": None}},
    {"event_type": "task_failed", "error": ["not", "an", "object"]},
    {"event_type": "flow_completed", "total_execution_time": 2.5, "output": {"a": "b"}},
    {"event_type": "flow_error", "error": None, "message": ""},
    {"event_type": "flow_started", "flow_name": 5, "run_name": True, "task_id": [1]},
    {"event_type": "flow_started", "timestamp_ns": TS_ISO},
    {"event_type": "flow_started", "timestamp": 1.5e9, "timestamp_ns": 7},
    {"event_type": "task_started", "model_extra": None},
    {"event_type": "task_started", "model_extra": {"a": 1}, "zz": 2},
    {"event_type": "task_started", "output": "not a field of task_started"},
    {"event_type": "task_progress", "task_name": "a", "percent": 40, "timestamp": TS_ISO},
    {"event_type": "task_started", "input": 2**64 + 1},
]


def described(event: Any) -> tuple[str, dict[str, Any], Any]:
    """The event's type, its fields as a dict, and its unknown fields."""
    return type(event).__name__, event_fields(event), event.model_extra or {}


@pytest.mark.parametrize("data", FRAMES, ids=lambda d: json.dumps(d)[:60])
def test_the_fast_decode_and_the_tolerant_way_build_the_same_event(data: dict[str, Any]) -> None:
    """A frame's text and its decoded dict classify as equal events, whichever way is taken."""
    from_text = classify_frame(json.dumps(data))
    from_dict = classify_object(json.loads(json.dumps(data)))
    assert not isinstance(from_text, Noise | Rejected)
    assert not isinstance(from_dict, Noise | Rejected)
    assert described(from_text) == described(from_dict)


def test_the_common_frame_takes_the_fast_decode() -> None:
    """A frame of the common shape is decoded in one step, its timestamp in ns after settle."""
    text = json.dumps({"event_type": "task_started", "task_name": "a", "timestamp": TS_ISO})
    event = FAST_DECODER.decode(text)
    assert settle(event)
    assert isinstance(event, TaskStarted)
    assert (event.task_name, event.timestamp_ns) == ("a", TS_NS)


def test_a_frame_outside_the_common_shape_fails_the_fast_decode() -> None:
    """Unknown fields, an unknown type, a number as a name: the fast decode refuses them."""
    for data in (
        {"event_type": "task_started", "zz": 1},
        {"event_type": "task_progress"},
        {"event_type": "flow_started", "flow_name": 5},
        {"event_type": "flow_started", "flow_name": ""},
    ):
        with pytest.raises(msgspec.ValidationError):
            FAST_DECODER.decode(json.dumps(data))


def test_a_model_extra_key_is_an_unknown_field_like_any_other() -> None:
    """A frame's own ``model_extra`` key, null or not, is kept among the unknown fields."""
    for value in (None, {"a": 1}, "s"):
        event = classify_frame(json.dumps({"event_type": "task_started", "model_extra": value}))
        assert isinstance(event, TaskStarted)
        assert event.model_extra == {"model_extra": value}


def test_a_string_error_becomes_an_error_with_that_message() -> None:
    """``error`` as a string is an ErrorInfo whose message is the string (empty: none)."""
    event = classify_frame(json.dumps({"event_type": "task_failed", "error": "boom"}))
    assert isinstance(event, TaskFailed)
    assert event.error == ErrorInfo(message="boom")
    empty = classify_frame(json.dumps({"event_type": "task_failed", "error": ""}))
    assert isinstance(empty, TaskFailed)
    assert empty.error == ErrorInfo()


def test_integers_beyond_64_bits_stay_exact() -> None:
    """An integer too large for 64 bits keeps its digits (it is not turned into a float)."""
    event = classify_frame('{"event_type": "task_started", "input": {"n": 18446744073709551617}}')
    assert isinstance(event, TaskStarted)
    assert event.input == {"n": 18446744073709551617}


def test_unknown_event_fields_are_the_documented_ones_then_the_rest_in_order() -> None:
    """An unknown event's fields: type, names, timestamp in ns, then its own, in frame order."""
    data = {"event_type": "task_progress", "percent": 40, "task_name": "a", "timestamp": TS_ISO}
    event = classify_frame(json.dumps({**data, "b": [1]}))
    assert isinstance(event, UnknownEvent)
    assert list(event_fields(event).items()) == [
        ("event_type", "task_progress"),
        ("flow_name", None),
        ("run_name", None),
        ("task_id", None),
        ("task_name", "a"),
        ("message", None),
        ("timestamp", TS_NS),
        ("percent", 40),
        ("b", [1]),
    ]


def test_an_adjusted_timestamp_keeps_the_event_and_its_error() -> None:
    """A live event stamped far in the past gets the receive time; its error details stay."""
    engine = Engine()
    received = TS_NS + 10**15  # ~11.6 days later: beyond the plausible past
    names = {"flow_name": "F", "run_name": "r"}
    frames: list[dict[str, Any]] = [
        {"event_type": "task_started", "task_id": "t", "task_name": "a", "timestamp": TS_ISO},
        {"event_type": "task_failed", "task_id": "t", "task_name": "a", "timestamp": TS_ISO,
         "error": {"type": "E", "threshold": 0.9}},
    ]  # fmt: skip
    outputs = [o for f in frames for o in engine.receive(json.dumps({**f, **names}),
               run=("F", "r"), received_ns=received)]  # fmt: skip
    spans = [o for o in outputs if isinstance(o, SpanRecord)]
    assert len(spans) == 1
    assert spans[0].end_ns == received
    assert spans[0].attributes["error.type"] == "E"
    assert spans[0].attributes["lao.error.details"] == '{"threshold":0.9}'
    assert spans[0].attributes["lao.timestamp.adjusted"] is True
