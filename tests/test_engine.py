"""The engine: one way in for every driver; runs always close, restored runs count, dupes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from helpers import Driver, run_events
from otel_bridge.cli import main
from otel_bridge.core import Engine
from otel_bridge.core.outputs import (
    DropReason,
    EventDropped,
    FrameIgnored,
    FrameRejected,
    InternalError,
    NoiseReason,
    RunClosed,
    RunOpened,
)
from otel_bridge.core.records import Result, SpanRecord
from otel_bridge.core.redaction import PayloadPolicy
from otel_bridge.sinks.metrics import Metrics

pytestmark = pytest.mark.usefixtures("restore_root_logging")
T0 = 1_756_806_000.0
NS = 1_000_000_000


def event(kind: str, ts: float, **fields: Any) -> dict[str, Any]:
    """An LAO event of run F/r as decoded from the socket."""
    return {"event_type": kind, "flow_name": "F", "run_name": "r", "timestamp": ts, **fields}


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in an exposition text, None when absent."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} ") or (not labels and line.startswith(f"{name} ")):
            return float(line.split()[-1])
    return None


def run_lines(flow: str, run: str) -> list[str]:
    """One run's frames: start, a task, the end."""
    base = {"flow_name": flow, "run_name": run}
    return [
        json.dumps({**base, "event_type": "flow_started", "timestamp": T0}),
        json.dumps(
            {
                **base,
                "event_type": "task_started",
                "task_id": "t1",
                "task_name": "a",
                "timestamp": T0 + 1,
            }
        ),
        json.dumps(
            {
                **base,
                "event_type": "task_completed",
                "task_id": "t1",
                "task_name": "a",
                "timestamp": T0 + 2,
            }
        ),
        json.dumps({**base, "event_type": "flow_completed", "timestamp": T0 + 3}),
    ]


def test_replay_in_parts_keeps_the_run_gauges_consistent(tmp_path: Path) -> None:
    """A run restored from --state counts as started and in flight, so its end leaves 0."""
    lines = run_lines("Split", "r1")
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text("\n".join(lines[:2]) + "\n")
    second.write_text("\n".join(lines[2:]) + "\n")
    state, metrics = tmp_path / "state.json", tmp_path / "m.prom"
    assert main(["replay", str(first), "--otlp", "off", "--state", str(state)]) == 0
    argv = ["replay", str(second), "--otlp", "off", "--state", str(state)]
    assert main([*argv, "--metrics-out", str(metrics)]) == 0
    text = metrics.read_text()
    assert sample(text, "lao_flow_runs_active", flow_name="Split") == 0
    assert sample(text, "lao_flow_runs_started_total", flow_name="Split") == 1
    assert sample(text, "lao_flow_runs_total", flow_name="Split", result="success") == 1


def test_replay_counts_noise_frames(tmp_path: Path) -> None:
    """Greetings and keepalives in a recording are counted as ignored frames, by reason."""
    rec = tmp_path / "rec.jsonl"
    lines = ["connection established", '{"event_type": "keepalive"}', *run_lines("F", "r")]
    rec.write_text("\n".join(lines) + "\n")
    metrics = tmp_path / "m.prom"
    assert main(["replay", str(rec), "--otlp", "off", "--metrics-out", str(metrics)]) == 0
    text = metrics.read_text()
    assert sample(text, "otel_bridge_frames_ignored_total", reason="greeting") == 1
    assert sample(text, "otel_bridge_frames_ignored_total", reason="keepalive") == 1


@dataclass(frozen=True)
class ExplodingPolicy(PayloadPolicy):
    """A policy with a bug: it fails on texts that say ``explode``."""

    def text(self, value: str) -> str:
        """Fail on ``explode``, else behave."""
        if "explode" in value:
            raise RuntimeError("policy bug")
        return super().text(value)


def test_a_run_whose_closing_fails_is_still_closed() -> None:
    """When building the root span fails, the run ends anyway: gauge back to 0, no reopening."""
    registry = CollectorRegistry()
    drive = Driver(metrics=Metrics(registry), policy=ExplodingPolicy())
    drive.handle_object(event("flow_started", T0), received_ns=int(T0 * NS))
    outputs = drive.emit(drive.engine.close_run("F", "r", Result.TIMEOUT, "explode"))
    assert [type(o) for o in outputs] == [InternalError, RunClosed]
    closed = outputs[1]
    assert isinstance(closed, RunClosed) and closed.without_root
    assert closed.result is Result.TIMEOUT
    late = drive.handle_object(event("task_started", T0 + 5, task_id="t"), received_ns=int(T0 * NS))
    assert EventDropped("F", "r", "task_started", DropReason.AFTER_END) in late

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("lao_flow_runs_active", flow_name="F") == 0
    assert value("lao_flow_runs_started_total", flow_name="F") == 1
    assert value("lao_flow_runs_total", flow_name="F", result="timeout") == 1
    assert value("otel_bridge_frames_rejected_total", reason="internal") == 1


def test_executions_without_task_id_ending_together_are_not_merged() -> None:
    """Two ends of one task name at one timestamp but with different messages are two spans."""
    events = [
        event("flow_started", T0),
        event("task_started", T0 + 1, task_name="fetch"),
        event("task_started", T0 + 1.5, task_name="fetch"),
        event("task_completed", T0 + 2, task_name="fetch", message="shard 1 done"),
        event("task_completed", T0 + 2, task_name="fetch", message="shard 2 done"),
        event("flow_completed", T0 + 3),
    ]
    spans = run_events(events)
    tasks = [s for s in spans if s.kind == "task"]
    assert len(tasks) == 2
    assert all(s.result is Result.SUCCESS for s in tasks)


def test_an_exact_resend_is_still_a_duplicate() -> None:
    """The same end sent twice (same message too) is dropped as a duplicate."""
    end = event("task_completed", T0 + 2, task_name="fetch", message="done")
    drive = Driver()
    drive.handle_object(event("task_started", T0 + 1, task_name="fetch"), received_ns=0)
    drive.handle_object(end, received_ns=0)
    again = drive.handle_object(end, received_ns=0)
    assert EventDropped("F", "r", "task_completed", DropReason.DUPLICATE) in again


def test_snapshot_and_restore_carry_a_run_across_engines() -> None:
    """A restored run says it resumed, keeps its trace and finishes as one trace."""
    first = Engine()
    first.receive(json.dumps(event("flow_started", T0)), received_ns=int(T0 * NS))
    state = json.loads(json.dumps(first.snapshot()))
    second = Engine()
    opened = second.restore(state)
    assert opened == [RunOpened("F", "r", first.trace_id_of("F", "r"), resumed=True)]
    outputs = second.receive(
        json.dumps(event("flow_completed", T0 + 4)), received_ns=int((T0 + 4) * NS)
    )
    roots = [o for o in outputs if isinstance(o, SpanRecord) and o.kind == "run"]
    assert len(roots) == 1 and roots[0].start_ns == int(T0 * NS)
    assert "lao.span.synthetic_start" not in roots[0].attributes


def test_frames_become_notices_not_exceptions() -> None:
    """Noise, broken frames and frames naming no run are notices with reasons."""
    engine = Engine()
    assert engine.receive("connection established", received_ns=0) == [
        FrameIgnored(NoiseReason.GREETING)
    ]
    broken = engine.receive("{nope", run=("F", "r"), received_ns=0)
    assert isinstance(broken[0], FrameRejected) and broken[0].reason == "invalid_json"
    nameless = engine.receive('{"event_type": "flow_started"}', received_ns=0)
    assert isinstance(nameless[0], FrameRejected) and nameless[0].reason == "invalid"


def test_a_close_reason_lands_on_the_root_span() -> None:
    """close_run's reason becomes lao.run.close_reason on an incomplete root."""
    engine = Engine()
    engine.receive(event("flow_started", T0), received_ns=int(T0 * NS))
    outputs = engine.close_run("F", "r", Result.TIMEOUT, "upstream refused: HTTP 403")
    root = next(o for o in outputs if isinstance(o, SpanRecord))
    assert root.attributes["lao.run.close_reason"] == "upstream refused: HTTP 403"
    assert root.attributes["lao.run.incomplete"] is True
    assert isinstance(outputs[-1], RunClosed) and not outputs[-1].without_root
