"""The "By flow" row of the "LAO workflows" dashboard: one table row per flow.

Runs finished and failed, run rate, success rate, p95 duration and runs in flight over the
time range; one instant query per column, merged into one table. A flow's name links to the
TraceQL search of its runs in ``$traces``.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import table
from grafana_foundation_sdk.builders.dashboard import Dashboard, Row
from grafana_foundation_sdk.models.dashboard import DataTransformerConfig, DynamicConfigValue
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from .links import flow_traces_override
from .panels import query
from .promql import FLOW, FLOW_FAILED, PROMETHEUS, increase, quantile, rate, success_ratio

FLOW_COLUMNS = (
    ("Finished", "short", f"sum by (flow_name) ({increase('lao_flow_runs_total', FLOW)})"),
    (
        "Failed",
        "short",
        f"sum by (flow_name) ({increase('lao_flow_runs_total', FLOW_FAILED)})",
    ),
    ("Runs/s", "ops", f"sum by (flow_name) ({rate('lao_flow_runs_total', FLOW, '$__range')})"),
    ("Success rate", "percentunit", success_ratio("flow_name", "$__range")),
    (
        "p95 duration",
        "s",
        quantile("0.95", "lao_flow_run_duration_seconds_bucket", FLOW, "flow_name", "$__range"),
    ),
    ("In flight", "short", f"sum by (flow_name) (lao_flow_runs_active{{{FLOW}}})"),
)


def flows_table() -> table.Panel:
    """Return the table of flows: runs finished and failed, rate, success rate, p95, in flight."""
    panel = (
        table.Panel()
        .title("Flows")
        .description(
            "Every flow over the time range: volume, rate, success rate and p95; click a flow "
            "for its runs' traces."
        )
        .datasource(PROMETHEUS)
        .span(24)
        .height(9)
        .override_by_name("flow_name", [flow_traces_override()])
    )
    rename: dict[str, str] = {}
    order: dict[str, int] = {"flow_name": 0}
    for i, (name, unit, expr) in enumerate(FLOW_COLUMNS):
        ref = chr(ord("A") + i)
        panel = panel.with_target(query(expr, "", ref=ref, instant=True, fmt=PromQueryFormat.TABLE))
        rename[f"Value #{ref}"] = name
        order[name] = i + 1
        panel = panel.override_by_name(name, [DynamicConfigValue(id_val="unit", value=unit)])
    return (
        panel.with_transformation(DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(
            DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {"Time": True},
                    "renameByName": rename,
                    "indexByName": order,
                },
            )
        )
        .with_transformation(
            DataTransformerConfig(
                id_val="sortBy", options={"sort": [{"field": "Finished", "desc": True}]}
            )
        )
    )


def flows_row(dashboard: Dashboard) -> Dashboard:
    """Add the "By flow" row: the flows table."""
    return dashboard.with_row(Row("By flow")).with_panel(flows_table())
