"""The report of the restart benchmark: three markdown tables."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from bench.restart.outage import QUEUE_SPANS, STATE_MAX_BYTES, Outage, survived_s
from bench.restart.resume import Resume
from otel_bridge.store.writer import CHILD_SHARE


def spread(values: list[float], unit: str, fmt: str = ",.0f") -> str:
    """Median, and min-max when there is more than one value."""
    mid = f"{statistics.median(values):{fmt}} {unit}"
    if len(values) < 2:
        return mid
    return f"{mid} ({min(values):{fmt}}-{max(values):{fmt}})"


def duration(seconds: float) -> str:
    """Seconds as s, min or h, whichever reads best."""
    if seconds < 120:
        return f"{seconds:,.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:,.1f} min"
    return f"{seconds / 3600:,.1f} h"


def setup_line(setup: dict[str, Any]) -> str:
    """What the numbers were measured on."""
    placing = (
        "bridge pinned to CPU 0, upstream, receiver and runner to CPU 1"
        if setup["pinned"]
        else "unpinned"
    )
    return (
        f"Setup: {setup['cpus']} CPUs ({setup['cpu']}), {placing}; other test runs were going "
        f"on (load average {setup['load']} at the start); Python {setup['python']}, "
        f"git {setup['git']}, {setup['date']}; default settings (capture=redacted, OTLP/gRPC)."
    )


def resume_table(setup: dict[str, Any], resumes: list[Resume]) -> list[str]:
    """Restart resume: median (min-max) over the repetitions."""
    runs, tasks, open_task = setup["runs"], setup["tasks"], setup["open"]
    lines = [
        f"Restart: {runs:,} runs x {tasks} tasks, each SIGKILLed with {open_task} tasks "
        f"done and task {open_task} open; {len(resumes)} repetition(s), median (min-max); "
        "times from the new process's start.",
        "",
        "| restart resume | value |",
        "|---|---|",
    ]

    def row(label: str, get: Callable[[Resume], float], unit: str, fmt: str = ",.0f") -> None:
        lines.append(f"| {label} | {spread([get(r) for r in resumes], unit, fmt)} |")

    row("state at SIGKILL (`otel_bridge_state_bytes`)", lambda r: r.state_kib, "KiB")
    row("fresh start (empty state dir) → `/readyz` 200, for comparison", lambda r: r.fresh_ms, "ms")
    row("start → listening (its log line)", lambda r: r.listening_ms, "ms")
    row("start → `/readyz` answered 200", lambda r: r.ready_ms, "ms")
    row("start → first run socket reconnected", lambda r: r.first_socket_ms, "ms")
    row(f"start → all {runs:,} run sockets reconnected", lambda r: r.all_sockets_ms, "ms")
    row("start → every remaining span and root at the receiver", lambda r: r.all_spans_ms, "ms")
    total = sum(r.lost for r in resumes), sum(r.duplicates for r in resumes)
    dropped = sum(r.dropped for r in resumes)
    lines.append(
        f"| spans lost / duplicated / dropped (all reps) | {total[0]} / {total[1]} / {dropped} |"
    )
    lines.append(f"| runs whose root arrived | {min(r.roots for r in resumes):,} of {runs:,} |")
    return lines


def outage_table(setup: dict[str, Any], o: Outage) -> list[str]:
    """The outage, filled then delivered."""
    return [
        f"Outage: {setup['outage_runs']:,} runs x {setup['outage_tasks']} tasks "
        f"({o.spans:,} spans, ~1 KB task outputs) sent while the OTLP endpoint is a port "
        "nobody listens on; then the receiver starts there.",
        "",
        "| outage | value |",
        "|---|---|",
        f"| spans waiting when every run had ended (`export_queue_depth`) | {o.waiting:,} of "
        f"{o.spans:,} (dropped {o.dropped:,}) |",
        f"| `otel_bridge_state_bytes` then | {o.state_bytes / 2**20:,.1f} MiB |",
        f"| **bytes per stored span** (state bytes ÷ spans waiting) | **{o.per_span:,.0f} B** |",
        f"| state dir on disk then: SQLite file + write-ahead log | "
        f"{o.db_bytes / 2**20:,.1f} + {o.wal_bytes / 2**20:,.1f} MiB "
        f"({o.disk_per_span:,.0f} B per span) |",
        f"| bridge RSS holding them | {o.rss_mib:,.0f} MiB |",
        f"| runs sent and stored (go → all committed) | {o.fill_s:,.1f} s |",
        f"| outage length (go → receiver listening) | {o.outage_s:,.1f} s |",
        f"| receiver listening → first span / all delivered | {o.first_ms / 1000:,.1f} s / "
        f"{o.all_ms / 1000:,.1f} s |",
        f"| spans in failed attempts (retried, `spans_failed_total`) | {o.failed:,} |",
        f"| spans lost / duplicated | {o.lost:,} / {o.duplicates:,} |",
        f"| `otel_bridge_state_bytes` once delivered | {o.state_after:,} |",
    ]


def survival_table(o: Outage, rates: list[int]) -> list[str]:
    """The outage the default budgets hold at a few span rates, from the bytes per span."""
    lines = [
        f"Outage survived with the default budgets, at {o.per_span:,.0f} B per span:",
        "",
        f"| spans/s | memory only (`export_queue_size` {QUEUE_SPANS:,} task spans) | "
        f"with `state_dir` ({STATE_MAX_BYTES // 2**20} MiB; task spans to "
        f"{CHILD_SHARE:.0%}) |",
        "|---|---|---|",
    ]
    for rate in rates:
        memory, disk = survived_s(rate, o.per_span)
        lines.append(f"| {rate:,} | {duration(memory)} | {duration(disk)} |")
    return lines


def report(
    setup: dict[str, Any], resumes: list[Resume], outage: Outage | None, rates: list[int]
) -> str:
    """Every table that has measurements."""
    lines = [setup_line(setup), ""]
    if resumes:
        lines += [*resume_table(setup, resumes), ""]
    if outage is not None:
        lines += [*outage_table(setup, outage), ""]
        if outage.waiting:
            lines += [*survival_table(outage, rates), ""]
    return "\n".join(lines)
