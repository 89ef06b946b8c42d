"""The events of the end-to-end benchmark, built once and framed as WebSocket bytes.

``build_frames`` makes every frame of ``runs`` runs of flow ``Bench_Flow`` before the source
listens, each already framed as WebSocket bytes (a server's frames are unmasked, so sending
one is one ``transport.write``): ``flow_started``, then per task ``task_started`` and
``task_completed`` (every 10th task ``task_failed`` instead) and at last ``flow_completed``,
so ``2 * tasks + 2`` events and ``tasks + 1`` spans per run. Timestamps are ISO-8601 with
microseconds; a ``task_started`` carries a small input (every 5th with an API key, like LAO's
examples), a ``task_completed`` a ~1 KB nested output. Runs are interleaved step by step, as
concurrent runs are.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

FLOW = "Bench_Flow"
TASK_NAMES = (
    "sentiment_analyzer",
    "update_salesforce",
    "send_notifications",
    "summarise_ticket",
    "classify_intent",
    "fetch_account",
    "draft_reply",
    "quality_check",
    "translate_reply",
    "route_ticket",
)
WORDS = tuple(
    " ".join(
        (
            "dashboard report access board meeting customer enterprise urgent escalation",
            "account invoice renewal latency outage deploy rollback region cluster timeout",
            "retry quota billing contract priority follow-up summary sentiment negative",
            "positive neutral agent workflow pipeline salesforce ticket case resolution owner",
        )
    ).split()
)


def iso(seconds: float) -> str:
    """ISO-8601 UTC with microseconds, as a Python LAO server would write it."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="microseconds")


def sentence(rng: random.Random, words: int) -> str:
    """Some words."""
    return " ".join(rng.choice(WORDS) for _ in range(words))


def task_input(rng: random.Random, run: int, task: int) -> dict[str, Any]:
    """A small task input; every 5th carries an API key (redaction has work to do)."""
    config: dict[str, Any] = {
        "agent_id": f"agent-{task % 7}",
        "url": "https://agents.example.com/v1/run",
        "method": "POST",
    }
    if task % 5 == 0:
        config["api_key"] = f"sk-prod-{rng.getrandbits(64):016x}"
    return {
        "config": config,
        "customer_message": sentence(rng, 18),
        "customer_email": f"user{run}@example.com",
        "priority": rng.choice(("low", "normal", "high", "urgent")),
    }


def task_output(rng: random.Random, when: float) -> dict[str, Any]:
    """A nested task output of about 1 KB once serialised."""
    return {
        "sentiment": rng.choice(("highly_negative", "negative", "neutral", "positive")),
        "confidence": round(rng.random(), 4),
        "urgency_score": round(rng.uniform(0, 10), 2),
        "key_issues": [rng.choice(WORDS) for _ in range(3)],
        "escalation_recommended": rng.random() < 0.3,
        "case": {
            "case_id": f"500{rng.getrandbits(40):010x}",
            "assigned_to": "senior-support-team",
            "sla_breach_warning": False,
            "history": [
                {"at": iso(when - 60 * i), "status": rng.choice(WORDS), "note": sentence(rng, 6)}
                for i in range(4)
            ],
        },
        "reply": {"subject": sentence(rng, 6), "body": sentence(rng, 30)},
        "usage": {"prompt_tokens": rng.randint(200, 2000), "completion_tokens": 180},
    }


def ws_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One unmasked, final WebSocket frame (what a server sends)."""
    size = len(payload)
    if size < 126:
        head = bytes((0x80 | opcode, size))
    elif size < 1 << 16:
        head = bytes((0x80 | opcode, 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 127)) + size.to_bytes(8, "big")
    return head + payload


@dataclass
class Frame:
    """One event, ready to write."""

    run: int
    data: bytes
    key: str | None  # set on span-closing frames: the lag is measured on them


def run_name(tag: str, run: int) -> str:
    """The name of run number ``run`` of a measurement."""
    return f"{tag}-{run:05d}"


def run_events(rng: random.Random, tag: str, run: int, tasks: int) -> list[dict[str, Any]]:
    """Every event of one run, in order."""
    name = run_name(tag, run)
    base = {"flow_name": FLOW, "run_name": name}
    t0 = time.time() - 30.0 - tasks * 0.5  # recent: the bridge keeps event timestamps
    events: list[dict[str, Any]] = [
        {
            "event_type": "flow_started",
            "task_id": f"flow-{name}",
            **base,
            "timestamp": iso(t0),
            "message": "Starting bench workflow",
        }
    ]
    for t in range(tasks):
        task = {
            "task_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "task_name": TASK_NAMES[t % len(TASK_NAMES)],
            **base,
        }
        start, end = t0 + 0.5 * t + 0.01, t0 + 0.5 * t + 0.4
        events.append(
            {
                "event_type": "task_started",
                **task,
                "timestamp": iso(start),
                "input": task_input(rng, run, t),
            }
        )
        ending: dict[str, Any] = {
            "event_type": "task_failed" if t % 10 == 9 else "task_completed",
            **task,
            "timestamp": iso(end),
            "execution_time": round(end - start, 6),
        }
        if t % 10 == 9:
            ending["error"] = {
                "type": "UpstreamTimeout",
                "message": "agent did not answer within 30 s",
                "code": "AGENT_TIMEOUT",
                "details": {"attempts": 3, "last_status": 504, "host": "agents.example.com"},
            }
        else:
            ending["output"] = task_output(rng, end)
        events.append(ending)
    events.append(
        {
            "event_type": "flow_completed",
            "task_id": "pipeline-complete",
            "task_name": "flow",
            **base,
            "timestamp": iso(t0 + 0.5 * tasks + 0.1),
            "total_execution_time": round(0.5 * tasks + 0.1, 3),
            "output": {"summary": {"tasks": tasks, "failed": tasks // 10, "ok": True}},
        }
    )
    return events


def build_frames(runs: int, tasks: int, tag: str, seed: int = 7) -> tuple[list[str], list[Frame]]:
    """Run names and every frame, interleaved step by step across runs."""
    rng = random.Random(seed)
    per_run = [run_events(rng, tag, r, tasks) for r in range(runs)]
    frames: list[Frame] = []
    for step in range(2 * tasks + 2):
        for r, events in enumerate(per_run):
            event = events[step]
            kind = event["event_type"]
            key = None
            if kind in ("task_completed", "task_failed"):
                key = event["task_id"]
            elif kind == "flow_completed":
                key = "run:" + event["run_name"]
            frames.append(Frame(r, ws_frame(json.dumps(event).encode()), key))
    return [events[0]["run_name"] for events in per_run], frames
