"""Tracker invariants under whatever the real socket does: reordering, duplicates, drops."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.resources import Resource

from helpers import feed_events, span_dict
from otel_bridge.core.ids import root_span_id, run_trace_id
from otel_bridge.core.records import Result, SpanRecord
from otel_bridge.core.tracker import Tracker
from otel_bridge.sinks.otlp import spans_of, traces_data

T0 = 1756806125.0
RESOURCE = Resource.create({"service.name": "otel-bridge-test"})
PROPERTY_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

Events = list[dict[str, Any]]


@st.composite
def quirk(draw: st.DrawFn, event: dict[str, Any]) -> dict[str, Any]:
    """Now and then spoil one field as the real socket does (ids, timestamps, durations)."""
    spoil = draw(st.sampled_from(["none"] * 12 + ["no_id", "no_ts", "bad_ts", "huge_time"]))
    event = dict(event)
    if spoil == "no_id":
        event.pop("task_id", None)
    elif spoil == "no_ts":
        del event["timestamp"]
    elif spoil == "bad_ts":
        event["timestamp"] = "not a time"
    elif spoil == "huge_time" and "execution_time" in event:
        event["execution_time"] = 1e12
    return event


@st.composite
def run_stream(draw: st.DrawFn, flow: str, run: str, quirks: bool = True) -> Events:
    """Draw one run's events in their true order (with or without task_ids)."""
    with_ids = draw(st.booleans())
    spoil = quirk if quirks else st.just
    base = {"flow_name": flow, "run_name": run}
    clock = draw(st.integers(0, 50))
    events: Events = []
    if draw(st.booleans()):
        events.append({**base, "event_type": "flow_started", "timestamp": T0 + clock / 10})
    for index in range(draw(st.integers(0, 5))):
        name = draw(st.sampled_from(["fetch", "think", "write"]))
        start = clock + draw(st.integers(0, 20))
        length = draw(st.integers(0, 30))
        clock = start + draw(st.integers(0, 5))
        ids = {"task_id": f"{run}-{index}"} if with_ids else {}
        agent = {"config": {"agent_id": "a-1", "api_key": "sk-secret-abcdef"}}
        task = {**base, **ids, "task_name": name}
        started = {
            **task,
            "event_type": "task_started",
            "timestamp": T0 + start / 10,
            "input": agent if draw(st.booleans()) else {"n": index},
        }
        events.append(draw(spoil(started)))
        if draw(st.booleans()):
            events.append({**base, "event_type": "node_progress", "timestamp": T0 + start / 10})
        end = {**task, "timestamp": T0 + (start + length) / 10, "execution_time": length / 10}
        end = draw(spoil(end))
        if draw(st.integers(0, 3)) == 0:
            events.append({**end, "event_type": "task_failed", "error": {"type": "E"}})
        else:
            events.append({**end, "event_type": "task_completed", "output": {"ok": True}})
    terminal = draw(st.sampled_from(["flow_completed", "flow_error", None]))
    if terminal is not None:
        ts = T0 + (clock + draw(st.integers(0, 40))) / 10
        events.append({**base, "event_type": terminal, "timestamp": ts, "output": {"fetch": 1}})
    return events


@st.composite
def noisy_streams(draw: st.DrawFn) -> Events:
    """Draw 1-3 interleaved runs, then shuffle, duplicate and drop events as a socket might."""
    names = draw(
        st.lists(
            st.tuples(st.sampled_from(["Flow A", "Flöw/B"]), st.sampled_from(["r1", "r 2"])),
            min_size=1,
            max_size=3,
            unique=True,
        )
    )
    events: Events = []
    for flow, run in names:
        events.extend(draw(run_stream(flow, run)))
    dupes = draw(st.lists(st.sampled_from(events), max_size=6)) if events else []
    events = draw(st.permutations(events + dupes))
    keep = draw(st.lists(st.booleans(), min_size=len(events), max_size=len(events)))
    return [e for e, kept in zip(events, keep, strict=True) if kept or draw(st.booleans())]


def run_all(events: Events) -> list[SpanRecord]:
    """Feed the events, close what is left open, return every span record."""
    outputs = feed_events(events, tracker=Tracker(), close=Result.CANCELLATION)
    return [o for o in outputs if isinstance(o, SpanRecord)]


@PROPERTY_SETTINGS
@given(noisy_streams())
def test_tracker_invariants(events: Events) -> None:
    """Any order, duplicates or gaps: sane times, right parents, unique ids, one root per run."""
    records = run_all(events)
    runs = {(e["flow_name"], e["run_name"]) for e in events}
    roots = Counter((r.flow_name, r.run_name) for r in records if r.kind == "run")
    assert roots == Counter(dict.fromkeys(runs, 1))
    ids = Counter(r.span_id for r in records)
    assert all(count == 1 for count in ids.values()), ids
    by_run = {(r.flow_name, r.run_name): r for r in records if r.kind == "run"}
    for record in records:
        assert 0 < record.start_ns <= record.end_ns
        root = by_run[(record.flow_name, record.run_name)]
        assert record.trace_id == run_trace_id(record.flow_name, record.run_name)
        if record.kind == "task":
            assert record.parent_span_id == root.span_id
            assert record.parent_span_id == root_span_id(record.flow_name, record.run_name)
            assert not record.parent_is_remote
            assert root.start_ns <= record.start_ns
            assert record.end_ns <= root.end_ns
        else:
            assert record.parent_span_id is None
    for secret_holder in records:
        assert "sk-secret-abcdef" not in str(secret_holder.attributes)


@PROPERTY_SETTINGS
@given(noisy_streams())
def test_tracker_is_deterministic(events: Events) -> None:
    """The same input gives the same spans and ids (a replay lands in the same trace)."""
    first = [span_dict(r) for r in run_all(events)]
    second = [span_dict(r) for r in run_all(events)]
    assert first == second


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(noisy_streams())
def test_every_record_encodes_as_otlp(events: Events) -> None:
    """Every record the tracker makes encodes to OTLP/JSON with its ids and times intact."""
    records = run_all(events)
    encoded = spans_of(traces_data(records, RESOURCE))
    assert len(encoded) == len(records)
    assert {(s["spanId"], s["startTimeUnixNano"]) for s in encoded} == {
        (r.span_id_hex, str(r.start_ns)) for r in records
    }


@PROPERTY_SETTINGS
@given(st.data())
def test_in_order_stream_without_loss_ids_match_clean_run(data: st.DataObject) -> None:
    """Duplicating events of an in-order stream never changes the spans it produces."""
    events = data.draw(run_stream("Flow A", "r1", quirks=False))
    clean = [span_dict(r) for r in run_all(events)]
    noisy: Events = []
    for event in events:
        noisy.extend([event] * data.draw(st.integers(1, 3)))
    assert [span_dict(r) for r in run_all(noisy)] == clean
