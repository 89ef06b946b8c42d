"""The links of the dashboards: to each other, and to the traces in the ``$traces`` data source.

``traces`` is a data source variable (type Tempo): every trace link opens Explore on it, so
no data source UID is written into the dashboards. Two kinds of trace links:

- an exemplar's ``trace_id`` opens that trace (the trace id as query: Tempo runs it as TraceQL,
  the Jaeger data source looks a trace id up whenever its query type is not ``search``);
- a flow opens the TraceQL search of its runs: ``{ span.lao.flow.name = "<flow>" }`` over the
  dashboard's time range (the root span of every run carries ``lao.flow.name``).
"""

from __future__ import annotations

import json

from grafana_foundation_sdk.builders.dashboard import DashboardLink
from grafana_foundation_sdk.models.dashboard import DashboardLinkType, DynamicConfigValue

TRACES = "${traces}"
WORKFLOWS_UID = "lao-workflows"
HEALTH_UID = "otel-bridge-health"


def explore_url(query: str) -> str:
    """Return the Explore URL running TraceQL ``query`` on ``$traces`` over the time range."""
    pane = {
        "trace": {
            "datasource": TRACES,
            "queries": [
                {
                    "refId": "A",
                    "datasource": {"uid": TRACES},
                    "queryType": "traceql",
                    "query": query,
                }
            ],
            "range": {"from": "${__from}", "to": "${__to}"},
        }
    }
    return "/explore?schemaVersion=1&panes=" + json.dumps(pane, separators=(",", ":"))


def flow_search(flow: str) -> str:
    """Return the TraceQL search for the runs of ``flow`` (a value or a link variable)."""
    return f'{{ span.lao.flow.name = "{flow}" }}'


def trace_link_override() -> DynamicConfigValue:
    """Return the ``links`` of an exemplar's ``trace_id``: the trace in ``$traces``."""
    link = {"title": "Open trace ${__value.raw}", "url": explore_url("${__value.raw}")}
    return DynamicConfigValue(id_val="links", value=[link])


def flow_traces_override() -> DynamicConfigValue:
    """Return the ``links`` of a ``flow_name`` table cell: its runs' traces in ``$traces``."""
    link = {
        "title": "Traces of flow ${__value.raw}",
        "url": explore_url(flow_search("${__value.raw}")),
    }
    return DynamicConfigValue(id_val="links", value=[link])


def flow_traces_link() -> DashboardLink:
    """Return the data link of a series with a ``flow_name`` label: its runs' traces."""
    flow = "${__field.labels.flow_name}"
    return (
        DashboardLink(f"Traces of flow {flow}")
        .type(DashboardLinkType.LINK)
        .url(explore_url(flow_search(flow)))
    )


def dashboard_link(title: str, uid: str, tooltip: str) -> DashboardLink:
    """Return a link to the dashboard ``uid`` keeping the time range and the data source."""
    return (
        DashboardLink(title)
        .type(DashboardLinkType.LINK)
        .url(f"/d/{uid}?${{datasource:queryparam}}")
        .icon("dashboard")
        .tooltip(tooltip)
        .keep_time(True)
        .include_vars(False)
        .target_blank(False)
        .as_dropdown(False)
    )
