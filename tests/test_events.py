"""Frame classification: events, noise and rejects, and the tolerant event fields."""

from __future__ import annotations

import json
from typing import Any

import pytest

from helpers import seed_events
from otel_bridge.core.events import (
    FlowCompleted,
    FlowError,
    FlowStarted,
    TaskCompleted,
    TaskFailed,
    TaskStarted,
    UnknownEvent,
)
from otel_bridge.core.frames import (
    MAX_FRAME_BYTES,
    MAX_PAYLOAD_DEPTH,
    Noise,
    Rejected,
    classify_frame,
    classify_object,
)

TS = 1756806125.043
TS_NS = 1756806125043000000


def frame(**fields: Any) -> str:
    """Encode fields as a JSON text frame."""
    return json.dumps(fields)


@pytest.mark.parametrize(
    ("event_type", "model"),
    [
        ("flow_started", FlowStarted),
        ("task_started", TaskStarted),
        ("task_completed", TaskCompleted),
        ("task_failed", TaskFailed),
        ("flow_completed", FlowCompleted),
        ("flow_error", FlowError),
    ],
)
def test_each_documented_type_becomes_its_event(event_type: str, model: type) -> None:
    """Each of the six documented event types classifies as its own model."""
    event = classify_frame(frame(event_type=event_type, flow_name="F", run_name="r"))
    assert type(event) is model
    assert not isinstance(event, Noise | Rejected)
    assert event.event_type == event_type


def test_seed_events_all_classify_as_known_events() -> None:
    """Every example event of the seed is a known event with its timestamp in ns."""
    for data in seed_events():
        event = classify_frame(json.dumps(data))
        assert not isinstance(event, Noise | Rejected | UnknownEvent)
        assert event.event_type == data["event_type"]
        assert event.timestamp_ns == round(data["timestamp"] * 1_000_000) * 1_000


def test_unknown_type_is_kept_as_unknown_event() -> None:
    """An undocumented event_type is an UnknownEvent carrying its type and fields."""
    event = classify_frame(frame(event_type="node_progress", percent=40, timestamp=TS))
    assert isinstance(event, UnknownEvent)
    assert event.event_type == "node_progress"
    assert event.timestamp_ns == TS_NS
    assert event.model_extra == {"percent": 40}


@pytest.mark.parametrize(
    "text",
    [
        "connection established",
        "WebSocket Connection Established for Customer_Support_Pipeline/ticket_78453",
        "Connected to workflow Customer_Support_Pipeline",
    ],
)
def test_plain_text_greetings_are_noise(text: str) -> None:
    """Plain-text greeting frames are noise of reason greeting."""
    assert classify_frame(text) == Noise("greeting")


def test_json_system_greeting_is_noise() -> None:
    """The JSON greeting {"type": "system", ...} is noise of reason system."""
    greeting = frame(type="system", message="Connected to workflow Customer_Support_Pipeline")
    assert classify_frame(greeting) == Noise("system")


@pytest.mark.parametrize(
    "text",
    [
        'Echoing: {"type":"ping"}',
        "echoing: hello",
        frame(message='Echoing: {"type":"ping"}'),
        frame(type="echo", message="Echoing: hello", extra=1),
    ],
)
def test_echoes_are_noise(text: str) -> None:
    """Echoes of what the client sent, plain or inside ``message``, are noise."""
    assert classify_frame(text) == Noise("echo")


@pytest.mark.parametrize(
    "text",
    [
        frame(event_type="keepalive"),
        frame(event_type="ping", timestamp=TS),
        frame(event_type="PONG"),
        frame(type="ping"),
        frame(type="pong"),
        frame(type="keepalive"),
    ],
)
def test_keepalives_are_noise(text: str) -> None:
    """keepalive/ping/pong as event_type or as ``type`` are noise, never events."""
    assert classify_frame(text) == Noise("keepalive")


@pytest.mark.parametrize("text", ["hello", "  some server log line", "OK", ""])
def test_other_plain_text_is_noise(text: str) -> None:
    """Any other non-JSON text frame is noise of reason text."""
    assert classify_frame(text) == Noise("text")


@pytest.mark.parametrize("text", ['{"event_type": "flow_started",', "{nope}", "[1, 2"])
def test_broken_json_is_rejected(text: str) -> None:
    """A frame that looks like JSON but does not parse is rejected as invalid_json."""
    result = classify_frame(text)
    assert isinstance(result, Rejected)
    assert result.reason == "invalid_json"


def test_json_array_is_rejected() -> None:
    """A JSON array is rejected as not_an_object."""
    result = classify_frame('[{"event_type": "flow_started"}]')
    assert isinstance(result, Rejected)
    assert result.reason == "not_an_object"


@pytest.mark.parametrize(
    "data",
    [{"flow_name": "F", "run_name": "r", "timestamp": TS}, {"status": "ok", "data": {}}],
)
def test_object_without_event_type_is_rejected(data: dict[str, Any]) -> None:
    """An object with neither event_type nor a noise shape is rejected as no_event_type."""
    result = classify_frame(json.dumps(data))
    assert isinstance(result, Rejected)
    assert result.reason == "no_event_type"


@pytest.mark.parametrize("value", [None, "", 5, ["flow_started"]])
def test_unusable_event_type_is_rejected(value: Any) -> None:
    """An empty or non-string event_type is rejected, never guessed."""
    result = classify_object({"event_type": value, "flow_name": "F", "run_name": "r"})
    assert isinstance(result, Rejected)
    assert result.reason == "no_event_type"


def test_bytes_frame_is_decoded() -> None:
    """A binary frame holding UTF-8 JSON classifies like the text frame."""
    event = classify_frame(frame(event_type="flow_started", flow_name="Flöw").encode("utf-8"))
    assert isinstance(event, FlowStarted)
    assert event.flow_name == "Flöw"


def test_bytes_not_utf8_are_rejected() -> None:
    """A binary frame that is not UTF-8 is rejected as not_utf8."""
    result = classify_frame(b'{"event_type": "flow_started", "x": "\xff\xfe"}')
    assert isinstance(result, Rejected)
    assert result.reason == "not_utf8"


@pytest.mark.parametrize("as_bytes", [False, True])
def test_too_large_frame_is_rejected(as_bytes: bool) -> None:
    """A frame over the size limit is rejected as too_large without being parsed."""
    text = '{"event_type": "flow_started", "pad": "' + "x" * MAX_FRAME_BYTES + '"}'
    result = classify_frame(text.encode() if as_bytes else text)
    assert isinstance(result, Rejected)
    assert result.reason == "too_large"


def test_too_large_is_measured_in_utf8_bytes() -> None:
    """The size limit counts UTF-8 bytes, so multi-byte text over it is rejected too."""
    text = '{"event_type": "x", "pad": "' + "é" * (MAX_FRAME_BYTES // 2 + 1) + '"}'
    result = classify_frame(text)
    assert isinstance(result, Rejected)
    assert result.reason == "too_large"


def test_task_id_as_int_is_a_string() -> None:
    """A numeric task_id is kept as its string form."""
    event = classify_object({"event_type": "task_started", "task_id": 42, "task_name": "a"})
    assert isinstance(event, TaskStarted)
    assert event.task_id == "42"


def test_empty_strings_are_missing() -> None:
    """Empty-string names and ids count as missing."""
    event = classify_object({"event_type": "task_started", "task_id": "", "task_name": ""})
    assert isinstance(event, TaskStarted)
    assert event.task_id is None
    assert event.task_name is None


def test_error_as_string_becomes_its_message() -> None:
    """A plain-string ``error`` is read as the error's message."""
    event = classify_object({"event_type": "task_failed", "error": "boom"})
    assert isinstance(event, TaskFailed)
    assert event.error is not None
    assert event.error.message == "boom"
    assert event.error.error_type == "_OTHER"
    assert event.error.description == "boom"


def test_error_object_fields_and_extras() -> None:
    """An ``error`` object keeps type, message, code, details and unknown fields."""
    event = classify_object(seed_events("Financial_Data_Pipeline")[3])
    assert isinstance(event, FlowError)
    assert event.error is not None
    assert event.error.type == "PipelineHaltedError"
    assert event.error.code == "QUALITY_THRESHOLD_FAILED"
    assert event.error.error_type == "PipelineHaltedError"
    assert event.error.model_extra == {
        "threshold": 0.02,
        "actual_failure_rate": 0.0277,
        "action_taken": "quarantine_and_alert",
    }


def test_error_type_falls_back_to_code() -> None:
    """Without a type, the error's type is its code."""
    event = classify_object({"event_type": "flow_error", "error": {"code": 503}})
    assert isinstance(event, FlowError)
    assert event.error is not None
    assert event.error.error_type == "503"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("5.33", 5.33), (5, 5.0), ("oops", None), (-1, None), (True, None), ("nan", None)],
)
def test_execution_time_is_tolerant(value: Any, expected: float | None) -> None:
    """execution_time accepts numbers and numeric strings; anything else is missing."""
    event = classify_object({"event_type": "task_completed", "execution_time": value})
    assert isinstance(event, TaskCompleted)
    assert event.execution_time == expected


@pytest.mark.parametrize(
    ("value", "expected_ns"),
    [
        (1756806125.043, 1756806125043000000),
        (1756806125, 1756806125000000000),
        (1756806125043, 1756806125043000000),
        (1756806125043123, 1756806125043123000),
        ("1756806125.043", 1756806125043000000),
        ("2025-09-02T09:42:05.043Z", 1756806125043000000),
        ("2025-09-02T11:42:05.043+02:00", 1756806125043000000),
        ("garbage", None),
        (None, None),
        ({"s": 1}, None),
    ],
)
def test_timestamp_forms(value: Any, expected_ns: int | None) -> None:
    """Timestamps in s, ms, µs, ISO-8601 and numeric strings convert; garbage is missing."""
    event = classify_object({"event_type": "flow_started", "timestamp": value})
    assert isinstance(event, FlowStarted)
    assert event.timestamp_ns == expected_ns


def test_unknown_fields_are_kept() -> None:
    """Fields the model does not know are kept in model_extra, values untouched."""
    event = classify_object(
        {"event_type": "task_completed", "task_name": "a", "node_meta": {"retries": 0}, "n": 1}
    )
    assert isinstance(event, TaskCompleted)
    assert event.model_extra == {"node_meta": {"retries": 0}, "n": 1}


def test_non_string_names_are_rendered() -> None:
    """Names given as numbers or objects become strings, not validation errors."""
    event = classify_object(
        {"event_type": "task_started", "flow_name": 7, "run_name": {"a": 1}, "message": 1.5}
    )
    assert isinstance(event, TaskStarted)
    assert (event.flow_name, event.run_name, event.message) == ("7", '{"a":1}', "1.5")


def test_deeply_nested_payload_is_cut_not_fatal() -> None:
    """A payload nested deeper than the limit classifies, cut at the limit depth."""
    depth = 900
    text = '{"event_type": "task_started", "task_name": "a", "input": %s}' % (
        "[" * depth + "]" * depth
    )
    event = classify_frame(text)
    assert isinstance(event, TaskStarted)
    levels, value = 0, event.input
    while isinstance(value, list) and value:
        levels, value = levels + 1, value[0]
    assert levels < MAX_PAYLOAD_DEPTH
