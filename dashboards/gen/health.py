"""The "otel-bridge health" dashboard: the bridge itself.

Upstream subscriptions and reconnects, frames rejected and ignored, events received and
dropped, event lag, span export and queue depth, the label cardinality guard, and the
process (``runtime``: CPU, memory, GC); variable ``instance`` selects bridge replicas. The
dashboard links to "LAO workflows".
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from .links import HEALTH_UID, WORKFLOWS_UID, dashboard_link
from .panels import query, single, ts
from .promql import INSTANCE, QUANTILES, increase, quantile, rate
from .runtime import runtime_row
from .variables import label_variable, new_dashboard


def health() -> Dashboard:
    """Return the "otel-bridge health" dashboard."""
    dashboard = new_dashboard(
        "otel-bridge health",
        HEALTH_UID,
        "The bridge itself: upstream subscriptions and reconnects, frames rejected, event "
        "lag, span export, the label cardinality guard, CPU and memory.",
    ).link(
        dashboard_link(
            "LAO workflows",
            WORKFLOWS_UID,
            "Runs, outcomes, durations and failures of the LAO workflows the bridge observes.",
        )
    )
    dashboard = dashboard.with_variable(
        label_variable(
            "instance", "Bridge instance", "label_values(otel_bridge_build_info, instance)"
        )
    )
    lag = "otel_bridge_event_lag_seconds_bucket"
    exported = "otel_bridge_spans_exported_total"
    depth = "otel_bridge_export_queue_depth"
    dashboard = (
        dashboard.with_row(Row("Overview"))
        .with_panel(
            single(
                "Bridges",
                "Bridge instances exposing metrics.",
                f"count(otel_bridge_build_info{{{INSTANCE}}})",
            )
        )
        .with_panel(
            single(
                "Connected",
                "Run subscriptions connected upstream now.",
                f'sum(otel_bridge_subscriptions{{{INSTANCE}, state="connected"}})',
            )
        )
        .with_panel(
            single(
                "Reconnecting",
                "Run subscriptions that lost the upstream and are reconnecting now.",
                f'sum(otel_bridge_subscriptions{{{INSTANCE}, state="reconnecting"}})',
                red_above=1,
            )
        )
        .with_panel(
            single(
                "Frames rejected",
                "Frames that could not be used as events in the time range.",
                f"sum({increase('otel_bridge_frames_rejected_total', INSTANCE)})",
                red_above=1,
            )
        )
        .with_panel(
            single(
                "Spans lost",
                "Spans dropped before delivery in the range (failed attempts are retried and "
                "not counted here: see Spans exported, failed and dropped).",
                f"sum({increase('otel_bridge_spans_dropped_total', INSTANCE)})",
                red_above=1,
            )
        )
        .with_panel(
            single(
                "Event lag p95",
                "95th percentile of receive time minus event timestamp over the time range.",
                quantile("0.95", lag, INSTANCE, "", "$__range"),
                unit="s",
                decimals=None,
            )
        )
    )
    dashboard = (
        dashboard.with_row(Row("Upstream"))
        .with_panel(
            ts(
                "Subscriptions by state",
                "Run subscriptions by state (pending, connecting, connected, reconnecting, "
                "done, failed).",
                [
                    query(
                        f"sum by (state) (otel_bridge_subscriptions{{{INSTANCE}}})",
                        "{{state}}",
                    )
                ],
                stacked=True,
            )
        )
        .with_panel(
            ts(
                "Reconnect rate",
                "Upstream reconnect attempts per second, by bridge instance.",
                [
                    query(
                        f"sum by (instance) ({rate('otel_bridge_reconnects_total', INSTANCE)})",
                        "{{instance}}",
                    )
                ],
                unit="ops",
            )
        )
        .with_panel(
            ts(
                "Frames rejected by reason",
                "Frames not usable as events per second, by reason.",
                [
                    query(
                        f"sum by (reason) ({rate('otel_bridge_frames_rejected_total', INSTANCE)})",
                        "{{reason}}",
                    )
                ],
                unit="ops",
            )
        )
        .with_panel(
            ts(
                "Noise frames ignored by reason",
                "Greetings, echoes, keepalives and text frames ignored per second.",
                [
                    query(
                        f"sum by (reason) ({rate('otel_bridge_frames_ignored_total', INSTANCE)})",
                        "{{reason}}",
                    )
                ],
                unit="ops",
            )
        )
        .with_panel(
            ts(
                "Events received by type",
                "LAO events received per second, by event type.",
                [
                    query(
                        f"sum by (event_type) ({rate('lao_events_total', INSTANCE)})",
                        "{{event_type}}",
                    )
                ],
                unit="ops",
            )
        )
        .with_panel(
            ts(
                "Events dropped by reason",
                "Events the tracker did not use (duplicates, late starts, after the run's end).",
                [
                    query(
                        f"sum by (reason) ({rate('otel_bridge_events_dropped_total', INSTANCE)})",
                        "{{reason}}",
                    )
                ],
                unit="ops",
            )
        )
        .with_panel(
            ts(
                "Event lag quantiles",
                "Receive time minus the event's own timestamp: p50, p95, p99.",
                [
                    query(
                        quantile(q, lag, INSTANCE, "", "$__rate_interval"),
                        name,
                        ref=chr(ord("A") + i),
                    )
                    for i, (name, q) in enumerate(QUANTILES)
                ],
                unit="s",
                width=24,
            )
        )
    )
    dashboard = (
        dashboard.with_row(Row("Export"))
        .with_panel(
            ts(
                "Spans exported, failed and dropped",
                "Spans per second handed to each exporter, failed by it, or dropped before it.",
                [
                    query(
                        f"sum by (exporter) ({rate(exported, INSTANCE)})",
                        "exported {{exporter}}",
                        ref="A",
                    ),
                    query(
                        f"sum by (exporter) ({rate('otel_bridge_spans_failed_total', INSTANCE)})",
                        "failed {{exporter}}",
                        ref="B",
                    ),
                    query(
                        "sum by (exporter, reason) "
                        f"({rate('otel_bridge_spans_dropped_total', INSTANCE)})",
                        "dropped {{exporter}} {{reason}}",
                        ref="C",
                    ),
                ],
                unit="ops",
            )
        )
        .with_panel(
            ts(
                "Export queue depth",
                "Spans waiting in each exporter's queue.",
                [
                    query(
                        f"sum by (instance, exporter) ({depth}{{{INSTANCE}}})",
                        "{{instance}} {{exporter}}",
                    )
                ],
            )
        )
        .with_panel(
            ts(
                "Label overflow",
                "Metric updates per second whose flow_name, task_name or error_type the "
                "cardinality guard folded into __other__.",
                [
                    query(
                        f"sum by (label) ({rate('otel_bridge_label_overflow_total', INSTANCE)})",
                        "{{label}}",
                    )
                ],
                unit="ops",
                width=24,
            )
        )
    )
    return runtime_row(dashboard)
