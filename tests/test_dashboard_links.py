"""The links and units of the dashboards.

Trace links open Explore on the ``traces`` data source variable (type Tempo), never a fixed
UID: an exemplar's trace, and a flow's TraceQL search; the two dashboards link to each other;
rates are in ``ops``, never ``reqps``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from test_dashboards import DASHBOARD_FILES, DASHBOARDS, dashboard_queries, load_dashboard, panels


def nodes(node: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in ``node``, nested ones included."""
    if isinstance(node, dict):
        yield node
    for child in node.values() if isinstance(node, dict) else node:
        if isinstance(child, dict | list):
            yield from nodes(child)


def explore_query(url: str) -> dict[str, Any]:
    """The one query of an Explore link on ``${traces}`` (checked: no fixed data source)."""
    parts = urlsplit(url)
    assert parts.path == "/explore", url
    (pane,) = json.loads(parse_qs(parts.query)["panes"][0]).values()
    assert pane["datasource"] == "${traces}"
    (trace_query,) = pane["queries"]
    assert trace_query["datasource"] == {"uid": "${traces}"}
    assert pane["range"] == {"from": "${__from}", "to": "${__to}"}
    query: dict[str, Any] = trace_query
    return query


def test_exemplar_trace_ids_link_to_the_chosen_traces_data_source() -> None:
    """Every panel with exemplars links ``trace_id`` to Explore on ``${traces}``."""
    for panel in panels(load_dashboard("lao-workflows.json")):
        if not any(t.get("exemplar") for t in panel.get("targets", [])):
            continue
        (override,) = [
            o for o in panel["fieldConfig"]["overrides"] if o["matcher"]["options"] == "trace_id"
        ]
        assert override["matcher"]["id"] == "byName"
        (link,) = override["properties"][0]["value"]
        assert explore_query(link["url"])["query"] == "${__value.raw}"


def test_trace_links_use_a_tempo_data_source_variable_not_fixed_uids() -> None:
    """``traces`` is a data source variable of type Tempo; no link names a data source UID."""
    dashboard = load_dashboard("lao-workflows.json")
    (traces,) = [v for v in dashboard["templating"]["list"] if v["name"] == "traces"]
    assert (traces["type"], traces["query"]) == ("datasource", "tempo")
    urls = [n["url"] for n in nodes(dashboard) if "/explore" in n.get("url", "")]
    assert len(urls) >= 10
    for url in urls:
        explore_query(url)
    uids = {n["uid"] for n in nodes(dashboard) if "uid" in n and n is not dashboard}
    assert uids == {"${datasource}"}
    assert "Jaeger instead of Tempo" in (DASHBOARDS / "README.md").read_text(encoding="utf-8")


def test_flows_link_to_the_traceql_search_of_their_runs() -> None:
    """The flows table and every series by flow open ``{ span.lao.flow.name = "<flow>" }``."""
    searches = {
        panel["title"]: explore_query(link["url"])["query"]
        for panel in panels(load_dashboard("lao-workflows.json"))
        for link in nodes(panel)
        if link.get("title", "").startswith("Traces of flow")
    }
    assert searches.pop("Flows") == '{ span.lao.flow.name = "${__value.raw}" }'
    by_flow = {q.panel for q in dashboard_queries() if "by (flow_name" in q.expr and not q.instant}
    assert set(searches) == by_flow and len(by_flow) >= 7
    assert set(searches.values()) == {'{ span.lao.flow.name = "${__field.labels.flow_name}" }'}


def test_the_dashboards_link_to_each_other() -> None:
    """Each dashboard links to the other, keeping the time range and the Prometheus."""
    for name, other in zip(DASHBOARD_FILES, reversed(DASHBOARD_FILES), strict=True):
        (link,) = load_dashboard(name)["links"]
        assert link["url"] == f"/d/{load_dashboard(other)['uid']}?${{datasource:queryparam}}"
        assert (link["type"], link["keepTime"], link["title"]) == (
            "link",
            True,
            load_dashboard(other)["title"],
        )


COUNTER_RATE = re.compile(r"sum by \([^)]*\) \(rate\(\w+_total\{[^}]*\}\[\$__rate_interval\]\)\)")


@pytest.mark.parametrize("name", DASHBOARD_FILES)
def test_rates_are_in_ops_never_reqps(name: str) -> None:
    """Per-second rates of counters show in ``ops`` (CPU seconds as a share of a core)."""
    dashboard = load_dashboard(name)
    units = {n["unit"] for n in nodes(dashboard) if isinstance(n.get("unit"), str)}
    units |= {n["value"] for n in nodes(dashboard) if n.get("id") == "unit"}
    assert "reqps" not in units and "ops" in units
    rates = [
        p
        for p in panels(dashboard)
        if p.get("targets") and all(COUNTER_RATE.fullmatch(t["expr"]) for t in p["targets"])
    ]
    assert len(rates) >= 3
    for panel in rates:
        cpu = "_seconds_total" in panel["targets"][0]["expr"]
        unit = panel["fieldConfig"]["defaults"]["unit"]
        assert unit == ("percentunit" if cpu else "ops"), panel["title"]
