"""Secrets planted in every shape and every field of a run, to prove none leaves the bridge.

:func:`planted_run` returns the frames of one run whose every field carries secrets in the
shapes LAO payloads really have (agent ``api_key``s, ``Authorization`` headers of
``api_call`` params in three pair shapes, cookies, DSNs, PEM keys, env lines, ...), and the
list of secret strings that must appear nowhere that leaves the bridge.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

T0 = 1_756_806_000.0


@dataclass
class Planted:
    """Secret values, each distinct, handed out by shape."""

    secrets: list[str] = field(default_factory=list)

    def keep(self, value: str) -> str:
        """Remember a secret value; return it."""
        self.secrets.append(value)
        return value

    def opaque(self, n: int) -> str:
        """A secret with no shape of its own (only its key or line gives it away)."""
        return self.keep(f"opaqueSecret{n:03d}Zq")

    def sk(self, n: int) -> str:
        """An OpenAI-style key."""
        return self.keep(f"sk-proj-plant{n:03d}AbCdEfGh")

    def aws(self, n: int) -> str:
        """An AWS access key id."""
        return self.keep(f"AKIAPLANT{n:03d}ABCDEFGH")

    def jwt(self, n: int) -> str:
        """A JSON Web Token."""
        return self.keep(f"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwbGFudCR7bn0ifQ.sig{n:03d}AbCdEfGhIj")

    def github(self, n: int) -> str:
        """A GitHub token."""
        return self.keep(f"ghp_plant{n:03d}abcdefghijklmnopqrstuv")


def _config(p: Planted) -> dict[str, Any]:
    return {
        "agent_id": p.sk(1),  # a secret-looking agent id
        "agent_name": f"Helper {p.aws(2)}",
        "session_id": "s-1",
        "api_key": p.opaque(3),
        "apiKey": p.opaque(4),
        "api_url": f"https://user:{p.opaque(5)}@agents.example.com/v1?api_key={p.opaque(6)}",
        "user_id": "u-1",
    }


def _api_call_params(p: Planted) -> dict[str, Any]:
    return {
        "config": {
            "url": f"https://api.example.com/x?token={p.opaque(10)}&q=1",
            "method": "POST",
            "headers": {"Authorization": f"Bearer {p.opaque(11)}", "X-Api-Key": p.opaque(12)},
        },
        "header_list": [["x-api-key", p.opaque(13)], ["Accept", "application/json"]],
        "header_pairs": [
            {"name": "Authorization", "value": f"Digest {p.opaque(14)}"},
            {"key": "X-Auth-Token", "value": p.opaque(15)},
        ],
        "auth": p.opaque(16),
        "bearer": p.opaque(17),
        "pwd": p.opaque(18),
        "passwd": p.opaque(19),
        "passphrase": f"two {p.opaque(20)}",
        "db_pass": p.opaque(21),
        "refresh": p.opaque(22),
        "otp": p.opaque(23),
        "dsn": f"postgres://admin:{p.opaque(24)}@db.internal:5432/app",
        "notes": "\n".join(
            [
                f"Cookie: session={p.opaque(25)}; theme=dark",
                f"Set-Cookie: id={p.opaque(26)}; HttpOnly",
                f'Authorization: Digest username="u", response="{p.opaque(27)}"',
                f"password: correct horse {p.opaque(28)}",
                f"curl -H 'X-Api-Key: {p.opaque(29)}' https://api.example.com",
                f"OPENAI_API_KEY={p.sk(30)}",
                f"DB_PASSWORD={p.opaque(31)}",
                "-----BEGIN RSA PRIVATE KEY-----",
                p.opaque(32),
                "-----END RSA PRIVATE KEY-----",
            ]
        ),
        "stray": f"tokens seen: {p.jwt(33)} {p.github(34)} {p.aws(35)}",
    }


def planted_run(flow: str = "Planted_Flow", run: str = "run_1") -> tuple[list[str], list[str]]:
    """(frames of one run with secrets everywhere, the secrets that must never leave)."""
    p = Planted()
    base = {"flow_name": flow, "run_name": run}
    agent_task = f"summarise {p.sk(40)}"  # a task name with a secret in it
    api_task = "call_crm"
    frames: list[dict[str, Any] | str] = [
        {
            **base,
            "event_type": "flow_started",
            "timestamp": T0,
            "task_id": p.jwt(41),
            "message": f"starting with Bearer {p.opaque(42)}",
        },
        {
            **base,
            "event_type": "task_started",
            "task_id": p.aws(43),
            "task_name": agent_task,
            "timestamp": T0 + 1,
            "input": {"config": _config(p), "prompt": "hello"},
        },
        {
            **base,
            "event_type": "task_completed",
            "task_id": p.aws(43),
            "task_name": agent_task,
            "timestamp": T0 + 2,
            "execution_time": 1.0,
            "output": {
                "answer": "ok",
                "session_token": p.opaque(44),
                "echo": f"STRIPE_KEY={p.opaque(45)}",
            },
        },
        {
            **base,
            "event_type": "task_started",
            "task_id": "t-2",
            "task_name": api_task,
            "timestamp": T0 + 3,
            "input": _api_call_params(p),
        },
        {
            **base,
            "event_type": "task_progress",
            "timestamp": T0 + 3.5,
            "message": f"retrying with password={p.opaque(46)}",
            "task_name": api_task,
        },
        {
            **base,
            "event_type": "task_failed",
            "task_id": "t-2",
            "task_name": api_task,
            "timestamp": T0 + 4,
            "execution_time": 1.0,
            "error": {
                "type": f"AuthError {p.jwt(47)}",
                "code": p.sk(48),
                "message": f"401 for Authorization: Bearer {p.opaque(49)}",
                "details": {"token": p.opaque(50)},
            },
            "partial_results": {"password": p.opaque(51)},
        },
        f'{{"event_type": "task_started", "broken": "Bearer {p.opaque(52)}"',  # rejected
        {
            **base,
            "event_type": "flow_error",
            "timestamp": T0 + 5,
            "error": {"type": "PipelineHalted", "message": f"stopped: api_key={p.opaque(53)}"},
            "partial_results": {"creds": {"api_key": p.opaque(54)}},
        },
    ]
    texts = [f if isinstance(f, str) else json.dumps(f) for f in frames]
    return texts, p.secrets
