"""The one conversion from an event's ``timestamp`` field to nanoseconds since the epoch.

LAO sends epoch seconds as a float; we also accept milliseconds, microseconds and
nanoseconds (recognised by magnitude), numeric strings and ISO-8601 strings.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

NS_PER_S = 1_000_000_000

# Magnitude thresholds: epoch seconds stay below 1e11 until the year 5138.
_MS_FLOOR = 1e11
_US_FLOOR = 1e14
_NS_FLOOR = 1e17
# OTLP carries times as unsigned 64-bit ns; later than 2262 (int64 ns) is not a timestamp.
MAX_NS = 2**63 - 1


def seconds_to_ns(seconds: float) -> int:
    """Convert float epoch seconds to integer nanoseconds, rounding to the microsecond.

    LAO's floats carry millisecond or microsecond precision; rounding to the microsecond
    removes binary float noise (``1756806125.043`` is not exactly representable).
    """
    return round(seconds * 1_000_000) * 1_000


def parse_timestamp(value: object) -> int | None:
    """Return nanoseconds since the epoch for a timestamp value, or None if unusable."""
    ns = _to_ns(value)
    return ns if ns is not None and 0 < ns <= MAX_NS else None


def _to_ns(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        # Exact integer arithmetic: a float cannot hold every nanosecond of today.
        if value >= _NS_FLOOR:
            return value
        if value >= _US_FLOOR:
            return value * 1_000
        if value >= _MS_FLOOR:
            return value * 1_000_000
        return value * NS_PER_S
    if isinstance(value, float):
        if not math.isfinite(value) or value <= 0 or value > MAX_NS:
            return None
        if value >= _NS_FLOOR:
            return round(value)
        if value >= _US_FLOOR:
            return round(value) * 1_000
        if value >= _MS_FLOOR:
            return round(value * 1_000) * 1_000
        return seconds_to_ns(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if len(text) >= 10 and text[4] == "-":  # ISO-8601 (the common string form): parse it first
            return _parse_iso(text)
        if len(text) <= 20 and text.isascii() and text.isdigit():
            return _to_ns(int(text))
        try:
            return _to_ns(float(text))
        except ValueError:
            pass
        return _parse_iso(text)
    return None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _parse_iso(text: str) -> int | None:
    if text.endswith("z"):
        text = text[:-1] + "Z"
    try:
        moment = datetime.fromisoformat(text)  # Python 3.11+ reads a trailing Z
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    ns = (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * 1_000
    return ns if ns > 0 else None
