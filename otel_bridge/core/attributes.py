"""Attribute values built from event fields: payloads, errors, agents, span events.

Pure functions; every payload goes through the :class:`PayloadPolicy` (redaction, cap).
The keys are the constants of :mod:`.semconv`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from otel_bridge.core import semconv as K
from otel_bridge.core.events import ErrorInfo
from otel_bridge.core.records import AttributeValue, SpanEvent
from otel_bridge.core.redaction import PayloadPolicy, clean_name

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


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
    return _config_text(task_input, "agent_name")


def _config_text(task_input: Any, key: str) -> str | None:
    if isinstance(task_input, dict):
        config = task_input.get("config")
        if isinstance(config, dict):
            value = config.get(key)
            if isinstance(value, str) and value:
                return value
    return None


def conversation_id_of(task_input: Any) -> str | None:
    """Return ``input.config.session_id`` (``gen_ai.conversation.id``) if present."""
    return _config_text(task_input, "session_id")


def server_of(task_input: Any) -> tuple[str, int] | None:
    """Return (host, port) of ``input.config.api_url`` (``server.address``/``server.port``)."""
    url = _config_text(task_input, "api_url")
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host:
        return None
    return host, port or _DEFAULT_PORTS.get(parts.scheme.lower(), 443)


def put_payload(
    attrs: dict[str, AttributeValue], key: str, value: Any, policy: PayloadPolicy
) -> None:
    """Add a payload attribute (redacted, capped) unless capture is off or value is None."""
    text, truncated = policy.payload(value)
    if text is None:
        return
    attrs[key] = text
    if truncated:
        attrs[K.LAO_PAYLOAD_TRUNCATED] = True


def put_error(
    attrs: dict[str, AttributeValue], error: ErrorInfo | None, policy: PayloadPolicy
) -> tuple[str, str]:
    """Add ``error.type``/``lao.error.code``/details; return (error type, description).

    ``lao.error.details`` is the error's ``details``; fields of the error object beyond
    type/message/code/details (the seed's ``threshold``, ``action_taken``) join it, so
    nothing the error said is lost.
    """
    if error is None:
        attrs[K.ERROR_TYPE] = K.ERROR_TYPE_OTHER
        return K.ERROR_TYPE_OTHER, "error"
    error_type = clean_name(error.error_type)
    attrs[K.ERROR_TYPE] = error_type
    if error.code:
        attrs[K.LAO_ERROR_CODE] = clean_name(error.code)
    put_payload(attrs, K.LAO_ERROR_DETAILS, error_details(error), policy)
    return error_type, policy.text(error.description)


def error_details(error: ErrorInfo) -> Any:
    """Return the error's details plus its unknown fields (None when it has neither)."""
    if not error.model_extra:
        return error.details
    extra = dict(error.model_extra)
    if not extra:
        return error.details
    if error.details is not None:
        extra["details"] = error.details
    return extra


def exception_event(time_ns: int, error_type: str, message: str) -> SpanEvent:
    """Return the OpenTelemetry ``exception`` span event."""
    return SpanEvent(
        K.EXCEPTION_EVENT, time_ns, {K.EXCEPTION_TYPE: error_type, K.EXCEPTION_MESSAGE: message}
    )


def unknown_event(
    event_type: str, time_ns: int, fields: dict[str, Any], policy: PayloadPolicy
) -> SpanEvent:
    """Return a span event ``lao.event {event_type}`` for an undocumented event type."""
    event_type = clean_name(event_type)
    attrs: dict[str, AttributeValue] = {K.LAO_EVENT_TYPE: event_type}
    for key in K.UNKNOWN_EVENT_FIELDS:
        value = fields.get(key)
        if isinstance(value, str):
            clean = policy.text(value) if key == "message" else clean_name(value)
            attrs[K.LAO_EVENT_FIELD_PREFIX + key] = clean
    rest = {k: v for k, v in fields.items() if k not in ("event_type", "timestamp")}
    put_payload(attrs, K.LAO_EVENT_PAYLOAD, rest, policy)
    return SpanEvent(K.unknown_event_name(event_type), time_ns, attrs)
