"""The Prometheus metrics of the telemetry contract, on a fresh registry per test."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric

from helpers import Driver
from otel_bridge import __version__
from otel_bridge.core.ids import root_span_id, run_trace_id, task_span_id
from otel_bridge.core.outputs import DropReason, EventDropped, RunOpened
from otel_bridge.core.records import Result, SpanRecord, StatusCode
from otel_bridge.sinks.exposition import encode
from otel_bridge.sinks.labels import OTHER, LabelGuard
from otel_bridge.sinks.metrics import DURATION_BUCKETS, REJECT_REASONS, Metrics

T0 = 1_756_806_125.0
NS = 1_000_000_000

# name (as exposed, without sample suffixes), type, label names: the contract's table.
CONTRACT = [
    ("lao_flow_runs_started", "counter", {"flow_name"}),
    ("lao_flow_runs", "counter", {"flow_name", "result"}),
    ("lao_flow_run_duration_seconds", "histogram", {"flow_name", "result"}),
    ("lao_flow_runs_active", "gauge", {"flow_name"}),
    ("lao_task_runs", "counter", {"flow_name", "task_name", "result"}),
    ("lao_task_run_duration_seconds", "histogram", {"flow_name", "task_name", "result"}),
    ("lao_task_errors", "counter", {"flow_name", "task_name", "error_type"}),
    ("lao_events", "counter", {"event_type"}),
]
HEALTH = [
    ("otel_bridge_build", "info", {"version"}),
    ("otel_bridge_subscriptions", "gauge", {"state"}),
    ("otel_bridge_reconnects", "counter", set()),
    ("otel_bridge_frames_rejected", "counter", {"reason"}),
    ("otel_bridge_frames_ignored", "counter", {"reason"}),
    ("otel_bridge_events_dropped", "counter", {"reason"}),
    ("otel_bridge_event_lag_seconds", "histogram", set()),
    ("otel_bridge_spans_exported", "counter", {"exporter"}),
    ("otel_bridge_spans_failed", "counter", {"exporter"}),
    ("otel_bridge_spans_dropped", "counter", {"exporter", "reason"}),
    ("otel_bridge_export_queue_depth", "gauge", {"exporter"}),
    ("otel_bridge_label_overflow", "counter", {"label"}),
]


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics(registry)


def run_span(
    flow: str,
    run: str,
    result: Result = Result.SUCCESS,
    duration_s: float = 2.0,
    error_type: str | None = None,
) -> SpanRecord:
    """Return a finished root span of run (flow, run)."""
    start = int(T0 * NS)
    return SpanRecord(
        kind="run",
        flow_name=flow,
        run_name=run,
        task_name=None,
        trace_id=run_trace_id(flow, run),
        span_id=root_span_id(flow, run),
        parent_span_id=None,
        parent_is_remote=False,
        name=f"invoke_workflow {flow}",
        start_ns=start,
        end_ns=start + int(duration_s * NS),
        attributes={},
        events=(),
        status=StatusCode.ERROR if result is Result.FAILURE else StatusCode.OK,
        status_message=None,
        result=result,
        error_type=error_type,
    )


def task_span(
    flow: str,
    run: str,
    task: str | None,
    result: Result = Result.SUCCESS,
    duration_s: float = 0.5,
    error_type: str | None = None,
) -> SpanRecord:
    """Return a finished task span of run (flow, run)."""
    start = int(T0 * NS)
    return SpanRecord(
        kind="task",
        flow_name=flow,
        run_name=run,
        task_name=task,
        trace_id=run_trace_id(flow, run),
        span_id=task_span_id(flow, run, str(task)),
        parent_span_id=root_span_id(flow, run),
        parent_is_remote=False,
        name=f"execute_task {task}",
        start_ns=start,
        end_ns=start + int(duration_s * NS),
        attributes={},
        events=(),
        status=StatusCode.ERROR if result is Result.FAILURE else StatusCode.OK,
        status_message=None,
        result=result,
        error_type=error_type,
    )


def opened(flow: str, run: str) -> RunOpened:
    """Return the tracker's notice that run (flow, run) started."""
    return RunOpened(flow, run, run_trace_id(flow, run))


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    """One sample's value (None when the series does not exist)."""
    return registry.get_sample_value(name, labels)


def families(registry: CollectorRegistry) -> dict[str, Metric]:
    """Every metric family of the registry, by name."""
    return {family.name: family for family in registry.collect()}


def label_values(registry: CollectorRegistry) -> set[str]:
    """Every label value of every sample in the registry."""
    return {v for family in registry.collect() for s in family.samples for v in s.labels.values()}


def event(kind: str, flow: str, run: str, ts: float, **fields: Any) -> dict[str, Any]:
    """Return an LAO event as it arrives on the socket (decoded)."""
    return {"event_type": kind, "flow_name": flow, "run_name": run, "timestamp": ts, **fields}


def feed(pipeline: Driver, events: Iterable[dict[str, Any]], lag_s: float = 0.2) -> None:
    """Hand events to the pipeline, each received ``lag_s`` after its timestamp."""
    for item in events:
        received = int((float(item.get("timestamp", T0)) + lag_s) * NS)
        pipeline.handle_object(item, received_ns=received)


# -- the contract's names, types, help, units and buckets --------------------------------


@pytest.mark.parametrize(("name", "kind", "labels"), CONTRACT + HEALTH)
def test_every_metric_is_registered_with_type_help_and_labels(
    metrics: Metrics, registry: CollectorRegistry, name: str, kind: str, labels: set[str]
) -> None:
    """Each contract and health metric exists with its type, help text and label names."""
    metrics.observe(opened("F", "r1"))
    metrics.observe(task_span("F", "r1", "t", Result.FAILURE, error_type="E"))
    metrics.observe(run_span("F", "r1"))
    metrics.event_received("task_started")
    metrics.exported("otlp", 1)
    family = families(registry)[name]
    assert family.type == kind
    assert len(family.documentation) > 10
    sample_labels = {key for s in family.samples for key in s.labels} - {"le"}
    assert sample_labels == labels


def test_counters_end_in_total_and_durations_in_seconds(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    """Counters are exposed as ``*_total``; histograms declare the base unit seconds."""
    metrics.observe(opened("F", "r1"))
    metrics.observe(task_span("F", "r1", "t", Result.FAILURE, error_type="E"))
    metrics.observe(run_span("F", "r1"))
    metrics.exported("otlp", 1)
    text = encode(registry).decode()
    for name, kind, _ in CONTRACT + HEALTH:
        if kind == "counter":
            assert f"# TYPE {name} counter" in text
            assert re.search(rf"^{name}_total(\{{| )", text, re.M), name
        if kind == "histogram":
            assert f"# UNIT {name} seconds" in text
    assert "lao_flow_runs_started_total" in encode(registry, openmetrics_format=False).decode()


@pytest.mark.parametrize("name", ["lao_flow_run_duration_seconds", "lao_task_run_duration_seconds"])
def test_duration_histograms_use_the_contract_buckets(
    metrics: Metrics, registry: CollectorRegistry, name: str
) -> None:
    """Both duration histograms have the contract's buckets, 0.1 s to an hour, plus +Inf."""
    metrics.observe(task_span("F", "r", "t"))
    metrics.observe(run_span("F", "r"))
    bounds = [
        s.labels["le"] for s in families(registry)[name].samples if s.name.endswith("_bucket")
    ]
    assert bounds == [str(float(b)) for b in DURATION_BUCKETS] + ["+Inf"]
    assert DURATION_BUCKETS == (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


# -- LAO workflow metrics ----------------------------------------------------------------


def test_run_opened_counts_a_start_and_a_run_in_flight(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    """A run's first event counts it as started and in flight."""
    metrics.observe(opened("Flow A", "r1"))
    metrics.observe(opened("Flow A", "r2"))
    assert value(registry, "lao_flow_runs_started_total", flow_name="Flow A") == 2
    assert value(registry, "lao_flow_runs_active", flow_name="Flow A") == 2


def test_a_flow_has_every_result_series_from_its_first_run(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    """The first sight of a flow creates its four result series at 0 (rate() sees the first)."""
    metrics.observe(opened("Flow A", "r1"))
    for result in ("success", "failure", "timeout", "cancellation"):
        assert value(registry, "lao_flow_runs_total", flow_name="Flow A", result=result) == 0


@pytest.mark.parametrize("result", list(Result))
def test_finished_run_counted_by_result_with_its_duration(
    metrics: Metrics, registry: CollectorRegistry, result: Result
) -> None:
    """A finished run counts once under its result, observes its duration, leaves flight."""
    metrics.observe(opened("F", "r1"))
    metrics.observe(run_span("F", "r1", result, duration_s=42.0))
    labels = {"flow_name": "F", "result": result.value}
    assert value(registry, "lao_flow_runs_total", **labels) == 1
    assert value(registry, "lao_flow_run_duration_seconds_count", **labels) == 1
    assert value(registry, "lao_flow_run_duration_seconds_sum", **labels) == 42.0
    assert value(registry, "lao_flow_run_duration_seconds_bucket", le="30.0", **labels) == 0
    assert value(registry, "lao_flow_run_duration_seconds_bucket", le="60.0", **labels) == 1
    assert value(registry, "lao_flow_runs_active", flow_name="F") == 0


def test_finished_task_counted_by_result_with_its_duration(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    """Task executions count under flow, task and result, with their duration."""
    metrics.observe(task_span("F", "r1", "fetch", Result.SUCCESS, duration_s=0.3))
    metrics.observe(task_span("F", "r2", "fetch", Result.CANCELLATION, duration_s=7.0))
    ok = {"flow_name": "F", "task_name": "fetch", "result": "success"}
    cancelled = {**ok, "result": "cancellation"}
    assert value(registry, "lao_task_runs_total", **ok) == 1
    assert value(registry, "lao_task_runs_total", **cancelled) == 1
    assert value(registry, "lao_task_run_duration_seconds_bucket", le="0.25", **ok) == 0
    assert value(registry, "lao_task_run_duration_seconds_bucket", le="0.5", **ok) == 1
    assert value(registry, "lao_task_run_duration_seconds_sum", **cancelled) == 7.0
    assert value(registry, "lao_task_errors_total", flow_name="F", task_name="fetch") is None


def test_a_task_has_every_result_series_from_its_first_execution(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    """The first finished execution of a task creates its three result series."""
    metrics.observe(task_span("F", "r1", "fetch"))
    labels = {"flow_name": "F", "task_name": "fetch"}
    assert value(registry, "lao_task_runs_total", result="failure", **labels) == 0
    assert value(registry, "lao_task_runs_total", result="cancellation", **labels) == 0


def test_task_failure_counted_by_error_type(metrics: Metrics, registry: CollectorRegistry) -> None:
    """A failed task counts under its error type; a failure without one under ``_OTHER``."""
    metrics.observe(task_span("F", "r1", "load", Result.FAILURE, error_type="RateLimitError"))
    metrics.observe(task_span("F", "r2", "load", Result.FAILURE, error_type="RateLimitError"))
    metrics.observe(task_span("F", "r3", "load", Result.FAILURE, error_type=None))
    labels = {"flow_name": "F", "task_name": "load"}
    assert value(registry, "lao_task_errors_total", error_type="RateLimitError", **labels) == 2
    assert value(registry, "lao_task_errors_total", error_type="_OTHER", **labels) == 1
    assert value(registry, "lao_task_runs_total", result="failure", **labels) == 3


def test_task_without_name_is_labelled_unknown(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    """A task span with no task_name is counted under task_name ``unknown``."""
    metrics.observe(task_span("F", "r1", None))
    labels = {"flow_name": "F", "task_name": "unknown", "result": "success"}
    assert value(registry, "lao_task_runs_total", **labels) == 1


def test_events_counted_by_type_with_unknown_types_folded(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    """The six event types are counted by name; anything else as ``unknown``."""
    for kind in ("flow_started", "task_started", "task_started", "task_progress", "x"):
        metrics.event_received(kind)
    assert value(registry, "lao_events_total", event_type="task_started") == 2
    assert value(registry, "lao_events_total", event_type="flow_started") == 1
    assert value(registry, "lao_events_total", event_type="unknown") == 2
    assert value(registry, "lao_events_total", event_type="flow_error") == 0
    assert value(registry, "lao_events_total", event_type="task_progress") is None


def test_dropped_events_counted_by_reason(metrics: Metrics, registry: CollectorRegistry) -> None:
    """An event the tracker did not use is counted with its reason, never silently."""
    metrics.observe(EventDropped("F", "r", "task_started", "duplicate"))
    metrics.observe(EventDropped("F", "r", "task_completed", "after_end"))
    metrics.observe(EventDropped("F", "r", "task_started", "duplicate"))
    assert value(registry, "otel_bridge_events_dropped_total", reason="duplicate") == 2
    assert value(registry, "otel_bridge_events_dropped_total", reason="after_end") == 1
    assert value(registry, "otel_bridge_events_dropped_total", reason="late_start") == 0


def test_no_per_run_value_is_ever_a_label(metrics: Metrics, registry: CollectorRegistry) -> None:
    """Run names, task ids and trace ids never appear as label values."""
    runs = [f"run-{i:04d}" for i in range(50)]
    for run in runs:
        metrics.observe(opened("F", run))
        metrics.observe(task_span("F", run, "t", Result.FAILURE, error_type="E"))
        metrics.observe(run_span("F", run, Result.FAILURE))
    values = label_values(registry)
    trace_ids = {f"{run_trace_id('F', run):032x}" for run in runs}
    assert not values & (set(runs) | trace_ids)
    allowed = {name for _, _, labels in CONTRACT + HEALTH for name in labels} | {"le"}
    assert {k for f in registry.collect() for s in f.samples for k in s.labels} <= allowed


# -- exemplars -------------------------------------------------------------------------


def test_duration_histograms_carry_trace_id_exemplars_in_openmetrics(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    """OpenMetrics shows the run's trace_id as exemplar on the bucket each duration fell in."""
    metrics.observe(opened("Flow A", "r1"))
    metrics.observe(task_span("Flow A", "r1", "fetch", duration_s=0.3))
    metrics.observe(run_span("Flow A", "r1", duration_s=0.75))
    trace = f"{run_trace_id('Flow A', 'r1'):032x}"
    text = encode(registry).decode()
    run_bucket = (
        'lao_flow_run_duration_seconds_bucket{flow_name="Flow A",le="1.0",result="success"} '
        f'1.0 # {{trace_id="{trace}"}} 0.75'
    )
    task_bucket = (
        "lao_task_run_duration_seconds_bucket"
        '{flow_name="Flow A",le="0.5",result="success",task_name="fetch"} '
        f'1.0 # {{trace_id="{trace}"}} 0.3'
    )
    assert run_bucket in text
    assert task_bucket in text
    assert text.count("# {trace_id=") == 2
    assert text.endswith("# EOF\n")


def test_text_format_has_no_exemplars(metrics: Metrics, registry: CollectorRegistry) -> None:
    """The Prometheus text format 0.0.4 cannot carry exemplars and shows none."""
    metrics.observe(run_span("F", "r1"))
    text = encode(registry, openmetrics_format=False).decode()
    assert "# {" not in text
    assert f"{run_trace_id('F', 'r1'):032x}" not in text
    assert 'lao_flow_run_duration_seconds_count{flow_name="F",result="success"} 1.0' in text


def test_the_latest_run_in_a_bucket_is_its_exemplar(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    """Two runs in one bucket: the bucket's exemplar is the later run's trace."""
    metrics.observe(run_span("F", "r1", duration_s=3.0))
    metrics.observe(run_span("F", "r2", duration_s=4.0))
    exemplars = [
        s.exemplar
        for s in families(registry)["lao_flow_run_duration_seconds"].samples
        if s.exemplar is not None
    ]
    assert [(e.labels, e.value) for e in exemplars] == [
        ({"trace_id": f"{run_trace_id('F', 'r2'):032x}"}, 4.0)
    ]


# -- the cardinality guard ---------------------------------------------------------------


def test_guard_admits_values_up_to_the_cap_then_folds_into_other() -> None:
    """Past ``max_values`` distinct values, new ones become ``__other__``; old ones stay."""
    folded: list[str] = []
    guard = LabelGuard(max_values=2, on_overflow=folded.append)
    assert [guard("a"), guard("b"), guard("c"), guard("a"), guard("c")] == [
        "a",
        "b",
        OTHER,
        "a",
        OTHER,
    ]
    assert folded == ["c", "c"]
    assert guard.admitted == {"a", "b"}


def test_guard_allow_patterns_must_match_the_whole_value() -> None:
    """With allow patterns, only values fully matching one are admitted."""
    guard = LabelGuard(allow=["Customer_.*", "Billing"])
    assert guard("Customer_Support") == "Customer_Support"
    assert guard("Billing") == "Billing"
    assert guard("Billing_EU") == OTHER
    assert guard("My Customer_X") == OTHER


def test_guard_deny_patterns_win_over_allow() -> None:
    """A value matching a deny pattern is folded even when an allow pattern matches."""
    guard = LabelGuard(allow=["Customer_.*"], deny=[".*_tmp", "Customer_Debug"])
    assert guard("Customer_Support") == "Customer_Support"
    assert guard("Customer_Support_tmp") == OTHER
    assert guard("Customer_Debug") == OTHER


def test_guard_refused_values_do_not_use_up_the_cap() -> None:
    """Denied values are not counted against the cap on distinct values."""
    guard = LabelGuard(deny=["tmp-.*"], max_values=1)
    assert guard("tmp-1") == OTHER
    assert guard("tmp-2") == OTHER
    assert guard("real") == "real"
    assert guard("another") == OTHER


def test_guard_missing_empty_and_literal_other_values() -> None:
    """None or empty becomes ``unknown``; a value spelled ``__other__`` is folded and counted."""
    folded: list[str] = []
    guard = LabelGuard(on_overflow=folded.append)
    assert guard(None) == "unknown"
    assert guard("") == "unknown"
    assert guard(OTHER) == OTHER
    assert folded == [OTHER]


def test_guard_rejects_a_cap_below_one() -> None:
    """A cap of zero distinct values is a configuration error."""
    with pytest.raises(ValueError, match="max_values"):
        LabelGuard(max_values=0)


def test_flow_guard_folds_and_counts_overflow(registry: CollectorRegistry) -> None:
    """Denied and over-cap flow names are counted under ``__other__``, overflow per update."""
    metrics = Metrics(registry, flow_deny=["Scratch.*"], max_label_values=2)
    for flow in ("A", "B", "C", "Scratch 1"):
        metrics.observe(opened(flow, "r"))
        metrics.observe(run_span(flow, "r"))
    assert value(registry, "lao_flow_runs_total", flow_name="A", result="success") == 1
    assert value(registry, "lao_flow_runs_total", flow_name=OTHER, result="success") == 2
    assert value(registry, "lao_flow_runs_started_total", flow_name=OTHER) == 2
    assert value(registry, "lao_flow_runs_active", flow_name=OTHER) == 0
    assert value(registry, "otel_bridge_label_overflow_total", label="flow_name") == 4
    assert value(registry, "otel_bridge_label_overflow_total", label="task_name") == 0
    assert "C" not in label_values(registry)
    assert "Scratch 1" not in label_values(registry)


def test_task_guard_folds_and_counts_overflow(registry: CollectorRegistry) -> None:
    """Task names outside the allow list are counted under ``__other__``."""
    metrics = Metrics(registry, task_allow=["fetch", "load"], task_deny=["load"])
    for task in ("fetch", "load", "step 7"):
        metrics.observe(task_span("F", "r", task, Result.FAILURE, error_type="E"))
    other = {"flow_name": "F", "task_name": OTHER}
    assert value(registry, "lao_task_runs_total", result="failure", **other) == 2
    assert value(registry, "lao_task_errors_total", error_type="E", **other) == 2
    assert value(registry, "lao_task_run_duration_seconds_count", result="failure", **other) == 2
    assert value(registry, "otel_bridge_label_overflow_total", label="task_name") == 2


def test_error_types_are_capped_and_truncated(registry: CollectorRegistry) -> None:
    """Error types are a guarded label too: at most 100 values of at most 100 characters."""
    metrics = Metrics(registry)
    for i in range(105):
        metrics.observe(task_span("F", "r", "t", Result.FAILURE, error_type=f"E{i}"))
    metrics.observe(task_span("F", "r", "t", Result.FAILURE, error_type="X" * 300))
    other = {"flow_name": "F", "task_name": "t", "error_type": OTHER}
    assert value(registry, "lao_task_errors_total", **other) == 6
    assert value(registry, "otel_bridge_label_overflow_total", label="error_type") == 6
    assert max(len(v) for v in label_values(registry)) <= 100


def test_runs_in_flight_balance_for_folded_flows(registry: CollectorRegistry) -> None:
    """Increments and decrements of a folded flow's in-flight gauge land on one series."""
    metrics = Metrics(registry, max_label_values=1)
    metrics.observe(opened("A", "r1"))
    metrics.observe(opened("B", "r1"))
    metrics.observe(opened("C", "r1"))
    assert value(registry, "lao_flow_runs_active", flow_name=OTHER) == 2
    metrics.observe(run_span("B", "r1"))
    metrics.observe(run_span("C", "r1"))
    metrics.observe(run_span("A", "r1"))
    assert value(registry, "lao_flow_runs_active", flow_name=OTHER) == 0
    assert value(registry, "lao_flow_runs_active", flow_name="A") == 0


# -- the bridge's health -----------------------------------------------------------------


def test_closed_label_sets_exist_at_zero(metrics: Metrics, registry: CollectorRegistry) -> None:
    """States, event types, reject/drop reasons and guarded labels start at 0, not missing."""
    for state in ("pending", "connecting", "connected", "reconnecting", "done", "failed"):
        assert value(registry, "otel_bridge_subscriptions", state=state) == 0
    for reason in REJECT_REASONS:
        assert value(registry, "otel_bridge_frames_rejected_total", reason=reason) == 0
    for label in ("flow_name", "task_name", "error_type"):
        assert value(registry, "otel_bridge_label_overflow_total", label=label) == 0
    assert value(registry, "otel_bridge_reconnects_total") == 0
    assert value(registry, "otel_bridge_event_lag_seconds_count") == 0
    assert value(registry, "lao_events_total", event_type="unknown") == 0
    assert set(REJECT_REASONS) >= {"invalid_json", "not_utf8", "too_large"}


def test_subscription_gauge_set_for_every_state(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    """Subscription counts by state replace the previous ones; absent states read 0."""
    metrics.set_subscriptions({"connected": 3, "reconnecting": 1})
    metrics.set_subscriptions({"connected": 2, "done": 4})
    assert value(registry, "otel_bridge_subscriptions", state="connected") == 2
    assert value(registry, "otel_bridge_subscriptions", state="reconnecting") == 0
    assert value(registry, "otel_bridge_subscriptions", state="done") == 4


def test_export_outcomes_counted_per_exporter(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    """Exported, failed and dropped spans and the queue depth are kept per exporter."""
    metrics.exported("otlp", 10)
    metrics.failed("otlp", 3)
    metrics.dropped("otlp", "queue_full", 2)
    metrics.queue_depth("otlp", 7)
    assert value(registry, "otel_bridge_spans_exported_total", exporter="otlp") == 10
    assert value(registry, "otel_bridge_spans_failed_total", exporter="otlp") == 3
    dropped = "otel_bridge_spans_dropped_total"
    assert value(registry, dropped, exporter="otlp", reason="queue_full") == 2
    assert value(registry, dropped, exporter="otlp", reason="shutdown") == 0
    assert value(registry, "otel_bridge_export_queue_depth", exporter="otlp") == 7


def test_registered_exporter_has_its_series_at_zero(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    """A registered exporter shows zero failures and drops before its first span."""
    metrics.register_exporter("file")
    assert value(registry, "otel_bridge_spans_failed_total", exporter="file") == 0
    assert value(registry, "otel_bridge_spans_exported_total", exporter="file") == 0
    dropped = "otel_bridge_spans_dropped_total"
    for reason in ("queue_full", "shutdown", "shutdown_timeout"):
        assert value(registry, dropped, exporter="file", reason=reason) == 0
    assert value(registry, "otel_bridge_export_queue_depth", exporter="file") == 0


def test_build_info_names_the_version(metrics: Metrics, registry: CollectorRegistry) -> None:
    """``otel_bridge_build_info`` is 1 with the package version as label."""
    assert value(registry, "otel_bridge_build_info", version=__version__) == 1


def test_two_registries_do_not_share_state() -> None:
    """Metrics live on the injected registry only (no global state between instances)."""
    first, second = CollectorRegistry(), CollectorRegistry()
    Metrics(first).observe(opened("F", "r"))
    Metrics(second)
    assert value(first, "lao_flow_runs_started_total", flow_name="F") == 1
    assert value(second, "lao_flow_runs_started_total", flow_name="F") is None


# -- through the real pipeline -----------------------------------------------------------


def seed_like_runs() -> list[dict[str, Any]]:
    """Two runs like the seed's: one completes (task ids), one fails (no task ids)."""
    cs, fin = "Customer_Support_Pipeline", "Financial_Data_Pipeline"
    return [
        event("flow_started", cs, "ticket_1", T0, task_id="cust-support-001"),
        event("task_started", cs, "ticket_1", T0 + 2.2, task_id="b29a", task_name="sentiment"),
        event(
            "task_completed",
            cs,
            "ticket_1",
            T0 + 7.5,
            task_id="b29a",
            task_name="sentiment",
            execution_time=5.3,
            output={"sentiment": "negative"},
        ),
        event("task_started", cs, "ticket_1", T0 + 8.0, task_id="crm-1", task_name="crm"),
        event("task_completed", cs, "ticket_1", T0 + 9.8, task_id="crm-1", task_name="crm"),
        event(
            "flow_completed",
            cs,
            "ticket_1",
            T0 + 10.0,
            task_id="pipeline-complete",
            task_name="flow",
            total_execution_time=10.0,
            output={"sentiment": {}, "crm": {}},
        ),
        event("flow_started", fin, "batch_1", T0, message="Processing"),
        event("task_started", fin, "batch_1", T0 + 1.3, task_name="validate"),
        event(
            "task_failed",
            fin,
            "batch_1",
            T0 + 45.7,
            task_name="validate",
            execution_time=44.3,
            error={"type": "DataValidationError", "message": "1,247 records failed"},
        ),
        event(
            "flow_error",
            fin,
            "batch_1",
            T0 + 46.0,
            error={"type": "PipelineHaltedError", "message": "stopping pipeline"},
        ),
    ]


def test_pipeline_updates_every_contract_metric(registry: CollectorRegistry) -> None:
    """Seed-like events through the engine and the router give the expected counts and durations."""
    metrics = Metrics(registry)
    pipeline = Driver(metrics=metrics)
    feed(pipeline, seed_like_runs(), lag_s=0.2)
    cs, fin = "Customer_Support_Pipeline", "Financial_Data_Pipeline"
    assert value(registry, "lao_flow_runs_started_total", flow_name=cs) == 1
    assert value(registry, "lao_flow_runs_total", flow_name=cs, result="success") == 1
    assert value(registry, "lao_flow_runs_total", flow_name=fin, result="failure") == 1
    fin_failed = {"flow_name": fin, "result": "failure"}
    assert value(registry, "lao_flow_run_duration_seconds_sum", **fin_failed) == pytest.approx(46)
    assert value(registry, "lao_flow_runs_active", flow_name=cs) == 0
    failed = {"flow_name": fin, "task_name": "validate"}
    assert value(registry, "lao_task_runs_total", result="failure", **failed) == 1
    assert value(registry, "lao_task_errors_total", error_type="DataValidationError", **failed) == 1
    assert value(registry, "lao_events_total", event_type="task_started") == 3
    assert value(registry, "lao_events_total", event_type="flow_error") == 1
    assert value(registry, "otel_bridge_event_lag_seconds_count") == 10
    assert value(registry, "otel_bridge_event_lag_seconds_bucket", le="0.1") == 0
    assert value(registry, "otel_bridge_event_lag_seconds_bucket", le="0.25") == 10


def test_pipeline_counts_duplicates_noise_and_rejected_frames(registry: CollectorRegistry) -> None:
    """Duplicates, noise and unusable frames are each counted with their reason."""
    metrics = Metrics(registry)
    pipeline = Driver(metrics=metrics)
    start = event("flow_started", "F", "r", T0)
    feed(pipeline, [start, start])
    pipeline.handle_frame("connection established", flow_name="F", run_name="r", received_ns=0)
    pipeline.handle_frame('{"event_type": "keepalive"}', flow_name="F", run_name="r", received_ns=0)
    pipeline.handle_frame("{not json", flow_name="F", run_name="r", received_ns=0)
    pipeline.handle_frame(b"\xff\xfe", flow_name="F", run_name="r", received_ns=0)
    assert value(registry, "otel_bridge_events_dropped_total", reason="duplicate") == 1
    assert value(registry, "otel_bridge_frames_ignored_total", reason="greeting") == 1
    assert value(registry, "otel_bridge_frames_ignored_total", reason="keepalive") == 1
    assert value(registry, "otel_bridge_frames_rejected_total", reason="invalid_json") == 1
    assert value(registry, "otel_bridge_frames_rejected_total", reason="not_utf8") == 1
    assert value(registry, "lao_flow_runs_active", flow_name="F") == 1


def test_runs_closed_by_the_watchdog_count_as_timeout(registry: CollectorRegistry) -> None:
    """A run the bridge closes for inactivity is finished with result ``timeout``."""
    metrics = Metrics(registry)
    pipeline = Driver(metrics=metrics)
    feed(pipeline, [event("flow_started", "F", "r", T0)])
    pipeline.expire(int((T0 + 3600) * NS), inactivity_ns=60 * NS)
    assert value(registry, "lao_flow_runs_total", flow_name="F", result="timeout") == 1
    assert value(registry, "lao_flow_runs_active", flow_name="F") == 0


def test_repeated_task_executions_are_each_counted_with_duration_and_exemplar(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    """Every execution of an already seen task counts, sums and becomes its bucket's exemplar."""
    for n, duration in enumerate((0.3, 0.4, 0.45, 20.0)):
        metrics.observe(task_span("F", f"r{n}", "fetch", duration_s=duration))
    ok = {"flow_name": "F", "task_name": "fetch", "result": "success"}
    assert value(registry, "lao_task_runs_total", **ok) == 4
    assert value(registry, "lao_task_run_duration_seconds_bucket", le="0.5", **ok) == 3
    assert value(registry, "lao_task_run_duration_seconds_sum", **ok) == pytest.approx(21.15)
    text = encode(registry).decode()
    last = f"{run_trace_id('F', 'r2'):032x}"
    bucket = 'le="0.5",result="success",task_name="fetch"} 3.0 # {trace_id="' + last + '"} 0.45'
    assert bucket in text


def test_folded_task_names_count_overflow_on_every_execution(registry: CollectorRegistry) -> None:
    """A task folded into ``__other__`` is counted as overflow each time, not just the first."""
    metrics = Metrics(registry, max_label_values=1)
    for task in ("fetch", "load", "load", "load", "fetch"):
        metrics.observe(task_span("F", "r", task))
    assert value(registry, "otel_bridge_label_overflow_total", label="task_name") == 3
    other = {"flow_name": "F", "task_name": OTHER, "result": "success"}
    assert value(registry, "lao_task_runs_total", **other) == 3
    assert value(registry, "lao_task_runs_total", **{**other, "task_name": "fetch"}) == 2


def test_queue_depth_is_the_last_one_reported(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    """The depth gauge shows the latest depth each scrape, per exporter."""
    metrics.queue_depth("otlp", 7)
    metrics.queue_depth("file", 1)
    metrics.queue_depth("otlp", 2)
    assert value(registry, "otel_bridge_export_queue_depth", exporter="otlp") == 2
    assert value(registry, "otel_bridge_export_queue_depth", exporter="file") == 1


def test_outputs_of_a_subclass_are_counted_like_their_class(
    metrics: Metrics, registry: CollectorRegistry
) -> None:
    """An output whose class derives from a known one is counted as that one."""

    @dataclass(frozen=True)
    class Dropped(EventDropped):
        pass

    metrics.observe(Dropped("F", "r", "task_started", DropReason.DUPLICATE))
    assert value(registry, "otel_bridge_events_dropped_total", reason="duplicate") == 1
