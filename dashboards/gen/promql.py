"""The Prometheus data source, the label selectors and the PromQL expression helpers.

Every PromQL expression of the dashboards is written with these, once.
"""

from __future__ import annotations

from grafana_foundation_sdk.models.dashboard import DataSourceRef

PROMETHEUS = DataSourceRef(type_val="prometheus", uid="${datasource}")

# -- selectors -----------------------------------------------------------------------------
FLOW = 'flow_name=~"$flow_name"'
TASK = 'flow_name=~"$flow_name", task_name=~"$task_name"'
INSTANCE = 'instance=~"$instance"'
FLOW_OK = FLOW + ', result="success"'
FLOW_FAILED = FLOW + ', result="failure"'
TASK_FAILED = TASK + ', result="failure"'
QUANTILES = (("p50", "0.5"), ("p95", "0.95"), ("p99", "0.99"))

# -- counters ------------------------------------------------------------------------------
RUNS = "lao_flow_runs_total"
TASKS = "lao_task_runs_total"


def increase(metric: str, selector: str, window: str = "$__range") -> str:
    """Return ``increase(metric{selector}[window])``."""
    return f"increase({metric}{{{selector}}}[{window}])"


def rate(metric: str, selector: str, window: str = "$__rate_interval") -> str:
    """Return ``rate(metric{selector}[window])``."""
    return f"rate({metric}{{{selector}}}[{window}])"


def quantile(q: str, metric: str, selector: str, by: str, window: str) -> str:
    """Return quantile ``q`` of a histogram's buckets, grouped by ``by`` (may be empty)."""
    by_le = f"{by}, le" if by else "le"
    return f"histogram_quantile({q}, sum by ({by_le}) ({rate(metric, selector, window)}))"


def success_ratio(by: str, window: str) -> str:
    """Return the share of finished runs whose result is success, grouped by ``by``."""
    group = f" by ({by}) " if by else ""
    ok = f"sum{group}({increase('lao_flow_runs_total', FLOW_OK, window)})"
    all_ = f"sum{group}({increase('lao_flow_runs_total', FLOW, window)})"
    return f"{ok}\n/\n{all_}"
