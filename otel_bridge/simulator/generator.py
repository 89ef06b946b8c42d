"""Random run-dag bodies: parallel branches, conditionals, secrets and optional failures."""

from __future__ import annotations

import copy
import random
from typing import Any

from otel_bridge.simulator.flow import JSON

_ODD_FLOW_NAMES = (
    "Support Flow/β 1",
    "Lead Scoring (EU) #2",
    "Invoice+Triage: tier 2",
    "KYC review \u2013 nightly",
)
_ERRORS = (
    ("TimeoutError", "upstream did not answer within 30s", "TIMEOUT"),
    ("RateLimitError", "429 Too Many Requests from model provider", "RATE_LIMITED"),
    ("HTTPError", "502 Bad Gateway", "HTTP_502"),
    ("AgentError", "agent returned malformed JSON", "AGENT_OUTPUT_INVALID"),
)
_PLAIN = ("call_lyzr_agent", "api_call", "a2a", "approval_block")
_PLAIN_WEIGHTS = (0.45, 0.35, 0.1, 0.1)


def generate_flow(
    rng: random.Random,
    n_tasks: int = 8,
    *,
    flow_name: str | None = None,
    run_name: str | None = None,
    failure_rate: float = 0.0,
    odd_names: float = 0.2,
    conditional: bool = True,
) -> JSON:
    """Return a random run-dag body of ``n_tasks`` (at least 3) tasks.

    It starts with an agent task fanning out to two or three parallel siblings; with
    ``conditional`` and room for it, a gpt_conditional_block (and sometimes a gpt_router)
    follows with one task per branch; the rest attach to one or two earlier tasks. Agent
    and API tasks carry secrets in ``params.config``. Each non-branching task fails with
    probability ``failure_rate``; names are odd (spaces, ``/``, non-ASCII) with probability
    ``odd_names``.
    """
    n_tasks = max(n_tasks, 3)
    builder = _Builder(rng)
    first = builder.add("call_lyzr_agent", [], first=True)
    siblings = [
        builder.add(_plain(rng), [first]) for _ in range(min(rng.choice((2, 3)), n_tasks - 1))
    ]
    if conditional and n_tasks - len(builder.tasks) >= 3:
        gate = builder.add("gpt_conditional_block", rng.sample(siblings, min(2, len(siblings))))
        for branch in ("true", "false"):
            builder.add(_plain(rng), [], gate=(gate, f"{branch}"))
        if n_tasks - len(builder.tasks) >= 3 and rng.random() < 0.5:
            router = builder.add("gpt_router", [rng.choice(siblings)])
            for route in ("billing", "technical"):
                builder.add(_plain(rng), [], gate=(router, f"route == '{route}'"))
    while len(builder.tasks) < n_tasks:
        candidates = builder.plain_names()
        parents = rng.sample(candidates, min(len(candidates), rng.choice((1, 1, 2))))
        builder.add(_plain(rng), parents)
    for task in builder.tasks:
        if task["function"] not in ("gpt_conditional_block", "gpt_router") and (
            rng.random() < failure_rate
        ):
            kind, message, code = rng.choice(_ERRORS)
            task["x-sim"] = {
                "fail": {
                    "type": kind,
                    "message": message,
                    "code": code,
                    "details": {"attempt": 1},
                    "partial_results": {"progress": round(rng.random(), 2)},
                }
            }
    if flow_name is None:
        flow_name = rng.choice(_ODD_FLOW_NAMES) if rng.random() < odd_names else "Generated_Flow"
    if run_name is None:
        number = rng.randrange(1_000_000)
        run_name = f"run {number} \u2013 retry" if rng.random() < odd_names else f"run_{number:06d}"
    return {
        "flow_name": flow_name,
        "run_name": run_name,
        "default_inputs": {
            "user_query": "Why was I charged twice this month?",
            "customer_email": "jane.doe@example.com",
        },
        "tasks": builder.tasks,
        "edges": builder.edges,
        "flow_data": {"generated": True, "n_tasks": n_tasks},
    }


def _plain(rng: random.Random) -> str:
    return rng.choices(_PLAIN, weights=_PLAIN_WEIGHTS)[0]


class _Builder:
    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self.tasks: list[JSON] = []
        self.edges: list[JSON] = []

    def plain_names(self) -> list[str]:
        branching = ("gpt_conditional_block", "gpt_router")
        return [str(task["name"]) for task in self.tasks if task["function"] not in branching]

    def add(
        self,
        function: str,
        parents: list[str],
        *,
        first: bool = False,
        gate: tuple[str, str] | None = None,
    ) -> str:
        index = len(self.tasks) + 1
        name = f"{_STEM[function]}_{index}"
        if self._rng.random() < 0.1:
            name = f"{_STEM[function]} step {index}"
        params: JSON = copy.deepcopy(self._config(function, index))
        if first:
            params["query"] = {"input": "user_query"}
            params["customer_email"] = {"input": "customer_email"}
        for number, parent in enumerate(parents):
            params["context" if number == 0 else f"context_{number + 1}"] = {"depends": parent}
            self.edges.append({"source": parent, "target": name})
        if gate is not None:
            self.edges.append({"source": gate[0], "target": name, "condition": gate[1]})
        self.tasks.append({"name": name, "tag": function, "function": function, "params": params})
        return name

    def _config(self, function: str, index: int) -> dict[str, Any]:
        token = f"{self._rng.getrandbits(64):016x}"
        if function == "call_lyzr_agent":
            return {
                "config": {
                    "agent_id": f"agent-{index}",
                    "agent_name": f"Agent {index}",
                    "session_id": f"session-{token[:8]}",
                    "api_key": f"sk-live-{token}",
                    "api_url": "https://agent-prod.studio.lyzr.ai/v3/inference/chat/",
                    "user_id": "ops@company.com",
                }
            }
        if function == "api_call":
            return {
                "config": {
                    "url": f"https://api.example.com/v1/step/{index}",
                    "method": self._rng.choice(("GET", "POST")),
                    "headers": {"Authorization": f"Bearer tok_{token}"},
                }
            }
        if function == "a2a":
            return {
                "config": {"agent_url": "https://agents.example.com/a2a", "api_key": f"a2a-{token}"}
            }
        if function == "approval_block":
            return {"approvers": ["manager@company.com"], "message": "Please approve this step"}
        if function == "gpt_router":
            return {"routes": ["billing", "technical"], "prompt": "Which team should handle it?"}
        return {"condition": "Does the request need escalation?"}


_STEM = {
    "call_lyzr_agent": "agent",
    "api_call": "api",
    "a2a": "remote",
    "approval_block": "approval",
    "gpt_conditional_block": "needs_escalation",
    "gpt_router": "route_request",
}
