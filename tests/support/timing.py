"""Time in the tests: one unit that stretches every deadline and window, and waiting on conditions.

``UNIT`` is ``OTEL_BRIDGE_TEST_TIME_UNIT`` seconds-per-second (default 1): on a slow machine,
``OTEL_BRIDGE_TEST_TIME_UNIT=3 make test`` makes every deadline, watchdog timeout and simulated
duration written as ``n * UNIT`` three times longer, keeping their ratios. Tests never sleep
for something to happen: they :func:`wait_for` it.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

T = TypeVar("T")

UNIT = float(os.environ.get("OTEL_BRIDGE_TEST_TIME_UNIT", "1"))
if not UNIT > 0:
    raise ValueError(f"OTEL_BRIDGE_TEST_TIME_UNIT must be a positive number, not {UNIT}")


async def wait_for(
    predicate: Callable[[], T | Awaitable[T]],
    timeout: float = 10 * UNIT,  # noqa: ASYNC109 - a deadline with a message, not a cancel scope
    message: str = "",
    *,
    interval: float = 0.02,
) -> T:
    """Poll ``predicate`` (plain or async) until it returns something truthy; return that.

    Fails with ``message`` and the last value seen once ``timeout`` seconds have passed.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return cast(T, result)
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__qualname__", repr(predicate))
            raise AssertionError(f"not within {timeout:g}s: {what} (last: {result!r})")
        await asyncio.sleep(interval)
