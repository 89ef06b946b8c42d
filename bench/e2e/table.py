"""The report: min / median / max per measure as a markdown table, and the targets' verdicts."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.e2e.measure import Flow

TARGET_RATIO, TARGET_P99_MS, TARGET_IDLE_KIB = 3.0, 250.0, 16.0


@dataclass
class Results:
    """Every measurement of the invocation."""

    setup: dict[str, Any]
    flows: list[Flow] = field(default_factory=list)
    idle: dict[str, list[float]] = field(default_factory=dict)

    def pick(self, pipeline: str, rate: int) -> list[Flow]:
        """The repetitions of one measurement."""
        return [f for f in self.flows if f.pipeline == pipeline and f.rate == rate]


def mmm(values: list[float], spec: str = ",.0f") -> str:
    """The min / median / max of ``values``."""
    clean = sorted(v for v in values if v == v)  # drop NaN
    if not clean:
        return "n/a"
    parts = (clean[0], statistics.median(clean), clean[-1])
    return " / ".join(format(v, spec) for v in parts)


def table(results: Results, pipelines: list[str], rates: list[int], idle: int) -> str:
    """The markdown table."""
    head = "| measure | " + " | ".join(f"{p} min / median / max" for p in pipelines)
    lines = [head + " | target |", "|---" * (len(pipelines) + 2) + "|"]

    def row(label: str, get: Callable[[Flow], float], rate: int, spec: str, target: str) -> None:
        cells = [mmm([get(f) for f in results.pick(p, rate)], spec) for p in pipelines]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {target} |")

    row("busy: events per CPU-second", lambda f: f.per_cpu_s, 0, ",.0f", "")
    if "bridge" in pipelines and "stock" in pipelines:
        cell = mmm(ratios(results), ".2f")
        cells = [cell if p == "bridge" else ("1" if p == "stock" else "") for p in pipelines]
        lines.append(
            "| busy: bridge ÷ stock, events per CPU-second | " + " | ".join(cells) + " | ≥ 3 |"
        )
    row("busy: CPU µs per event", lambda f: f.us_per_event, 0, ".1f", "")
    row("busy: wall events/s", lambda f: f.wall_eps, 0, ",.0f", "")
    row("busy: spans lost", lambda f: f.loss, 0, ",.0f", "0")
    row("busy: duplicate spans", lambda f: f.duplicates, 0, ",.0f", "0")
    row("busy: peak RSS (MiB)", lambda f: f.hwm_kib / 1024, 0, ".1f", "")
    for rate in rates:
        target = f"≤ {TARGET_P99_MS:.0f} ms" if rate == 5000 else "(reported)"
        row(f"{rate:,}/s: lag p50 (ms)", lambda f: nan(f.lag_p50_ms), rate, ",.1f", "")
        row(f"{rate:,}/s: lag p99 (ms)", lambda f: nan(f.lag_p99_ms), rate, ",.1f", target)
        row(f"{rate:,}/s: CPU µs per event", lambda f: f.us_per_event, rate, ".1f", "")
        row(f"{rate:,}/s: spans lost", lambda f: f.loss, rate, ",.0f", "0")
    if idle:
        cells = [mmm(results.idle.get(p, []), ".1f") for p in pipelines]
        lines.append(
            f"| idle: KiB per subscription at {idle:,} | "
            + " | ".join(cells)
            + f" | ≤ {TARGET_IDLE_KIB:.0f} KiB |"
        )
    return "\n".join(lines)


def ratios(results: Results) -> list[float]:
    """Bridge over stock events per CPU-second, repetition by repetition."""
    pairs = zip(results.pick("bridge", 0), results.pick("stock", 0), strict=False)
    return [b.per_cpu_s / s.per_cpu_s for b, s in pairs]


def nan(value: float | None) -> float:
    """None as NaN."""
    return float("nan") if value is None else value


NEXT_LEVERS = "bench/README.md, 'Where the main thread goes now' and 'Next levers'"


def verdicts(results: Results, rates: list[int], idle: int) -> list[str]:
    """The targets, each met or not."""
    out: list[str] = []
    bridge, stock = results.pick("bridge", 0), results.pick("stock", 0)
    if bridge and stock:
        median = statistics.median(ratios(results))
        out.append(
            f"bridge ÷ stock, events per CPU-second, per repetition: {mmm(ratios(results), '.2f')} "
            f"(min / median / max) -> {'met' if median >= TARGET_RATIO else 'NOT met'} "
            f"(target ≥ {TARGET_RATIO:.0f}x)"
        )
    if bridge and 5000 in rates:
        p99 = [f.lag_p99_ms for f in results.pick("bridge", 5000) if f.lag_p99_ms is not None]
        if p99:
            ok = statistics.median(p99) <= TARGET_P99_MS
            out.append(
                f"bridge p99 lag at 5,000/s: median {statistics.median(p99):,.1f} ms -> "
                f"{'met' if ok else 'NOT met'} (target ≤ {TARGET_P99_MS:.0f} ms)"
            )
    if idle and results.idle.get("bridge"):
        kib = statistics.median(results.idle["bridge"])
        out.append(
            f"bridge idle memory at {idle:,} subscriptions: median {kib:.1f} KiB -> "
            f"{'met' if kib <= TARGET_IDLE_KIB else 'NOT met'} "
            f"(target ≤ {TARGET_IDLE_KIB:.0f} KiB at 1,000)"
        )
    lost = sum(f.loss for f in results.flows if f.pipeline == "bridge")
    if bridge:
        out.append(
            f"bridge spans lost, all measurements: {lost} -> {'met' if not lost else 'NOT met'}"
        )
    return out


def report(results: Results, pipelines: list[str], rates: list[int], idle: int) -> str:
    """What was measured on what, the table and the verdicts, as printed."""
    setup = results.setup
    where = "pinned: under test on CPU 0, peers on CPU 1" if setup["pinned"] else "UNPINNED"
    head = (
        f"{setup['runs']} runs x {setup['tasks']} tasks = {setup['events']:,} events, "
        f"{setup['spans']:,} spans per measurement; {setup['reps']} repetition(s); {where}; "
        f"{setup['cpu']} ({setup['cpus']} CPUs), Python {setup['python']}, {setup['git']}"
    )
    found = verdicts(results, rates, idle)
    if any("NOT met" in line for line in found):
        found.append(f"how far and the next levers: {NEXT_LEVERS}")
    lines = "".join(f"- {line}\n" for line in found)
    return f"\n{head}\n\n{table(results, pipelines, rates, idle)}\n\n{lines}"


def write_json(results: Results, path: str) -> None:
    """Every measurement, as JSON."""
    document = {
        "setup": results.setup,
        "flows": [asdict(f) for f in results.flows],
        "idle_kib_per_subscription": results.idle,
    }
    Path(path).write_text(json.dumps(document, indent=2))


def by_thread(flow: Flow) -> str:
    """CPU µs per event of each thread (kind) of the process under test, most first."""
    cells = sorted(flow.threads.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{name} {seconds / flow.events * 1e6:.1f}" for name, seconds in cells)
