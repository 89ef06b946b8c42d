"""Reconnect delays: exponential backoff with full jitter, as a plain generator."""

from __future__ import annotations

import random
from collections.abc import Iterator


def backoff(
    initial_s: float = 1.0,
    maximum_s: float = 30.0,
    factor: float = 2.0,
    rng: random.Random | None = None,
) -> Iterator[float]:
    """Yield delays: initial, then times ``factor`` up to ``maximum_s``, each jittered.

    The jitter keeps each delay in [delay / 2, delay], so many bridges reconnecting after
    the same outage do not arrive together, and the first retry still comes quickly.
    """
    rand = rng or random.Random()
    delay = initial_s
    while True:
        yield delay / 2 + rand.random() * delay / 2
        delay = min(maximum_s, delay * factor)
