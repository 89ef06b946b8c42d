"""The pinned OpenTelemetry Collector (`.tools/bin/otelcol`) and what its tests talk to.

    with CollectorServer(AGENT_CONFIG, {"OTELCOL_EXPORT_ENDPOINT": ...}) as agent:
        agent.otlp_grpc_endpoint        # where the bridge exports
        agent.counter("otelcol_receiver_accepted_spans")   # its own Prometheus metrics
        agent.restart()                 # SIGTERM, then the same config and ports again

The configs are the shipped ones in `deploy/collector/`; every port and directory they use
is an environment variable, set here to free loopback ports and temporary directories.
The binary is built by `make tools` (tools/build.sh; pinned in tools/collector/go.mod).
:class:`MetricsReceiver` is an OTLP/gRPC metrics receiver built from the opentelemetry-proto
messages; :class:`ServedBridge` is the real `otel-bridge serve` process.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
import threading
from collections.abc import AsyncIterator, Mapping
from concurrent import futures
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import aiohttp
import grpc
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc

from otel_bridge.simulator import Simulator

from . import _http
from .exposition import metric_value
from .jaeger import decode_attributes
from .ports import LOOPBACK, free_ports
from .process import REPO_ROOT, TOOLS_BIN, ManagedServer, ServerProcess, require_binary
from .rig import serving_process
from .timing import UNIT, wait_for

COLLECTOR_BINARY = TOOLS_BIN / "otelcol"
CONFIG_DIR = REPO_ROOT / "deploy" / "collector"
AGENT_CONFIG = CONFIG_DIR / "agent.yaml"
GATEWAY_CONFIG = CONFIG_DIR / "gateway.yaml"
METRICS_CONFIG = CONFIG_DIR / "metrics.yaml"

JSON = dict[str, Any]


def collector_binary() -> Path:
    """The pinned Collector; missing, it fails under CI and skips (saying why) elsewhere."""
    return require_binary(
        COLLECTOR_BINARY, "run `make tools` to build the pinned Collector (tools/collector/)"
    )


def validate(config: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """``otelcol validate --config=CONFIG`` with ``env`` added to the environment."""
    return subprocess.run(
        [str(collector_binary()), "validate", f"--config={config}"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60 * UNIT,
        check=False,
    )


class CollectorServer(ManagedServer):
    """`otelcol --config=CONFIG` on free loopback ports, ready when its health check says so.

    Sets ``OTELCOL_*`` variables for the listeners every shipped config has (OTLP gRPC and
    HTTP, health check, own metrics); ``env`` adds or overrides the config's other ones.
    """

    def __init__(self, config: Path, env: Mapping[str, str], *, startup_timeout: float = 0) -> None:
        self.config = config
        self.startup_timeout = startup_timeout or 30 * UNIT
        self.grpc_port, self.http_port, self.health_port, self.telemetry_port = free_ports(4)
        self.env = {
            "OTELCOL_OTLP_GRPC_ENDPOINT": self.otlp_grpc_endpoint,
            "OTELCOL_OTLP_HTTP_ENDPOINT": f"{LOOPBACK}:{self.http_port}",
            "OTELCOL_HEALTH_ENDPOINT": f"{LOOPBACK}:{self.health_port}",
            "OTELCOL_TELEMETRY_HOST": LOOPBACK,
            "OTELCOL_TELEMETRY_PORT": str(self.telemetry_port),
            **env,
        }
        self.starts = 0
        self.process: ServerProcess | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def otlp_grpc_endpoint(self) -> str:
        """host:port of the OTLP/gRPC receiver."""
        return f"{LOOPBACK}:{self.grpc_port}"

    def start(self) -> Self:
        """Start the Collector (a new log file per start) and wait until it is healthy."""
        binary = collector_binary()
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="otelcol-")
        self.starts += 1
        log = Path(self._tmp.name) / f"otelcol-{self.starts}.log"
        self.process = ServerProcess(
            f"otelcol ({self.config.name}, start {self.starts})",
            [str(binary), f"--config={self.config}"],
            log,
            env={**os.environ, **self.env},
        )
        self.process.start()
        try:
            self.process.wait_until(self._healthy, self.startup_timeout, "health check")
        except BaseException:
            self.stop()
            raise
        return self

    def _healthy(self) -> bool | None:
        status, _ = _http.get(f"http://{LOOPBACK}:{self.health_port}/", timeout=1.0)
        return True if status == 200 else None

    def restart(self) -> None:
        """SIGTERM (the Collector drains and closes its storage), then start again."""
        if self.process is not None:
            self.process.stop(timeout=30 * UNIT)
        self.start()

    def dump_log(self) -> None:
        """Write the log of every start to stderr."""
        if self._tmp is None:
            return
        for start in range(1, self.starts + 1):
            ServerProcess(f"otelcol start {start}", [], self._log(start)).dump_log()

    def _log(self, start: int) -> Path:
        assert self._tmp is not None
        return Path(self._tmp.name) / f"otelcol-{start}.log"

    def counter(self, name: str, **labels: str) -> float:
        """Sum of the Collector's own metric ``name`` (any ``_total`` suffix) over ``labels``."""
        if self.process is None:
            raise RuntimeError("the Collector is not running")
        self.process.ensure_running()
        status, text = _http.get(f"http://{LOOPBACK}:{self.telemetry_port}/metrics")
        assert status == 200, text[:500]
        return metric_value(text.decode(), name, **labels)


@dataclass(frozen=True)
class Point:
    """One OTLP data point with its resource and metric (protobuf JSON, ints as strings)."""

    resource: JSON
    kind: str  # sum, gauge or histogram
    metric: JSON  # e.g. {"aggregationTemporality": 2, "isMonotonic": true, "dataPoints": …}
    attributes: JSON
    raw: JSON


class MetricsReceiver:
    """An OTLP/gRPC metrics receiver on 127.0.0.1:<free port>, keeping every request as JSON."""

    def __init__(self) -> None:
        self.requests: list[JSON] = []
        self._lock = threading.Lock()
        receiver = self

        class Servicer(metrics_service_pb2_grpc.MetricsServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:
                as_dict = MessageToDict(request, use_integers_for_enums=True)
                with receiver._lock:
                    receiver.requests.append(as_dict)
                return metrics_service_pb2.ExportMetricsServiceResponse()

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Servicer(), self.server)
        self.port = self.server.add_insecure_port(f"{LOOPBACK}:0")
        self.endpoint = f"{LOOPBACK}:{self.port}"

    def __enter__(self) -> Self:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop(grace=None)

    def points(self, name: str) -> list[Point]:
        """Every data point of the metric ``name`` received so far, oldest first."""
        with self._lock:
            requests = list(self.requests)
        found = []
        for request in requests:
            for rm in request.get("resourceMetrics", []):
                resource = decode_attributes(rm.get("resource", {}).get("attributes", []))
                for sm in rm.get("scopeMetrics", []):
                    for metric in sm.get("metrics", []):
                        if metric.get("name") != name:
                            continue
                        kind = next(k for k in ("sum", "gauge", "histogram") if k in metric)
                        data = metric[kind]
                        for point in data.get("dataPoints", []):
                            attrs = decode_attributes(point.get("attributes", []))
                            found.append(Point(resource, kind, data, attrs, point))
        return found

    def names(self) -> set[str]:
        """Every metric name received so far."""
        with self._lock:
            return {
                metric["name"]
                for request in self.requests
                for rm in request.get("resourceMetrics", [])
                for sm in rm.get("scopeMetrics", [])
                for metric in sm.get("metrics", [])
            }


class ServedBridge:
    """The real ``otel-bridge serve`` process, driven over its control API."""

    def __init__(self, sim: Simulator, http: aiohttp.ClientSession, port: int, control: int):
        self.sim = sim
        self.http = http
        self.metrics_target = f"{LOOPBACK}:{port}"
        self.url = f"http://{LOOPBACK}:{control}"

    async def ready(self) -> bool:
        """Whether /readyz answers 200 (not listening yet: False)."""
        try:
            async with self.http.get(f"{self.url}/readyz") as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False

    async def play(self, body: JSON) -> None:
        """Register a run, start it in the simulator, wait until the bridge is done with it."""
        flow, run = body["flow_name"], body["run_name"]
        registration = {"flow_name": flow, "run_name": run}
        async with self.http.post(f"{self.url}/v1/runs", json=registration) as response:
            assert response.status == 201, await response.text()
        await self.sim.wait_subscribers(flow, run, timeout=10 * UNIT)
        await self.sim.start_run(body)
        await self.sim.wait_run(flow, run, timeout=20 * UNIT)

        async def done() -> bool:
            async with self.http.get(f"{self.url}/v1/runs/{flow}/{run}") as response:
                state = (await response.json())["state"]
            assert state != "failed", f"{flow}/{run} failed"
            return bool(state == "done")

        await wait_for(done, 20 * UNIT, f"the bridge to be done with {flow}/{run}")


@asynccontextmanager
async def served_bridge(
    sim: Simulator, *args: str, env: Mapping[str, str]
) -> AsyncIterator[ServedBridge]:
    """``otel-bridge serve`` following ``sim`` on free ports, with ``env`` added; SIGTERMed after.

    The bridge logs warnings and errors only, so its unread stderr pipe never fills; no
    ``OTEL_*`` variable of the test's own environment reaches it.
    """
    port, control = free_ports(2)
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
        "OTEL_BRIDGE_UPSTREAM_URL": sim.ws_url,
        "OTEL_BRIDGE_LOG_LEVEL": "WARNING",
        "OTEL_BRIDGE_TERMINAL_GRACE_S": str(0.2 * UNIT),
        **env,
    }
    argv = ["--port", str(port), "--control-port", str(control), *args]
    async with (
        aiohttp.ClientSession() as http,
        serving_process(*argv, env=full_env) as proc,
    ):
        bridge = ServedBridge(sim, http, port, control)
        await wait_for(bridge.ready, 20 * UNIT, "the bridge to be ready")
        yield bridge
        proc.terminate()
        await asyncio.wait_for(proc.communicate(), 30 * UNIT)
