"""The real `otel-bridge serve` process: SIGTERM flushes open runs; its logs carry no secret."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import aiohttp

from helpers import SEED_SECRETS
from otel_bridge.simulator import Quirks, Simulator
from otel_bridge.sinks.otlp import spans_of
from support.ports import free_port


async def wait_ready(url: str) -> None:
    """Poll /readyz until the bridge answers 200 (callers bound it with asyncio.timeout)."""
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(f"{url}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)


async def test_sigterm_ends_open_runs_and_flushes(tmp_path: Path) -> None:
    """SIGTERM mid-run: the root is exported incomplete (cancellation), JSON logs are redacted."""
    out = tmp_path / "spans.jsonl"
    port = free_port()
    async with Simulator(Quirks(noise_probability=0.0), time_scale=1.0) as sim:
        env = {
            **os.environ,
            "OTEL_BRIDGE_UPSTREAM_URL": sim.ws_url,
            "OTEL_BRIDGE_LOG_FORMAT": "json",
            "OTEL_BRIDGE_LOG_LEVEL": "INFO",
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "otel_bridge.cli",
            "serve",
            "--port",
            str(port),
            "--traces-out",
            str(out),
            env=env,
            stderr=asyncio.subprocess.PIPE,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            async with asyncio.timeout(20):
                await wait_ready(url)
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
            async with aiohttp.ClientSession() as http:
                registered = await http.post(
                    f"{url}/v1/runs", json={"flow_name": "Long Flow", "run_name": "sigterm_1"}
                )
                assert registered.status == 201
            await sim.wait_subscribers("Long Flow", "sigterm_1", timeout=10)
            await sim.start_run(body)
            await asyncio.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(proc.communicate(), 30)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert proc.returncode == 0
    spans = [s for line in out.read_text().splitlines() for s in spans_of(json.loads(line))]
    root = next(s for s in spans if s["name"] == "invoke_workflow Long Flow")
    attrs = {a["key"]: a["value"] for a in root["attributes"]}
    assert attrs["lao.run.incomplete"] == {"boolValue": True}
    assert attrs["cicd.pipeline.result"] == {"stringValue": "cancellation"}
    assert any(s["name"] == "invoke_agent slow" for s in spans)
    logs = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    messages = {line["message"] for line in logs}
    assert {"run subscribed", "signal received, shutting down"} <= messages
    text = err.decode() + out.read_text()
    assert not any(secret in text for secret in SEED_SECRETS)
