"""The run-dag body: parsing, validation and the task graph it describes.

A body is the bare flow object the Studio client posts::

    {"tasks": [{"name", "tag", "function", "params"}], "default_inputs": {...},
     "flow_name": "...", "run_name": "...", "edges": [...], "flow_data": {...}}

A top-level param value is a literal, ``{"value": x}``, ``{"input": "<default_inputs key>"}``
or ``{"depends": "<task name>"}``. A task's parents are the tasks it ``depends`` on plus the
sources of its incoming ``edges``. An edge leaving a ``gpt_conditional_block`` may carry the
condition ``"true"``/``"false"``; one leaving a ``gpt_router`` may carry ``"route == 'x'"``.
A task runs only if every parent ran and every conditional edge into it was taken, so an
untaken branch and all of its descendants emit nothing.

Simulation hints (our extension, ignored by the real LAO) live under ``"x-sim"`` on a task
and on the body; hints.py lists them. Anything wrong raises
:class:`FlowError`, a ``ValueError`` whose message says what and where (HTTP 422).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from otel_bridge.simulator.checks import (
    JSON,
    ROUTE,
    FlowError,
    branch_value,
    require_name,
    require_object,
)
from otel_bridge.simulator.hints import (
    Failure,
    FlowHints,
    HangMode,
    TaskHints,
    parse_flow_hints,
    parse_task_hints,
)

__all__ = [
    "BRANCHING",
    "FUNCTIONS",
    "JSON",
    "Edge",
    "Failure",
    "Flow",
    "FlowError",
    "FlowHints",
    "HangMode",
    "Task",
    "TaskHints",
    "parse_flow",
    "reference",
    "resolve_params",
]


FUNCTIONS = (
    "call_lyzr_agent",
    "api_call",
    "gpt_conditional_block",
    "gpt_router",
    "approval_block",
    "a2a",
)
BRANCHING = frozenset({"gpt_conditional_block", "gpt_router"})
_REFERENCE_KEYS = frozenset({"value", "input", "depends"})


@dataclass(frozen=True)
class Task:
    """One DAG node."""

    name: str
    tag: str
    function: str
    params: JSON
    hints: TaskHints = field(default_factory=TaskHints)


@dataclass(frozen=True)
class Edge:
    """A graph edge; ``condition`` is the branch value (``"true"``, a route) or None."""

    source: str
    target: str
    condition: str | None = None


@dataclass(frozen=True)
class Flow:
    """A validated run-dag body; ``tasks`` are in a topological order."""

    flow_name: str
    run_name: str
    tasks: tuple[Task, ...]
    edges: tuple[Edge, ...]
    default_inputs: JSON
    flow_data: JSON
    hints: FlowHints
    parents: Mapping[str, tuple[str, ...]] = field(compare=False)

    def task(self, name: str) -> Task:
        """Return the task called ``name``."""
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(name)

    def edges_into(self, name: str) -> tuple[Edge, ...]:
        """Return the edges whose target is ``name``."""
        return tuple(edge for edge in self.edges if edge.target == name)

    def branches_of(self, name: str) -> tuple[str, ...]:
        """Return the distinct conditions on edges leaving ``name``, in body order."""
        seen: dict[str, None] = {}
        for edge in self.edges:
            if edge.source == name and edge.condition is not None:
                seen[edge.condition] = None
        return tuple(seen)


def parse_flow(body: object) -> Flow:
    """Validate a run-dag body and return its :class:`Flow`, or raise :class:`FlowError`."""
    if not isinstance(body, dict):
        raise FlowError("body must be a JSON object (the bare flow)")
    if "workflow_data" in body and "tasks" not in body:
        raise FlowError(
            "field required: body.tasks (send the bare flow object with tasks, flow_name and"
            " run_name; the {'workflow_data', 'inputs'} wrapper is not accepted)"
        )
    flow_name = require_name(body.get("flow_name"), "body.flow_name")
    run_name = require_name(body.get("run_name"), "body.run_name")
    raw_tasks = body.get("tasks")
    if not isinstance(raw_tasks, list) or not raw_tasks:
        raise FlowError("body.tasks must be a non-empty list of tasks")
    default_inputs = require_object(body.get("default_inputs", {}), "body.default_inputs")
    flow_data = require_object(body.get("flow_data", {}), "body.flow_data")
    tasks = [_task(raw, index) for index, raw in enumerate(raw_tasks)]
    by_name: dict[str, Task] = {}
    for task in tasks:
        if task.name in by_name:
            raise FlowError(f"duplicate task name {task.name!r}")
        by_name[task.name] = task
    edges = _edges(body.get("edges", []), by_name)
    parents: dict[str, list[str]] = {task.name: [] for task in tasks}
    for task in tasks:
        for key, value in task.params.items():
            ref = reference(value)
            if ref is None:
                continue
            kind, target = ref
            where = f"task {task.name!r} param {key!r}"
            if kind == "depends":
                if not isinstance(target, str) or target not in by_name:
                    raise FlowError(f"{where} depends on unknown task {target!r}")
                _add(parents[task.name], target)
            elif kind == "input" and (not isinstance(target, str) or target not in default_inputs):
                raise FlowError(f"{where} reads input {target!r} which is not in default_inputs")
    for edge in edges:
        _add(parents[edge.target], edge.source)
    order = _topological(tasks, parents)
    return Flow(
        flow_name=flow_name,
        run_name=run_name,
        tasks=tuple(by_name[name] for name in order),
        edges=tuple(edges),
        default_inputs=default_inputs,
        flow_data=flow_data,
        hints=parse_flow_hints(body.get("x-sim", {})),
        parents={name: tuple(found) for name, found in parents.items()},
    )


def reference(value: object) -> tuple[str, object] | None:
    """Return ``(kind, target)`` if a param value is a ``value``/``input``/``depends`` reference."""
    if isinstance(value, dict) and len(value) == 1:
        (key, target), *_ = value.items()
        if key in _REFERENCE_KEYS:
            return key, target
    return None


def resolve_params(task: Task, inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> JSON:
    """Return a task's params with references replaced: what its task_started ``input`` shows."""
    resolved: JSON = {}
    for key, value in task.params.items():
        ref = reference(value)
        if ref is None:
            resolved[key] = value
        elif ref[0] == "value":
            resolved[key] = ref[1]
        elif ref[0] == "input":
            resolved[key] = inputs.get(str(ref[1]))
        else:
            resolved[key] = outputs.get(str(ref[1]))
    return resolved


def _add(items: list[str], item: str) -> None:
    if item not in items:
        items.append(item)


def _task(raw: object, index: int) -> Task:
    where = f"body.tasks[{index}]"
    if not isinstance(raw, dict):
        raise FlowError(f"{where} must be an object with name, tag, function and params")
    name = require_name(raw.get("name"), f"{where}.name")
    function = raw.get("function")
    if function not in FUNCTIONS:
        known = ", ".join(FUNCTIONS)
        raise FlowError(f"task {name!r} has unknown function {function!r} (known: {known})")
    tag = raw.get("tag", "")
    if not isinstance(tag, str):
        raise FlowError(f"task {name!r} tag must be a string")
    params = require_object(raw.get("params", {}), f"task {name!r} params")
    return Task(name, tag, str(function), params, parse_task_hints(raw.get("x-sim", {}), name))


def _edges(raw: object, tasks: Mapping[str, Task]) -> list[Edge]:
    if not isinstance(raw, list):
        raise FlowError("body.edges must be a list")
    edges: list[Edge] = []
    for index, item in enumerate(raw):
        where = f"body.edges[{index}]"
        if not isinstance(item, dict):
            raise FlowError(f"{where} must be an object with source and target")
        source = item.get("source", item.get("from"))
        target = item.get("target", item.get("to"))
        for end, value in (("source", source), ("target", target)):
            if not isinstance(value, str) or value not in tasks:
                raise FlowError(f"{where}.{end} names unknown task {value!r}")
        assert isinstance(source, str) and isinstance(target, str)
        data = item.get("data")
        raw_condition = item.get("condition")
        if raw_condition is None and isinstance(data, dict):
            raw_condition = data.get("condition")
        condition = None if raw_condition in (None, "") else branch_value(raw_condition)
        function = tasks[source].function
        if condition is not None:
            if function not in BRANCHING:
                raise FlowError(
                    f"{where} has condition {raw_condition!r} but its source {source!r} is a"
                    f" {function}, not a gpt_conditional_block or gpt_router"
                )
            if function == "gpt_conditional_block" and condition not in ("true", "false"):
                raise FlowError(f"{where} condition must be 'true' or 'false'")
            if function == "gpt_router" and not ROUTE.match(str(raw_condition)):
                raise FlowError(f"{where} condition must look like \"route == 'x'\"")
        edges.append(Edge(source, target, condition))
    return edges


def _topological(tasks: list[Task], parents: Mapping[str, list[str]]) -> list[str]:
    """Order task names parents-first (stable in body order), or raise on a cycle."""
    remaining = {task.name: set(parents[task.name]) for task in tasks}
    order: list[str] = []
    while remaining:
        ready = [name for name, deps in remaining.items() if not deps]
        if not ready:
            raise FlowError(f"the task graph has a cycle: {' -> '.join(_cycle(remaining))}")
        for name in ready:
            del remaining[name]
            order.append(name)
        for deps in remaining.values():
            deps.difference_update(ready)
    return order


def _cycle(remaining: Mapping[str, set[str]]) -> list[str]:
    """Return one cycle among tasks that all still wait on a parent, as a closed path."""
    path: list[str] = []
    node = min(remaining)
    while node not in path:
        path.append(node)
        node = min(remaining[node])
    cycle = path[path.index(node) :]
    cycle.reverse()  # parents point backwards; show the order the tasks would run in
    return [*cycle, cycle[0]]
