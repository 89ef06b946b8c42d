"""The run tracker against the telemetry contract, case by case, on lists of event dicts."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from helpers import (
    by_name,
    feed_events,
    received_ns,
    root_of,
    run_events,
    seed_events,
    span_dict,
)
from otel_bridge.core.events import FlowStarted
from otel_bridge.core.frames import classify_object
from otel_bridge.core.ids import parse_traceparent
from otel_bridge.core.outputs import EventDropped, RunOpened
from otel_bridge.core.records import Result, SpanEvent, SpanRecord, StatusCode
from otel_bridge.core.redaction import REDACTED
from otel_bridge.core.tracker import Tracker

CS_FLOW, CS_RUN = "Customer_Support_Pipeline", "ticket_78453"
FIN_FLOW, FIN_RUN = "Financial_Data_Pipeline", "daily_batch_20240215"
FLOW, RUN = "F", "r"
T0 = 1756806125.0
S = 1_000_000_000


def ns(seconds: float) -> int:
    """Convert the seconds used in these tests to exact ns (microsecond precision)."""
    return round(seconds * 1_000_000) * 1_000


def sha(text: str, size: int) -> int:
    """Hash as the contract's recipe does: first ``size`` bytes of sha256, big-endian."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:size], "big")


def ev(event_type: str, at: float, **fields: Any) -> dict[str, Any]:
    """Build an event dict of run F/r at T0 + ``at`` seconds, with extra fields."""
    base = {"event_type": event_type, "flow_name": FLOW, "run_name": RUN, "timestamp": T0 + at}
    return base | fields


def task(event_type: str, at: float, name: str, task_id: str | None = None, **more: Any) -> Any:
    """Build a task event dict of run F/r; ``task_id`` None leaves the field out."""
    event = ev(event_type, at)
    event["task_name"] = name
    if task_id is not None:
        event["task_id"] = task_id
    event.update(more)
    return event


def drops(outputs: list[Any]) -> list[tuple[str, str]]:
    """List (event_type, reason) of every dropped event."""
    return [(o.event_type, o.reason) for o in outputs if isinstance(o, EventDropped)]


def spans(outputs: list[Any]) -> list[SpanRecord]:
    """Keep only the span records."""
    return [o for o in outputs if isinstance(o, SpanRecord)]


def tasks_of(records: list[SpanRecord]) -> list[SpanRecord]:
    """Keep only the task spans."""
    return [r for r in records if r.kind == "task"]


# -- the seed's Customer_Support run -----------------------------------------------------

CS_TRACE_ID = sha(f"lao-run\0{CS_FLOW}\0{CS_RUN}", 16)
CS_ROOT_ID = sha(f"lao-flow\0{CS_FLOW}\0{CS_RUN}", 8)


def cs_records() -> dict[str, SpanRecord]:
    """The seed's Customer_Support run, by span name."""
    return by_name(run_events(seed_events(CS_FLOW)))


def test_seed_customer_support_spans_and_order() -> None:
    """The seed's support run gives three task spans, then the root, in that order."""
    records = run_events(seed_events(CS_FLOW))
    assert [r.name for r in records] == [
        "invoke_agent sentiment_analyzer",
        "execute_task update_salesforce",
        "execute_task send_notifications",
        "invoke_workflow Customer_Support_Pipeline",
    ]


def test_seed_customer_support_root() -> None:
    """The support run's root: contract name, times, OK status and every root attribute."""
    root = cs_records()["invoke_workflow Customer_Support_Pipeline"]
    assert span_dict(root) | {"attributes": {}} == {
        "name": "invoke_workflow Customer_Support_Pipeline",
        "kind": "run",
        "trace_id": f"{CS_TRACE_ID:032x}",
        "span_id": f"{CS_ROOT_ID:016x}",
        "parent_span_id": None,
        "parent_is_remote": False,
        "start_ns": 1756806125043000000,
        "end_ns": 1756806138456000000,
        "status": "OK",
        "status_message": None,
        "result": "success",
        "attributes": {},
        "events": [],
    }
    attrs = dict(root.attributes)
    output = json.loads(str(attrs.pop("lao.flow.output")))
    assert output["send_notifications"]["pagerduty_incident"] == "PD-12345"
    assert attrs == {
        "lao.flow.name": CS_FLOW,
        "lao.run.name": CS_RUN,
        "lao.flow.task_id": "cust-support-001",
        "lao.message": "Starting customer support workflow",
        "cicd.pipeline.name": CS_FLOW,
        "cicd.pipeline.run.id": f"{CS_FLOW}/{CS_RUN}",
        "cicd.pipeline.result": "success",
        "gen_ai.operation.name": "invoke_workflow",
        "gen_ai.workflow.name": CS_FLOW,
        "lao.flow.total_execution_time_s": 13.41,
    }


def test_seed_agent_task_span() -> None:
    """An agent task is invoke_agent with gen_ai attributes, its times and task attributes."""
    span = cs_records()["invoke_agent sentiment_analyzer"]
    task_id = "b29aa07f-9341-4ac5-9160-4f7e1f594654"
    assert span.kind == "task"
    assert span.span_id == sha(f"lao-task\0{CS_FLOW}\0{CS_RUN}\0{task_id}", 8)
    assert span.parent_span_id == sha(f"lao-flow\0{CS_FLOW}\0{CS_RUN}", 8)
    assert span.trace_id == sha(f"lao-run\0{CS_FLOW}\0{CS_RUN}", 16)
    assert (span.start_ns, span.end_ns) == (1756806127234000000, 1756806132567000000)
    assert (span.status, span.status_message, span.result) == (StatusCode.OK, None, Result.SUCCESS)
    attrs = dict(span.attributes)
    task_input = json.loads(str(attrs.pop("lao.task.input")))
    task_output = json.loads(str(attrs.pop("lao.task.output")))
    assert task_input["config"] == {"agent_id": "sentiment-v2", "api_key": REDACTED}
    assert task_output["sentiment"] == "highly_negative"
    assert attrs == {
        "lao.flow.name": CS_FLOW,
        "lao.run.name": CS_RUN,
        "lao.task.name": "sentiment_analyzer",
        "lao.task.id": task_id,
        "lao.task.execution_time_s": 5.33,
        "cicd.pipeline.task.name": "sentiment_analyzer",
        "cicd.pipeline.task.run.id": task_id,
        "cicd.pipeline.task.run.result": "success",
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.id": "sentiment-v2",
        "gen_ai.provider.name": "lyzr",
    }


def test_seed_non_agent_task_span() -> None:
    """A task without input.config.agent_id is execute_task with no gen_ai attributes."""
    span = cs_records()["execute_task update_salesforce"]
    assert (span.start_ns, span.end_ns) == (1756806133012000000, 1756806134789000000)
    assert span.attributes["lao.task.execution_time_s"] == 1.777
    assert span.attributes["cicd.pipeline.task.run.id"] == "crm-update-567"
    assert not [k for k in span.attributes if k.startswith("gen_ai.")]


def test_seed_task_open_at_flow_completed_ends_with_run() -> None:
    """send_notifications, open at flow_completed, ends with the run: incomplete, UNSET."""
    span = cs_records()["execute_task send_notifications"]
    assert (span.start_ns, span.end_ns) == (1756806135123000000, 1756806138456000000)
    assert span.status is StatusCode.UNSET
    assert span.status_message is None
    assert span.attributes["lao.task.incomplete"] is True
    assert "lao.task.execution_time_s" not in span.attributes


def test_seed_open_task_named_in_flow_output_is_success() -> None:
    """The seed's flow output has a send_notifications key, so the open task succeeded."""
    span = cs_records()["execute_task send_notifications"]
    assert span.result is Result.SUCCESS
    assert span.attributes["cicd.pipeline.task.run.result"] == "success"


def test_open_task_missing_from_flow_output_is_cancellation() -> None:
    """An open task whose name the flow_completed output lacks ends as cancellation."""
    events = seed_events(CS_FLOW)
    events[-1] = {**events[-1], "output": {"summary": {}}}
    span = by_name(run_events(events))["execute_task send_notifications"]
    assert span.result is Result.CANCELLATION
    assert span.status is StatusCode.UNSET


# -- the seed's Financial run (no task_ids) ----------------------------------------------


def fin_records() -> dict[str, SpanRecord]:
    """The seed's Financial run, by span name."""
    return by_name(run_events(seed_events(FIN_FLOW)))


def test_seed_financial_task_paired_by_name() -> None:
    """Without task_ids, start and failure pair by task_name into one span with name#1 ids."""
    records = run_events(seed_events(FIN_FLOW))
    assert [r.name for r in records] == [
        "execute_task validate_financial_data",
        "invoke_workflow Financial_Data_Pipeline",
    ]
    span = records[0]
    assert span.span_id == sha(f"lao-task\0{FIN_FLOW}\0{FIN_RUN}\0validate_financial_data\0001", 8)
    assert (span.start_ns, span.end_ns) == (1756806201456000000, 1756806245789000000)
    assert span.attributes["cicd.pipeline.task.run.id"] == "validate_financial_data#1"
    assert "lao.task.id" not in span.attributes
    assert "lao.span.synthetic_start" not in span.attributes


def test_seed_financial_task_failure() -> None:
    """task_failed: ERROR with the message, exception event, error.type and lao.error.code."""
    span = fin_records()["execute_task validate_financial_data"]
    assert span.status is StatusCode.ERROR
    assert span.status_message == "1,247 records failed validation checks"
    assert span.result is Result.FAILURE
    assert span.error_type == "DataValidationError"
    assert span.events == (
        SpanEvent(
            "exception",
            1756806245789000000,
            {
                "exception.type": "DataValidationError",
                "exception.message": "1,247 records failed validation checks",
            },
        ),
    )
    attrs = span.attributes
    assert attrs["error.type"] == "DataValidationError"
    assert attrs["lao.error.code"] == "VALIDATION_FAILED"
    assert attrs["cicd.pipeline.task.run.result"] == "failure"
    assert attrs["lao.task.execution_time_s"] == 44.33
    assert json.loads(str(attrs["lao.error.details"]))["failed_records"] == 1247
    assert json.loads(str(attrs["lao.partial_results"]))["valid_records"] == 43753


def test_seed_financial_root_error() -> None:
    """flow_error: root ERROR with PipelineHaltedError, its message, code and exception event."""
    root = fin_records()["invoke_workflow Financial_Data_Pipeline"]
    message = "Data quality threshold not met, stopping pipeline"
    assert (root.start_ns, root.end_ns) == (1756806200123000000, 1756806246123000000)
    assert (root.status, root.status_message) == (StatusCode.ERROR, message)
    assert root.result is Result.FAILURE
    assert root.error_type == "PipelineHaltedError"
    attrs = root.attributes
    assert attrs["error.type"] == "PipelineHaltedError"
    assert attrs["lao.error.code"] == "QUALITY_THRESHOLD_FAILED"
    assert attrs["cicd.pipeline.result"] == "failure"
    assert attrs["lao.message"] == "Processing 45,000 financial records"
    assert "lao.flow.task_id" not in attrs
    assert "lao.run.incomplete" not in attrs
    assert json.loads(str(attrs["lao.partial_results"]))["quarantined_records"] == 1247
    assert json.loads(str(attrs["lao.error.details"])) == {
        "threshold": 0.02,
        "actual_failure_rate": 0.0277,
        "action_taken": "quarantine_and_alert",
    }
    assert root.events == (
        SpanEvent(
            "exception",
            1756806246123000000,
            {"exception.type": "PipelineHaltedError", "exception.message": message},
        ),
    )


def test_error_without_type_uses_code_then_other() -> None:
    """error.type is the error's type, else its code, else _OTHER."""
    events = [
        task("task_started", 0, "a", "1"),
        task("task_failed", 1, "a", "1", error={"code": "E42", "message": "m"}),
        task("task_started", 2, "b", "2"),
        task("task_failed", 3, "b", "2", error="just a string"),
        task("task_started", 4, "c", "3"),
        task("task_failed", 5, "c", "3"),
    ]
    records = by_name(run_events(events, close=Result.CANCELLATION))
    a, b, c = (records[f"execute_task {n}"] for n in "abc")
    assert (a.attributes["error.type"], a.attributes["lao.error.code"]) == ("E42", "E42")
    assert (b.attributes["error.type"], b.status_message) == ("_OTHER", "just a string")
    assert "lao.error.code" not in b.attributes
    assert (c.attributes["error.type"], c.status, c.events[0].name) == (
        "_OTHER",
        StatusCode.ERROR,
        "exception",
    )


# -- reconnects, order, gaps -------------------------------------------------------------


def test_events_twice_after_reconnect_change_nothing() -> None:
    """A stream replayed in part after a reconnect gives the same spans, duplicates dropped."""
    events = seed_events(CS_FLOW)
    once = [span_dict(r) for r in run_events(events)]
    outputs = feed_events(events[:4] + events[1:4] + events[4:])
    assert [span_dict(r) for r in spans(outputs)] == once
    assert drops(outputs) == [
        ("task_started", "duplicate"),
        ("task_completed", "duplicate"),
        ("task_started", "duplicate"),
    ]


def test_events_twice_without_task_ids_change_nothing() -> None:
    """Replayed events of a run without task_ids are duplicates too (no second execution)."""
    events = seed_events(FIN_FLOW)
    once = [span_dict(r) for r in run_events(events)]
    outputs = feed_events(events[:3] + events[:3] + events[3:])
    assert [span_dict(r) for r in spans(outputs)] == once
    assert [reason for _, reason in drops(outputs)] == ["duplicate"] * 3


def test_end_before_start_with_task_id() -> None:
    """A task end with no start gets start = end - execution_time, flagged synthetic."""
    events = [
        ev("flow_started", 0),
        task("task_completed", 10, "a", "t1", execution_time=4.5),
        task("task_started", 5.5, "a", "t1"),
        ev("flow_completed", 11),
    ]
    outputs = feed_events(events)
    a, root = spans(outputs)
    assert (a.start_ns, a.end_ns) == (ns(T0 + 5.5), ns(T0 + 10))
    assert a.attributes["lao.span.synthetic_start"] is True
    assert "lao.task.input" not in a.attributes
    assert drops(outputs) == [("task_started", "late_start")]
    assert root.kind == "run"


def test_end_before_start_without_task_id() -> None:
    """Without task_id the late start of an already-ended execution is dropped too."""
    events = [
        ev("flow_started", 0),
        task("task_completed", 10, "a", execution_time=4),
        task("task_started", 6, "a"),
        ev("flow_completed", 11),
    ]
    outputs = feed_events(events)
    assert [r.name for r in spans(outputs)] == ["execute_task a", "invoke_workflow F"]
    assert spans(outputs)[0].start_ns == ns(T0 + 6)
    assert drops(outputs) == [("task_started", "late_start")]


def test_end_without_execution_time_starts_at_end() -> None:
    """A task end with neither start nor execution_time is a zero-length synthetic span."""
    (a,) = run_events([task("task_completed", 3, "a", "t1")])
    assert a.start_ns == a.end_ns == ns(T0 + 3)
    assert a.attributes["lao.span.synthetic_start"] is True


def test_late_start_after_exported_end_not_exported_twice() -> None:
    """A start arriving after its end was exported adds no second span, even duplicated."""
    events = [
        task("task_completed", 10, "a", "t1", execution_time=2),
        task("task_started", 8, "a", "t1"),
        task("task_started", 8, "a", "t1"),
        task("task_completed", 10, "a", "t1", execution_time=2),
        ev("flow_completed", 12),
    ]
    records = run_events(events)
    assert [r.name for r in records] == ["execute_task a", "invoke_workflow F"]
    assert len({r.span_id for r in records}) == 2


def test_run_first_seen_midway_gets_synthetic_root_start() -> None:
    """A run joined mid-way starts at its earliest known time, flagged synthetic."""
    events = seed_events(CS_FLOW)[2:]  # first seen: sentiment_analyzer's completion
    records = by_name(run_events(events))
    root = records["invoke_workflow Customer_Support_Pipeline"]
    sentiment = records["execute_task sentiment_analyzer"]  # its input (agent_id) was missed
    assert sentiment.start_ns == ns(1756806132.567 - 5.33)
    assert root.start_ns == sentiment.start_ns
    assert root.attributes["lao.span.synthetic_start"] is True
    assert root.attributes["lao.flow.task_id"] == "pipeline-complete"
    assert root.status is StatusCode.OK


def test_run_seen_only_at_its_end() -> None:
    """A run whose only event is flow_completed is a zero-length synthetic root."""
    (root,) = run_events([seed_events(CS_FLOW)[-1]])
    assert root.start_ns == root.end_ns == 1756806138456000000
    assert root.attributes["lao.span.synthetic_start"] is True
    assert "lao.message" not in root.attributes


def test_flow_started_present_is_not_synthetic() -> None:
    """With flow_started seen the root is not flagged synthetic."""
    root = cs_records()["invoke_workflow Customer_Support_Pipeline"]
    assert "lao.span.synthetic_start" not in root.attributes


# -- task identity -----------------------------------------------------------------------


def test_tasks_without_task_id_pair_first_in_first_out() -> None:
    """Executions without task_id pair by name in order and get name#n ids."""
    events = [
        task("task_started", 1, "a"),
        task("task_completed", 2, "a"),
        task("task_started", 3, "a"),
        task("task_failed", 4, "a", error="x"),
        ev("flow_completed", 5),
    ]
    a1, a2, _root = run_events(events)
    assert (a1.start_ns, a1.end_ns, a1.status) == (ns(T0 + 1), ns(T0 + 2), StatusCode.OK)
    assert (a2.start_ns, a2.end_ns, a2.status) == (ns(T0 + 3), ns(T0 + 4), StatusCode.ERROR)
    assert a1.attributes["cicd.pipeline.task.run.id"] == "a#1"
    assert a2.attributes["cicd.pipeline.task.run.id"] == "a#2"
    assert a1.span_id == sha(f"lao-task\0{FLOW}\0{RUN}\0a\0001", 8)
    assert a2.span_id == sha(f"lao-task\0{FLOW}\0{RUN}\0a\0002", 8)


def test_same_task_name_twice_with_new_ids() -> None:
    """A second task_started of a name with a new task_id is a second execution."""
    events = [
        task("task_started", 1, "a", "id-1"),
        task("task_completed", 2, "a", "id-1"),
        task("task_started", 3, "a", "id-2"),
        task("task_completed", 4, "a", "id-2"),
        ev("flow_completed", 5),
    ]
    a1, a2, root = run_events(events)
    assert (a1.name, a2.name) == ("execute_task a", "execute_task a")
    assert a1.span_id == sha(f"lao-task\0{FLOW}\0{RUN}\0id-1", 8)
    assert a2.span_id == sha(f"lao-task\0{FLOW}\0{RUN}\0id-2", 8)
    assert (a2.start_ns, a2.end_ns) == (ns(T0 + 3), ns(T0 + 4))
    assert root.status is StatusCode.OK


def test_overlapping_siblings() -> None:
    """Concurrent sibling tasks become overlapping spans, each with its own times."""
    events = [
        ev("flow_started", 0),
        task("task_started", 1, "a", "A"),
        task("task_started", 2, "b", "B"),
        task("task_completed", 3, "a", "A"),
        task("task_completed", 4, "b", "B"),
        ev("flow_completed", 5),
    ]
    records = by_name(run_events(events))
    a, b = records["execute_task a"], records["execute_task b"]
    assert (a.start_ns, a.end_ns) == (ns(T0 + 1), ns(T0 + 3))
    assert (b.start_ns, b.end_ns) == (ns(T0 + 2), ns(T0 + 4))


def test_overlapping_executions_of_one_name_without_ids() -> None:
    """Overlapping executions of one name without ids pair first in, first out."""
    events = [
        task("task_started", 1, "a"),
        task("task_started", 2, "a"),
        task("task_completed", 3, "a"),
        task("task_completed", 4, "a"),
    ]
    a1, a2 = run_events(events)
    assert (a1.start_ns, a1.end_ns) == (ns(T0 + 1), ns(T0 + 3))
    assert (a2.start_ns, a2.end_ns) == (ns(T0 + 2), ns(T0 + 4))
    assert a1.span_id != a2.span_id


def test_task_id_on_start_only_pairs_by_name() -> None:
    """A start with a task_id and an end without one pair by task_name (one span)."""
    events = [task("task_started", 1, "a", "id-1"), task("task_completed", 2, "a")]
    outputs = feed_events(events, close=Result.CANCELLATION)
    a, _root = spans(outputs)
    assert (a.start_ns, a.end_ns, a.status) == (ns(T0 + 1), ns(T0 + 2), StatusCode.OK)
    assert a.attributes["lao.task.id"] == "id-1"


def test_end_repeated_with_and_without_task_id_is_one_span() -> None:
    """An execution ended once without and once with its task_id is exported once."""
    events = [
        task("task_started", 1, "a", "id-1"),
        task("task_completed", 2, "a"),
        task("task_completed", 2, "a", "id-1"),
    ]
    outputs = feed_events(events)
    assert len(spans(outputs)) == 1
    assert drops(outputs) == [("task_completed", "duplicate")]


def test_task_id_on_end_only_pairs_by_name() -> None:
    """A start without a task_id and an end with one pair by task_name (one span)."""
    events = [task("task_started", 1, "a"), task("task_completed", 2, "a", "id-1")]
    a, _root = run_events(events, close=Result.CANCELLATION)
    assert (a.start_ns, a.end_ns, a.status) == (ns(T0 + 1), ns(T0 + 2), StatusCode.OK)


def test_task_with_only_an_id_is_named_by_it() -> None:
    """A task event without task_name uses its task_id as the name."""
    events = [{"event_type": "task_started", "task_id": "t9", "timestamp": T0}]
    (span, _root) = run_events(events, flow=FLOW, run=RUN, close=Result.CANCELLATION)
    assert span.name == "execute_task t9"


def test_task_without_name_or_id_is_dropped() -> None:
    """A task event with neither task_name nor task_id is dropped, counted."""
    outputs = feed_events([ev("task_started", 0), ev("task_completed", 1)])
    assert drops(outputs) == [
        ("task_started", "no_task_identity"),
        ("task_completed", "no_task_identity"),
    ]
    assert not spans(outputs)


# -- timing bounds -----------------------------------------------------------------------


def test_end_before_start_clamped_to_zero_length() -> None:
    """An end earlier than its start (clock skew) gives a zero-length span."""
    events = [task("task_started", 10, "a", "t"), task("task_completed", 9, "a", "t")]
    (a,) = run_events(events)
    assert a.start_ns == a.end_ns == ns(T0 + 10)
    assert a.status is StatusCode.OK


def test_root_start_never_later_than_task_start() -> None:
    """A task starting before flow_started (skew) moves the root's start back to it."""
    events = [
        task("task_started", -2, "a", "t"),
        ev("flow_started", 0),
        task("task_completed", 1, "a", "t"),
        ev("flow_completed", 2),
    ]
    a, root = run_events(events)
    assert root.start_ns == a.start_ns == ns(T0 - 2)


def test_root_end_never_earlier_than_task_end() -> None:
    """A task ending after flow_completed's timestamp (skew) stretches the root's end."""
    events = [
        ev("flow_started", 0),
        task("task_started", 1, "a", "t1"),
        task("task_completed", 9, "a", "t1"),
        task("task_started", 2, "b", "t2"),
        ev("flow_completed", 5),
    ]
    _a, b, root = run_events(events)
    assert root.end_ns == ns(T0 + 9)
    assert b.end_ns == root.end_ns  # the open task ends with the run
    assert b.attributes["lao.task.incomplete"] is True


def test_open_task_starting_after_terminal_timestamp() -> None:
    """A task open at the end and started after the terminal timestamp is not negative."""
    events = [task("task_started", 7, "a", "t"), ev("flow_completed", 5)]
    a, root = run_events(events)
    assert a.start_ns <= a.end_ns == root.end_ns
    assert root.start_ns <= root.end_ns


def test_event_without_timestamp_uses_receive_time() -> None:
    """An event without a timestamp is placed at its receive time."""
    events = [{"event_type": "flow_started", "flow_name": FLOW, "run_name": RUN}]
    (root,) = run_events(events, close=Result.CANCELLATION)
    assert root.start_ns == received_ns(events[0], 0)


def test_execution_time_before_the_epoch_is_ignored() -> None:
    """An execution_time reaching before 1970 is unusable: the synthetic start is the end."""
    (a,) = run_events([task("task_completed", 0, "a", "t", execution_time=1e15)])
    assert a.start_ns == a.end_ns == ns(T0)
    assert a.attributes["lao.span.synthetic_start"] is True


# -- the end of a run --------------------------------------------------------------------


def test_events_after_terminal_event_dropped() -> None:
    """Events of a run after its terminal event are dropped (after_end), never exported."""
    events = seed_events(FIN_FLOW)
    late = [
        {**events[1], "timestamp": 1756806300.0, "task_name": "late"},
        events[-1],
        events[0],
    ]
    outputs = feed_events(events + late)
    assert len(spans(outputs)) == 2
    assert drops(outputs) == [
        ("task_started", "after_end"),
        ("flow_error", "after_end"),
        ("flow_started", "after_end"),
    ]


def test_several_runs_interleaved_are_independent() -> None:
    """Interleaving two runs' events gives exactly the spans each gives alone."""
    cs, fin = seed_events(CS_FLOW), seed_events(FIN_FLOW)
    alone = sorted(json.dumps(span_dict(r)) for r in run_events(cs) + run_events(fin))
    mixed: list[dict[str, Any]] = []
    for i in range(max(len(cs), len(fin))):
        mixed.extend(cs[i : i + 1] + fin[i : i + 1])
    outputs = feed_events(mixed)
    assert sorted(json.dumps(span_dict(r)) for r in spans(outputs)) == alone
    assert [o.run_name for o in outputs if isinstance(o, RunOpened)] == [CS_RUN, FIN_RUN]


def test_same_run_name_in_two_flows_is_two_runs() -> None:
    """Runs are keyed by (flow_name, run_name): the same run name in two flows is two traces."""
    a = run_events([ev("flow_started", 0), ev("flow_completed", 1)], flow="A", run="x")
    b = run_events([ev("flow_started", 0), ev("flow_completed", 1)], flow="B", run="x")
    assert a[0].trace_id != b[0].trace_id


def open_support_run(tracker: Tracker) -> None:
    """Feed the seed's support run without its flow_completed."""
    feed_events(seed_events(CS_FLOW)[:-1], tracker=tracker)


def test_watchdog_expire_closes_idle_run_as_timeout() -> None:
    """The watchdog closes an idle run: timeout, incomplete, ending at its largest timestamp."""
    tracker = Tracker()
    open_support_run(tracker)
    last_received = received_ns(seed_events(CS_FLOW)[-2], 0)
    assert tracker.expire(last_received + 59 * S, inactivity_ns=60 * S) == []
    outputs = tracker.expire(last_received + 60 * S, inactivity_ns=60 * S)
    notify, root = spans(outputs)
    assert root.result is Result.TIMEOUT
    assert root.status is StatusCode.UNSET
    assert root.attributes["cicd.pipeline.result"] == "timeout"
    assert root.attributes["lao.run.incomplete"] is True
    assert root.end_ns == 1756806135123000000  # send_notifications' start, the last seen
    assert notify.name == "execute_task send_notifications"
    assert notify.end_ns == root.end_ns
    assert notify.result is Result.CANCELLATION
    assert notify.attributes["lao.task.incomplete"] is True
    assert tracker.is_closed(CS_FLOW, CS_RUN)
    assert tracker.runs == {}


def test_watchdog_max_duration() -> None:
    """The watchdog closes a run older than max_duration even while it is active."""
    tracker = Tracker()
    open_support_run(tracker)
    opened = received_ns(seed_events(CS_FLOW)[0], 0)
    outputs = tracker.expire(opened + 3600 * S, inactivity_ns=10**6 * S, max_duration_ns=3600 * S)
    assert root_of(spans(outputs)).result is Result.TIMEOUT


def test_close_all_is_cancellation() -> None:
    """close_all (shutdown, end of replay input) ends every open run as cancellation."""
    tracker = Tracker()
    open_support_run(tracker)
    feed_events(seed_events(FIN_FLOW)[:2], tracker=tracker)
    records = spans(tracker.close_all())
    roots = [r for r in records if r.kind == "run"]
    assert {r.run_name for r in roots} == {CS_RUN, FIN_RUN}
    for root in roots:
        assert root.result is Result.CANCELLATION
        assert root.attributes["cicd.pipeline.result"] == "cancellation"
        assert root.attributes["lao.run.incomplete"] is True
    assert tracker.close_all() == []


def test_close_unknown_run_is_nothing() -> None:
    """Closing a run the tracker does not know returns nothing."""
    assert Tracker().close_run("nope", "nope", Result.CANCELLATION) == []


# -- traceparent -------------------------------------------------------------------------

PARENT = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")


def test_traceparent_sets_trace_and_remote_parent() -> None:
    """A registered traceparent gives the trace id and the root's remote parent."""
    tracker = Tracker()
    tracker.set_parent(CS_FLOW, CS_RUN, PARENT)
    records = run_events(seed_events(CS_FLOW), tracker=tracker)
    root = root_of(records)
    assert root.trace_id == PARENT.trace_id
    assert (root.parent_span_id, root.parent_is_remote) == (PARENT.span_id, True)
    assert root.span_id == sha(f"lao-flow\0{CS_FLOW}\0{CS_RUN}", 8)
    for span in tasks_of(records):
        assert span.trace_id == PARENT.trace_id
        assert (span.parent_span_id, span.parent_is_remote) == (root.span_id, False)
    assert tracker.trace_id_of(CS_FLOW, CS_RUN) == PARENT.trace_id


def test_traceparent_registered_after_first_events_before_any_span() -> None:
    """A traceparent registered while a run has exported nothing still applies."""
    tracker = Tracker()
    feed_events(seed_events(CS_FLOW)[:2], tracker=tracker)
    assert tracker.set_parent(CS_FLOW, CS_RUN, PARENT)
    records = run_events(seed_events(CS_FLOW)[2:], tracker=tracker)
    assert {r.trace_id for r in records} == {PARENT.trace_id}


def test_traceparent_too_late_keeps_the_trace_whole() -> None:
    """A traceparent arriving after spans were exported does not split the run's trace."""
    tracker = Tracker()
    first = run_events(seed_events(CS_FLOW)[:3], tracker=tracker)
    assert not tracker.set_parent(CS_FLOW, CS_RUN, PARENT)
    rest = run_events(seed_events(CS_FLOW)[3:], tracker=tracker)
    derived = sha(f"lao-run\0{CS_FLOW}\0{CS_RUN}", 16)
    assert {r.trace_id for r in first + rest} == {derived}
    assert root_of(rest).parent_span_id is None


def test_trace_id_of_a_closed_run_is_the_one_exported() -> None:
    """After a run with a traceparent closed, its trace id is still the traceparent's."""
    tracker = Tracker()
    tracker.set_parent(FIN_FLOW, FIN_RUN, PARENT)
    run_events(seed_events(FIN_FLOW), tracker=tracker)
    assert tracker.is_closed(FIN_FLOW, FIN_RUN)
    assert tracker.trace_id_of(FIN_FLOW, FIN_RUN) == PARENT.trace_id
    assert tracker.trace_id_of("x", "y") == sha("lao-run\0x\0y", 16)


def test_traceparent_removed_before_events() -> None:
    """set_parent(None) before any event restores the derived trace id."""
    tracker = Tracker()
    tracker.set_parent(FLOW, RUN, PARENT)
    tracker.set_parent(FLOW, RUN, None)
    (root,) = run_events([ev("flow_started", 0), ev("flow_completed", 1)], tracker=tracker)
    assert root.trace_id == sha(f"lao-run\0{FLOW}\0{RUN}", 16)
    assert root.parent_span_id is None


# -- unknown events ----------------------------------------------------------------------


def test_unknown_event_becomes_root_span_event() -> None:
    """An event of unknown type becomes a `lao.event {type}` event on the root span."""
    events = [
        ev("flow_started", 0),
        {**ev("node_progress", 1), "task_name": "a", "percent": 40, "api_key": "sk-abcdefgh"},
        ev("flow_completed", 2),
    ]
    (root,) = run_events(events)
    (event,) = root.events
    assert (event.name, event.time_ns) == ("lao.event node_progress", ns(T0 + 1))
    assert event.attributes["lao.event.type"] == "node_progress"
    assert event.attributes["lao.task_name"] == "a"
    payload = json.loads(str(event.attributes["lao.event.payload"]))
    assert payload["percent"] == 40
    assert payload["api_key"] == REDACTED


def test_unknown_events_capped_per_run() -> None:
    """Beyond max_root_events, unknown events are dropped with reason root_events_full."""
    tracker = Tracker(max_root_events=2)
    events = [ev("node_progress", i) for i in range(4)] + [ev("flow_completed", 5)]
    outputs = feed_events(events, tracker=tracker)
    assert len(root_of(spans(outputs)).events) == 2
    assert drops(outputs) == [("node_progress", "root_events_full")] * 2


def test_run_opened_reported_once_with_trace_id() -> None:
    """The first event of a run reports RunOpened with the run's trace id, once."""
    outputs = feed_events(seed_events(CS_FLOW))
    opened = [o for o in outputs if isinstance(o, RunOpened)]
    assert opened == [RunOpened(CS_FLOW, CS_RUN, sha(f"lao-run\0{CS_FLOW}\0{CS_RUN}", 16))]


def test_classified_event_fields_do_not_choose_the_run() -> None:
    """The tracker files an event under the run it is fed for, not its own name fields."""
    tracker = Tracker()
    event = classify_object(ev("flow_started", 0))
    assert isinstance(event, FlowStarted)
    tracker.feed(event, flow_name="Other", run_name="x", received_ns=ns(T0))
    assert set(tracker.runs) == {("Other", "x")}
