"""Span records as bytes for the state database, and back.

A record is stored as it would be exported (already through the egress policy), as one
compact JSON array; reading it back gives an equal :class:`SpanRecord`, so a re-export after
a restart sends the same span (same ids, same attributes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from otel_bridge.core.errors import StateError
from otel_bridge.core.records import AttributeValue, Result, SpanEvent, SpanRecord, StatusCode

FORMAT = 1


def _attributes(values: dict[str, Any]) -> dict[str, AttributeValue]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}


def encode_record(record: SpanRecord) -> bytes:
    """One record as bytes."""
    return orjson.dumps(
        [
            FORMAT,
            record.kind,
            record.flow_name,
            record.run_name,
            record.task_name,
            f"{record.trace_id:032x}",
            f"{record.span_id:016x}",
            None if record.parent_span_id is None else f"{record.parent_span_id:016x}",
            record.parent_is_remote,
            record.name,
            record.start_ns,
            record.end_ns,
            record.attributes,  # a dict (orjson takes it as it is)
            [[e.name, e.time_ns, e.attributes] for e in record.events] if record.events else (),
            record.status.value,
            record.status_message,
            record.result.value,
            record.error_type,
            record.sampled,
            record.client,
            record.trace_state,
        ],
        default=_plain,
    )


def _plain(value: object) -> object:
    """What orjson does not take natively: other mappings and sequences."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Iterable):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not an attribute value")


def decode_record(data: bytes) -> SpanRecord:
    """The record :func:`encode_record` wrote; :class:`StateError` if it is not one."""
    try:
        item = orjson.loads(data)
        if item[0] != FORMAT:
            raise StateError(f"stored span format {item[0]!r} unknown")
        (
            _,
            kind,
            flow_name,
            run_name,
            task_name,
            trace_id,
            span_id,
            parent,
            remote,
            name,
            start_ns,
            end_ns,
            attributes,
            events,
            status,
            status_message,
            result,
            error_type,
            sampled,
            client,
            trace_state,
        ) = item
        return SpanRecord(
            kind=kind,
            flow_name=flow_name,
            run_name=run_name,
            task_name=task_name,
            trace_id=int(trace_id, 16),
            span_id=int(span_id, 16),
            parent_span_id=None if parent is None else int(parent, 16),
            parent_is_remote=bool(remote),
            name=name,
            start_ns=int(start_ns),
            end_ns=int(end_ns),
            attributes=_attributes(attributes),
            events=tuple(SpanEvent(n, int(t), _attributes(a)) for n, t, a in events),
            status=StatusCode(status),
            status_message=status_message,
            result=Result(result),
            error_type=error_type,
            sampled=bool(sampled),
            client=bool(client),
            trace_state=trace_state,
        )
    except StateError:
        raise
    except Exception as exc:  # anything a damaged row can raise: one clear error
        raise StateError(f"not a stored span ({type(exc).__name__}: {exc})") from exc
