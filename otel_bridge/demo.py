"""``otel-bridge demo``: an embedded LAO simulator, the bridge, a handful of flows, waterfalls.

Nothing to configure: the simulator and the bridge listen on free loopback ports, every run
is registered through the bridge's real control API, spans go to a JSON Lines file (and to
OTLP as well when an ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set).
"""

from __future__ import annotations

import asyncio
import random
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from otel_bridge.bridge import build_sinks, make_resource
from otel_bridge.core.outputs import Output
from otel_bridge.core.records import SpanRecord
from otel_bridge.server import BridgeServer
from otel_bridge.settings import Settings
from otel_bridge.simulator import Quirks, Simulator, generate_flow
from otel_bridge.simulator.flows import customer_support_flow, financial_data_flow
from otel_bridge.sinks.span_sinks import FileSink, SpanSink
from otel_bridge.waterfall import render_trace


def demo_flows(generated: int, seed: int) -> list[dict[str, Any]]:
    """The seed's two flows plus generated DAGs (parallel branches, one failing)."""
    rng = random.Random(seed)
    bodies: list[dict[str, Any]] = [customer_support_flow(), financial_data_flow()]
    for i in range(generated):
        bodies.append(
            generate_flow(
                rng,
                rng.randint(5, 9),
                run_name=f"demo_run_{i + 1}",
                failure_rate=0.35 if i == generated - 1 else 0.0,
                odd_names=0.3,
            )
        )
    return bodies


async def run_demo(
    traces_out: str = "demo-traces.jsonl",
    *,
    time_scale: float = 0.1,
    generated: int = 4,
    seed: int = 7,
    out: TextIO | None = None,
    timeout_s: float = 120.0,
) -> int:
    """Play the demo flows through the bridge; return an exit code."""
    stream = out or sys.stdout
    await asyncio.to_thread(Path(traces_out).unlink, missing_ok=True)
    quirks = Quirks(duplicate_events=0.05)
    async with Simulator(quirks, time_scale=time_scale, seed=seed) as sim:
        settings = Settings(
            port=0,
            control_port=0,
            upstream_url=sim.ws_url,
            traces_out=traces_out,
            terminal_grace_s=0.2,
            reconnect_initial_s=0.2,
            otlp="auto",
        )
        resource = make_resource()
        sinks: list[SpanSink] = [s for s in build_sinks(settings, resource)]
        if not any(isinstance(s, FileSink) for s in sinks):
            sinks.append(FileSink(traces_out, resource))
        server = BridgeServer(settings, sinks=sinks)
        by_run: dict[tuple[str, str], list[SpanRecord]] = defaultdict(list)
        finished: asyncio.Queue[tuple[str, str]] = asyncio.Queue()

        def collect(output: Output) -> None:
            if isinstance(output, SpanRecord):
                by_run[(output.flow_name, output.run_name)].append(output)
                if output.kind == "run":
                    finished.put_nowait((output.flow_name, output.run_name))

        server.bridge.router.listeners.append(collect)
        bodies = demo_flows(generated, seed)
        print(
            f"LAO simulator on {sim.http_url}; "
            f"playing {len(bodies)} flows (time scale {time_scale})",
            file=stream,
        )
        async with server, aiohttp.ClientSession() as http:
            print(
                f"bridge control API on {server.url}, /metrics on {server.metrics_url}",
                file=stream,
            )
            for body in bodies:
                flow, run = body["flow_name"], body["run_name"]
                async with http.post(
                    f"{server.url}/v1/runs", json={"flow_name": flow, "run_name": run}
                ) as response:
                    response.raise_for_status()
                await sim.wait_subscribers(flow, run)
                await sim.start_run(body)
                print(f"  started {flow} / {run} ({len(body['tasks'])} tasks)", file=stream)
            try:
                async with asyncio.timeout(timeout_s):
                    for _ in bodies:
                        key = await finished.get()
                        print("\n" + render_trace(by_run[key]), file=stream)
            except TimeoutError:
                print(f"\nsome runs did not finish within {timeout_s:.0f}s", file=stream)
                return 1
        spans = sum(len(v) for v in by_run.values())
        print(
            f"\n{len(by_run)} runs, {spans} spans written to {traces_out} (OTLP/JSON lines). "
            "Send them to Jaeger or Tempo: set OTEL_EXPORTER_OTLP_ENDPOINT and run again.",
            file=stream,
        )
    return 0
