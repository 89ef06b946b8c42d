"""Generate the Grafana dashboards in this directory from code (grafana-foundation-sdk).

    python dashboards/generate.py          # rewrite lao-workflows.json, otel-bridge-health.json
    python dashboards/generate.py --check  # exit 1 if the committed JSON differs (CI, tests)

Every PromQL expression is written here once. Variables: ``datasource`` (the Prometheus
data source), ``flow_name`` and ``task_name`` (multi-select, "All" = ``.*``), ``traces``
(the UID of the Tempo or Jaeger data source the exemplar links open) and, on the health
dashboard, ``instance``. Exemplars are on for both duration histograms; a field override on
``trace_id`` turns each exemplar into a link to the trace in ``$traces``.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import bargauge, heatmap, stat, table, timeseries
from grafana_foundation_sdk.builders.common import (
    ReduceDataOptions,
    StackingConfig,
    VizLegendOptions,
    VizTooltipOptions,
)
from grafana_foundation_sdk.builders.dashboard import (
    CustomVariable,
    Dashboard,
    DatasourceVariable,
    QueryVariable,
    Row,
    ThresholdsConfig,
)
from grafana_foundation_sdk.builders.heatmap import YAxisConfig
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    BarGaugeDisplayMode,
    BigValueColorMode,
    BigValueGraphMode,
    LegendDisplayMode,
    LegendPlacement,
    SortOrder,
    StackingMode,
    TooltipDisplayMode,
    VizOrientation,
)
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    DataTransformerConfig,
    DynamicConfigValue,
    Threshold,
    ThresholdsMode,
    VariableOption,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

HERE = Path(__file__).resolve().parent
PROMETHEUS = DataSourceRef(type_val="prometheus", uid="${datasource}")
TAGS = ["lao", "otel-bridge", "generated"]
EXEMPLAR_COLOR = "rgba(255,0,255,0.7)"

# -- selectors -----------------------------------------------------------------------------
FLOW = 'flow_name=~"$flow_name"'
TASK = 'flow_name=~"$flow_name", task_name=~"$task_name"'
INSTANCE = 'instance=~"$instance"'
FLOW_OK = FLOW + ', result="success"'
FLOW_FAILED = FLOW + ', result="failure"'
TASK_FAILED = TASK + ', result="failure"'
QUANTILES = (("p50", "0.5"), ("p95", "0.95"), ("p99", "0.99"))


def _increase(metric: str, selector: str, window: str = "$__range") -> str:
    return f"increase({metric}{{{selector}}}[{window}])"


def _rate(metric: str, selector: str, window: str = "$__rate_interval") -> str:
    return f"rate({metric}{{{selector}}}[{window}])"


def _quantile(q: str, metric: str, selector: str, by: str, window: str) -> str:
    by_le = f"{by}, le" if by else "le"
    return f"histogram_quantile({q}, sum by ({by_le}) ({_rate(metric, selector, window)}))"


def _success_ratio(by: str, window: str) -> str:
    group = f" by ({by}) " if by else ""
    ok = f"sum{group}({_increase('lao_flow_runs_total', FLOW_OK, window)})"
    all_ = f"sum{group}({_increase('lao_flow_runs_total', FLOW, window)})"
    return f"{ok}\n/\n{all_}"


# -- small builders --------------------------------------------------------------------------


def query(
    expr: str,
    legend: str = "__auto",
    *,
    ref: str = "A",
    instant: bool = False,
    exemplar: bool = False,
    fmt: PromQueryFormat | None = None,
) -> Dataquery:
    """Return a Prometheus query on ``$datasource``."""
    q = Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(PROMETHEUS)
    q = q.instant() if instant else q.range()
    if exemplar:
        q = q.exemplar(True)
    if fmt is not None:
        q = q.format(fmt)
    return q


def trace_link_override() -> DynamicConfigValue:
    """Return the ``links`` of an exemplar's ``trace_id``: the trace in the ``$traces`` source.

    One Explore query works for both back ends: Tempo runs ``traceql`` with a trace id, the
    Jaeger data source looks a trace id up whenever its query type is not ``search``.
    """
    pane = {
        "trace": {
            "datasource": "${traces}",
            "queries": [
                {
                    "refId": "A",
                    "datasource": {"uid": "${traces}"},
                    "queryType": "traceql",
                    "query": "${__value.raw}",
                }
            ],
            "range": {"from": "${__from}", "to": "${__to}"},
        }
    }
    url = "/explore?schemaVersion=1&panes=" + json.dumps(pane, separators=(",", ":"))
    return DynamicConfigValue(
        id_val="links", value=[{"title": "Open trace ${__value.raw}", "url": url}]
    )


def ts(
    title: str,
    description: str,
    targets: Sequence[Dataquery],
    *,
    unit: str = "short",
    width: int = 12,
    height: int = 8,
    stacked: bool = False,
    exemplars: bool = False,
    percent: bool = False,
) -> timeseries.Panel:
    """Return a time series panel."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .unit(unit)
        .span(width)
        .height(height)
        .fill_opacity(10 if not stacked else 40)
        .legend(
            VizLegendOptions()
            .display_mode(LegendDisplayMode.TABLE)
            .placement(LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["lastNotNull", "max"])
        )
        .tooltip(VizTooltipOptions().mode(TooltipDisplayMode.MULTI).sort(SortOrder.DESCENDING))
    )
    if stacked:
        panel = panel.stacking(StackingConfig().mode(StackingMode.NORMAL))
    panel = panel.min(0).max(1) if percent else panel.min(0)
    if exemplars:
        panel = panel.override_by_name("trace_id", [trace_link_override()])
    for target in targets:
        panel = panel.with_target(target)
    return panel


def single(
    title: str,
    description: str,
    expr: str,
    *,
    unit: str = "short",
    decimals: int | None = 0,
    red_above: float | None = None,
    width: int = 4,
) -> stat.Panel:
    """Return a stat panel showing one instant value."""
    steps = [Threshold(value=None, color="green")]
    if red_above is not None:
        steps.append(Threshold(value=red_above, color="red"))
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .unit(unit)
        .span(width)
        .height(4)
        .graph_mode(BigValueGraphMode.NONE)
        .color_mode(BigValueColorMode.VALUE)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .thresholds(ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(steps))
        .with_target(query(expr, "", instant=True))
    )
    if decimals is not None:
        panel = panel.decimals(decimals)
    return panel


def duration_heatmap(title: str, description: str, expr: str) -> heatmap.Panel:
    """Return a heatmap of a duration histogram's buckets, with its exemplars."""
    return (
        heatmap.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .span(12)
        .height(8)
        .calculate(False)
        .y_axis(YAxisConfig().unit("s"))
        .exemplars_color(EXEMPLAR_COLOR)
        .show_legend()
        .mode(TooltipDisplayMode.SINGLE)
        .show_y_histogram()
        .override_by_name("trace_id", [trace_link_override()])
        .with_target(query(expr, "{{le}}", exemplar=True, fmt=PromQueryFormat.HEATMAP))
    )


def bucket_increase(metric: str, selector: str) -> str:
    """Return the heatmap query of a histogram: bucket increases per interval, summed by le."""
    return f"sum by (le) ({_increase(metric, selector, '$__rate_interval')})"


def quantile_targets(metric: str, selector: str, by: str, legend: str) -> list[Dataquery]:
    """Return p50/p95/p99 targets of a histogram; the p95 one carries the exemplars."""
    return [
        query(
            _quantile(q, metric, selector, by, "$__rate_interval"),
            f"{name} {legend}",
            ref=chr(ord("A") + i),
            exemplar=name == "p95",
        )
        for i, (name, q) in enumerate(QUANTILES)
    ]


# -- variables --------------------------------------------------------------------------------


def datasource_variable() -> DatasourceVariable:
    """Return the Prometheus data source picker."""
    return DatasourceVariable("datasource").label("Prometheus").type("prometheus")


def label_variable(name: str, label: str, source: str) -> QueryVariable:
    """Return a multi-select label variable whose "All" is the regex ``.*``."""
    return (
        QueryVariable(name)
        .label(label)
        .datasource(PROMETHEUS)
        .query(source)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def traces_variable() -> CustomVariable:
    """Return the trace data source (a Tempo or Jaeger UID) that exemplar links open."""
    return (
        CustomVariable("traces")
        .label("Traces (Tempo or Jaeger UID)")
        .description(
            "UID of the Tempo or Jaeger data source that exemplar trace links open; pick one "
            "or type your own."
        )
        .values("tempo,jaeger")
        .allow_custom_value(True)
        .current(VariableOption(selected=True, text="tempo", value="tempo"))
    )


# -- LAO workflows ------------------------------------------------------------------------------


def workflows() -> Dashboard:
    """Return the "LAO workflows" dashboard."""
    dashboard = (
        Dashboard("LAO workflows")
        .uid("lao-workflows")
        .description(
            "Runs, outcomes, durations and failures of Lyzr Agent Orchestration workflows, "
            "from otel-bridge. Exemplars link to the run's trace."
        )
        .tags(TAGS)
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .with_variable(datasource_variable())
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
    runs = "lao_flow_runs_total"
    tasks = "lao_task_runs_total"
    dashboard = (
        dashboard.with_row(Row("Overview"))
        .with_panel(
            single(
                "Runs started",
                "Runs whose first event the bridge saw in the time range.",
                f"sum({_increase('lao_flow_runs_started_total', FLOW)})",
            )
        )
        .with_panel(
            single(
                "Runs finished",
                "Runs that ended in the time range, whatever their result.",
                f"sum({_increase(runs, FLOW)})",
            )
        )
        .with_panel(
            single(
                "Runs failed",
                "Runs that ended with flow_error (result failure) in the time range.",
                f"sum({_increase(runs, FLOW_FAILED)})",
                red_above=1,
            )
        )
        .with_panel(
            single(
                "Success rate",
                "Share of the runs finished in the time range whose result is success.",
                _success_ratio("", "$__range"),
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
                _quantile("0.95", "lao_flow_run_duration_seconds_bucket", FLOW, "", "$__range"),
                unit="s",
                decimals=None,
            )
        )
    )
    dashboard = (
        dashboard.with_row(Row("Runs"))
        .with_panel(
            ts(
                "Runs started per flow",
                "Runs started per second, by flow.",
                [
                    query(
                        f"sum by (flow_name) ({_rate('lao_flow_runs_started_total', FLOW)})",
                        "{{flow_name}}",
                    )
                ],
                unit="reqps",
            )
        )
        .with_panel(
            ts(
                "Runs finished per flow and result",
                "Runs finished per second, by flow and result "
                "(success, failure, timeout, cancellation).",
                [
                    query(
                        f"sum by (flow_name, result) ({_rate(runs, FLOW)})",
                        "{{flow_name}} {{result}}",
                    )
                ],
                unit="reqps",
            )
        )
        .with_panel(
            ts(
                "Success rate per flow",
                "Share of finished runs whose result is success, by flow.",
                [
                    query(
                        f"sum by (flow_name) ({_rate(runs, FLOW_OK)})"
                        f"\n/\nsum by (flow_name) ({_rate(runs, FLOW)})",
                        "{{flow_name}}",
                    )
                ],
                unit="percentunit",
                percent=True,
            )
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
            )
        )
    )
    dashboard = (
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
            )
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
            )
        )
        .with_panel(
            duration_heatmap(
                "Task duration distribution",
                "Task executions finished per duration bucket; exemplars link to the traces.",
                bucket_increase("lao_task_run_duration_seconds_bucket", TASK),
            )
        )
    )
    dashboard = (
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
                    f"({_increase('lao_task_runs_total', TASK_FAILED)}) > 0)",
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
                    f"({_increase('lao_task_errors_total', TASK)}) > 0)",
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
                        f"sum by (error_type) ({_rate('lao_task_errors_total', TASK)})",
                        "{{error_type}}",
                    )
                ],
                unit="reqps",
                width=12,
            )
        )
        .with_panel(
            ts(
                "Task failure ratio",
                "Share of task executions that failed, by flow and task.",
                [
                    query(
                        f"sum by (flow_name, task_name) ({_rate(tasks, TASK_FAILED)})"
                        f"\n/\nsum by (flow_name, task_name) ({_rate(tasks, TASK)})",
                        "{{flow_name}} / {{task_name}}",
                    )
                ],
                unit="percentunit",
                percent=True,
            )
        )
    )
    return dashboard.with_row(Row("By flow")).with_panel(flows_table())


FLOW_COLUMNS = (
    ("Finished", "short", f"sum by (flow_name) ({_increase('lao_flow_runs_total', FLOW)})"),
    (
        "Failed",
        "short",
        f"sum by (flow_name) ({_increase('lao_flow_runs_total', FLOW_FAILED)})",
    ),
    ("Runs/s", "reqps", f"sum by (flow_name) ({_rate('lao_flow_runs_total', FLOW, '$__range')})"),
    ("Success rate", "percentunit", _success_ratio("flow_name", "$__range")),
    (
        "p95 duration",
        "s",
        _quantile("0.95", "lao_flow_run_duration_seconds_bucket", FLOW, "flow_name", "$__range"),
    ),
    ("In flight", "short", f"sum by (flow_name) (lao_flow_runs_active{{{FLOW}}})"),
)


def flows_table() -> table.Panel:
    """Return the table of flows: runs finished and failed, rate, success rate, p95, in flight."""
    panel = (
        table.Panel()
        .title("Flows")
        .description("Every flow over the time range: volume, rate, success rate and p95.")
        .datasource(PROMETHEUS)
        .span(24)
        .height(9)
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


# -- otel-bridge health --------------------------------------------------------------------------


def health() -> Dashboard:
    """Return the "otel-bridge health" dashboard."""
    dashboard = (
        Dashboard("otel-bridge health")
        .uid("otel-bridge-health")
        .description(
            "The bridge itself: upstream subscriptions and reconnects, frames rejected, event "
            "lag, span export and the label cardinality guard."
        )
        .tags(TAGS)
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .with_variable(datasource_variable())
        .with_variable(
            label_variable(
                "instance", "Bridge instance", "label_values(otel_bridge_build_info, instance)"
            )
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
                f"sum({_increase('otel_bridge_frames_rejected_total', INSTANCE)})",
                red_above=1,
            )
        )
        .with_panel(
            single(
                "Spans dropped or failed",
                "Spans dropped before export or that an exporter failed to deliver, in the range.",
                f"sum({_increase('otel_bridge_spans_dropped_total', INSTANCE)})\n+\n"
                f"sum({_increase('otel_bridge_spans_failed_total', INSTANCE)})",
                red_above=1,
            )
        )
        .with_panel(
            single(
                "Event lag p95",
                "95th percentile of receive time minus event timestamp over the time range.",
                _quantile("0.95", lag, INSTANCE, "", "$__range"),
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
                        f"sum by (instance) ({_rate('otel_bridge_reconnects_total', INSTANCE)})",
                        "{{instance}}",
                    )
                ],
                unit="reqps",
            )
        )
        .with_panel(
            ts(
                "Frames rejected by reason",
                "Frames not usable as events per second, by reason.",
                [
                    query(
                        f"sum by (reason) ({_rate('otel_bridge_frames_rejected_total', INSTANCE)})",
                        "{{reason}}",
                    )
                ],
                unit="reqps",
            )
        )
        .with_panel(
            ts(
                "Noise frames ignored by reason",
                "Greetings, echoes, keepalives and text frames ignored per second.",
                [
                    query(
                        f"sum by (reason) ({_rate('otel_bridge_frames_ignored_total', INSTANCE)})",
                        "{{reason}}",
                    )
                ],
                unit="reqps",
            )
        )
        .with_panel(
            ts(
                "Events received by type",
                "LAO events received per second, by event type.",
                [
                    query(
                        f"sum by (event_type) ({_rate('lao_events_total', INSTANCE)})",
                        "{{event_type}}",
                    )
                ],
                unit="reqps",
            )
        )
        .with_panel(
            ts(
                "Events dropped by reason",
                "Events the tracker did not use (duplicates, late starts, after the run's end).",
                [
                    query(
                        f"sum by (reason) ({_rate('otel_bridge_events_dropped_total', INSTANCE)})",
                        "{{reason}}",
                    )
                ],
                unit="reqps",
            )
        )
        .with_panel(
            ts(
                "Event lag quantiles",
                "Receive time minus the event's own timestamp: p50, p95, p99.",
                [
                    query(
                        _quantile(q, lag, INSTANCE, "", "$__rate_interval"),
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
    return (
        dashboard.with_row(Row("Export"))
        .with_panel(
            ts(
                "Spans exported, failed and dropped",
                "Spans per second handed to each exporter, failed by it, or dropped before it.",
                [
                    query(
                        f"sum by (exporter) ({_rate(exported, INSTANCE)})",
                        "exported {{exporter}}",
                        ref="A",
                    ),
                    query(
                        f"sum by (exporter) ({_rate('otel_bridge_spans_failed_total', INSTANCE)})",
                        "failed {{exporter}}",
                        ref="B",
                    ),
                    query(
                        "sum by (exporter, reason) "
                        f"({_rate('otel_bridge_spans_dropped_total', INSTANCE)})",
                        "dropped {{exporter}} {{reason}}",
                        ref="C",
                    ),
                ],
                unit="reqps",
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
                        f"sum by (label) ({_rate('otel_bridge_label_overflow_total', INSTANCE)})",
                        "{{label}}",
                    )
                ],
                unit="reqps",
                width=24,
            )
        )
    )


# -- output ---------------------------------------------------------------------------------------

DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    "lao-workflows.json": workflows,
    "otel-bridge-health.json": health,
}


def to_dict(dashboard: Dashboard) -> dict[str, Any]:
    """Build the dashboard and finish what the SDK leaves open (panel ids, shared crosshair)."""
    data: dict[str, Any] = json.loads(json.dumps(dashboard.build(), cls=JSONEncoder))
    for number, panel in enumerate(data["panels"], start=1):
        panel["id"] = number
    data["id"] = None
    data["version"] = 1
    data["graphTooltip"] = 1  # shared crosshair
    return data


def render(name: str) -> str:
    """Return the committed text of dashboard file ``name``."""
    return json.dumps(to_dict(DASHBOARDS[name]()), indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Write the dashboards (or, with --check, report drift and exit 1)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    parser.add_argument("--out", type=Path, default=HERE, help="directory (default: here)")
    args = parser.parse_args(argv)
    drift = False
    for name in DASHBOARDS:
        path = args.out / name
        text = render(name)
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        if args.check:
            if old != text:
                drift = True
                sys.stdout.writelines(
                    difflib.unified_diff(
                        old.splitlines(keepends=True),
                        text.splitlines(keepends=True),
                        f"{path} (committed)",
                        f"{path} (generated)",
                    )
                )
        elif old != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if drift:
        print("dashboards differ from the generator: run python dashboards/generate.py")
    return 1 if drift else 0


if __name__ == "__main__":
    sys.exit(main())
