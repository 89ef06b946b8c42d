"""The "LAO workflows" dashboard: runs, outcomes, durations and failures of LAO workflows.

Variables ``flow_name``, ``task_name`` and ``traces``; the duration panels carry exemplars
that link to the run's trace, the per-flow series link to the TraceQL search of the flow's
runs, and the dashboard links to "otel-bridge health". The "Failures" row is in
``failures``, the flows table in ``flows``.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from .failures import failures_row
from .flows import flows_row
from .links import HEALTH_UID, WORKFLOWS_UID, dashboard_link, flow_traces_link
from .panels import bucket_increase, duration_heatmap, quantile_targets, query, single, ts
from .promql import FLOW, FLOW_FAILED, FLOW_OK, RUNS, TASK, increase, quantile, rate, success_ratio
from .variables import label_variable, new_dashboard, traces_variable


def workflows() -> Dashboard:
    """Return the "LAO workflows" dashboard."""
    dashboard = (
        new_dashboard(
            "LAO workflows",
            WORKFLOWS_UID,
            "Runs, outcomes, durations and failures of Lyzr Agent Orchestration workflows, "
            "from otel-bridge. Exemplars link to the run's trace, flows to their runs' traces.",
        )
        .link(
            dashboard_link(
                "otel-bridge health",
                HEALTH_UID,
                "The bridge itself: subscriptions, reconnects, export, CPU and memory.",
            )
        )
        .with_variable(
            label_variable(
                "flow_name", "Flow", "label_values(lao_flow_runs_started_total, flow_name)"
            )
        )
        .with_variable(
            label_variable(
                "task_name",
                "Task",
                'label_values(lao_task_runs_total{flow_name=~"$flow_name"}, task_name)',
            )
        )
        .with_variable(traces_variable())
    )
    dashboard = durations_row(runs_row(overview_row(dashboard)))
    return flows_row(failures_row(dashboard))


def overview_row(dashboard: Dashboard) -> Dashboard:
    """Add the "Overview" row: runs started, finished, failed, success rate, p95."""
    return (
        dashboard.with_row(Row("Overview"))
        .with_panel(
            single(
                "Runs started",
                "Runs whose first event the bridge saw in the time range.",
                f"sum({increase('lao_flow_runs_started_total', FLOW)})",
            )
        )
        .with_panel(
            single(
                "Runs finished",
                "Runs that ended in the time range, whatever their result.",
                f"sum({increase(RUNS, FLOW)})",
            )
        )
        .with_panel(
            single(
                "Runs failed",
                "Runs that ended with flow_error (result failure) in the time range.",
                f"sum({increase(RUNS, FLOW_FAILED)})",
                red_above=1,
            )
        )
        .with_panel(
            single(
                "Success rate",
                "Share of the runs finished in the time range whose result is success.",
                success_ratio("", "$__range"),
                unit="percentunit",
                decimals=1,
            )
        )
        .with_panel(
            single(
                "Runs in flight",
                "Runs started and not finished yet.",
                f"sum(lao_flow_runs_active{{{FLOW}}})",
            )
        )
        .with_panel(
            single(
                "Run duration p95",
                "95th percentile of run durations over the time range (from the histogram).",
                quantile("0.95", "lao_flow_run_duration_seconds_bucket", FLOW, "", "$__range"),
                unit="s",
                decimals=None,
            )
        )
    )


def runs_row(dashboard: Dashboard) -> Dashboard:
    """Add the "Runs" row: runs started and finished, success rate, in flight per flow."""
    return (
        dashboard.with_row(Row("Runs"))
        .with_panel(
            ts(
                "Runs started per flow",
                "Runs started per second, by flow.",
                [
                    query(
                        f"sum by (flow_name) ({rate('lao_flow_runs_started_total', FLOW)})",
                        "{{flow_name}}",
                    )
                ],
                unit="ops",
            ).data_links([flow_traces_link()])
        )
        .with_panel(
            ts(
                "Runs finished per flow and result",
                "Runs finished per second, by flow and result "
                "(success, failure, error, timeout, cancellation).",
                [
                    query(
                        f"sum by (flow_name, result) ({rate(RUNS, FLOW)})",
                        "{{flow_name}} {{result}}",
                    )
                ],
                unit="ops",
            ).data_links([flow_traces_link()])
        )
        .with_panel(
            ts(
                "Success rate per flow",
                "Share of finished runs whose result is success, by flow.",
                [
                    query(
                        f"sum by (flow_name) ({rate(RUNS, FLOW_OK)})"
                        f"\n/\nsum by (flow_name) ({rate(RUNS, FLOW)})",
                        "{{flow_name}}",
                    )
                ],
                unit="percentunit",
                percent=True,
            ).data_links([flow_traces_link()])
        )
        .with_panel(
            ts(
                "Runs in flight per flow",
                "Runs started and not finished, by flow.",
                [
                    query(
                        f"sum by (flow_name) (lao_flow_runs_active{{{FLOW}}})",
                        "{{flow_name}}",
                    )
                ],
                stacked=True,
            ).data_links([flow_traces_link()])
        )
    )


def durations_row(dashboard: Dashboard) -> Dashboard:
    """Add the "Durations" row: run and task duration quantiles and heatmaps."""
    return (
        dashboard.with_row(Row("Durations"))
        .with_panel(
            ts(
                "Run duration quantiles",
                "p50, p95 and p99 of run durations by flow; the dots are exemplars (click one "
                "for its trace).",
                quantile_targets(
                    "lao_flow_run_duration_seconds_bucket", FLOW, "flow_name", "{{flow_name}}"
                ),
                unit="s",
                exemplars=True,
            ).data_links([flow_traces_link()])
        )
        .with_panel(
            duration_heatmap(
                "Run duration distribution",
                "Runs finished per duration bucket; exemplars link to the traces.",
                bucket_increase("lao_flow_run_duration_seconds_bucket", FLOW),
            )
        )
        .with_panel(
            ts(
                "Task duration quantiles",
                "p50, p95 and p99 of task execution durations by flow and task; the dots are "
                "exemplars.",
                quantile_targets(
                    "lao_task_run_duration_seconds_bucket",
                    TASK,
                    "flow_name, task_name",
                    "{{flow_name}} / {{task_name}}",
                ),
                unit="s",
                exemplars=True,
            ).data_links([flow_traces_link()])
        )
        .with_panel(
            duration_heatmap(
                "Task duration distribution",
                "Task executions finished per duration bucket; exemplars link to the traces.",
                bucket_increase("lao_task_run_duration_seconds_bucket", TASK),
            )
        )
    )
