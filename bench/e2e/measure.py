"""One measurement: busy or paced (CPU, wall rate, loss, lag), or idle (memory per subscription)."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.e2e.launch import Profiling, rig, subscribe_all
from bench.e2e.procs import BenchError, cpu_seconds, settled_rss, status_kib, thread_cpu

POLL_S = 0.01
STALL_S = 20.0  # no new span for this long ends a measurement (the rest counts as lost)
DUP_WINDOW_S = 1.0  # after the last expected span, how long late duplicates are watched for


@dataclass
class Flow:
    """One busy or paced measurement."""

    pipeline: str
    rate: int  # 0: busy
    events: int
    expected: int
    unique: int = 0
    duplicates: int = 0
    cpu_s: float = 0.0
    wall_s: float = 0.0
    hwm_kib: int = 0
    missed_at_source: int = 0
    matched: int = 0  # expected spans received, recognised by their task id or run name
    lag_p50_ms: float | None = None
    lag_p99_ms: float | None = None
    threads: dict[str, float] = field(default_factory=dict)  # CPU s by thread (--threads)

    @property
    def loss(self) -> int:
        """Spans expected and never received."""
        return max(0, self.expected - min(self.unique, self.matched))

    @property
    def us_per_event(self) -> float:
        """CPU µs of the process under test per event."""
        return self.cpu_s / self.events * 1e6 if self.events else float("nan")

    @property
    def per_cpu_s(self) -> float:
        """Events per CPU-second."""
        return self.events / self.cpu_s if self.cpu_s else float("nan")

    @property
    def wall_eps(self) -> float:
        """Events per wall second, "go" to last span."""
        return self.events / self.wall_s if self.wall_s else float("nan")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted ``values``."""
    return values[min(len(values) - 1, max(0, round(q / 100 * len(values)) - 1))]


def profiling_for(args: argparse.Namespace, tag: str) -> Profiling | None:
    """``--profile PATH``: this measurement's main-thread profile at ``{stem}.{tag}{suffix}``."""
    if not args.profile:
        return None
    path = Path(args.profile)
    return Profiling(path.with_name(f"{path.stem}.{tag}{path.suffix}"), args.profiler)


def measure_flow(
    pipeline: str, args: argparse.Namespace, rate: int, tag: str, logs: Path, pin: bool
) -> Flow:
    """Send every event (busy, or paced at ``rate``) and watch the spans arrive."""
    runs, tasks = args.runs, args.tasks
    result = Flow(pipeline, rate, runs * (2 * tasks + 2), runs * (tasks + 1))
    profiling = profiling_for(args, tag)
    if profiling is not None:
        profiling.out.unlink(missing_ok=True)
    by_thread = args.threads or profiling is not None
    with rig(pipeline, logs, pin, runs, tasks, tag, profiling) as (put, source, receiver, kids):
        subscribe_all(put, source, kids, tag, runs)
        threads_before = thread_cpu(put.pid) if by_thread else {}
        cpu_before = cpu_seconds(put.pid)
        status, _ = source.request("POST", f"/go?rate={rate}")
        if status != 202:
            raise BenchError(f"source refused go: HTTP {status}")
        deadline = time.monotonic() + 60 + result.events / 500
        seen, changed = 0, time.monotonic()
        while True:
            unique = receiver.json("/status")["unique"]
            now = time.monotonic()
            if unique >= result.expected or now > deadline:
                break
            if unique != seen:
                seen, changed = unique, now
            elif now - changed > STALL_S:
                break
            kids.check_alive()
            time.sleep(POLL_S)
        result.cpu_s = cpu_seconds(put.pid) - cpu_before
        if by_thread:
            after = thread_cpu(put.pid)
            result.threads = {k: v - threads_before.get(k, 0.0) for k, v in after.items()}
        result.hwm_kib = status_kib(put.pid, "VmHWM")
        time.sleep(DUP_WINDOW_S)  # an observation window for late duplicates
        got, sent = receiver.json("/status"), source.json("/status")
        result.unique, result.duplicates = got["unique"], got["duplicates"]
        result.missed_at_source = sent["missed"]
        if got["last_ns"] and sent["go_ns"]:
            result.wall_s = (got["last_ns"] - sent["go_ns"]) / 1e9
        # Each span-closing frame the source sent must come back as its own span.
        sent_at, arrived = source.json("/send_times"), receiver.json("/arrivals")
        lags = sorted((arrived[k] - ns) / 1e6 for k, ns in sent_at.items() if k in arrived)
        result.matched = len(lags)
        if rate and lags:
            result.lag_p50_ms, result.lag_p99_ms = percentile(lags, 50), percentile(lags, 99)
    if profiling is not None and not profiling.out.exists():  # written once it has stopped
        raise BenchError(f"{pipeline} wrote no profile to {profiling.out}")
    return result


def measure_idle(pipeline: str, subs: int, tag: str, logs: Path, pin: bool) -> float:
    """KiB of resident memory per idle subscription."""
    with rig(pipeline, logs, pin, subs, 1, tag) as (put, source, _, kids):
        before = settled_rss(put.pid)
        subscribe_all(put, source, kids, tag, subs)
        after = settled_rss(put.pid)
        return (after - before) / subs
