"""An outage of the OTLP endpoint with the default budgets: what a span costs, how long it lasts.

One measurement: a bridge with a state dir exports to a loopback port nobody listens on
while whole runs (``upstream.py`` without ``--open``) are sent and end. Once every event is
counted, every run ended and the state committed, it reads ``otel_bridge_state_bytes``
(what the disk budget counts: span records and open runs' snapshots) and
``otel_bridge_export_queue_depth`` (spans waiting), then starts the e2e receiver on that
port and times the delivery: the export worker finds it at its next retry (backoff with
jitter up to ``export_retry_max_s``), then drains memory and disk.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from bench.e2e.launch import subscribe_all
from bench.e2e.procs import Children, status_kib
from bench.restart.rig import (
    free_port,
    ms_since,
    now_ns,
    post,
    start_bridge,
    start_receiver,
    start_upstream,
    wait_status,
)
from otel_bridge.settings import Settings
from otel_bridge.store.database import FILE_NAME as DB_FILE
from otel_bridge.store.writer import CHILD_SHARE

# The defaults the survival figures are for, read from the settings themselves.
QUEUE_SPANS = int(Settings.model_fields["export_queue_size"].default)
STATE_MAX_BYTES = int(Settings.model_fields["state_max_bytes"].default)
RETRY_MAX_S = float(Settings.model_fields["export_retry_max_s"].default)


@dataclass
class Outage:
    """One outage, filled then delivered."""

    spans: int  # spans the runs make
    fill_s: float  # "go" -> every event counted, every run ended, the state committed
    outage_s: float  # "go" -> the receiver listening on the port
    waiting: int  # otel_bridge_export_queue_depth then
    state_bytes: int  # otel_bridge_state_bytes then
    db_bytes: int  # the SQLite file then
    wal_bytes: int  # its write-ahead log then
    rss_mib: float  # the bridge's resident memory then
    dropped: int  # otel_bridge_spans_dropped_total, all reasons
    failed: int  # otel_bridge_spans_failed_total: spans in failed attempts (retried)
    first_ms: float  # receiver listening -> first span
    all_ms: float  # receiver listening -> last new span
    lost: int
    duplicates: int
    state_after: int  # otel_bridge_state_bytes once delivered

    @property
    def per_span(self) -> float:
        """Bytes of the disk budget per stored span."""
        return self.state_bytes / self.waiting if self.waiting else float("nan")

    @property
    def disk_per_span(self) -> float:
        """Bytes of files on disk (SQLite file and write-ahead log) per stored span."""
        return (self.db_bytes + self.wal_bytes) / self.waiting if self.waiting else float("nan")


def survived_s(spans_per_s: float, per_span: float) -> tuple[float, float]:
    """Seconds of outage the memory queue alone and the state dir's budget hold, at a rate.

    Without a state dir a task span is dropped once ``export_queue_size`` of them wait (roots
    have a queue of their own); with one, task spans are refused at ``CHILD_SHARE`` of
    ``state_max_bytes``.
    """
    return QUEUE_SPANS / spans_per_s, STATE_MAX_BYTES * CHILD_SHARE / per_span / spans_per_s


def file_bytes(path: Path) -> int:
    """A file's size (0 when it is not there)."""
    return path.stat().st_size if path.exists() else 0


def measure_outage(
    runs: int, tasks: int, least_s: float, tag: str, logs: Path, pin: bool
) -> Outage:
    """``runs`` whole runs of ``tasks`` tasks sent while the OTLP endpoint is down; then up.

    The endpoint stays down for ``least_s`` at least, so the exporter's own retries (the
    SDK's, about 10 s) are over and the export queue's backoff is what finds it again.
    """
    events, spans = runs * (2 * tasks + 2), runs * (tasks + 1)
    timeout = 120 + events / 200
    port, state = free_port(), logs / "state"
    with Children(logs / "peers", pin) as peers:
        upstream, ws_url = start_upstream(peers, runs, tasks, None, tag)
        with Children(logs / "bridge", pin) as kids:
            bridge = start_bridge(kids, ws_url, port, state)
            subscribe_all(bridge.put, upstream, kids, tag, runs)
            go = now_ns()
            post(upstream, "/go")
            held = bridge.wait_metrics(
                lambda m: (
                    m.get("lao_events_total") == events
                    and m.get("lao_flow_runs_total") == runs
                    and m.get("otel_bridge_state_unsaved_changes") == 0
                ),
                timeout,
                f"{events:,} events counted, {runs} runs ended and the state committed",
            )
            filled = now_ns()
            rss_mib = status_kib(bridge.proc.pid, "VmRSS") / 1024
            db_bytes = file_bytes(state / DB_FILE)
            wal_bytes = file_bytes(state / f"{DB_FILE}-wal")
            dropped = int(held.get("otel_bridge_spans_dropped_total", 0))
            time.sleep(max(0.0, go / 1e9 + least_s - time.monotonic()))
            receiver, _ = start_receiver(peers, port)
            listening = now_ns()
            wait_status(
                receiver,
                lambda s: int(s["unique"]) >= spans - dropped,
                timeout + 2 * RETRY_MAX_S,
                f"{spans - dropped:,} spans at the receiver on port {port}",
            )
            after = bridge.wait_metrics(
                lambda m: m.get("otel_bridge_export_queue_depth") == 0,
                timeout,
                "the export queue to empty",
            )
            rx = receiver.json("/status")
    return Outage(
        spans=spans,
        fill_s=ms_since(go, filled) / 1000,
        outage_s=ms_since(go, listening) / 1000,
        waiting=int(held.get("otel_bridge_export_queue_depth", 0)),
        state_bytes=int(held.get("otel_bridge_state_bytes", 0)),
        db_bytes=db_bytes,
        wal_bytes=wal_bytes,
        rss_mib=rss_mib,
        dropped=int(after.get("otel_bridge_spans_dropped_total", 0)),
        failed=int(after.get("otel_bridge_spans_failed_total", 0)),
        first_ms=ms_since(listening, rx["first_ns"]),
        all_ms=ms_since(listening, rx["last_ns"]),
        lost=spans - int(rx["unique"]),
        duplicates=int(rx["duplicates"]),
        state_after=int(after.get("otel_bridge_state_bytes", 0)),
    )
