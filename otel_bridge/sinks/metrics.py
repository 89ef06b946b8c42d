"""Prometheus metrics: the LAO workflow metrics of the telemetry contract and the bridge's health.

The registry is injected (tests use a fresh ``CollectorRegistry()``); only the entry point
uses a process-wide one. Histograms carry ``trace_id`` exemplars, which Prometheus receives
when it scrapes with OpenMetrics (see :mod:`otel_bridge.exposition`).

Series of closed label sets (event types, reject/drop reasons, a flow's results, an
exporter's failure reasons) are created at zero before their first increment, so that
``rate()``/``increase()`` see the first one and alerts can tell "none" from "no data".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Info,
    PlatformCollector,
    ProcessCollector,
)

from otel_bridge import __version__
from otel_bridge.core.events import KNOWN_EVENT_TYPES
from otel_bridge.core.outputs import (
    DropReason,
    EventDropped,
    EventReceived,
    FrameIgnored,
    FrameRejected,
    InternalError,
    NoiseReason,
    Output,
    RejectReason,
    RunClosed,
    RunOpened,
)
from otel_bridge.core.records import Result, SpanRecord
from otel_bridge.core.redaction import clean_name
from otel_bridge.sinks.exposition import (
    CounterTally,
    GaugeTally,
    HistogramTally,
    Labels,
    TallyCollector,
)
from otel_bridge.sinks.labels import OTHER, LabelGuard, OverflowCounter
from otel_bridge.sources.states import SubscriptionState

DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
EVENT_TYPES: tuple[str, ...] = KNOWN_EVENT_TYPES
EVENT_TYPE_VALUES = (*EVENT_TYPES, "unknown")
SUBSCRIPTION_STATES = tuple(s.value for s in SubscriptionState)
RUN_RESULTS = tuple(r.value for r in Result)
TASK_RESULTS = (Result.SUCCESS.value, Result.FAILURE.value, Result.CANCELLATION.value)
REJECT_REASONS = tuple(r.value for r in RejectReason)
NOISE_REASONS = tuple(r.value for r in NoiseReason)
DROP_REASONS = tuple(r.value for r in DropReason)
SPAN_DROP_REASONS = ("queue_full", "state_full", "rejected", "shutdown", "shutdown_timeout")
GUARDED_LABELS = ("flow_name", "task_name", "error_type")
MAX_ERROR_TYPES = 100
MAX_ERROR_TYPE_LENGTH = 100
_UNKNOWN_EVENT = ("unknown",)
MAX_TASK_SERIES = 16_384  # (flow, task, result) names -> their series, kept for the hot path


class Metrics:
    """Every metric the bridge exposes, registered on one registry.

    ``flow_allow``/``flow_deny`` and ``task_allow``/``task_deny`` are regexes (full match)
    for the cardinality guard; ``max_label_values`` caps the distinct values per label.
    ``runtime`` adds the standard process and Python collectors (``process_cpu_seconds_total``,
    ``process_resident_memory_bytes``, ``python_gc_*``, ``python_info``).
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        flow_allow: Sequence[str] = (),
        flow_deny: Sequence[str] = (),
        task_allow: Sequence[str] = (),
        task_deny: Sequence[str] = (),
        max_label_values: int = 200,
        runtime: bool = False,
    ) -> None:
        self.registry = registry
        r = registry
        if runtime:  # the process's CPU, memory, file descriptors; Python's GC and version
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            GCCollector(registry=r)
        # -- LAO workflows (telemetry contract): tallies, updated on every event ---------
        self.runs_started = CounterTally(
            "lao_flow_runs_started",
            "Workflow runs seen starting (first event of the run received).",
            ["flow_name"],
        )
        self.runs = CounterTally(
            "lao_flow_runs",
            "Workflow runs finished, by result (success, failure, timeout, cancellation).",
            ["flow_name", "result"],
        )
        self.run_duration = HistogramTally(
            "lao_flow_run_duration_seconds",
            "Workflow run duration in seconds, by result; exemplars carry the trace_id.",
            ["flow_name", "result"],
            buckets=DURATION_BUCKETS,
            unit="seconds",
        )
        self.runs_active = GaugeTally(
            "lao_flow_runs_active",
            "Workflow runs in flight (started, not finished).",
            ["flow_name"],
        )
        self.task_runs = CounterTally(
            "lao_task_runs",
            "Task executions finished, by result (success, failure, cancellation).",
            ["flow_name", "task_name", "result"],
        )
        self.task_duration = HistogramTally(
            "lao_task_run_duration_seconds",
            "Task execution duration in seconds, by result; exemplars carry the trace_id.",
            ["flow_name", "task_name", "result"],
            buckets=DURATION_BUCKETS,
            unit="seconds",
        )
        self.task_errors = CounterTally(
            "lao_task_errors",
            "Task executions failed, by error type (error.type, else error.code, else _OTHER).",
            ["flow_name", "task_name", "error_type"],
        )
        self.events = CounterTally(
            "lao_events",
            "LAO events received, by event type (the six documented ones, else unknown).",
            ["event_type"],
        )
        TallyCollector(
            r,
            self.runs_started,
            self.runs,
            self.run_duration,
            self.runs_active,
            self.task_runs,
            self.task_duration,
            self.task_errors,
            self.events,
        )
        # -- the bridge's own health ---------------------------------------------------
        self.build_info = Info("otel_bridge_build", "The otel-bridge version.", registry=r)
        self.build_info.info({"version": __version__})
        self.subscriptions = Gauge(
            "otel_bridge_subscriptions", "Run subscriptions, by state.", ["state"], registry=r
        )
        self.reconnects = Counter(
            "otel_bridge_reconnects", "Upstream reconnect attempts.", registry=r
        )
        self.frames_rejected = CounterTally(
            "otel_bridge_frames_rejected", "Frames not usable as events, by reason.", ["reason"]
        )
        self.frames_ignored = CounterTally(
            "otel_bridge_frames_ignored",
            "Noise frames ignored (greetings, echoes, keepalives, text), by reason.",
            ["reason"],
        )
        self.events_dropped = CounterTally(
            "otel_bridge_events_dropped",
            "Events the tracker did not use (duplicates, late, after the run ended), by reason.",
            ["reason"],
        )
        self.event_lag = HistogramTally(
            "otel_bridge_event_lag_seconds",
            "Receive time minus the event's own timestamp, in seconds.",
            buckets=LAG_BUCKETS,
            unit="seconds",
        )
        TallyCollector(
            r, self.frames_rejected, self.frames_ignored, self.events_dropped, self.event_lag
        )
        self.spans_exported = Counter(
            "otel_bridge_spans_exported", "Spans exported, by exporter.", ["exporter"], registry=r
        )
        self.spans_failed = Counter(
            "otel_bridge_spans_failed",
            "Spans in export attempts that failed, by exporter (retried: not a loss).",
            ["exporter"],
            registry=r,
        )
        self.spans_dropped = Counter(
            "otel_bridge_spans_dropped",
            "Spans dropped before export, by exporter and reason.",
            ["exporter", "reason"],
            registry=r,
        )
        self.export_queue = Gauge(
            "otel_bridge_export_queue_depth",
            "Spans waiting in an exporter's queue.",
            ["exporter"],
            registry=r,
        )
        self.label_overflow = Counter(
            "otel_bridge_label_overflow",
            "Metric updates whose label value the cardinality guard folded into __other__, "
            "by label.",
            ["label"],
            registry=r,
        )
        self.flow_label = LabelGuard(
            flow_allow,
            flow_deny,
            max_label_values,
            OverflowCounter(self.label_overflow, "flow_name"),
        )
        self.task_label = LabelGuard(
            task_allow,
            task_deny,
            max_label_values,
            OverflowCounter(self.label_overflow, "task_name"),
        )
        self.error_label = LabelGuard(
            (), (), MAX_ERROR_TYPES, OverflowCounter(self.label_overflow, "error_type")
        )
        self._event_keys = {t: (t,) for t in EVENT_TYPES}
        self._flow_labels: dict[str, str] = {}  # raw name -> admitted label value
        self._task_labels: dict[tuple[str, str | None], str] = {}
        self._flows: set[str] = set()
        self._tasks: set[tuple[str, str]] = set()
        self._exporters: set[str] = set()
        self._depths: dict[str, int] = {}  # exporter -> queue depth, read on scrape
        # The hot path: (flow_name, task_name, result) -> the series a finished task adds to,
        # for admitted labels only (a folded one is counted as overflow on every use).
        self._task_series: dict[tuple[str, str | None, str], tuple[Labels, Any]] = {}
        self._lag = self.event_lag.series()
        self.observers: dict[type, Callable[[Any], None]] = {
            EventReceived: self._event_received,
            SpanRecord: self._span_finished,
            RunOpened: self._run_opened,
            RunClosed: self._run_closed,
            EventDropped: lambda o: self.events_dropped.inc((o.reason,)),
            FrameIgnored: lambda o: self.frames_ignored.inc((o.reason,)),
            FrameRejected: lambda o: self.frames_rejected.inc((o.reason,)),
            InternalError: lambda o: self.frames_rejected.inc((RejectReason.INTERNAL.value,)),
        }  # what observe() does with each type of output (the router calls them directly)
        self._init_closed_sets()

    def _init_closed_sets(self) -> None:
        for state in SUBSCRIPTION_STATES:
            self.subscriptions.labels(state).set(0)
        for tally, values in (
            (self.events, EVENT_TYPE_VALUES),
            (self.frames_rejected, REJECT_REASONS),
            (self.frames_ignored, NOISE_REASONS),
            (self.events_dropped, DROP_REASONS),
        ):
            for value in values:
                tally.series(value)
        for label in GUARDED_LABELS:
            self.label_overflow.labels(label)

    def _flow(self, flow_name: str) -> str:
        """Return the flow_name label of a flow; its result series exist from its first sight."""
        flow = self._flow_labels.get(flow_name)
        if flow is not None:
            return flow
        flow = self.flow_label(clean_name(flow_name))
        if flow not in self._flows:
            self._flows.add(flow)
            for result in RUN_RESULTS:
                self.runs.series(flow, result)
            self.runs_started.series(flow)
            self.runs_active.series(flow)
        if flow != OTHER:  # admitted stays admitted; a refused one is counted on every use
            self._flow_labels[flow_name] = flow
        return flow

    def _task(self, flow: str, task_name: str | None) -> str:
        """Return the task_name label of a task; its result series exist from its first sight."""
        task = self._task_labels.get((flow, task_name))
        if task is not None:
            return task
        task = self.task_label(clean_name(task_name) if task_name else None)
        if (flow, task) not in self._tasks:
            self._tasks.add((flow, task))
            for result in TASK_RESULTS:
                self.task_runs.series(flow, task, result)
        if task != OTHER:
            self._task_labels[(flow, task_name)] = task
        return task

    def register_exporter(self, exporter: str) -> None:
        """Create an exporter's series at zero (done anyway the first time it reports)."""
        if exporter in self._exporters:
            return
        self._exporters.add(exporter)
        self.spans_exported.labels(exporter)
        self.spans_failed.labels(exporter)
        for reason in SPAN_DROP_REASONS:
            self.spans_dropped.labels(exporter, reason)
        self._depths.setdefault(exporter, 0)  # set on every span queued: read on scrape
        self.export_queue.labels(exporter).set_function(lambda: self._depths.get(exporter, 0))

    # -- LAO workflow metrics -----------------------------------------------------------
    def event_received(self, event_type: str) -> None:
        """Count one event by type (the six documented types, else ``unknown``)."""
        self.events.inc((event_type if event_type in EVENT_TYPES else "unknown",))

    def observe(self, output: Output) -> None:
        """Update the metrics for one engine output (plain additions: read on scrape)."""
        observer = self.observers.get(type(output))
        if observer is None:  # a subclass, or nothing the metrics count
            found = (f for kind, f in self.observers.items() if isinstance(output, kind))
            observer = next(found, None)
        if observer is not None:
            observer(output)

    def _event_received(self, output: EventReceived) -> None:
        self.events.values[self._event_keys.get(output.event_type, _UNKNOWN_EVENT)] += 1
        if output.lag_s is not None:
            self._lag.observe(output.lag_s)

    def _span_finished(self, span: SpanRecord) -> None:
        if span.kind == "run":
            self._run_finished(span.flow_name, span.result, span)
            return
        found = self._task_series.get((span.flow_name, span.task_name, span.result))
        if found is None:
            self._task_finished(span)
            return
        labels, series = found
        self.task_runs.values[labels] += 1
        trace_id = span.trace_id if span.sampled else None
        series.observe((span.end_ns - span.start_ns) / 1e9, trace_id)

    def _run_opened(self, output: RunOpened) -> None:
        flow = self._flow(output.flow_name)
        self.runs_started.values[(flow,)] += 1
        self.runs_active.values[(flow,)] += 1

    def _run_closed(self, output: RunClosed) -> None:
        if output.without_root:
            self._run_finished(output.flow_name, output.result, None)

    def _run_finished(self, flow_name: str, result: Result, root: SpanRecord | None) -> None:
        flow = self._flow(flow_name)
        key = (flow, result.value)
        self.runs.inc(key)
        if root is not None:
            trace_id = root.trace_id if root.sampled else None
            self.run_duration.observe(key, root.duration_s, trace_id)
        self.runs_active.values[(flow,)] -= 1

    def _task_finished(self, span: SpanRecord) -> None:
        flow = self._flow(span.flow_name)
        task = self._task(flow, span.task_name)
        key = (flow, task, span.result.value)
        self.task_runs.inc(key)
        series = self.task_duration.series(*key)
        series.observe(span.duration_s, span.trace_id if span.sampled else None)
        if span.result is Result.FAILURE:
            error_type = self.error_label(
                clean_name(span.error_type or "_OTHER", MAX_ERROR_TYPE_LENGTH)
            )
            self.task_errors.inc((flow, task, error_type))
        elif flow != OTHER and task != OTHER:
            if len(self._task_series) >= MAX_TASK_SERIES:
                self._task_series.clear()
            self._task_series[(span.flow_name, span.task_name, key[2])] = (key, series)

    # -- bridge health ------------------------------------------------------------------
    def set_subscriptions(self, counts: Mapping[str, int]) -> None:
        """Set the subscription gauge for every state."""
        for state in SUBSCRIPTION_STATES:
            self.subscriptions.labels(state).set(counts.get(state, 0))

    def exported(self, exporter: str, count: int) -> None:
        """Count spans an exporter delivered."""
        self.register_exporter(exporter)
        self.spans_exported.labels(exporter).inc(count)  # per batch

    def failed(self, exporter: str, count: int) -> None:
        """Count spans an exporter failed to deliver."""
        self.register_exporter(exporter)
        self.spans_failed.labels(exporter).inc(count)  # per batch

    def dropped(self, exporter: str, reason: str, count: int) -> None:
        """Count spans dropped before export."""
        self.register_exporter(exporter)
        self.spans_dropped.labels(exporter, reason).inc(count)  # per batch

    def queue_depth(self, exporter: str, depth: int) -> None:
        """Set an exporter's queue depth (on every span queued: a plain store)."""
        if exporter not in self._depths:
            self.register_exporter(exporter)
        self._depths[exporter] = depth
