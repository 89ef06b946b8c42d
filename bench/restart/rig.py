"""The processes of a restart measurement: the holding upstream, a receiver, bridges, metrics."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from bench.e2e.client import Http
from bench.e2e.launch import LISTENING, METRICS_URL, UnderTest, launch_bridge
from bench.e2e.procs import CPU_PEERS, CPU_TEST, BenchError, Children, read_port_file, wait_for

# The metrics a failed wait shows.
WATCHED = ("lao_events_total", "lao_flow_runs_total", "otel_bridge_s", "otel_bridge_export")


def free_port() -> int:
    """A loopback TCP port nobody listens on (now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ms_since(start_ns: int, end_ns: int | None) -> float:
    """Milliseconds from one ``time.monotonic_ns`` reading to another (NaN if none)."""
    return float("nan") if end_ns is None else (end_ns - start_ns) / 1e6


def start_upstream(
    kids: Children, runs: int, tasks: int, open_task: int | None, tag: str
) -> tuple[Http, str]:
    """``bench/restart/upstream.py`` on the peers' CPU: its control client and ws:// URL."""
    port_file = kids.logs / "upstream.port"
    argv = [sys.executable, "-m", "bench.restart.upstream", "--port-file", str(port_file)]
    argv += ["--runs", str(runs), "--tasks", str(tasks), "--tag", tag]
    if open_task is not None:
        argv += ["--open", str(open_task)]
    kids.spawn("upstream", argv, {}, CPU_PEERS)
    port = read_port_file(port_file, kids, "the upstream")["port"]
    upstream = Http(f"http://127.0.0.1:{port}")
    wait_for(lambda: upstream.probe("/status") == 200, 60, "the upstream's status")
    return upstream, f"ws://127.0.0.1:{port}"


def start_receiver(kids: Children, port: int | None = None) -> tuple[Http, int]:
    """The e2e OTLP receiver (on ``port`` when given): its status client and gRPC port."""
    name = "receiver" if port is None else "late_receiver"
    port_file = kids.logs / f"{name}.port"
    module = "bench.e2e.receiver" if port is None else "bench.restart.late_receiver"
    argv = [sys.executable, "-m", module, "--port-file", str(port_file)]
    kids.spawn(name, argv + ([] if port is None else ["--port", str(port)]), {}, CPU_PEERS)
    ports = read_port_file(port_file, kids, f"the {name}")
    receiver = Http(f"http://127.0.0.1:{ports['http']}")
    wait_for(lambda: receiver.probe("/status") == 200, 30, f"the {name}'s status")
    return receiver, ports["grpc"]


@dataclass
class Bridge:
    """An ``otel-bridge serve`` process (``bench/e2e/launch.py``'s), with its /metrics."""

    put: UnderTest
    proc: subprocess.Popen[bytes]
    metrics: Http
    started_ns: int  # spawned (time.monotonic_ns)
    ready_ns: int  # /readyz answered 200
    listening_ms: float  # spawn -> the "listening" log line (its clock, ms resolution)

    def scrape(self) -> dict[str, float]:
        """Every sample of /metrics, summed over labels, by sample name."""
        status, body = self.metrics.request("GET", "/metrics")
        if status != 200:
            raise BenchError(f"GET /metrics: HTTP {status}")
        totals: dict[str, float] = {}
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
        return totals

    def wait_metrics(
        self, done: Callable[[dict[str, float]], bool], timeout: float, what: str
    ) -> dict[str, float]:
        """Scrape until ``done`` holds (every 50 ms); the scrape that satisfied it."""
        last: dict[str, float] = {}

        def check() -> dict[str, float] | None:
            if self.proc.poll() is not None:
                raise BenchError(f"the bridge exited with code {self.proc.returncode}")
            last.update(self.scrape())
            return dict(last) if done(last) else None

        try:
            return wait_for(check, timeout, what, every=0.05)
        except BenchError as exc:
            shown = {k: v for k, v in last.items() if k.startswith(WATCHED)}
            raise BenchError(f"{exc}; last metrics: {shown}") from exc

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last commit."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.metrics.close()


def start_bridge(kids: Children, upstream_url: str, otlp_port: int, state_dir: Path) -> Bridge:
    """``otel-bridge serve`` on ``state_dir``, pinned to the test CPU, ready (/readyz 200)."""
    started_wall, started = time.time(), now_ns()
    put = launch_bridge(kids, upstream_url, otlp_port, CPU_TEST, None, state_dir)
    ready = now_ns()
    log = (kids.logs / "bridge.log").read_text(errors="replace")
    found, listening = METRICS_URL.search(log), LISTENING.search(log)
    if listening is None:
        raise BenchError("no listening line in the bridge's log")
    proc = next(p for name, p, _ in reversed(kids.procs) if name == "bridge")
    metrics = Http(f"http://127.0.0.1:{(found or listening).group(1)}")
    at = log_line_ms(log, listening.start(), started_wall)
    return Bridge(put, proc, metrics, started, ready, at)


def log_line_ms(log: str, offset: int, since: float) -> float:
    """Milliseconds from ``since`` (``time.time``) to the line of ``log`` holding ``offset``.

    The bridge's text log starts each line with the local time of day (``23:16:04.394``);
    NaN when it does not.
    """
    line = log[:offset].rpartition("\n")[2]
    try:
        clock = datetime.strptime(line.split(" ", 1)[0], "%H:%M:%S.%f").time()
    except ValueError:
        return float("nan")
    at = datetime.combine(datetime.fromtimestamp(since).date(), clock).timestamp()
    if at < since - 43200:  # the day changed meanwhile
        at += 86400
    return (at - since) * 1000


def post(http: Http, path: str) -> None:
    """A control POST to a peer; raise unless it was taken."""
    status, body = http.request("POST", path)
    if status not in (200, 202):
        raise BenchError(f"POST {path}: HTTP {status} {body[:200]!r}")


def wait_status(
    http: Http, done: Callable[[dict[str, Any]], bool], timeout: float, what: str
) -> dict[str, Any]:
    """Poll a peer's ``GET /status`` until ``done`` holds; that status."""
    last: dict[str, Any] = {}

    def check() -> dict[str, Any] | None:
        last.update(http.json("/status"))
        return dict(last) if done(last) else None

    try:
        return wait_for(check, timeout, what, every=0.02)
    except BenchError as exc:
        raise BenchError(f"{exc}; last status: {last}") from exc


def now_ns() -> int:
    """``time.monotonic_ns``: the clock the upstream and the receiver stamp with."""
    return time.monotonic_ns()
