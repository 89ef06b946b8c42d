"""Flow and run names as the bridge accepts them: what may go into an upstream URL."""

from __future__ import annotations

import unicodedata
from typing import Any

from otel_bridge.errors import InvalidName

MAX_NAME_BYTES = 512


def validate_name(field: str, value: Any) -> str:
    """Return a valid flow/run name or raise :class:`InvalidName` saying what is wrong."""
    if not isinstance(value, str):
        raise InvalidName(f"{field} must be a string")
    if not value.strip():
        raise InvalidName(f"{field} must not be empty")
    if len(value.encode("utf-8")) > MAX_NAME_BYTES:
        raise InvalidName(f"{field} is longer than {MAX_NAME_BYTES} bytes")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in value):
        raise InvalidName(f"{field} contains control characters")
    if value in (".", ".."):
        raise InvalidName(f"{field} must not be '.' or '..'")
    return value
