"""The processes of a measurement: receiver, source and the process under test, subscribed."""

from __future__ import annotations

import contextlib
import re
import secrets
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.e2e.client import Http
from bench.e2e.frames import FLOW, run_name
from bench.e2e.procs import BIN, CPU_PEERS, CPU_TEST, BenchError, Children, read_port_file, wait_for
from otel_bridge.bridge import DEFAULT_DELAY_S

# The stock pipeline's batch processor gets the bridge's export queue (export_queue_size and
# its batch delay) instead of the SDK's 2,048 spans and 5 s, so both buffer alike.
STOCK_ENV = {
    "OTEL_BSP_MAX_QUEUE_SIZE": "20000",
    "OTEL_BSP_SCHEDULE_DELAY": str(round(DEFAULT_DELAY_S * 1000)),
}
# The "listening" log line: the control API at ``url``; /readyz at ``metrics_url`` when the
# metrics have a listener of their own, else at ``url`` too.
LISTENING = re.compile(r"listening.*?\burl\W+https?://[^\s:/\"']+:(\d+)")
METRICS_URL = re.compile(r"listening.*?\bmetrics_url\W+https?://[^\s:/\"']+:(\d+)")


@dataclass
class UnderTest:
    """A running process under test and how to make it follow a run."""

    name: str
    pid: int
    subscribe: Callable[[str, str], None]  # (flow_name, run_name)


@dataclass(frozen=True)
class Profiling:
    """Run the process under test under ``bench/e2e/profiled.py`` (``--profile``)."""

    out: Path  # the main thread's pstats file; the other threads' go next to it
    engine: str  # cprofile or yappi

    def command(self, module: str, args: list[str]) -> list[str]:
        """``python -m module args``, profiled."""
        head = [sys.executable, "-m", "bench.e2e.profiled", "--out", str(self.out)]
        return [*head, "--engine", self.engine, "--", module, *args]


def launch_bridge(
    kids: Children,
    upstream_url: str,
    otlp_port: int,
    cpu: int,
    profiling: Profiling | None,
    state_dir: Path | None = None,
) -> UnderTest:
    """``otel-bridge serve`` with default settings: the one place its URLs and env are set.

    The control API and the metrics listener are wherever the "listening" log line says
    (port 0: any free one); the control API takes a bearer token. If the log line changes,
    adapt here.
    """
    token = secrets.token_hex(16)
    env = {
        "OTEL_BRIDGE_UPSTREAM_URL": upstream_url,
        "OTEL_BRIDGE_LISTEN_HOST": "127.0.0.1",
        "OTEL_BRIDGE_PORT": "0",
        "OTEL_BRIDGE_CONTROL_HOST": "127.0.0.1",
        "OTEL_BRIDGE_CONTROL_PORT": "0",
        "OTEL_BRIDGE_CONTROL_TOKEN": token,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_port}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_SERVICE_NAME": "otel-bridge-bench",
        **({"OTEL_BRIDGE_STATE_DIR": str(state_dir)} if state_dir else {}),
    }
    argv = [str(BIN / "otel-bridge"), "serve"]
    if profiling is not None:
        argv = profiling.command("otel_bridge", ["serve"])
    proc, log = kids.spawn("bridge", argv, env, cpu)

    def listening() -> tuple[str, str] | None:
        kids.check_alive()
        text = log.read_text(errors="replace")
        found, metrics = LISTENING.search(text), METRICS_URL.search(text)
        return (found.group(1), (metrics or found).group(1)) if found else None

    control_port, metrics_port = wait_for(listening, 60, "the bridge to listen")
    control = Http(f"http://127.0.0.1:{control_port}", {"Authorization": f"Bearer {token}"})
    health = Http(f"http://127.0.0.1:{metrics_port}")
    wait_for(lambda: health.probe("/readyz") == 200, 30, "the bridge to be ready")
    health.close()

    def subscribe(flow: str, run: str) -> None:
        status, body = control.request("POST", "/v1/runs", {"flow_name": flow, "run_name": run})
        if status not in (200, 201):
            raise BenchError(f"POST /v1/runs {run}: HTTP {status} {body[:200]!r}")

    return UnderTest("bridge", proc.pid, subscribe)


def launch_stock(
    kids: Children, upstream_url: str, otlp_port: int, cpu: int, profiling: Profiling | None
) -> UnderTest:
    """``bench/stock.py``, following the runs written to its stdin."""
    env = {
        **STOCK_ENV,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_port}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
    }
    args = ["--upstream", upstream_url]
    argv = [sys.executable, "-m", "bench.stock", *args]
    if profiling is not None:
        argv = profiling.command("bench.stock", args)
    proc, log = kids.spawn("stock", argv, env, cpu, stdin=True)

    def ready() -> bool:
        kids.check_alive()
        return "stock: ready" in log.read_text(errors="replace")

    wait_for(ready, 60, "the stock pipeline to start")
    assert proc.stdin is not None
    stdin = proc.stdin

    def subscribe(flow: str, run: str) -> None:
        stdin.write(f"{flow} {run}\n".encode())
        stdin.flush()

    return UnderTest("stock", proc.pid, subscribe)


LAUNCH = {"bridge": launch_bridge, "stock": launch_stock}


@contextlib.contextmanager
def rig(
    pipeline: str,
    logs: Path,
    pin: bool,
    runs: int,
    tasks: int,
    tag: str,
    profiling: Profiling | None = None,
) -> Iterator[tuple[UnderTest, Http, Http, Children]]:
    """Receiver and source on the peers' CPU, the process under test on its own."""
    with Children(logs, pin) as kids:
        py = sys.executable
        rx_file, src_file = logs / "receiver.port", logs / "source.port"
        for stale in (rx_file, src_file):
            stale.unlink(missing_ok=True)
        kids.spawn(
            "receiver", [py, "-m", "bench.e2e.receiver", "--port-file", str(rx_file)], {}, CPU_PEERS
        )
        src_argv = [py, "-m", "bench.e2e.source", "--port-file", str(src_file)]
        src_argv += ["--runs", str(runs), "--tasks", str(tasks), "--tag", tag]
        kids.spawn("source", src_argv, {}, CPU_PEERS)
        rx_ports = read_port_file(rx_file, kids, "the receiver")
        src_port = read_port_file(src_file, kids, "the source")["port"]
        receiver, source = (
            Http(f"http://127.0.0.1:{rx_ports['http']}"),
            Http(f"http://127.0.0.1:{src_port}"),
        )
        wait_for(lambda: receiver.probe("/status") == 200, 30, "the receiver's status")
        wait_for(lambda: source.probe("/status") == 200, 30, "the source's status")
        upstream = f"ws://127.0.0.1:{src_port}"
        if pipeline == "bridge+state":  # the bridge with a state_dir (SQLite writes measured)
            state = logs / "state"
            put = launch_bridge(kids, upstream, rx_ports["grpc"], CPU_TEST, profiling, state)
        else:
            put = LAUNCH[pipeline](kids, upstream, rx_ports["grpc"], CPU_TEST, profiling)
        try:
            yield put, source, receiver, kids
        finally:
            receiver.close()
            source.close()


def subscribe_all(put: UnderTest, source: Http, kids: Children, tag: str, runs: int) -> None:
    """Have the process under test follow every run; wait until each socket has a reader."""
    for r in range(runs):
        put.subscribe(FLOW, run_name(tag, r))

    def all_subscribed() -> bool:
        kids.check_alive()
        return bool(source.json("/status")["subscribed"] >= runs)

    wait_for(all_subscribed, 60 + runs / 10, f"{runs} run sockets to have a subscriber")
