"""Nothing planted leaves: spans, metrics, logs, state, API answers and waterfalls are clean."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry

from helpers import Driver
from otel_bridge.core.outputs import Output
from otel_bridge.core.records import SpanRecord
from otel_bridge.core.redaction import CaptureMode, PayloadPolicy
from otel_bridge.logs import JsonFormatter, TextFormatter
from otel_bridge.settings import Settings
from otel_bridge.sinks.export_queue import ExportQueue
from otel_bridge.sinks.exposition import encode
from otel_bridge.sinks.metrics import Metrics
from otel_bridge.sinks.span_sinks import FileSink
from otel_bridge.sources.upstream import Subscription
from otel_bridge.waterfall import render_trace
from planted import T0, planted_run

NS = 1_000_000_000


@pytest.fixture
def captured_logs() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """Every log record of the test, rendered as JSON lines and as text lines."""
    json_out, text_out = io.StringIO(), io.StringIO()
    handlers = [logging.StreamHandler(json_out), logging.StreamHandler(text_out)]
    handlers[0].setFormatter(JsonFormatter())
    handlers[1].setFormatter(TextFormatter())
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)
    for handler in handlers:
        root.addHandler(handler)
    yield json_out, text_out
    for handler in handlers:
        root.removeHandler(handler)
    root.setLevel(level)


def play(tmp_path: Path, mode: CaptureMode) -> tuple[dict[str, str], list[str]]:
    """Play the planted run; return every way out as text, and the planted secrets."""
    frames, secrets = planted_run()
    registry = CollectorRegistry()
    out = tmp_path / f"spans-{mode}.jsonl"
    sink = FileSink(out, Resource.create({"service.name": "egress-test"}))
    drive = Driver([ExportQueue(sink)], Metrics(registry), PayloadPolicy(mode))
    spans: list[SpanRecord] = []

    def keep(output: Output) -> None:
        if isinstance(output, SpanRecord):
            spans.append(output)

    drive.listeners.append(keep)
    state = ""
    for index, frame in enumerate(frames):
        received = int((T0 + index) * NS)
        drive.handle_frame(frame, flow_name="Planted_Flow", run_name="run_1", received_ns=received)
        if index == 3:  # mid-run, with a task open: what a state file would hold
            state = json.dumps(drive.engine.snapshot())
    drive.close()
    sub = Subscription("Planted_Flow", "run_1", Settings(), drive.engine, drive.router)
    sub.error = f"upstream said: Bearer {secrets[0]}"
    ways = {
        "spans file": out.read_text(encoding="utf-8"),
        "metrics": encode(registry).decode(),
        "state": state,
        "api answer": json.dumps(sub.describe()),
        "waterfall": render_trace(spans),
        "span records": repr(spans),
    }
    return ways, secrets


def test_no_planted_secret_leaves_by_default(
    tmp_path: Path, captured_logs: tuple[io.StringIO, io.StringIO]
) -> None:
    """With the default capture, no planted secret is in any output, in any shape."""
    ways, secrets = play(tmp_path, CaptureMode.REDACTED)
    ways["json logs"], ways["text logs"] = (s.getvalue() for s in captured_logs)
    assert "frame rejected" in ways["json logs"]  # the rejected frame was logged...
    assert "[REDACTED]" in ways["spans file"]  # ...and payloads were exported, redacted
    leaks = [(way, s) for way, text in ways.items() for s in secrets if s in text]
    assert leaks == []


def test_full_capture_exports_payload_secrets_and_still_cleans_names(tmp_path: Path) -> None:
    """Full capture (asked for explicitly) exports raw payloads; names and ids stay clean."""
    ways, secrets = play(tmp_path, CaptureMode.FULL)
    exported = ways["spans file"]
    assert sum(s in exported for s in secrets) >= 20  # so the test above can fail
    for clean_way in ("metrics", "api answer"):
        assert not [s for s in secrets if s in ways[clean_way]], clean_way
