"""A run's plan: every random choice made up front, from a seeded generator.

The plan fixes each task's id, duration, outcome, output and branch, and the run-level
ids and messages, from the flow's ``x-sim`` hints where given and from ``rng`` otherwise.
Playing the plan (player.py) then needs no randomness, so a seed reproduces a run.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from otel_bridge.simulator.flow import JSON, Flow, Task
from otel_bridge.simulator.quirks import Quirks

Outcome = Literal["completed", "failed", "unreported", "forever"]

# Median simulated seconds per node function; durations are lognormal around these.
_MEDIAN_SECONDS = {
    "call_lyzr_agent": 2.0,
    "api_call": 0.8,
    "gpt_conditional_block": 1.2,
    "gpt_router": 1.2,
    "approval_block": 2.5,
    "a2a": 2.2,
}
_SIGMA = 0.4
_MIN_SECONDS, _MAX_SECONDS = 0.05, 30.0


@dataclass(frozen=True)
class TaskPlan:
    """What one task will do when played."""

    name: str
    task_id: str
    delay: float
    duration: float
    outcome: Outcome
    output: JSON
    error: JSON | None = None
    partial_results: JSON | None = None
    branch: str | None = None
    progress: bool = False


@dataclass(frozen=True)
class RunPlan:
    """What one run will do when played."""

    run_id: str
    message: str
    complete_task_id: str
    tasks: Mapping[str, TaskPlan]
    extra_output: JSON
    flow_error: JSON | None
    flow_partial_results: JSON | None
    omit_task_ids: bool
    timestamps: str


def new_uuid(rng: random.Random) -> str:
    """Return a version-4 UUID string drawn from ``rng``."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def plan_run(flow: Flow, rng: random.Random, quirks: Quirks | None = None) -> RunPlan:
    """Return the plan of one run of ``flow``, drawing unhinted choices from ``rng``."""
    quirks = quirks or Quirks()
    hints = flow.hints
    style = hints.timestamps or quirks.timestamp_style(rng)
    omit = quirks.omit_task_ids if hints.omit_task_ids is None else hints.omit_task_ids
    tasks = {task.name: _plan_task(flow, task, rng, quirks) for task in flow.tasks}
    return RunPlan(
        run_id=hints.task_id or new_uuid(rng),
        message=hints.message or f"Starting {flow.flow_name} workflow",
        complete_task_id=hints.complete_task_id,
        tasks=tasks,
        extra_output=hints.output,
        flow_error=hints.error,
        flow_partial_results=hints.partial_results,
        omit_task_ids=omit,
        timestamps=style,
    )


def random_duration(function: str, rng: random.Random) -> float:
    """Return a lognormal duration in seconds around the function's median."""
    median = _MEDIAN_SECONDS.get(function, 1.5)
    seconds = rng.lognormvariate(math.log(median), _SIGMA)
    return round(min(max(seconds, _MIN_SECONDS), _MAX_SECONDS), 3)


def _plan_task(flow: Flow, task: Task, rng: random.Random, quirks: Quirks) -> TaskPlan:
    hints = task.hints
    duration = hints.duration
    if duration is None:
        duration = flow.hints.duration
    if duration is None:
        duration = random_duration(task.function, rng)
    branch = None
    if task.function in ("gpt_conditional_block", "gpt_router"):
        branch = hints.branch or _random_branch(flow, task, rng)
    output = hints.output if hints.output is not None else _random_output(task, branch, rng)
    outcome: Outcome = "completed"
    error = partial = None
    if hints.fail is not None:
        outcome = "failed"
        error, partial = hints.fail.error(), hints.fail.partial_results
    elif hints.hang == "unreported":
        outcome = "unreported"
    elif hints.hang == "forever":
        outcome = "forever"
    return TaskPlan(
        name=task.name,
        task_id=hints.task_id or new_uuid(rng),
        delay=hints.delay,
        duration=duration,
        outcome=outcome,
        output=output,
        error=error,
        partial_results=partial,
        branch=branch,
        progress=quirks.unknown_events > 0 and rng.random() < quirks.unknown_events,
    )


def _random_branch(flow: Flow, task: Task, rng: random.Random) -> str:
    if task.function == "gpt_conditional_block":
        return rng.choice(("true", "false"))
    routes = flow.branches_of(task.name)
    return rng.choice(routes) if routes else "default"


def _config(task: Task) -> Mapping[str, Any]:
    config = task.params.get("config")
    return config if isinstance(config, dict) else {}


def _random_output(task: Task, branch: str | None, rng: random.Random) -> JSON:
    config = _config(task)
    function = task.function
    if function == "gpt_conditional_block":
        return {
            "condition_result": branch == "true",
            "branch": branch,
            "reasoning": f"evaluated the condition of {task.name}",
        }
    if function == "gpt_router":
        return {"route": branch, "confidence": round(rng.uniform(0.6, 0.99), 2)}
    if function == "api_call":
        return {
            "status_code": rng.choice((200, 200, 200, 201)),
            "url": config.get("url", "https://api.example.com/v1/resource"),
            "response": {"id": f"{rng.getrandbits(48):012x}", "ok": True},
        }
    if function == "approval_block":
        return {
            "approved": True,
            "approved_by": rng.choice(("ops-lead@company.com", "manager@company.com")),
            "comment": "looks good",
        }
    if function == "a2a":
        return {
            "remote_agent": config.get("agent_url", "https://agents.example.com/a2a"),
            "response": f"remote agent handled {task.name}",
        }
    return {
        "response": f"{config.get('agent_name', task.name)} answered",
        "agent_id": config.get("agent_id", "agent-default"),
        "session_id": config.get("session_id", new_uuid(rng)),
        "tokens_used": rng.randint(120, 2400),
        "confidence": round(rng.uniform(0.5, 0.99), 2),
    }
