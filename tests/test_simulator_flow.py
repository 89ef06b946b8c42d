"""The LAO simulator's pure parts: run-dag parsing, scheduling, planning and event shapes."""

from __future__ import annotations

import random
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_bridge.simulator.events import EventBuilder, format_timestamp
from otel_bridge.simulator.flow import Flow, FlowError, parse_flow, resolve_params
from otel_bridge.simulator.flows import customer_support_flow, financial_data_flow, generate_flow
from otel_bridge.simulator.plan import plan_run
from otel_bridge.simulator.player import Schedule
from otel_bridge.simulator.quirks import Quirks


def body(
    tasks: list[dict[str, object]], edges: list[dict[str, object]] | None = None
) -> dict[str, object]:
    return {"flow_name": "F", "run_name": "r", "tasks": tasks, "edges": edges or []}


def task(name: str, function: str = "api_call", **params: object) -> dict[str, object]:
    return {"name": name, "tag": "t", "function": function, "params": params}


def test_parse_orders_tasks_parents_first() -> None:
    """Tasks come out in dependency order whatever order the body lists them in."""
    flow = parse_flow(
        body(
            [task("c", x={"depends": "b"}), task("b", x={"depends": "a"}), task("a")],
        )
    )
    assert [t.name for t in flow.tasks] == ["a", "b", "c"]
    assert flow.parents == {"a": (), "b": ("a",), "c": ("b",)}


def test_edges_are_dependencies_too() -> None:
    """An edge without a condition orders its target after its source."""
    flow = parse_flow(body([task("b"), task("a")], [{"source": "a", "target": "b"}]))
    assert [t.name for t in flow.tasks] == ["a", "b"]


def test_cycle_is_rejected_with_the_cycle_named() -> None:
    """A cyclic DAG raises FlowError naming the tasks on the cycle."""
    with pytest.raises(FlowError, match=r"cycle: .*a -> b -> a|cycle: .*b -> a -> b"):
        parse_flow(body([task("a", x={"depends": "b"}), task("b", x={"depends": "a"})]))


def test_self_dependency_is_a_cycle() -> None:
    """A task depending on itself is a cycle."""
    with pytest.raises(FlowError, match="cycle"):
        parse_flow(body([task("a", x={"depends": "a"})]))


def test_unknown_dependency_is_rejected() -> None:
    """A depends on a task that does not exist names both."""
    with pytest.raises(FlowError, match="'a' param 'x' depends on unknown task 'ghost'"):
        parse_flow(body([task("a", x={"depends": "ghost"})]))


def test_unknown_input_is_rejected() -> None:
    """An input reference to a missing default_inputs key is rejected."""
    with pytest.raises(FlowError, match="reads input 'missing'"):
        parse_flow(body([task("a", x={"input": "missing"})]))


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"workflow_data": {"tasks": []}, "inputs": {}}, "wrapper is not accepted"),
        ({"flow_name": "F", "run_name": "r", "tasks": []}, "non-empty list"),
        ({"flow_name": "", "run_name": "r", "tasks": [task("a")]}, "flow_name"),
        (body([task("a"), task("a")]), "duplicate task name"),
        (body([task("a", function="shell")]), "unknown function 'shell'"),
        (body([task("a")], [{"source": "a", "target": "zz"}]), "unknown task 'zz'"),
        (
            body([task("a"), task("b")], [{"source": "a", "target": "b", "condition": "true"}]),
            "not a gpt_conditional_block",
        ),
        (
            body(
                [task("g", "gpt_router"), task("b")],
                [{"source": "g", "target": "b", "condition": "billing"}],
            ),
            "route == 'x'",
        ),
        ([1, 2], "JSON object"),
    ],
)
def test_bad_bodies_say_what_is_wrong(bad: object, message: str) -> None:
    """Each malformed body raises a FlowError whose message points at the problem."""
    with pytest.raises(FlowError, match=message):
        parse_flow(bad)


def test_params_resolve_to_the_task_input() -> None:
    """Literals stay, value unwraps, input reads default_inputs, depends reads outputs."""
    raw = body(
        [task("a"), task("b", lit=3, v={"value": [1]}, i={"input": "k"}, d={"depends": "a"})]
    )
    raw["default_inputs"] = {"k": "from-input"}
    flow = parse_flow(raw)
    resolved = resolve_params(flow.task("b"), flow.default_inputs, {"a": {"out": 1}})
    assert resolved == {"lit": 3, "v": [1], "i": "from-input", "d": {"out": 1}}


def branching_flow() -> Flow:
    return parse_flow(
        body(
            [
                task("start"),
                task("gate", "gpt_conditional_block"),
                task("yes"),
                task("yes_child", x={"depends": "yes"}),
                task("no"),
                task("router", "gpt_router"),
                task("billing"),
                task("tech"),
            ],
            [
                {"source": "start", "target": "gate"},
                {"source": "gate", "target": "yes", "condition": "true"},
                {"source": "gate", "target": "no", "condition": "false"},
                {"source": "start", "target": "router"},
                {"source": "router", "target": "billing", "condition": "route == 'billing'"},
                {"source": "router", "target": "tech", "condition": 'route == "tech"'},
            ],
        )
    )


def test_schedule_skips_untaken_branches_and_their_descendants() -> None:
    """A false branch skips the true side and everything below it; routers pick one route."""
    flow = branching_flow()
    schedule = Schedule(flow)
    assert schedule.take_ready() == ["start"]
    schedule.finish("start")
    assert sorted(schedule.take_ready()) == ["gate", "router"]
    schedule.finish("gate", "false")
    schedule.finish("router", "tech")
    assert sorted(schedule.take_ready()) == ["no", "tech"]
    assert schedule.skipped == {"yes", "yes_child", "billing"}
    schedule.finish("no")
    schedule.finish("tech")
    assert schedule.take_ready() == []
    assert schedule.settled


def test_schedule_halts_on_failure() -> None:
    """After a failure nothing new starts, and the schedule settles once running tasks end."""
    flow = parse_flow(body([task("a"), task("b"), task("c", x={"depends": "a"})]))
    schedule = Schedule(flow)
    assert schedule.take_ready() == ["a", "b"]
    schedule.fail("a")
    assert schedule.take_ready() == []
    assert not schedule.settled
    schedule.finish("b")
    assert schedule.settled
    assert schedule.pending == ["c"]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 100_000), n_tasks=st.integers(3, 16), order=st.randoms())
def test_generated_flows_schedule_parents_first(
    seed: int, n_tasks: int, order: random.Random
) -> None:
    """Any generated DAG, finished in any order, starts a task only after all its parents."""
    flow = parse_flow(generate_flow(random.Random(seed), n_tasks))
    assert len(flow.tasks) == n_tasks
    schedule = Schedule(flow)
    running: list[str] = []
    while True:
        for name in schedule.take_ready():
            assert all(parent in schedule.finished for parent in flow.parents[name])
            running.append(name)
        if not running:
            break
        name = running.pop(order.randrange(len(running)))
        branches = flow.branches_of(name)
        schedule.finish(name, order.choice(branches) if branches else None)
    assert set(schedule.finished) | schedule.skipped == {t.name for t in flow.tasks}


def test_generated_flows_have_parallel_branches_conditionals_and_secrets() -> None:
    """A generated flow fans out, has a conditional block and carries secrets in config."""
    raw = generate_flow(random.Random(7), 10)
    flow = parse_flow(raw)
    first = flow.tasks[0].name
    assert sum(1 for parents in flow.parents.values() if parents == (first,)) >= 2
    assert any(t.function == "gpt_conditional_block" for t in flow.tasks)
    assert {e.condition for e in flow.edges} >= {"true", "false"}
    text = repr(raw)
    assert "sk-live-" in text and "Bearer tok_" in text


def test_generated_failures_and_odd_names() -> None:
    """failure_rate=1 makes every plain task fail; odd_names=1 gives names with spaces."""
    raw = generate_flow(random.Random(1), 6, failure_rate=1.0, odd_names=1.0)
    assert " " in str(raw["flow_name"]) and " " in str(raw["run_name"])
    flow = parse_flow(raw)
    plain = [t for t in flow.tasks if t.function not in ("gpt_conditional_block", "gpt_router")]
    assert plain and all(t.hints.fail is not None for t in plain)


def test_seed_flows_parse_with_their_hints() -> None:
    """The docs' flows parse; their hints fix ids, the hang and the failure."""
    support = parse_flow(customer_support_flow())
    assert support.task("send_notifications").hints.hang == "unreported"
    assert support.hints.task_id == "cust-support-001"
    financial = parse_flow(financial_data_flow())
    failure = financial.task("validate_financial_data").hints.fail
    assert failure is not None and failure.type == "DataValidationError"
    assert financial.hints.omit_task_ids is True


def test_plan_is_reproducible_from_the_seed() -> None:
    """The same seed plans the same ids, durations and outputs."""
    flow = parse_flow(generate_flow(random.Random(3), 8))
    first = plan_run(flow, random.Random(42))
    again = plan_run(flow, random.Random(42))
    other = plan_run(flow, random.Random(43))
    assert first == again
    assert first != other
    assert all(0.05 <= p.duration <= 30 for p in first.tasks.values())


def test_plan_mixed_timestamps_picks_one_style_per_run() -> None:
    """With timestamps=mixed each run gets one of the three styles."""
    flow = parse_flow(body([task("a")]))
    quirks = Quirks(timestamps="mixed")
    styles = {plan_run(flow, random.Random(n), quirks).timestamps for n in range(30)}
    assert styles == {"seconds", "milliseconds", "iso"}


def test_timestamp_formats() -> None:
    """Seconds stay floats, milliseconds become ints, iso becomes a UTC string."""
    assert format_timestamp(1756806125.043, "seconds") == 1756806125.043
    assert format_timestamp(1756806125.043, "milliseconds") == 1756806125043
    iso = format_timestamp(1756806125.043, "iso")
    assert iso == "2025-09-02T09:42:05.043Z"
    assert datetime.fromisoformat(str(iso)).timestamp() == pytest.approx(1756806125.043)


def test_event_builder_matches_the_seed_shape() -> None:
    """Events have the seed's keys in the seed's order; omit_task_ids drops task_id."""
    builder = EventBuilder("F", "r", clock=lambda: 1756806125.043)
    event = builder.task_completed("id-1", "t", 5.3333, {"x": 1})
    assert list(event) == [
        "event_type",
        "task_id",
        "task_name",
        "flow_name",
        "run_name",
        "timestamp",
        "execution_time",
        "output",
    ]
    assert event["execution_time"] == 5.333
    done = builder.flow_completed("pipeline-complete", 13.41, {})
    assert done["task_name"] == "flow" and done["task_id"] == "pipeline-complete"
    bare = EventBuilder("F", "r", omit_task_ids=True).flow_error("run", {"type": "E"}, {})
    assert "task_id" not in bare and list(bare)[-2:] == ["error", "partial_results"]


def test_quirks_reject_nonsense() -> None:
    """Out-of-range quirk values raise ValueError."""
    with pytest.raises(ValueError, match="probability"):
        Quirks(duplicate_events=2.0)
    with pytest.raises(ValueError, match="disconnect_after"):
        Quirks(disconnect_after=-1)
    with pytest.raises(ValueError, match="keepalive_interval"):
        Quirks(keepalive_interval=0)
