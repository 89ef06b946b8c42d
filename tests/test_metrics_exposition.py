"""The exposition: OpenMetrics negotiation for /metrics and the replay's --metrics-out file."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import parser as openmetrics_parser
from prometheus_client.parser import text_string_to_metric_families as text_families
from test_metrics import run_span

from otel_bridge.core.ids import run_trace_id
from otel_bridge.core.outputs import RunOpened
from otel_bridge.core.records import Result
from otel_bridge.sinks.exposition import (
    OPENMETRICS_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
    render,
    write_metrics_file,
)
from otel_bridge.sinks.metrics import Metrics

# The OpenMetrics parser is untyped; this is its signature.
parse_openmetrics: Callable[[str], Iterable[Metric]] = (
    openmetrics_parser.text_string_to_metric_families
)

# What Prometheus 2.42 sends when it scrapes (it prefers OpenMetrics).
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


@pytest.fixture
def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.observe(RunOpened("Flow A", "r1", run_trace_id("Flow A", "r1")))
    metrics.observe(run_span("Flow A", "r1", Result.FAILURE, duration_s=12.0))
    return registry


def test_prometheus_accept_header_gets_openmetrics_with_exemplars(
    registry: CollectorRegistry,
) -> None:
    """Prometheus's Accept header negotiates OpenMetrics 1.0, which carries the exemplars."""
    body, content_type = render(registry, PROMETHEUS_ACCEPT)
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    text = body.decode()
    assert text.endswith("# EOF\n")
    assert f'# {{trace_id="{run_trace_id("Flow A", "r1"):032x}"}} 12.0' in text


@pytest.mark.parametrize("accept", [None, "", "text/plain", "*/*", "application/json"])
def test_other_scrapers_get_the_text_format(
    registry: CollectorRegistry, accept: str | None
) -> None:
    """Without an OpenMetrics Accept header the answer is text format 0.0.4, no exemplars."""
    body, content_type = render(registry, accept)
    assert content_type == TEXT_CONTENT_TYPE
    assert "# EOF" not in body.decode()
    assert "# {" not in body.decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_families(body.decode())
        for s in family.samples
    }
    key = ("lao_flow_runs_total", (("flow_name", "Flow A"), ("result", "failure")))
    assert samples[key] == 1


def test_metrics_file_is_openmetrics_by_default(
    registry: CollectorRegistry, tmp_path: Path
) -> None:
    """``--metrics-out`` writes parseable OpenMetrics with the exemplars, and no temp file."""
    path = tmp_path / "replay.om"
    write_metrics_file(registry, path)
    text = path.read_text()
    families = {f.name: f for f in parse_openmetrics(text)}
    duration = families["lao_flow_run_duration_seconds"]
    exemplars = [s.exemplar for s in duration.samples if s.exemplar is not None]
    assert [e.labels["trace_id"] for e in exemplars] == [f"{run_trace_id('Flow A', 'r1'):032x}"]
    assert families["lao_flow_runs"].type == "counter"
    assert [p.name for p in tmp_path.iterdir()] == ["replay.om"]
    assert OPENMETRICS_CONTENT_TYPE.startswith("application/openmetrics-text")


def test_metrics_file_in_text_format_replaces_the_old_one(
    registry: CollectorRegistry, tmp_path: Path
) -> None:
    """With ``openmetrics=False`` the file is text 0.0.4; an existing file is replaced whole."""
    path = tmp_path / "replay.prom"
    path.write_text("stale\n" * 1000)
    write_metrics_file(registry, path, openmetrics=False)
    text = path.read_text()
    assert "stale" not in text
    assert 'lao_flow_runs_total{flow_name="Flow A",result="failure"} 1.0' in text
    assert "# EOF" not in text


def test_metrics_file_into_a_missing_directory_fails_cleanly(
    registry: CollectorRegistry, tmp_path: Path
) -> None:
    """Writing into a directory that does not exist raises and leaves nothing behind."""
    with pytest.raises(FileNotFoundError):
        write_metrics_file(registry, tmp_path / "missing" / "out.om")
    assert list(tmp_path.iterdir()) == []


def test_the_bridge_exposes_process_and_python_runtime_metrics() -> None:
    """A bridge's /metrics has the standard process and Python collectors."""
    from otel_bridge.bridge import Bridge
    from otel_bridge.settings import Settings

    bridge = Bridge(Settings(), registry=CollectorRegistry(), sinks=[])
    text = render(bridge.registry, None)[0].decode()
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "python_info"):
        assert f"\n{name}" in text or text.startswith(name), name
    assert "python_gc_collections_total" in text
