"""The Collector tiers of deploy/collector/, run by the real pinned Collector (.tools/bin/otelcol).

The shipped configs validate; the agent's persistent queue carries every span through a
backend outage and a restart of the agent itself (bridge → agent → Jaeger, each span
exactly once); the metrics tier scrapes a running bridge and forwards its metrics over OTLP.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from otel_bridge.simulator import Quirks, Simulator
from otel_bridge.simulator.flows import customer_support_flow
from otel_bridge.sinks.otlp import spans_of as file_spans
from support import _http
from support.collector import (
    AGENT_CONFIG,
    GATEWAY_CONFIG,
    METRICS_CONFIG,
    CollectorServer,
    MetricsReceiver,
    ServedBridge,
    served_bridge,
    validate,
)
from support.jaeger import JaegerServer, TraceNotFoundError, spans_of
from support.ports import port_is_open
from support.timing import UNIT, wait_for

pytestmark = pytest.mark.integration

OUTAGE_S = 30 * UNIT  # how long Jaeger is down (the 30 s)
TIME_SCALE = 0.02 * UNIT  # simulated seconds → real seconds
SPANS_PER_RUN = 4  # the seed Customer_Support run: root + three tasks
ACCEPTED = "otelcol_receiver_accepted_spans"
QUEUE = "otelcol_exporter_queue_size"
CUMULATIVE = 2  # OTLP AggregationTemporality


def config_env(tmp_path: Path) -> dict[str, str]:
    """Values for the variables the shipped configs read, none of them a fixed port."""
    return {
        "OTELCOL_STORAGE_DIR": str(tmp_path / "queue"),
        "OTELCOL_EXPORT_ENDPOINT": "127.0.0.1:4317",
        "OTELCOL_EXPORT_INSECURE": "true",
        "OTELCOL_BACKENDS": "[127.0.0.1:14317, 127.0.0.1:24317]",
    }


@pytest.mark.parametrize("config", [AGENT_CONFIG, GATEWAY_CONFIG, METRICS_CONFIG], ids=str)
def test_shipped_config_validates(config: Path, tmp_path: Path) -> None:
    """`otelcol validate` accepts each shipped config, with its defaults and with test values."""
    for env in ({}, config_env(tmp_path)):
        result = validate(config, {"OTELCOL_STORAGE_DIR": str(tmp_path / "default"), **env})
        assert result.returncode == 0, result.stdout + result.stderr


def test_validate_catches_a_mistake(tmp_path: Path) -> None:
    """The validation has teeth: a misspelt key in a copy of agent.yaml is refused by name."""
    broken = tmp_path / "agent.yaml"
    text = AGENT_CONFIG.read_text()
    assert "      storage: file_storage\n" in text
    broken.write_text(text.replace("      storage: file_storage\n", "      storge: file_storage\n"))
    result = validate(broken, config_env(tmp_path))
    assert result.returncode != 0
    assert "storge" in result.stdout + result.stderr


# -- the agent: bridge → agent (persistent queue) → Jaeger -----------------------------------------
@pytest.fixture
def jaeger() -> Iterator[JaegerServer]:
    """A real Jaeger (memory store) this test may stop and start again on the same ports."""
    with JaegerServer() as server:
        yield server


async def play_all(bridge: ServedBridge, runs: list[str]) -> None:
    """Play the seed Customer_Support run once per name, one after the other."""
    for run in runs:
        await bridge.play(customer_support_flow(run))


def trace_ids_of(spans_file: Path) -> dict[str, list[str]]:
    """Span ids per run name in the bridge's --traces-out file (what the bridge produced)."""
    produced: dict[str, list[str]] = {}
    for line in spans_file.read_text().splitlines():
        for span in file_spans(json.loads(line)):
            attrs = {a["key"]: a["value"] for a in span["attributes"]}
            run = attrs["lao.run.name"]["stringValue"]
            produced.setdefault(run, []).append(f"{span['traceId']}/{span['spanId']}")
    return produced


def trace_id_of(run: str) -> str:
    r"""The seed run's trace id by the contract's recipe: sha256("lao-run\0" flow "\0" run)."""
    digest = hashlib.sha256(f"lao-run\0{customer_support_flow(run)['flow_name']}\0{run}".encode())
    return digest.digest()[:16].hex()


def stored_span_ids(jaeger: JaegerServer, trace_id: str) -> list[str]:
    """trace/span ids of a trace as Jaeger stored them (raw: duplicates kept), sorted."""
    url = f"{jaeger.query_url}/api/v3/traces/{trace_id}"
    status, body = _http.get(url, {"raw_traces": "true"})
    if status == 404:
        return []
    assert status == 200, body[:500]
    spans = spans_of(json.loads(body)["result"])
    return sorted(f"{span.trace_id}/{span.span_id}" for span in spans)


@pytest.mark.timeout(int(240 * UNIT))
async def test_agent_queue_delivers_every_span_once_across_outage_and_restart(
    jaeger: JaegerServer, tmp_path: Path
) -> None:
    """Jaeger down 30 s, agent restarted meanwhile: every span arrives exactly once after."""
    spans_file = tmp_path / "spans.jsonl"
    before, during, after_restart = ["before_1", "before_2"], ["down_1", "down_2"], ["down_3"]
    env = {
        **config_env(tmp_path),
        "OTELCOL_EXPORT_ENDPOINT": jaeger.otlp_grpc_endpoint,
        "OTELCOL_RETRY_MAX_INTERVAL": f"{UNIT:g}s",
    }
    with CollectorServer(AGENT_CONFIG, env) as agent:
        to_agent = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{agent.otlp_grpc_endpoint}"}
        async with (
            Simulator(Quirks.quiet(), time_scale=TIME_SCALE, seed=5) as sim,
            served_bridge(sim, "--traces-out", str(spans_file), env=to_agent) as bridge,
        ):
            # The path works: two runs reach Jaeger while everything is up.
            await play_all(bridge, before)
            await wait_for(
                lambda: agent.counter(ACCEPTED) == 2 * SPANS_PER_RUN, message="agent accepts"
            )
            await wait_for(lambda: agent.counter(QUEUE) == 0, message="the queue to drain")
            for run in before:
                assert len(stored_span_ids(jaeger, trace_id_of(run))) == SPANS_PER_RUN, run

            jaeger.stop()
            outage_ends = time.monotonic() + OUTAGE_S
            # Runs complete while Jaeger is down: the agent accepts them and queues them.
            await play_all(bridge, during)
            want = (len(before) + len(during)) * SPANS_PER_RUN
            await wait_for(lambda: agent.counter(ACCEPTED) == want, message="agent accepts")
            await wait_for(lambda: agent.counter(QUEUE) > 0, message="spans queued on disk")

            # The bridge has nothing in flight: restart the agent; the queue comes back.
            agent.restart()
            assert agent.counter(QUEUE) > 0, "the queue is empty after the restart"
            await play_all(bridge, after_restart)
            want = len(after_restart) * SPANS_PER_RUN
            await wait_for(lambda: agent.counter(ACCEPTED) == want, message="agent accepts")
        produced = trace_ids_of(spans_file)  # complete: the bridge has stopped

        # Jaeger stays down for the whole outage, then comes back (empty: memory store).
        await wait_for(
            lambda: time.monotonic() >= outage_ends,
            OUTAGE_S + 10 * UNIT,
            "the 30 s outage to pass",
            interval=0.5,
        )
        assert not port_is_open(jaeger.otlp_grpc_port)
        jaeger.start()
        delivered = during + after_restart
        expected = {run: sorted(produced[run]) for run in delivered}
        assert all(len(ids) == SPANS_PER_RUN for ids in expected.values()), produced

        def arrived() -> bool:
            return all(
                len(stored_span_ids(jaeger, trace_id_of(run))) >= SPANS_PER_RUN for run in delivered
            )

        await wait_for(arrived, 90 * UNIT, "every queued span to reach Jaeger", interval=0.5)
        await wait_for(lambda: agent.counter(QUEUE) == 0, 30 * UNIT, "the queue to drain")
        for run, ids in expected.items():
            assert stored_span_ids(jaeger, trace_id_of(run)) == ids, f"run {run}"
        # What Jaeger had acknowledged before the outage is not sent again.
        for run in before:
            with pytest.raises(TraceNotFoundError):
                jaeger.get_trace(trace_id_of(run))


# -- the metrics tier: bridge /metrics → Collector (prometheus receiver) → OTLP ------------------
def bridge_counter(text: str, family_name: str) -> dict[str, float]:
    """``{event_type: value}`` of a counter family in a Prometheus exposition."""
    values = {}
    for family in text_string_to_metric_families(text):
        if family.name == family_name:
            for sample in family.samples:
                if sample.name == f"{family_name}_total":
                    values[sample.labels["event_type"]] = sample.value
    return values


async def test_metrics_tier_forwards_the_bridge_metrics_over_otlp(tmp_path: Path) -> None:
    """metrics.yaml scrapes a running bridge and forwards lao_events_total's values over OTLP."""
    body = customer_support_flow("metrics_1")
    async with (
        Simulator(Quirks.quiet(), time_scale=TIME_SCALE, seed=7) as sim,
        served_bridge(sim, env={"OTEL_BRIDGE_OTLP": "off"}) as bridge,
    ):
        await bridge.play(body)
        sent = [e["event_type"] for e in sim.events_sent(body["flow_name"], body["run_name"])]
        status, text = _http.get(f"http://{bridge.metrics_target}/metrics")
        assert status == 200
        expected = bridge_counter(text.decode(), "lao_events")
        assert expected["task_started"] == sent.count("task_started") == 3, expected

        env = {
            **config_env(tmp_path),
            "OTELCOL_BRIDGE_TARGET": bridge.metrics_target,
            "OTELCOL_SCRAPE_INTERVAL": f"{UNIT:g}s",
        }
        with MetricsReceiver() as receiver:
            env["OTELCOL_EXPORT_ENDPOINT"] = receiver.endpoint
            with CollectorServer(METRICS_CONFIG, env):

                def forwarded() -> dict[str, float]:
                    points = receiver.points("lao_events_total")  # the latest value wins
                    return {p.attributes["event_type"]: p.raw["asDouble"] for p in points}

                await wait_for(lambda: forwarded() == expected, 30 * UNIT, "lao_events_total")
                durations = await wait_for(
                    lambda: receiver.points("lao_flow_run_duration_seconds"), 30 * UNIT
                )
            last = receiver.points("lao_events_total")[-1]
    assert last.resource["service.name"] == "otel-bridge"  # the scrape job
    assert last.resource["service.instance.id"] == bridge.metrics_target
    assert last.kind == "sum"
    assert last.metric["isMonotonic"] is True
    assert last.metric["aggregationTemporality"] == CUMULATIVE
    # OpenMetrics scrape: the run's duration keeps its exemplar, which links to its trace.
    (exemplar,) = durations[-1].raw["exemplars"]
    assert base64.b64decode(exemplar["traceId"]).hex() == trace_id_of(body["run_name"])
