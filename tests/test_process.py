"""The real `otel-bridge serve` process: SIGTERM flushes open runs; its logs carry no secret."""

from __future__ import annotations

import json
import os
from pathlib import Path

import aiohttp
import pytest

from helpers import SEED_SECRETS
from otel_bridge.simulator import Quirks, Simulator
from otel_bridge.sinks.otlp import spans_of
from support.exposition import fetch_metrics, metric_value
from support.ports import free_ports
from support.rig import serving_process, sigterm
from support.timing import UNIT, wait_for

pytestmark = pytest.mark.integration


async def is_ready(http: aiohttp.ClientSession, url: str) -> bool:
    """Whether the bridge at ``url`` answers /readyz with 200 (not yet listening: False)."""
    try:
        async with http.get(f"{url}/readyz") as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def events_received(http: aiohttp.ClientSession, url: str, event_type: str) -> float:
    """``lao_events_total`` of that event type, as the bridge at ``url`` serves it."""
    return metric_value(await fetch_metrics(http, url), "lao_events_total", event_type=event_type)


async def test_sigterm_ends_open_runs_and_flushes(tmp_path: Path) -> None:
    """SIGTERM mid-run: the root is exported incomplete (cancellation), JSON logs are redacted."""
    out = tmp_path / "spans.jsonl"
    port, control_port = free_ports(2)
    async with (
        Simulator(Quirks(noise_probability=0.0), time_scale=1.0) as sim,
        aiohttp.ClientSession() as http,
    ):
        env = {
            **os.environ,
            "OTEL_BRIDGE_UPSTREAM_URL": sim.ws_url,
            "OTEL_BRIDGE_LOG_FORMAT": "json",
            "OTEL_BRIDGE_LOG_LEVEL": "INFO",
        }
        args = ["--port", str(port), "--control-port", str(control_port), "--traces-out", str(out)]
        url, metrics_url = f"http://127.0.0.1:{control_port}", f"http://127.0.0.1:{port}"
        async with serving_process(*args, env=env) as proc:
            await wait_for(lambda: is_ready(http, url), 20 * UNIT, "the bridge to be ready")
            body = {
                "flow_name": "Long Flow",
                "run_name": "sigterm_1",
                "tasks": [
                    {
                        "name": "slow",
                        "tag": "agent",
                        "function": "call_lyzr_agent",
                        "params": {"config": {"agent_id": "a", "api_key": "sk-prod-sentiment-key"}},
                        "x-sim": {"duration": 30},
                    }
                ],
                "edges": [],
            }
            run = {"flow_name": "Long Flow", "run_name": "sigterm_1"}
            async with http.post(f"{url}/v1/runs", json=run) as registered:
                assert registered.status == 201
            await sim.wait_subscribers("Long Flow", "sigterm_1", timeout=10 * UNIT)
            await sim.start_run(body)
            await wait_for(
                lambda: events_received(http, metrics_url, "task_started"),
                message="the bridge to see the task start",
            )
            err = await sigterm(proc)
    assert proc.returncode == 0
    spans = [s for line in out.read_text().splitlines() for s in spans_of(json.loads(line))]
    root = next(s for s in spans if s["name"] == "invoke_workflow Long Flow")
    attrs = {a["key"]: a["value"] for a in root["attributes"]}
    assert attrs["lao.run.incomplete"] == {"boolValue": True}
    assert attrs["cicd.pipeline.result"] == {"stringValue": "error"}
    assert attrs["lao.run.close_reason"] == {"stringValue": "the bridge shut down"}
    assert any(s["name"] == "invoke_agent slow" for s in spans)
    logs = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    messages = {line["message"] for line in logs}
    assert {"run subscribed", "signal received, shutting down"} <= messages
    text = err + out.read_text()
    assert not any(secret in text for secret in SEED_SECRETS)
