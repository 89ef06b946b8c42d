"""The "Failures" row of the "LAO workflows" dashboard.

The ten tasks and (flow, task, error type) with the most failures, failures per error type
and the share of task executions that failed.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge, table
from grafana_foundation_sdk.builders.common import ReduceDataOptions
from grafana_foundation_sdk.builders.dashboard import Dashboard, Row
from grafana_foundation_sdk.models.common import BarGaugeDisplayMode, VizOrientation
from grafana_foundation_sdk.models.dashboard import DataTransformerConfig
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from .links import flow_traces_link
from .panels import query, ts
from .promql import PROMETHEUS, TASK, TASK_FAILED, TASKS, increase, rate


def failures_row(dashboard: Dashboard) -> Dashboard:
    """Add the "Failures" row: top failing tasks and error types, failure rates."""
    return (
        dashboard.with_row(Row("Failures"))
        .with_panel(
            bargauge.Panel()
            .title("Top failing tasks")
            .description("The ten tasks with the most failed executions in the time range.")
            .datasource(PROMETHEUS)
            .span(12)
            .height(8)
            .orientation(VizOrientation.HORIZONTAL)
            .display_mode(BarGaugeDisplayMode.GRADIENT)
            .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
            .unit("short")
            .decimals(0)
            .min(0)
            .with_target(
                query(
                    "topk(10, sum by (flow_name, task_name) "
                    f"({increase('lao_task_runs_total', TASK_FAILED)}) > 0)",
                    "{{flow_name}} / {{task_name}}",
                    instant=True,
                )
            )
        )
        .with_panel(
            table.Panel()
            .title("Top error types")
            .description("The ten (flow, task, error type) with the most failures in the range.")
            .datasource(PROMETHEUS)
            .span(12)
            .height(8)
            .with_target(
                query(
                    "topk(10, sum by (flow_name, task_name, error_type) "
                    f"({increase('lao_task_errors_total', TASK)}) > 0)",
                    "",
                    instant=True,
                    fmt=PromQueryFormat.TABLE,
                )
            )
            .with_transformation(
                DataTransformerConfig(
                    id_val="organize",
                    options={
                        "excludeByName": {"Time": True},
                        "renameByName": {"Value": "Failures"},
                    },
                )
            )
            .with_transformation(
                DataTransformerConfig(
                    id_val="sortBy", options={"sort": [{"field": "Failures", "desc": True}]}
                )
            )
        )
        .with_panel(
            ts(
                "Task failures by error type",
                "Failed task executions per second, by error type.",
                [
                    query(
                        f"sum by (error_type) ({rate('lao_task_errors_total', TASK)})",
                        "{{error_type}}",
                    )
                ],
                unit="ops",
                width=12,
            )
        )
        .with_panel(
            ts(
                "Task failure ratio",
                "Share of task executions that failed, by flow and task.",
                [
                    query(
                        f"sum by (flow_name, task_name) ({rate(TASKS, TASK_FAILED)})"
                        f"\n/\nsum by (flow_name, task_name) ({rate(TASKS, TASK)})",
                        "{{flow_name}} / {{task_name}}",
                    )
                ],
                unit="percentunit",
                percent=True,
            ).data_links([flow_traces_link()])
        )
    )
