r"""Derived trace and span ids (telemetry contract) and W3C traceparent parsing.

Ids are derived from names, never random, so that a reconnect, a restart, a second
replica or a replay of a recorded stream lands in the same trace:

- trace_id = first 16 bytes of sha256("lao-run\0" + flow + "\0" + run)
- root span_id = first 8 bytes of sha256("lao-flow\0" + flow + "\0" + run)
- task span_id = first 8 bytes of sha256("lao-task\0" + flow + "\0" + run + "\0" + key)
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from otel_bridge.core.errors import TraceParentError

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\0".join(parts).encode("utf-8")).digest()


def run_trace_id(flow_name: str, run_name: str) -> int:
    """Return the 128-bit trace id of a run."""
    return int.from_bytes(_digest("lao-run", flow_name, run_name)[:16], "big")


def root_span_id(flow_name: str, run_name: str) -> int:
    """Return the 64-bit span id of a run's root span."""
    return int.from_bytes(_digest("lao-flow", flow_name, run_name)[:8], "big")


def task_span_id(flow_name: str, run_name: str, key: str) -> int:
    """Return the 64-bit span id of a task execution identified by ``key``."""
    return int.from_bytes(_digest("lao-task", flow_name, run_name, key)[:8], "big")


def task_key(task_id: str | None, task_name: str, occurrence: int) -> str:
    """Return the key a task span id derives from: the task_id, else name NUL occurrence."""
    return task_id if task_id else f"{task_name}\0{occurrence}"


@dataclass(frozen=True)
class TraceParent:
    """A parsed W3C traceparent header."""

    trace_id: int
    span_id: int
    sampled: bool
    state: str = ""  # the W3C tracestate registered with it, kept on the run's spans

    def __str__(self) -> str:
        flags = "01" if self.sampled else "00"
        return f"00-{self.trace_id:032x}-{self.span_id:016x}-{flags}"


_TRACESTATE_MEMBER = re.compile(
    r"^[a-z0-9][_0-9a-z\-*/@]{0,255}=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,256}$"
)


def parse_tracestate(value: object) -> str:
    """A W3C ``tracestate`` value (at most 32 ``key=value`` members), normalised; else raise."""
    if not isinstance(value, str):
        raise TraceParentError("tracestate must be a string")
    members = [m.strip() for m in value.split(",") if m.strip()]
    if len(members) > 32:
        raise TraceParentError("tracestate has more than 32 members")
    for member in members:
        if not _TRACESTATE_MEMBER.match(member):
            raise TraceParentError(f"tracestate member {member[:40]!r} is not key=value")
    return ",".join(members)


def parse_traceparent(value: str) -> TraceParent:
    """Parse a W3C ``traceparent`` value or raise :class:`TraceParentError` saying why."""
    match = _TRACEPARENT.match(value.strip().lower()) if isinstance(value, str) else None
    if match is None:
        raise TraceParentError(
            "traceparent must look like 00-<32 hex trace id>-<16 hex span id>-<2 hex flags>"
        )
    version, trace_hex, span_hex, flags_hex, rest = match.groups()
    if version == "ff":
        raise TraceParentError("traceparent version ff is invalid")
    if version == "00" and rest:
        raise TraceParentError("traceparent version 00 has exactly four fields")
    trace_id, span_id = int(trace_hex, 16), int(span_hex, 16)
    if trace_id == 0:
        raise TraceParentError("traceparent trace id is all zeros")
    if span_id == 0:
        raise TraceParentError("traceparent parent id is all zeros")
    return TraceParent(trace_id, span_id, bool(int(flags_hex, 16) & 1))
