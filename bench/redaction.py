"""The egress policy's cost: µs per ~1 KB payload, clean and with secrets, default policy.

Run: ``.venv/bin/python -m bench.redaction`` (part of ``make bench``). Prints a table:
payload shape, size, µs per payload (best of 5 rounds) for ``PayloadPolicy.payload``
(serialise + cut + prefilter + redact + cap, what a task input costs when its task starts),
``payload_json`` (the same on JSON text already serialised: what a payload kept as bytes
costs) and ``clean_name`` (a task name). The issue's target: ≤ 10 µs per 1 KB payload.
"""

from __future__ import annotations

import json
import random
import string
import timeit
from collections.abc import Callable
from typing import Any

from otel_bridge.core.redaction import PayloadPolicy, clean_name


def clean_payload(rng: random.Random) -> dict[str, Any]:
    """A ~1 KB nested task output with no secret."""
    notes = [
        {
            "ts": 1_756_806_125.0 + i,
            "note": "".join(rng.choice(string.ascii_lowercase + " ") for _ in range(60)),
        }
        for i in range(10)
    ]
    return {
        "customer": {"name": "Alice Example", "tier": "gold", "history": notes},
        "summary": "ok",
    }


def secret_payload(rng: random.Random) -> dict[str, Any]:
    """The same with an agent config holding an api_key and a header list."""
    payload = clean_payload(rng)
    payload["config"] = {"agent_id": "a-1", "api_key": "sk-proj-AbCdEf123456", "max_tokens": 512}
    payload["headers"] = [["Authorization", "Bearer abcdefgh12345678"]]
    return payload


def best_us(call: Callable[[], object], number: int = 2000) -> float:
    """Best of 5 rounds, µs per call."""
    return min(timeit.repeat(call, number=number, repeat=5)) / number * 1e6


def main() -> None:
    """Print the table."""
    rng = random.Random(7)
    policy = PayloadPolicy()
    rows = []
    for label, payload in (("clean", clean_payload(rng)), ("with secrets", secret_payload(rng))):
        text = json.dumps(payload, separators=(",", ":"))
        rows.append(
            (
                label,
                len(text),
                best_us(lambda p=payload: policy.payload(p)),
                best_us(lambda t=text: policy.payload_json(t)),
            )
        )
    names = [f"task_{i}_fetch_customer" for i in range(5000)]
    name_us = best_us(lambda: clean_name(names[rng.randrange(5000)]), 20000)
    print("| payload | bytes | payload(value) µs | payload_json(text) µs |")
    print("|---|---|---|---|")
    for label, size, value_us, json_us in rows:
        print(f"| {label} | {size} | {value_us:.1f} | {json_us:.1f} |")
    print(f"\nclean_name (cached, 5,000 names): {name_us:.2f} µs")


if __name__ == "__main__":
    main()
