"""Restart resume time: SIGKILL a bridge with every run mid-flight, start another on its state.

One measurement: the holding upstream (``upstream.py``, runs cut at an open task), the e2e
OTLP receiver, and a bridge with a state dir that follows every run (``POST /v1/runs``) and
gets every run's first part. Once that is all counted (``lao_events_total``), exported
(``otel_bridge_spans_exported_total``) and committed (``otel_bridge_state_unsaved_changes``
0), the upstream is armed and the bridge SIGKILLed. A second bridge starts on the same
state dir, with no ``POST``: it has to restore the runs, resubscribe their sockets by itself
(each socket gets its run's rest on connecting) and finish every run. Times are from the
second bridge's start (spawn) on the system-wide monotonic clock.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from bench.e2e.launch import subscribe_all
from bench.e2e.procs import BenchError, Children
from bench.restart.rig import (
    Bridge,
    ms_since,
    post,
    start_bridge,
    start_receiver,
    start_upstream,
    wait_status,
)


@dataclass
class Resume:
    """One restart."""

    state_kib: float  # otel_bridge_state_bytes when the first bridge was killed
    fresh_ms: float  # the first bridge (empty state dir): spawn -> /readyz 200
    listening_ms: float  # spawn -> the "listening" log line
    ready_ms: float  # spawn -> /readyz answered 200 (polled as soon as the log says listening)
    first_socket_ms: float  # spawn -> the first run socket reconnected
    all_sockets_ms: float  # spawn -> every run socket reconnected
    all_spans_ms: float  # spawn -> the last new span at the receiver
    lost: int  # expected spans minus unique span ids received
    duplicates: int  # spans received more than once
    roots: int  # runs whose root span arrived
    dropped: int  # otel_bridge_spans_dropped_total of both bridges


def saved_state(bridge: Bridge, events: int, spans: int, timeout: float) -> dict[str, float]:
    """Wait until the bridge counted ``events``, exported ``spans`` and committed it all."""
    return bridge.wait_metrics(
        lambda m: (
            m.get("lao_events_total") == events
            and m.get("otel_bridge_spans_exported_total") == spans
            and m.get("otel_bridge_state_unsaved_changes") == 0
        ),
        timeout,
        f"{events:,} events counted, {spans:,} spans exported and the state committed",
    )


def measure_resume(
    runs: int, tasks: int, open_task: int, tag: str, logs: Path, pin: bool
) -> Resume:
    """One restart of ``runs`` runs of ``tasks`` tasks, cut with task ``open_task`` open."""
    first_events, first_spans = runs * (2 * open_task + 2), runs * open_task
    spans = runs * (tasks + 1)
    timeout = 60 + runs * tasks / 50
    state = logs / "state"
    with Children(logs / "peers", pin) as peers:
        upstream, ws_url = start_upstream(peers, runs, tasks, open_task, tag)
        receiver, grpc_port = start_receiver(peers)
        with Children(logs / "first", pin) as kids:
            first = start_bridge(kids, ws_url, grpc_port, state)
            subscribe_all(first.put, upstream, kids, tag, runs)
            post(upstream, "/go")
            before = saved_state(first, first_events, first_spans, timeout)
            post(upstream, "/arm")
            first.kill()
        with Children(logs / "second", pin) as kids:
            second = start_bridge(kids, ws_url, grpc_port, state)
            start = second.started_ns
            up = wait_status(
                upstream,
                lambda s: int(s["reconnected"]) >= runs,
                timeout,
                f"the second bridge to reconnect {runs} run sockets",
            )
            with contextlib.suppress(BenchError):  # a loss is counted below, not raised
                wait_status(
                    receiver,
                    lambda s: int(s["unique"]) >= spans,
                    timeout,
                    f"{spans:,} spans at the receiver",
                )
            after = second.wait_metrics(
                lambda m: (
                    m.get("lao_flow_runs_total") == runs
                    and m.get("otel_bridge_export_queue_depth") == 0
                ),
                timeout,
                f"the second bridge to end {runs} runs and empty its export queue",
            )
            rx = receiver.json("/status")  # late duplicates, if any, are in by now
            roots = sum(1 for key in receiver.json("/arrivals") if key.startswith("run:"))
    return Resume(
        state_kib=before.get("otel_bridge_state_bytes", 0.0) / 1024,
        fresh_ms=ms_since(first.started_ns, first.ready_ns),
        listening_ms=second.listening_ms,
        ready_ms=ms_since(start, second.ready_ns),
        first_socket_ms=ms_since(start, up["first_reconnect_ns"]),
        all_sockets_ms=ms_since(start, up["last_reconnect_ns"]),
        all_spans_ms=ms_since(start, rx["last_ns"]),
        lost=spans - int(rx["unique"]),
        duplicates=int(rx["duplicates"]),
        roots=roots,
        dropped=int(
            before.get("otel_bridge_spans_dropped_total", 0)
            + after.get("otel_bridge_spans_dropped_total", 0)
        ),
    )
