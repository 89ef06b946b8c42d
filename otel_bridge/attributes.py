"""Span names and attributes of the telemetry contract, built from event fields.

Pure functions; every payload goes through the :class:`PayloadPolicy` (redaction, cap).
"""

from __future__ import annotations

from typing import Any

from otel_bridge.events import ErrorInfo
from otel_bridge.redaction import PayloadPolicy
from otel_bridge.spans import AttributeValue, SpanEvent

TRUNCATED = "lao.payload.truncated"


def agent_id_of(task_input: Any) -> str | None:
    """Return ``input.config.agent_id`` when the task input shows an agent call."""
    if isinstance(task_input, dict):
        config = task_input.get("config")
        if isinstance(config, dict):
            agent = config.get("agent_id")
            if agent is not None and agent != "":
                return str(agent)
    return None


def agent_name_of(task_input: Any) -> str | None:
    """Return ``input.config.agent_name`` if present."""
    if isinstance(task_input, dict):
        config = task_input.get("config")
        if isinstance(config, dict) and isinstance(config.get("agent_name"), str):
            return str(config["agent_name"])
    return None


def task_span_name(task_name: str, agent_id: str | None) -> str:
    """``invoke_agent {task}`` for agent calls, else ``execute_task {task}``."""
    return f"invoke_agent {task_name}" if agent_id else f"execute_task {task_name}"


def root_span_name(flow_name: str) -> str:
    """Return the run's root span name."""
    return f"invoke_workflow {flow_name}"


def put_payload(
    attrs: dict[str, AttributeValue], key: str, value: Any, policy: PayloadPolicy
) -> None:
    """Add a payload attribute (redacted, capped) unless capture is off or value is None."""
    text, truncated = policy.payload(value)
    if text is None:
        return
    attrs[key] = text
    if truncated:
        attrs[TRUNCATED] = True


def put_error(
    attrs: dict[str, AttributeValue], error: ErrorInfo | None, policy: PayloadPolicy
) -> tuple[str, str]:
    """Add ``error.type``/``lao.error.code``/details; return (error type, description).

    ``lao.error.details`` is the error's ``details``; fields of the error object beyond
    type/message/code/details (the seed's ``threshold``, ``action_taken``) join it, so
    nothing the error said is lost.
    """
    if error is None:
        attrs["error.type"] = "_OTHER"
        return "_OTHER", "error"
    attrs["error.type"] = error.error_type
    if error.code:
        attrs["lao.error.code"] = error.code
    put_payload(attrs, "lao.error.details", error_details(error), policy)
    return error.error_type, policy.text(error.description)


def error_details(error: ErrorInfo) -> Any:
    """Return the error's details plus its unknown fields (None when it has neither)."""
    extra = dict(error.model_extra or {})
    if not extra:
        return error.details
    if error.details is not None:
        extra["details"] = error.details
    return extra


def exception_event(time_ns: int, error_type: str, message: str) -> SpanEvent:
    """Return the OpenTelemetry ``exception`` span event."""
    return SpanEvent(
        "exception", time_ns, {"exception.type": error_type, "exception.message": message}
    )


def unknown_event(
    event_type: str, time_ns: int, fields: dict[str, Any], policy: PayloadPolicy
) -> SpanEvent:
    """Return a span event ``lao.event {event_type}`` for an undocumented event type."""
    attrs: dict[str, AttributeValue] = {"lao.event.type": event_type}
    for key in ("task_id", "task_name", "message"):
        value = fields.get(key)
        if isinstance(value, str):
            attrs[f"lao.{key}"] = policy.text(value)
    rest = {k: v for k, v in fields.items() if k not in ("event_type", "timestamp")}
    put_payload(attrs, "lao.event.payload", rest, policy)
    return SpanEvent(f"lao.event {event_type}", time_ns, attrs)
