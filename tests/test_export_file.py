"""Spans leaving: OTLP/JSON lines written by FileSink, and the ExportQueue in front of sinks."""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource

from helpers import run_events, seed_events
from otel_bridge.core.ids import parse_traceparent
from otel_bridge.core.records import Result, SpanRecord
from otel_bridge.core.timestamps import parse_timestamp
from otel_bridge.core.tracker import Tracker
from otel_bridge.sinks.export_queue import ExportQueue
from otel_bridge.sinks.otlp import spans_of
from otel_bridge.sinks.span_sinks import ExportError, FileSink, MemorySink

RESOURCE = Resource.create({"service.name": "otel-bridge-test"})
CAMEL = re.compile(r"^[a-z][a-zA-Z0-9]*$")
HEX = {"traceId": 32, "spanId": 16, "parentSpanId": 16}
PARENT = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")


def seed_records() -> list[SpanRecord]:
    """Both seed runs' spans; Financial runs under a caller's traceparent."""
    tracker = Tracker()
    tracker.set_parent("Financial_Data_Pipeline", "daily_batch_20240215", PARENT)
    return run_events(seed_events(), tracker=tracker, close=Result.CANCELLATION)


@pytest.fixture
def written(tmp_path: Path) -> Iterator[tuple[list[SpanRecord], list[dict[str, Any]]]]:
    """The seed's spans sent through ExportQueue + FileSink, and the lines of the file."""
    path = tmp_path / "out" / "spans.jsonl"
    records = seed_records()
    queue = ExportQueue(FileSink(path, RESOURCE), max_batch=4, delay_s=0.01)
    for record in records:
        assert queue.submit(record)
    queue.close()
    lines = path.read_text(encoding="utf-8").splitlines()
    yield records, [json.loads(line) for line in lines]


def all_keys(value: Any) -> Iterator[str]:
    """Every object key in a JSON value, at any depth."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from all_keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from all_keys(item)


def encoded_spans(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every span of every line, by name."""
    found = [span for line in lines for span in spans_of(line)]
    by_name = {span["name"]: span for span in found}
    assert len(by_name) == len(found)
    return by_name


def attributes(span: dict[str, Any]) -> dict[str, Any]:
    """An OTLP/JSON attribute list as a dict of key to its typed value object."""
    return {a["key"]: a["value"] for a in span.get("attributes", [])}


def test_every_line_is_traces_data_in_batches(
    written: tuple[list[SpanRecord], list[dict[str, Any]]],
) -> None:
    """Each JSONL line is one TracesData with resource, scope and at most a batch of spans."""
    records, lines = written
    assert sum(len(spans_of(line)) for line in lines) == len(records) == 6
    for line in lines:
        assert set(line) == {"resourceSpans"}
        (resource_spans,) = line["resourceSpans"]
        resource = {a["key"]: a["value"] for a in resource_spans["resource"]["attributes"]}
        assert resource["service.name"] == {"stringValue": "otel-bridge-test"}
        (scope_spans,) = resource_spans["scopeSpans"]
        assert scope_spans["scope"]["name"] == "otel_bridge"
        assert 1 <= len(scope_spans["spans"]) <= 4


def test_keys_are_lower_camel_case(written: tuple[list[SpanRecord], list[dict[str, Any]]]) -> None:
    """Every object key of the OTLP/JSON is lowerCamelCase (attribute names are values)."""
    _, lines = written
    keys = {key for line in lines for key in all_keys(line)}
    assert {"startTimeUnixNano", "parentSpanId", "stringValue", "timeUnixNano"} <= keys
    assert [key for key in keys if not CAMEL.match(key)] == []


def test_ids_are_hex_of_the_right_length(
    written: tuple[list[SpanRecord], list[dict[str, Any]]],
) -> None:
    """traceId, spanId and parentSpanId are lowercase hex of 32, 16 and 16 digits."""
    records, lines = written
    spans = encoded_spans(lines)
    for record in records:
        span = spans[record.name]
        assert span["traceId"] == record.trace_id_hex
        assert span["spanId"] == record.span_id_hex
        if record.parent_span_id is None:
            assert "parentSpanId" not in span
        else:
            assert span["parentSpanId"] == f"{record.parent_span_id:016x}"
        for key, length in HEX.items():
            if key in span:
                assert re.fullmatch(f"[0-9a-f]{{{length}}}", span[key]), (key, span[key])


def test_root_parent_is_the_callers_span(
    written: tuple[list[SpanRecord], list[dict[str, Any]]],
) -> None:
    """A run with a traceparent is in the caller's trace, its root a child of the caller."""
    _, lines = written
    root = encoded_spans(lines)["invoke_workflow Financial_Data_Pipeline"]
    assert root["traceId"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert root["parentSpanId"] == "00f067aa0ba902b7"


def test_times_are_strings_equal_to_event_timestamps(
    written: tuple[list[SpanRecord], list[dict[str, Any]]],
) -> None:
    """startTimeUnixNano/endTimeUnixNano are decimal strings of the events' own timestamps."""
    _, lines = written
    spans = encoded_spans(lines)
    seed = {(e.get("task_name"), e["event_type"]): e["timestamp"] for e in seed_events()}

    def at(task_name: str | None, event_type: str) -> str:
        return str(parse_timestamp(seed[task_name, event_type]))

    sentiment = spans["invoke_agent sentiment_analyzer"]
    assert sentiment["startTimeUnixNano"] == at("sentiment_analyzer", "task_started")
    assert sentiment["startTimeUnixNano"] == "1756806127234000000"
    assert sentiment["endTimeUnixNano"] == at("sentiment_analyzer", "task_completed")
    root = spans["invoke_workflow Customer_Support_Pipeline"]
    assert root["startTimeUnixNano"] == "1756806125043000000"
    assert root["endTimeUnixNano"] == at("flow", "flow_completed")
    failed = spans["execute_task validate_financial_data"]
    assert failed["endTimeUnixNano"] == at("validate_financial_data", "task_failed")
    assert failed["events"][0]["timeUnixNano"] == failed["endTimeUnixNano"]


def test_status_codes_and_kind_are_ints(
    written: tuple[list[SpanRecord], list[dict[str, Any]]],
) -> None:
    """Status codes are OTLP enum ints (OK 1, ERROR 2, UNSET omitted); kind INTERNAL or CLIENT."""
    _, lines = written
    spans = encoded_spans(lines)
    assert spans["invoke_workflow Customer_Support_Pipeline"]["status"] == {"code": 1}
    assert spans["execute_task validate_financial_data"]["status"] == {
        "code": 2,
        "message": "1,247 records failed validation checks",
    }
    assert spans["execute_task send_notifications"].get("status", {}).get("code", 0) == 0
    kinds = {name: span["kind"] for name, span in spans.items()}
    assert kinds.pop("invoke_agent sentiment_analyzer") == 3  # a remote agent call: CLIENT
    assert set(kinds.values()) == {1}


def test_attribute_values_are_typed(
    written: tuple[list[SpanRecord], list[dict[str, Any]]],
) -> None:
    """Attributes keep their types: strings, doubles, booleans."""
    _, lines = written
    spans = encoded_spans(lines)
    root = attributes(spans["invoke_workflow Customer_Support_Pipeline"])
    assert root["cicd.pipeline.result"] == {"stringValue": "success"}
    assert root["lao.flow.total_execution_time_s"] == {"doubleValue": 13.41}
    notify = attributes(spans["execute_task send_notifications"])
    assert notify["lao.task.incomplete"] == {"boolValue": True}


def test_file_sink_appends(tmp_path: Path) -> None:
    """A second FileSink on the same path appends lines, never truncates."""
    path = tmp_path / "spans.jsonl"
    records = run_events(seed_events("Financial_Data_Pipeline"))
    for _ in range(2):
        sink = FileSink(path, RESOURCE)
        sink.export(records)
        sink.shutdown()
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2


def test_file_sink_write_failure_is_export_error() -> None:
    """A write the OS refuses (disk full) raises ExportError, not OSError."""
    sink = FileSink("/dev/full", RESOURCE)
    with pytest.raises(ExportError, match="/dev/full"):
        sink.export(run_events(seed_events("Financial_Data_Pipeline")))
    with contextlib.suppress(ExportError):  # raises only if the failed line is still buffered
        sink.shutdown()


def test_file_sink_after_shutdown_is_export_error(tmp_path: Path) -> None:
    """Exporting to a closed FileSink raises ExportError."""
    sink = FileSink(tmp_path / "spans.jsonl", RESOURCE)
    sink.shutdown()
    with pytest.raises(ExportError):
        sink.export(run_events(seed_events("Financial_Data_Pipeline")))


def test_flush_does_not_wait_out_the_batch_delay() -> None:
    """Flushing hands queued spans over at once, however long the batching delay."""
    sink = MemorySink()
    queue = ExportQueue(sink, delay_s=30, max_batch=100)
    records = run_events(seed_events("Financial_Data_Pipeline"))
    began = time.monotonic()
    for record in records:
        queue.submit(record)
    assert queue.flush(5)
    assert time.monotonic() - began < 2
    assert sink.records == records
    queue.close()


def test_full_batch_goes_without_waiting_for_the_delay() -> None:
    """A full batch is exported at once, not after the batching delay."""
    sink = MemorySink()
    queue = ExportQueue(sink, delay_s=30, max_batch=2)
    records = run_events(seed_events("Financial_Data_Pipeline"))
    began = time.monotonic()
    for record in records:
        queue.submit(record)
    while len(sink.records) < 2 and time.monotonic() - began < 5:
        time.sleep(0.01)
    assert sink.records == records
    assert time.monotonic() - began < 2
    queue.close()


def test_close_delivers_what_is_queued(tmp_path: Path) -> None:
    """Closing drains the queue into the sink before shutting it down."""
    path = tmp_path / "spans.jsonl"
    queue = ExportQueue(FileSink(path, RESOURCE), delay_s=30)
    records = seed_records()
    for record in records:
        queue.submit(record)
    queue.close(5)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert sum(len(spans_of(json.loads(line))) for line in lines) == len(records)
