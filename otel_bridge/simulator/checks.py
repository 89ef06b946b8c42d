"""FlowError and the checks every run-dag body value goes through."""

from __future__ import annotations

import math
import re
from typing import Any

from otel_bridge.errors import BridgeError

JSON = dict[str, Any]

ROUTE = re.compile(r"""^\s*route\s*==\s*(['"])(.*)\1\s*$""")


class FlowError(BridgeError, ValueError):
    """A run-dag body that cannot be run; the message says why (the simulator answers 422)."""


def require_name(value: object, where: str) -> str:
    """Return ``value`` if it is a non-empty string, else raise FlowError about ``where``."""
    if not isinstance(value, str) or not value.strip():
        raise FlowError(f"{where} must be a non-empty string")
    return value


def require_object(value: object, where: str) -> JSON:
    """Return ``value`` if it is a JSON object, else raise FlowError about ``where``."""
    if not isinstance(value, dict):
        raise FlowError(f"{where} must be a JSON object")
    return value


def require_number(value: object, where: str) -> float:
    """Return ``value`` as a float if it is a finite number >= 0, else raise FlowError."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FlowError(f"{where} must be a number")
    if value < 0:
        raise FlowError(f"{where} must not be negative")
    return float(value)


def branch_value(value: object) -> str:
    """Normalise an edge condition or branch hint to the branch value it selects."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip()
    match = ROUTE.match(text)
    if match:
        return match.group(2)
    return text.lower() if text.lower() in ("true", "false") else text
