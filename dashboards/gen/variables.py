"""The template variables, and a dashboard with the settings both dashboards share.

``datasource`` (the Prometheus data source), multi-select label variables whose "All" is
``.*`` and ``traces`` (the Tempo data source the trace links open).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, DatasourceVariable, QueryVariable
from grafana_foundation_sdk.models.dashboard import VariableOption, VariableRefresh, VariableSort

from .promql import PROMETHEUS

TAGS = ["lao", "otel-bridge", "generated"]


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


def traces_variable() -> DatasourceVariable:
    """Return the trace data source picker (type Tempo) that every trace link opens."""
    return (
        DatasourceVariable("traces")
        .label("Traces")
        .description(
            "The Tempo data source that exemplar and flow links open (for Jaeger, change this "
            "variable's type to Jaeger: see dashboards/README.md)."
        )
        .type("tempo")
    )


def new_dashboard(title: str, uid: str, description: str) -> Dashboard:
    """Return a dashboard with the shared tags, refresh, time range and ``datasource``."""
    return (
        Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .with_variable(datasource_variable())
    )
