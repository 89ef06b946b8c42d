"""Identities stay those of the version before msgspec (issue 12); odd frames stay contained."""

from __future__ import annotations

import json
import types
from typing import Any

import pytest

from otel_bridge.core import frames
from otel_bridge.core.engine import Engine
from otel_bridge.core.events import FAST_DECODER, TaskStarted
from otel_bridge.core.frames import classify_frame
from otel_bridge.core.outputs import (
    DropReason,
    EventDropped,
    FrameIgnored,
    FrameRejected,
    RejectReason,
    RunClosed,
)
from otel_bridge.core.records import SpanRecord
from otel_bridge.core.run_state import identity

T0 = 1796175895_883026000
RUN = ("F", "r")
HUGE = "1" + "0" * 400  # beyond a float: orjson, the parser before msgspec, refused it

# Frames without a usable timestamp and the duplicate digest the previous version (1b7e1ef,
# pydantic's model_dump_json) gave each; saved states hold such digests.
PREVIOUS_DIGESTS = [
    (
        '{"event_type":"task_started","flow_name":"F","run_name":"r","task_id":"t1",'
        '"task_name":"a","input":{"q":1}}',
        "60a3c1d3244a2082487b2b13",
    ),
    (
        '{"event_type":"task_completed","task_name":"b","execution_time":0.25,"output":'
        '{"text":"h\\u00e9llo \\u2028","n":[1e16,1.5e-7,1e-5,-0.0]}}',
        "910c4a3acc698a4be2b7fb07",
    ),
    (
        '{"event_type":"task_failed","task_name":"b","execution_time":3,"error":'
        '{"type":"E","message":"m","extra":[1]},"partial_results":null}',
        "0570a6571ac63f676da1cebe",
    ),
    ('{"event_type":"task_failed","task_name":"b","error":"boom"}', "4b13f0da44b847c720303ef5"),
    (
        '{"event_type":"flow_completed","total_execution_time":2.5,"output":{"b":"ok"},"note":"x"}',
        "fd66926d747fc1de8d4d70a0",
    ),
    (
        '{"event_type":"flow_error","error":{"code":7},"partial_results":[true]}',
        "6ae54d0b9f468634d894fe08",
    ),
    ('{"event_type":"flow_started","flow_name":"F","run_name":"r"}', "c9fa925916d41ebeed96eee4"),
    ('{"event_type":"task_progress","task_name":"a","percent":40}', "c08e5278c6aa0f3a7ccf2401"),
    (  # both stamps: the frame's own timestamp_ns was an unknown field, written twice
        '{"event_type":"task_started","task_name":"a","timestamp":null,'
        '"timestamp_ns":1796175895883026000}',
        "6aa75a0322712cd7e8e25e22",
    ),
    (
        '{"event_type":"task_started","task_name":"a","timestamp":"soon","timestamp_ns":null,'
        '"zz":1}',
        "351a6f8752e9ad64654db213",
    ),
    (  # integers beyond 64 bits were floats (orjson) ...
        '{"event_type":"task_started","task_name":"a","input":{"big":1180591620717411303424,'
        '"neg":-9223372036854775809}}',
        "969de798ff7dc4c73669a9b2",
    ),
    (  # ... unless orjson refused the frame (NaN) and json.loads kept them
        '{"event_type":"task_started","task_name":"a","input":{"big":1180591620717411303424},'
        '"nan":NaN}',
        "59520daf6da465093f6c470b",
    ),
    (  # ... or refused it for an integer beyond a float
        '{"event_type":"task_started","task_name":"a","input":[1180591620717411303424,'
        + HUGE
        + "]}",
        "e052da41398ae8e27826ae69",
    ),
    (
        '{"event_type":"task_started","task_id":1180591620717411303424,"task_name":"a"}',
        "418f59a28e45656d3ed3d2c1",
    ),
]


@pytest.mark.parametrize(("frame", "previous"), PREVIOUS_DIGESTS, ids=lambda v: str(v)[:48])
def test_an_event_without_timestamp_has_the_previous_versions_digest(
    frame: str, previous: str
) -> None:
    """The duplicate digest of a timestamp-less event is the one the previous version saved."""
    event = classify_frame(frame)
    assert not isinstance(event, FrameIgnored | FrameRejected)
    assert event.timestamp_ns is None
    assert identity(event) == previous


# A run saved by the previous version (restore_dup.py of the review): flow_started, task a
# (with task_id) started, task b started and completed, a task_progress; none but the first
# with a timestamp.
PREVIOUS_STATE = json.loads(
    """{"version": 2, "open_runs": [{"flow_name": "F", "run_name": "r",
    "trace_id": "e2d469395718f2ee507ec869874aec19", "root_span_id": "e971d98c03991265",
    "parent": null, "parent_state": "", "sampled": true, "opened_at_ns": 1796175895883026000,
    "last_activity_ns": 1796175895883030000, "first_ns": 1796175895000000000,
    "last_ns": 1796175895883030000, "started_ns": 1796175895000000000,
    "min_task_start_ns": 1796175895883028000, "max_task_end_ns": 1796175895883029000,
    "flow_task_id": null, "message": null, "executions": 2, "adjusted": false,
    "open_by_id": {"cfcb0745e25bfc352844a5a8": {"task_name": "a", "task_id": "t1",
    "name_key": "1ba3c523e770f3313cc91ab1", "id_key": "cfcb0745e25bfc352844a5a8",
    "occurrence": 0, "span_id": 2823502879382728503, "start_ns": 1796175895883027000,
    "input_text": "{\\"q\\":1}", "input_truncated": false, "agent_id": null, "agent_name": null,
    "conversation_id": null, "server_address": null, "server_port": null, "adjusted": false}},
    "open_by_name": {}, "occurrences": {"78c75aee12eacf55ab4b0120": 1}, "finished_ids": [],
    "unmatched_ends": {}, "seen": ["55596a4dbab4f47269866ff1", "5fca30b901697aa95b13cfda",
    "60a3c1d3244a2082487b2b13", "75aa75567fa2244947415d1b", "d8c556086ea811ff85ad2e5b"],
    "spans_exported": true, "root_events": [{"name": "lao.event task_progress",
    "time_ns": 1796175895883030000, "attributes": {"lao.event.type": "task_progress",
    "lao.task_name": "a", "lao.event.payload":
    "{\\"flow_name\\":\\"F\\",\\"run_name\\":\\"r\\",\\"task_id\\":null,\\"task_name\\":\\"a\\",\\"message\\":null,\\"percent\\":40}"}}]}],
    "closed_runs": []}"""
)
RESENT = [
    '{"event_type":"task_started","flow_name":"F","run_name":"r","task_id":"t1","task_name":"a",'
    '"input":{"q":1}}',
    '{"event_type":"task_started","flow_name":"F","run_name":"r","task_name":"b","input":{"q":2}}',
    '{"event_type":"task_completed","flow_name":"F","run_name":"r","task_name":"b","output":"ok"}',
    '{"event_type":"task_progress","flow_name":"F","run_name":"r","task_name":"a","percent":40}',
]


def test_a_run_saved_by_the_previous_version_drops_what_the_server_resends() -> None:
    """Restored across the upgrade, a run still knows its timestamp-less events: no second b."""
    engine = Engine()
    engine.restore(PREVIOUS_STATE, now_ns=T0 + 10**9)
    resent = [
        out
        for i, f in enumerate(RESENT)
        for out in engine.receive(f, run=RUN, received_ns=T0 + 10**9 + i)
    ]
    dropped = [out.reason for out in resent if isinstance(out, EventDropped)]
    assert dropped == [DropReason.DUPLICATE] * 4
    assert not [out for out in resent if isinstance(out, SpanRecord)]
    end = engine.receive(
        '{"event_type":"flow_completed","flow_name":"F","run_name":"r","timestamp":1796175897.0}',
        run=RUN,
        received_ns=T0 + 2 * 10**9,
    )
    spans = [out for out in end if isinstance(out, SpanRecord)]
    assert sorted(span.name for span in spans) == ["execute_task a", "invoke_workflow F"]
    root = next(span for span in spans if span.kind == "run")
    assert [event.name for event in root.events] == ["lao.event task_progress"]


TASK_FRAMES = [
    '{"event_type":"flow_started","flow_name":"F","run_name":"r","timestamp":1796175895.0}',
    '{"event_type":"task_started","flow_name":"F","run_name":"r","task_id":ID,"task_name":"a",'
    '"timestamp":1796175895.1}',
    '{"event_type":"task_completed","flow_name":"F","run_name":"r","task_id":ID,"task_name":"a",'
    '"timestamp":1796175895.2}',
]


def task_span(task_id: str, tail: str = "") -> SpanRecord:
    """The task span of a run whose one task has the given id (JSON text)."""
    engine = Engine()
    spans: list[SpanRecord] = []
    for i, frame in enumerate(TASK_FRAMES):
        text = frame.replace("ID", task_id)
        text = text[:-1] + tail + "}" if tail else text
        outs = engine.receive(text, run=RUN, received_ns=T0 + i * 1000)
        spans += [out for out in outs if isinstance(out, SpanRecord)]
    (span,) = spans
    return span


def test_a_task_id_beyond_64_bits_keeps_the_span_id_of_the_previous_version() -> None:
    """An integer task id beyond 64 bits is named as orjson parsed it (a float): same span id."""
    span = task_span("1180591620717411303424")
    assert f"{span.span_id:016x}" == "22d062ee1b34e91f"
    assert span.attributes["cicd.pipeline.task.run.id"] == "1.1805916207174113e+21"


def test_a_task_id_beyond_64_bits_keeps_its_digits_where_orjson_refused_the_frame() -> None:
    """Where json.loads parsed the frame before (here a NaN in it), the id keeps its digits."""
    span = task_span("1180591620717411303424", ',"zz":NaN')
    assert span.attributes["cicd.pipeline.task.run.id"] == "1180591620717411303424"


RAW = "\ud800"
SURROGATE_FRAMES = {
    "raw, shallow": '{"event_type":"task_started","task_name":"a' + RAW + '","input":{"k":1}}',
    "escaped, shallow": '{"event_type":"task_started","task_name":"a\\ud800","input":{"k":1}}',
    "raw, deep": '{"event_type":"task_started","task_name":"a'
    + RAW
    + '","input":'
    + "[" * 70
    + "1"
    + "]" * 70
    + "}",
    "raw, large": '{"event_type":"task_started","task_name":"a'
    + RAW
    + '","input":"'
    + "x" * 70_000
    + '"}',
}


@pytest.mark.parametrize("frame", SURROGATE_FRAMES.values(), ids=SURROGATE_FRAMES.keys())
def test_a_raw_lone_surrogate_is_replaced_as_an_escaped_one(frame: str) -> None:
    """A str frame with a raw lone surrogate is an event, the surrogate replaced ('?')."""
    event = classify_frame(frame, 1024 * 1024)
    assert isinstance(event, TaskStarted)
    assert event.task_name == "a?"


def test_a_raw_lone_surrogate_in_a_terminal_event_still_ends_the_run() -> None:
    """The run's flow_completed with a raw surrogate in an unknown field closes the run."""
    engine = Engine()
    engine.receive(
        '{"event_type":"flow_started","flow_name":"F","run_name":"r"}', run=RUN, received_ns=T0
    )
    outs = engine.receive(
        '{"event_type":"flow_completed","flow_name":"F","run_name":"r","note":"x' + RAW + '"}',
        run=RUN,
        received_ns=T0 + 1,
    )
    assert [type(out) for out in outs][-1] is RunClosed


NOT_OBJECTS: list[Any] = [
    [("event_type", "flow_started"), ("flow_name", "F"), ("run_name", "r")],
    bytearray(b'{"event_type":"flow_started"}'),
    memoryview(b'{"event_type":"flow_started"}'),
    None,
    42,
]


@pytest.mark.parametrize("frame", NOT_OBJECTS, ids=lambda f: type(f).__name__)
def test_a_frame_neither_text_nor_a_mapping_is_rejected_as_not_an_object(frame: Any) -> None:
    """A list of pairs is no event (dict() would take it); nothing else gets that far either."""
    outs = Engine().receive(frame, run=RUN, received_ns=T0)
    assert outs == [FrameRejected(RejectReason.NOT_AN_OBJECT, type(frame).__name__)]


def test_a_mapping_frame_is_still_an_event() -> None:
    """A read-only mapping is classified as the dict it holds."""
    frame = types.MappingProxyType(
        {"event_type": "flow_started", "flow_name": "F", "run_name": "r"}
    )
    outs = Engine().receive(frame, run=RUN, received_ns=T0)
    assert "RunOpened" in [type(out).__name__ for out in outs]


def test_a_duration_beyond_a_float_is_absent_and_the_run_still_ends() -> None:
    """A 401-digit execution_time is treated as no duration; the terminal event is not lost."""
    engine = Engine()
    engine.receive(
        '{"event_type":"flow_started","flow_name":"F","run_name":"r"}', run=RUN, received_ns=T0
    )
    outs = engine.receive(
        '{"event_type":"flow_completed","flow_name":"F","run_name":"r","total_execution_time":'
        + HUGE
        + ',"execution_time":'
        + HUGE
        + "}",
        run=RUN,
        received_ns=T0 + 1,
    )
    assert [type(out) for out in outs][-1] is RunClosed


def test_a_large_frame_is_not_decoded_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above the size threshold the typed decode is not tried: its late failure costs double."""
    calls: list[int] = []
    decoder = FAST_DECODER

    class Spy:
        def decode(self, text: str) -> Any:
            calls.append(len(text))
            return decoder.decode(text)

    monkeypatch.setattr(frames, "FAST_DECODER", Spy())
    small = '{"event_type":"task_started","task_name":"a","input":"x","zz":1}'
    large = small.replace('"x"', '"' + "x" * 200_000 + '"')
    assert isinstance(classify_frame(small), TaskStarted)
    assert isinstance(classify_frame(large), TaskStarted)
    assert calls == [len(small)]
