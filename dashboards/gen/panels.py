"""The panel and query builders both dashboards are made of.

Time series, stat, heatmap panels and Prometheus queries on ``$datasource``; the panels
with exemplars link each ``trace_id`` to its trace in ``$traces`` (``links``).
"""

from __future__ import annotations

from collections.abc import Sequence

from grafana_foundation_sdk.builders import heatmap, stat, timeseries
from grafana_foundation_sdk.builders.common import (
    ReduceDataOptions,
    StackingConfig,
    VizLegendOptions,
    VizTooltipOptions,
)
from grafana_foundation_sdk.builders.dashboard import ThresholdsConfig
from grafana_foundation_sdk.builders.heatmap import YAxisConfig
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.models.common import (
    BigValueColorMode,
    BigValueGraphMode,
    LegendDisplayMode,
    LegendPlacement,
    SortOrder,
    StackingMode,
    TooltipDisplayMode,
)
from grafana_foundation_sdk.models.dashboard import Threshold, ThresholdsMode
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from .links import trace_link_override
from .promql import PROMETHEUS, QUANTILES, increase, quantile

EXEMPLAR_COLOR = "rgba(255,0,255,0.7)"


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
    height: int = 4,
    legend: str = "",
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
        .height(height)
        .graph_mode(BigValueGraphMode.NONE)
        .color_mode(BigValueColorMode.VALUE)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .thresholds(ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(steps))
        .with_target(query(expr, legend, instant=True))
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
    return f"sum by (le) ({increase(metric, selector, '$__rate_interval')})"


def quantile_targets(metric: str, selector: str, by: str, legend: str) -> list[Dataquery]:
    """Return p50/p95/p99 targets of a histogram; the p95 one carries the exemplars."""
    return [
        query(
            quantile(q, metric, selector, by, "$__rate_interval"),
            f"{name} {legend}",
            ref=chr(ord("A") + i),
            exemplar=name == "p95",
        )
        for i, (name, q) in enumerate(QUANTILES)
    ]
