"""A span record cut down to fit a byte budget: what an oversized span becomes on export.

A receiver refuses a request over its limit (an OpenTelemetry Collector: 4 MiB over gRPC by
default), so a span whose encoding alone is over the budget is trimmed rather than failing
its batch. :func:`trim` cuts the largest string attributes first, of the span and of its
events alike, each only as far as needed, keeping a prefix and :data:`CUT_MARK` (as the
egress policy cuts); the span gets ``lao.payload.truncated=true``. When that is not enough
(a span of very many small attributes or events), the fallback is :func:`essentials`: the
span's names, ids, status, result and error type, its flags and numbers, no events.

The size of a record is measured by a callable the caller passes in (the OTLP encoder lives
in ``sinks/``); :func:`trim` measures at most four times whatever the record holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from otel_bridge.core import semconv as K
from otel_bridge.core.records import AttributeValue, SpanEvent, SpanRecord
from otel_bridge.core.redaction import CUT_MARK, truncate_utf8

__all__ = ["ESSENTIAL_KEYS", "Measure", "essentials", "trim"]

Measure = Callable[[SpanRecord], int]

# Attributes never cut or dropped: what names the span, its run and task, and how it ended.
ESSENTIAL_KEYS = frozenset(
    {
        K.LAO_FLOW_NAME,
        K.LAO_RUN_NAME,
        K.LAO_FLOW_TASK_ID,
        K.LAO_TASK_NAME,
        K.LAO_TASK_ID,
        K.LAO_RUN_CLOSE_REASON,
        K.CICD_PIPELINE_NAME,
        K.CICD_PIPELINE_RUN_ID,
        K.CICD_PIPELINE_RESULT,
        K.CICD_TASK_NAME,
        K.CICD_TASK_RUN_ID,
        K.CICD_TASK_RUN_RESULT,
        K.GEN_AI_OPERATION_NAME,
        K.GEN_AI_AGENT_ID,
        K.GEN_AI_AGENT_NAME,
        K.GEN_AI_WORKFLOW_NAME,
        K.GEN_AI_PROVIDER_NAME,
        K.ERROR_TYPE,
        K.LAO_ERROR_CODE,
    }
)
_MARK_BYTES = len(CUT_MARK.encode("utf-8"))


def _wire_len(text: str) -> int:
    """The bytes a string takes on the wire (as the OTLP encoder writes it)."""
    return len(text.encode("utf-8", "replace"))


def _kept(key: str, value: AttributeValue) -> bool:
    """Whether the fallback keeps an attribute: essential keys, flags and numbers."""
    return key in ESSENTIAL_KEYS or isinstance(value, bool | int | float)


def essentials(record: SpanRecord) -> SpanRecord:
    """The record with only its essential attributes (and the truncation flag), no events."""
    attributes = {k: v for k, v in record.attributes.items() if _kept(k, v)}
    attributes[K.LAO_PAYLOAD_TRUNCATED] = True
    return replace(record, attributes=attributes, events=())


def trim(record: SpanRecord, budget: int, measure: Measure) -> SpanRecord:
    """Return ``record`` if it fits ``budget`` (as ``measure`` counts), else a trimmed copy.

    The copy fits whenever :func:`essentials` of the record fits; otherwise that is
    returned, as small as the record can become. Names, ids, status, result and error type
    are never changed.
    """
    if measure(record) <= budget:
        return record
    attributes: dict[str, AttributeValue] = dict(record.attributes)
    attributes[K.LAO_PAYLOAD_TRUNCATED] = True
    holders = [attributes] + [dict(event.attributes) for event in record.events]
    flagged = _rebuild(record, holders)
    over = measure(flagged) - budget
    if over <= 0:
        return flagged
    # Largest first, the span's before its events' at equal size; each cut only as deep as
    # still needed. Shortening a value by n bytes shrinks the encoding by at least n (length
    # prefixes only get shorter), so the count of bytes still over is kept without measuring.
    candidates = sorted(
        (
            (-_wire_len(value), index, key, value)
            for index, holder in enumerate(holders)
            for key, value in holder.items()
            if isinstance(value, str) and (index or key not in ESSENTIAL_KEYS)
        ),
    )
    for negative_size, index, key, value in candidates:
        if over <= 0:
            break
        size = -negative_size
        room = size - over - _MARK_BYTES
        cut = truncate_utf8(value, room)[0] + CUT_MARK if room > 0 else CUT_MARK
        saved = size - _wire_len(cut)
        if saved > 0:
            holders[index][key] = cut
            over -= saved
    trimmed = _rebuild(record, holders)
    if measure(trimmed) <= budget:
        return trimmed
    bare_events = replace(
        essentials(record),
        events=tuple(SpanEvent(e.name, e.time_ns, {}) for e in record.events),
    )
    if record.events and measure(bare_events) <= budget:
        return bare_events
    return essentials(record)


def _rebuild(record: SpanRecord, holders: list[dict[str, AttributeValue]]) -> SpanRecord:
    """The record with the attributes in ``holders``: the span's first, then each event's."""
    events = tuple(
        SpanEvent(event.name, event.time_ns, attributes)
        for event, attributes in zip(record.events, holders[1:], strict=True)
    )
    return replace(record, attributes=holders[0], events=events)
