"""Dashboards and alerts against a real Prometheus scraping a real bridge fed by the simulator.

The simulator plays flows with known outcomes; the bridge follows them over its control API
and serves /metrics; Debian's Prometheus scrapes it every second with OpenMetrics and
evaluates the shipped alert rules. Then every PromQL expression of every dashboard panel and
every alert goes through Prometheus's HTTP API: each must parse and return data, and the key
ones must return the numbers the scenario implies.

Counting windows: ``increase()`` only sees what happens between two samples, and it
extrapolates to the window's edges. The test therefore plays a warm-up round first (every
series exists before the measured round), and evaluates at the timestamp of the last scrape
over a window that starts just before the first scrape after the warm-up: the extrapolation
is then below 0.1% and the counts come out exact.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from test_alerts import signals
from test_dashboards import RULES, alert_rules, dashboard_queries, substitute

from otel_bridge.core.ids import run_trace_id
from otel_bridge.simulator import Quirks
from otel_bridge.sinks.labels import OTHER
from support.ports import LOOPBACK
from support.prometheus import PrometheusServer
from support.rig import Rig, running_rig
from support.timing import UNIT, wait_for

pytestmark = pytest.mark.integration

T = TypeVar("T")
JSON = dict[str, Any]
OK, FAIL, HANG, DENIED = "Metrics_OK", "Metrics_Fail", "Metrics_Hang", "Denied_Scratch"


def flow(name: str, run: str, *, task_s: float, fail: bool = False, hang: bool = False) -> JSON:
    """Return a run-dag body: fetch -> think (an agent) -> store, each ``task_s`` long.

    ``fail``: think fails with RateLimitError and the flow halts (flow_error);
    ``hang``: store starts and never ends, so the run stays in flight.
    """
    think: JSON = {"duration": task_s}
    if fail:
        think["fail"] = {"type": "RateLimitError", "message": "429 from provider", "code": "RL"}
    store: JSON = {"duration": task_s, **({"hang": "forever"} if hang else {})}
    return {
        "flow_name": name,
        "run_name": run,
        "tasks": [
            {
                "name": "fetch",
                "tag": "io",
                "function": "api_call",
                "params": {"config": {"url": "https://example.com/x", "method": "GET"}},
                "x-sim": {"duration": task_s},
            },
            {
                "name": "think",
                "tag": "agent",
                "function": "call_lyzr_agent",
                "params": {
                    "config": {"agent_id": "agent-7", "api_key": "sk-test"},
                    "data": {"depends": "fetch"},
                },
                "x-sim": think,
            },
            {
                "name": "store",
                "tag": "io",
                "function": "api_call",
                "params": {"data": {"depends": "think"}},
                "x-sim": store,
            },
        ],
    }


@dataclass(frozen=True)
class Played:
    """A run the scenario played and what it must become."""

    flow_name: str
    run_name: str
    result: str  # success | failure | in flight


class RulesPrometheus(PrometheusServer):
    """The support Prometheus, also evaluating the shipped alert rules (every second)."""

    def config(self, version: tuple[int, int, int]) -> dict[str, Any]:
        """Add the alert rule file to the support server's configuration."""
        config = super().config(version)
        config["rule_files"] = [str(RULES)]
        config["scrape_configs"][0]["job_name"] = "otel-bridge"  # OtelBridgeAbsent matches it
        return config


async def off_loop(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking Prometheus call in a thread: the bridge shares this event loop."""
    return await asyncio.to_thread(fn, *args, **kwargs)


class Scenario:
    """The simulator and the bridge (a rig), Prometheus, and the runs played through them."""

    def __init__(self, rig: Rig, prom: RulesPrometheus) -> None:
        self.rig = rig
        self.prom = prom
        self.played: list[Played] = []

    async def play(self, body: JSON, expect: str) -> None:
        """Subscribe the bridge to a run (control API), then start it in the simulator."""
        await self.rig.follow(body)
        self.played.append(Played(body["flow_name"], body["run_name"], expect))

    async def finish(self, runs: list[Played]) -> None:
        """Wait until the simulator ended each finishing run and the bridge closed it."""
        ending = [run for run in runs if run.result != "in flight"]
        for run in ending:
            await self.rig.sim.wait_run(run.flow_name, run.run_name, timeout=30 * UNIT)
        engine = self.rig.server.bridge.engine
        await wait_for(
            lambda: all(engine.is_closed(run.flow_name, run.run_name) for run in ending),
            15 * UNIT,
            "the bridge to close every run",
        )

    async def scraped(self, expr: str, expected: float, within_s: float = 20) -> None:
        """Wait until Prometheus has scraped ``expr == expected``."""

        def matches(data: JSON) -> bool:
            return bool(data["result"]) and float(data["result"][0]["value"][1]) == expected

        await off_loop(self.prom.wait_for, expr, matches, within_s * UNIT)

    async def scrapes_since(self, moment: float, count: int = 1) -> list[float]:
        """Wait for ``count`` scrapes at or after ``moment``; return their timestamps."""

        async def enough() -> list[float] | None:
            times = await self.sample_times(moment)
            return times if len(times) >= count else None

        return await wait_for(
            enough, (20 + count) * UNIT, f"{count} scrapes after {moment}", interval=0.2
        )

    async def first_scrape_after(self, moment: float) -> float:
        """Wait for the first scrape at or after ``moment``; return its timestamp."""
        return (await self.scrapes_since(moment))[0]

    async def sample_times(self, since: float) -> list[float]:
        """Timestamps of the bridge's scrapes since ``since`` (one series, every scrape)."""
        data = await off_loop(self.prom.query, "otel_bridge_build_info[5m]")
        (series,) = data["result"]
        return [float(ts) for ts, _ in series["values"] if float(ts) >= since]


@pytest.fixture
async def scenario(tmp_path: Path) -> AsyncIterator[Scenario]:
    quirks = Quirks(close_after_terminal=0.1, keepalive_interval=2.0)
    # Real time (scale 1): the durations played are what the dashboards must show.
    async with running_rig(
        quirks,
        time_scale=1.0,
        seed=7,
        terminal_grace_s=0.1,
        app_ping_interval_s=0,
        flow_deny=["Denied_.*"],
        otlp="off",
        state_dir=str(tmp_path / "state"),  # its metrics feed the state dir alert
    ) as rig:
        prom = RulesPrometheus([f"{LOOPBACK}:{rig.server.port}"])
        await off_loop(prom.start)
        try:
            yield Scenario(rig, prom)
        except BaseException:
            prom.dump_log()
            raise
        finally:
            await off_loop(prom.stop)


# -- the test ------------------------------------------------------------------------------------


def values(data: JSON) -> list[float]:
    """The sample values of an instant query's vector (or scalar) result."""
    if data["resultType"] == "scalar":
        return [float(data["result"][1])]
    return [float(sample["value"][1]) for sample in data["result"]]


def by_label(data: JSON, *labels: str) -> dict[tuple[str, ...], float]:
    """An instant vector as {label values: value}."""
    return {
        tuple(s["metric"].get(label, "") for label in labels): float(s["value"][1])
        for s in data["result"]
    }


@pytest.mark.timeout(240)
async def test_every_dashboard_and_alert_query_on_a_real_prometheus(scenario: Scenario) -> None:
    """All panel and alert PromQL parses and returns data; key numbers match what was played."""
    prom = scenario.prom
    await off_loop(prom.wait_for_targets_up, 30 * UNIT)

    # Warm-up: every flow once, so every series exists before the measured window.
    warm = [
        flow(OK, "warm-ok", task_s=0.4),
        flow(FAIL, "warm-fail", task_s=0.4, fail=True),
        flow(HANG, "warm-hang", task_s=0.6),  # long enough to be scraped in flight
        flow(DENIED, "warm-denied", task_s=0.4),
    ]
    outcomes = ["success", "failure", "success", "success"]
    for body, outcome in zip(warm, outcomes, strict=True):
        await scenario.play(body, outcome)
    await scenario.finish(scenario.played)
    await scenario.scraped("sum(lao_flow_runs_total)", 4)
    first_sample = await scenario.first_scrape_after(time.time() + 1.5)

    # The measured round, all at once: 3 succeed, 3 fail, 1 never ends, 1 has a denied name.
    measured_from = len(scenario.played)
    bodies = [(flow(OK, f"ok-{i}", task_s=0.45), "success") for i in range(3)]
    bodies += [(flow(FAIL, f"fail-{i}", task_s=0.3, fail=True), "failure") for i in range(3)]
    bodies += [(flow(HANG, "hang-0", task_s=0.3, hang=True), "in flight")]
    bodies += [(flow(DENIED, "denied-0", task_s=0.3), "success")]
    for body, outcome in bodies:
        await scenario.play(body, outcome)
    measured = scenario.played[measured_from:]
    await scenario.finish(measured)
    await scenario.scraped("sum(lao_flow_runs_total)", 4 + 7)
    await scenario.scraped("sum(lao_flow_runs_active)", 1)
    await scenario.scrapes_since(time.time(), 2)  # a longer window, a smaller extrapolation

    eval_at = (await scenario.sample_times(first_sample))[-1]
    window = f"{round((eval_at - first_sample) * 1000) + 1}ms"

    async def query(expr: str) -> JSON:
        data: JSON = await off_loop(prom.query, expr, eval_at)
        return data

    # Every dashboard target: parses, returns data, and at least one finite value.
    results: dict[tuple[str, str, str], JSON] = {}
    queries = dashboard_queries()
    for q in queries:
        data = await query(substitute(q.expr, window))
        found = values(data)
        assert found, f"no data: {q}"
        assert any(math.isfinite(v) for v in found), f"only NaN/Inf: {q} -> {found}"
        results[(q.dashboard, q.panel, q.ref)] = data
    assert len(results) == len(queries) >= 40

    def panel(title: str, ref: str = "A", dashboard: str = "lao-workflows.json") -> JSON:
        return results[(dashboard, title, ref)]

    def single(title: str, dashboard: str = "lao-workflows.json") -> float:
        (value,) = values(panel(title, dashboard=dashboard))
        return value

    # Key numbers, from what was played in the measured round.
    assert single("Runs started") == pytest.approx(8, abs=0.05)
    assert single("Runs finished") == pytest.approx(7, abs=0.05)
    assert single("Runs failed") == pytest.approx(3, abs=0.05)
    assert single("Success rate") == pytest.approx(4 / 7, abs=0.005)
    assert single("Runs in flight") == 1
    assert 0.5 < single("Run duration p95") <= 2.5
    started = by_label(panel("Runs started per flow"), "flow_name")
    assert set(started) == {(OK,), (FAIL,), (HANG,), (OTHER,)}
    finished = by_label(panel("Runs finished per flow and result"), "flow_name", "result")
    assert {k for k, v in finished.items() if v > 0} == {
        (OK, "success"),
        (FAIL, "failure"),
        (OTHER, "success"),
    }
    in_flight = by_label(panel("Runs in flight per flow"), "flow_name")
    assert in_flight == {(OK,): 0, (FAIL,): 0, (HANG,): 1, (OTHER,): 0}
    failing = by_label(panel("Top failing tasks"), "flow_name", "task_name")
    assert failing == pytest.approx({(FAIL, "think"): 3}, abs=0.05)
    errors = by_label(panel("Top error types"), "flow_name", "task_name", "error_type")
    assert errors == pytest.approx({(FAIL, "think", "RateLimitError"): 3}, abs=0.05)
    table = {ref: by_label(panel("Flows", ref), "flow_name") for ref in ("A", "B", "D", "E", "F")}
    assert table["A"] == pytest.approx({(OK,): 3, (FAIL,): 3, (HANG,): 0, (OTHER,): 1}, abs=0.05)
    assert table["B"] == pytest.approx({(OK,): 0, (FAIL,): 3, (HANG,): 0, (OTHER,): 0}, abs=0.05)
    assert table["D"][(OK,)] == 1 and table["D"][(FAIL,)] == 0 and table["D"][(OTHER,)] == 1
    assert 1 < table["E"][(OK,)] <= 2.5
    assert table["F"] == {(OK,): 0, (FAIL,): 0, (HANG,): 1, (OTHER,): 0}
    for title, ref in (("Run duration quantiles", "B"), ("Task duration quantiles", "B")):
        assert all(v > 0 for v in values(panel(title, ref)) if math.isfinite(v))

    health = "otel-bridge-health.json"
    assert single("Bridges", health) == 1
    assert single("Connected", health) == 1  # the run that never ends
    assert single("Reconnecting", health) == 0
    assert single("Frames rejected", health) == 0
    assert single("Spans lost", health) == 0
    overflow = by_label(panel("Label overflow", dashboard=health), "label")
    assert overflow[("flow_name",)] > 0 and overflow[("task_name",)] == 0
    exported = by_label(panel("Spans exported, failed and dropped", "A", health), "exporter")
    assert exported[("memory",)] > 0
    assert single("Python", health) == 1
    for title in ("CPU", "Resident memory"):
        assert min(values(panel(title, dashboard=health))) > 0, title

    # The raw counters the panels are built on, exact.
    raw = await query('sum by (result) (lao_flow_runs_total{result=~"success|failure"})')
    assert by_label(raw, "result") == {("success",): 3 + 1 + 1 + 2, ("failure",): 1 + 3}
    denied = [r for r in scenario.rig.sink.records if r.flow_name == DENIED]
    overflow_total = await query('otel_bridge_label_overflow_total{label="flow_name"}')
    assert values(overflow_total) == [len(denied) + 2]  # + one RunOpened per denied run

    # Exemplars: every exemplar query of the dashboards finds the trace ids of played runs.
    trace_ids = {f"{run_trace_id(r.flow_name, r.run_name):032x}" for r in scenario.played}
    for q in (q for q in queries if q.exemplar):
        series_found = await off_loop(
            prom.query_exemplars, substitute(q.expr, window), first_sample - 60, eval_at + 1
        )
        exemplars = [e for series in series_found for e in series["exemplars"]]
        assert exemplars, f"no exemplars: {q}"
        assert {e["labels"]["trace_id"] for e in exemplars} <= trace_ids
    fail_runs = {
        f"{run_trace_id(FAIL, r.run_name):032x}" for r in scenario.played if r.flow_name == FAIL
    }
    fail_found = await off_loop(
        prom.query_exemplars,
        f'lao_flow_run_duration_seconds_bucket{{flow_name="{FAIL}", result="failure"}}',
        first_sample - 60,
        eval_at + 1,
    )
    fail_exemplars = {e["labels"]["trace_id"] for s in fail_found for e in s["exemplars"]}
    assert fail_exemplars and fail_exemplars <= fail_runs

    # Alerts: every expression parses; every signal it thresholds returns data.
    for rule in alert_rules():
        await query(rule["expr"])
        for signal in signals(rule["expr"]):
            assert values(await query(signal)), f"{rule['alert']}: no data for {signal}"
    firing = {
        rule["alert"]: by_label(await query(rule["expr"]), "flow_name") for rule in alert_rules()
    }
    assert firing.pop("LaoFlowFailureRatioHigh") == pytest.approx({(FAIL,): 1.0})
    assert all(not result for result in firing.values()), firing

    # Prometheus itself evaluates the shipped rules: the failing flow's alert is pending.
    def pending(data: JSON) -> bool:
        return bool(data["result"])

    alerts = await off_loop(prom.wait_for, 'ALERTS{alertstate="pending"}', pending, 15 * UNIT)
    assert by_label(alerts, "alertname", "flow_name", "severity") == {
        ("LaoFlowFailureRatioHigh", FAIL, "warning"): 1
    }
