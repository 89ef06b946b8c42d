"""Fuzzing frames → engine → every output: no planted secret leaks, no exception escapes.

Generated runs carry secrets in random places: opaque values under secret keys (at any
depth, in header pairs of every shape) and secret-shaped strings anywhere (names, ids,
messages, payloads, error types). ``FUZZ_EXAMPLES`` sets the number of runs (CI: 150; the
long run in the README: ``make fuzz``, 20,000).
"""

from __future__ import annotations

import json
import os
import re
import tracemalloc
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_bridge.core import Engine
from otel_bridge.core.outputs import FrameRejected, InternalError, Output
from otel_bridge.core.records import SpanRecord

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
T0 = 1_756_806_000.0
NS = 1_000_000_000
NEEDLE = re.compile(r"Zq\d{9}needle")
SECRET_KEYS = [
    "api_key",
    "Authorization",
    "x-api-key",
    "password",
    "db_pass",
    "token",
    "client_secret",
    "refreshToken",
    "passphrase",
    "otp",
    "Set-Cookie",
    "pwd",
]
PLAIN_KEYS = ["name", "value", "query", "prompt", "result", "items", "config", "url", "n"]
WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789 _-./", max_size=24)


@st.composite
def needle(draw: st.DrawFn) -> str:
    """A unique opaque secret value."""
    return f"Zq{draw(st.integers(0, 10**9)):09d}needle"


@st.composite
def shaped(draw: st.DrawFn) -> str:
    """A secret with a recognisable shape, its unique part a needle."""
    core = draw(needle())
    kind = draw(st.sampled_from(["sk", "aws", "jwt", "gh", "bearer", "url", "env", "line"]))
    return {
        "sk": f"sk-{core}",
        "aws": "AKIA" + core[2:11].upper().ljust(16, "Q")[:16],
        "jwt": f"eyJhbGciOiJI.eyJ{core}.sig{core}",
        "gh": f"ghp_{core}abcdefghij",
        "bearer": f"Bearer {core}",
        "url": f"https://u:{core}@h.example/x?token={core}",
        "env": f"SERVICE_TOKEN={core}",
        "line": f"password: {core} and more",
    }[kind]


def value_tree(secrets: list[str]) -> st.SearchStrategy[Any]:
    """JSON-like values with secrets planted under secret keys and as shaped strings."""

    def plant_opaque(pair: tuple[str, str]) -> dict[str, Any]:
        key, value = pair
        secrets.append(value)
        return {key: value}

    def plant_shaped(text: str) -> str:
        secrets.append(text)
        return text

    leaves = st.one_of(WORDS, st.integers(), st.booleans(), st.none(), shaped().map(plant_shaped))
    secret_pairs = st.one_of(
        st.tuples(st.sampled_from(SECRET_KEYS), needle()).map(plant_opaque),
        st.tuples(st.sampled_from(SECRET_KEYS), needle()).map(
            lambda p: {"headers": [[p[0], plant_opaque(p)[p[0]]]]}
        ),
        st.tuples(st.sampled_from(SECRET_KEYS), needle()).map(
            lambda p: {"name": p[0], "value": plant_opaque(p)[p[0]]}
        ),
    )
    return st.recursive(
        st.one_of(leaves, secret_pairs),
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(st.sampled_from(PLAIN_KEYS), children, max_size=4),
        ),
        max_leaves=12,
    )


@st.composite
def fuzzed_run(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    """Frames of one run (some broken, some unknown) and the secrets planted in them."""
    secrets: list[str] = []
    values = value_tree(secrets)
    kinds = [
        "flow_started",
        "task_started",
        "task_completed",
        "task_failed",
        "flow_error",
        "flow_completed",
        "task_progress",
        "keepalive",
    ]
    frames: list[str] = []
    for i in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(kinds))
        event: dict[str, Any] = {"event_type": kind, "timestamp": T0 + i}
        if draw(st.booleans()):
            task = draw(shaped())
            secrets.append(task)
        else:
            task = draw(WORDS)
        event["task_name"] = task
        event["task_id"] = draw(st.sampled_from(["t1", "t2", None]))
        for field in ("input", "output", "partial_results", "details"):
            if draw(st.booleans()):
                event[field] = draw(values)
        if draw(st.booleans()):
            message = draw(shaped())
            secrets.append(message)
            event["message"] = message
        if kind in ("task_failed", "flow_error"):
            error_type = draw(shaped())
            secrets.append(error_type)
            event["error"] = {"type": error_type, "message": "failed", "details": draw(values)}
        text = json.dumps(event)
        if draw(st.integers(0, 9)) == 0:
            text = text[: draw(st.integers(0, len(text)))]  # a broken frame
        frames.append(text)
    return frames, secrets


def exported(outputs: list[Output]) -> str:
    """Everything in outputs that leaves the bridge, as text."""
    parts: list[str] = []
    for output in outputs:
        if isinstance(output, SpanRecord):
            parts.append(repr(output))
        elif isinstance(output, FrameRejected):
            parts.append(output.preview)
    return "\n".join(parts)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(fuzzed_run())
def test_no_planted_secret_leaves_and_nothing_escapes(run: tuple[list[str], list[str]]) -> None:
    """Whatever the frames, no planted secret is exported and no exception escapes."""
    frames, secrets = run
    engine = Engine()
    outputs: list[Output] = []
    tracemalloc.start()
    for i, text in enumerate(frames):
        outputs += engine.receive(text, run=("F", "r"), received_ns=int((T0 + i) * NS))
    outputs += engine.close_all()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert not [o for o in outputs if isinstance(o, InternalError)]
    text = exported(outputs)
    needles = {n for s in secrets for n in (NEEDLE.findall(s) or [s])}
    leaked = [n for n in needles if n in text]
    assert leaked == [], leaked
    assert peak < 32 * 1024 * 1024
