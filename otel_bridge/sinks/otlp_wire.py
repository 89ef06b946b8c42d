"""Span records straight to OTLP protobuf bytes: no SDK span objects, no message objects.

Writes the wire form of ``ExportTraceServiceRequest`` (opentelemetry-proto,
``collector/trace/v1``) field by field: varints, fixed64 times, length-delimited messages.
The resource and scope are encoded once per exporter (:class:`Encoder`). What it writes
parses into the same message the SDK's own encoder builds from the same span (a
differential test holds it to that), at a fraction of the cost: no ``ReadableSpan``, no
protobuf message per span.

Most of a span's attributes repeat from span to span (the flow, run and task names, the
operation, the result), so the encoded ``Span.attributes`` field of a (key, string value)
pair is kept, and a span's attributes are looked up all at once, in C
(``map(cache.get, attributes.items())``); only the others are encoded in Python. The
caches are bounded: at most :data:`MAX_CACHED_PAIRS` pairs and :data:`MAX_CACHED_BYTES`
bytes (then they start over), values of at most :data:`MAX_CACHED_VALUE_CHARS` characters;
a key whose values are new in most spans (a task id, a payload) stops being cached
(:data:`MAX_CACHED_KEYS` keys are followed). Span names, error messages, exception events
and trace ids are kept the same way, each cache bounded.

Field numbers (``opentelemetry/proto/trace/v1/trace.proto``, ``common/v1/common.proto``):
request.resource_spans=1; ResourceSpans.resource=1, scope_spans=2, schema_url=3;
ScopeSpans.scope=1, spans=2, schema_url=3; Span.trace_id=1, span_id=2, parent_span_id=4,
name=5, kind=6, start=7, end=8, attributes=9, events=11, status=15, flags=16;
Event.time=1, name=2, attributes=3; Status.message=2, code=3; KeyValue.key=1, value=2;
AnyValue string=1, bool=2, int=3, double=4, array=5; ArrayValue.values=1.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence

from otel_bridge.core.records import AttributeValue, SpanEvent, SpanRecord, StatusCode

SPAN_KIND_INTERNAL = 1
SPAN_KIND_CLIENT = 3
FLAG_HAS_IS_REMOTE = 0x100
FLAG_IS_REMOTE = 0x200
MAX_CACHED_PAIRS = 8192  # (key, string value) -> Span.attributes field
MAX_CACHED_BYTES = 1 << 20  # their encoded bytes, all together
MAX_CACHED_VALUE_CHARS = 256  # a key with a longer value (a payload) is not cached
MAX_CACHED_KEYS = 64  # keys followed (semconv has ~30); the values of others are not cached
MAX_NEW_VALUES = 1024  # a key with this many new values within twice as many spans: not cached
MAX_CACHED = 1024  # span names, error messages, events; encoded keys and trace ids: 4x
_pack_fixed64 = struct.Struct("<Q").pack
_pack_fixed32 = struct.Struct("<I").pack
_pack_double = struct.Struct("<d").pack
_pack_times = struct.Struct("<BQBQ").pack  # Span.start_time (7) and end_time (8), fixed64
_KIND = (b"\x30" + bytes((SPAN_KIND_INTERNAL,)), b"\x30" + bytes((SPAN_KIND_CLIENT,)))
_FLAGS = (
    b"\x85\x01" + _pack_fixed32(FLAG_HAS_IS_REMOTE),
    b"\x85\x01" + _pack_fixed32(FLAG_HAS_IS_REMOTE | FLAG_IS_REMOTE),
)
# Span.status (15) without a message: code OK=1, ERROR=2, UNSET (0) left out
_STATUS_UNSET, _STATUS_OK, _STATUS_ERROR = b"\x7a\x00", b"\x7a\x02\x18\x01", b"\x7a\x02\x18\x02"
_SMALL = [bytes((i,)) for i in range(0x80)]
# KeyValue.value (2) holding AnyValue.string_value (1) of 0-125 bytes, up to the bytes.
_ANY_HEADS = [bytes((0x12, size + 2, 0x0A, size)) for size in range(0x7E)]
_ONLY_STR = frozenset({str})

_TAGS: dict[int, bytes] = {}  # one per field number used here
_KEYS: dict[str, bytes] = {}  # attribute key -> KeyValue.key field
_FLOATS: dict[str, bytes] = {}  # float attribute key -> its Span.attributes field to the value
_PAIRS: dict[tuple[str, AttributeValue], bytes] = {}  # (key, str value) -> Span.attributes field
_PAIR = _PAIRS.get  # (never rebound: cleared in place)
_HEADS: dict[tuple[str, int], bytes] = {}  # (key, size) -> string field up to the bytes
_HEAD = _HEADS.get
_UNCACHED: set[str] = set()  # keys whose values are not cached
_NEW_VALUES: dict[str, tuple[int, int]] = {}  # key -> (spans when counting began, values since)
_NAMES: dict[str, bytes] = {}  # span name -> Span.name field
_ERRORS: dict[str, bytes] = {}  # error message -> Span.status field
_EVENTS: dict[tuple[object, ...], bytes] = {}  # (name, *attributes) -> Event name, attributes
_TRACES: dict[int, bytes] = {}  # trace id -> Span.trace_id field and the span_id tag
_spans = 0  # spans encoded (tells a key whose values are mostly new)
_cached_bytes = 0


def clear_caches() -> None:
    """Forget every cached encoding (for benchmarks and tests; encodings stay the same)."""
    global _cached_bytes
    for cache in (_KEYS, _FLOATS, _PAIRS, _HEADS, _NEW_VALUES, _NAMES, _ERRORS, _EVENTS):
        cache.clear()
    _UNCACHED.clear()
    _TRACES.clear()
    _cached_bytes = 0


def cache_sizes() -> dict[str, int]:
    """How much the caches hold (for tests and debugging)."""
    return {
        "pairs": len(_PAIRS),
        "bytes": _cached_bytes,
        "uncached_keys": len(_UNCACHED),
        "followed_keys": len(_NEW_VALUES),
        "names": len(_NAMES),
        "errors": len(_ERRORS),
        "events": len(_EVENTS),
        "traces": len(_TRACES),
    }


def varint(value: int) -> bytes:
    """A base-128 varint (negative int64 as its two's complement, ten bytes)."""
    if 0 <= value < 0x80:
        return _SMALL[value]
    if 0 < value < 0x4000:
        return bytes((value & 0x7F | 0x80, value >> 7))
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def varint_size(value: int) -> int:
    """The bytes :func:`varint` takes for a non-negative value."""
    return max(1, (value.bit_length() + 6) // 7)


def _field(field: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    tag = _TAGS.get(field)
    if tag is None:
        tag = _TAGS[field] = varint(field << 3 | 2)
    size = len(payload)
    return tag + (_SMALL[size] if size < 0x80 else varint(size)) + payload


def _text(field: int, text: str) -> bytes:
    return _field(field, text.encode("utf-8", "replace"))


def any_value(value: AttributeValue) -> bytes:
    """The encoded ``AnyValue`` of an attribute value."""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        return b"\x18" + varint(value)
    if isinstance(value, float):
        return b"\x21" + _pack_double(value)
    if isinstance(value, str):
        return _text(1, value)
    return _field(5, b"".join(_field(1, any_value(item)) for item in value))


def _key(key: str) -> bytes:
    """The encoded ``KeyValue.key`` field of an attribute key (cached)."""
    encoded = _KEYS.get(key)
    if encoded is None:
        encoded = _text(1, key)
        if len(_KEYS) < 4 * MAX_CACHED:
            _KEYS[key] = encoded
    return encoded


def attributes(field: int, values: Mapping[str, AttributeValue]) -> bytes:
    """Repeated ``KeyValue`` under ``field``."""
    return b"".join(
        _field(field, _key(key) + _field(2, any_value(value))) for key, value in values.items()
    )


def _string_head(key: str, size: int) -> bytes:
    """A string attribute's ``Span.attributes`` field up to its ``size`` bytes (cached)."""
    key_field = _KEYS.get(key) or _key(key)
    if size < len(_ANY_HEADS):
        any_head = _ANY_HEADS[size]
    else:
        size_bytes = varint(size)
        any_head = b"".join((b"\x12", varint(1 + len(size_bytes) + size), b"\x0a", size_bytes))
    head = b"".join((b"\x4a", varint(len(key_field) + len(any_head) + size), key_field, any_head))
    if len(_HEADS) >= 4 * MAX_CACHED:
        _HEADS.clear()
    _HEADS[(key, size)] = head
    return head


def _new_pair(key: str, value: str) -> bytes:
    """The ``Span.attributes`` field of a string not in the cache: encoded, maybe kept."""
    data = value.encode("utf-8", "replace")
    size = len(data)
    encoded = (_HEADS.get((key, size)) or _string_head(key, size)) + data
    _keep(key, value, encoded)
    return encoded


def _keep(key: str, value: str, encoded: bytes) -> None:
    """Keep the field of (key, value), unless the key's values are seldom seen twice."""
    global _cached_bytes
    if len(value) > MAX_CACHED_VALUE_CHARS:
        _stop_caching(key)
        return
    since, new = _NEW_VALUES.get(key) or (_spans, 0)
    if new + 1 >= MAX_NEW_VALUES:
        if _spans - since < 2 * MAX_NEW_VALUES:
            _stop_caching(key)
            return
        since, new = _spans, 0
    elif new == 0 and key not in _NEW_VALUES and len(_NEW_VALUES) >= MAX_CACHED_KEYS:
        return
    _NEW_VALUES[key] = (since, new + 1)
    if len(_PAIRS) >= MAX_CACHED_PAIRS or _cached_bytes + len(encoded) > MAX_CACHED_BYTES:
        _PAIRS.clear()  # start over: what is still in use comes back
        _cached_bytes = 0
    _PAIRS[(key, value)] = encoded
    _cached_bytes += len(encoded)


def _stop_caching(key: str) -> None:
    if len(_UNCACHED) < MAX_CACHED_KEYS:
        _UNCACHED.add(key)


def _float_head(key: str) -> bytes:
    """A float attribute's ``Span.attributes`` field up to its 8 value bytes (cached)."""
    key_field = _KEYS.get(key) or _key(key)
    head = b"\x4a" + varint(len(key_field) + 11) + key_field + b"\x12\x09\x21"
    if len(_FLOATS) < 4 * MAX_CACHED:
        _FLOATS[key] = head
    return head


def _trace_head(trace_id: int) -> bytes:
    """``Span.trace_id`` and the tag and length of ``Span.span_id`` (cached per trace)."""
    encoded = b"\x0a\x10" + trace_id.to_bytes(16, "big") + b"\x12\x08"
    if len(_TRACES) >= 4 * MAX_CACHED:
        _TRACES.clear()
    _TRACES[trace_id] = encoded
    return encoded


def _name(name: str) -> bytes:
    """The ``Span.name`` field (cached)."""
    encoded = _text(5, name)
    if len(_NAMES) >= MAX_CACHED:
        _NAMES.clear()
    if len(name) <= MAX_CACHED_VALUE_CHARS:
        _NAMES[name] = encoded
    return encoded


def _event(event: SpanEvent) -> bytes:
    """A ``Span.events`` field; its name and string attributes are cached (when short)."""
    values = event.attributes
    key = None
    if set(map(type, values.values())) <= _ONLY_STR:  # equal values encode alike
        key = (event.name, *values.items())
    body = _EVENTS.get(key) if key is not None else None
    if body is None:
        body = _text(2, event.name) + attributes(3, values)
        if key is not None and len(body) <= 4 * MAX_CACHED_VALUE_CHARS:
            if len(_EVENTS) >= MAX_CACHED:
                _EVENTS.clear()
            _EVENTS[key] = body
    return _field(11, b"\x09" + _pack_fixed64(event.time_ns) + body)


def _status(record: SpanRecord) -> bytes:
    """The ``Span.status`` field."""
    status = record.status
    if status is StatusCode.OK:
        return _STATUS_OK
    if status is not StatusCode.ERROR:
        return _STATUS_UNSET
    message = record.status_message
    if not message:
        return _STATUS_ERROR
    encoded = _ERRORS.get(message)
    if encoded is None:
        encoded = _field(15, _text(2, message) + b"\x18\x02")
        if len(_ERRORS) >= MAX_CACHED:
            _ERRORS.clear()
        if len(message) <= MAX_CACHED_VALUE_CHARS:
            _ERRORS[message] = encoded
    return encoded


def _span_parts(record: SpanRecord) -> list[bytes]:
    """The pieces of a record's encoded ``Span``, in field order."""
    global _spans
    _spans += 1
    trace_id = record.trace_id
    parts = [_TRACES.get(trace_id) or _trace_head(trace_id), record.span_id.to_bytes(8, "big")]
    if record.trace_state:
        parts.append(_text(3, record.trace_state))
    if record.parent_span_id is not None:
        parts += (b"\x22\x08", record.parent_span_id.to_bytes(8, "big"))
    name = record.name
    parts += (
        _NAMES.get(name) or _name(name),
        _KIND[record.client],
        _pack_times(0x39, record.start_ns, 0x41, record.end_ns),
    )
    pair, head, uncached, floats = _PAIR, _HEAD, _UNCACHED, _FLOATS
    for key, value in record.attributes.items():
        if type(value) is str:
            if key in uncached:  # a payload, an id: encoded every time
                data = value.encode("utf-8", "replace")
                size = len(data)
                parts += (head((key, size)) or _string_head(key, size), data)
            else:
                parts.append(pair((key, value)) or _new_pair(key, value))
        elif type(value) is float:
            parts += (floats.get(key) or _float_head(key), _pack_double(value))
        else:
            parts.append(_field(9, _key(key) + _field(2, any_value(value))))
    if record.events:
        parts += map(_event, record.events)
    parts += (_status(record), _FLAGS[record.parent_is_remote])
    return parts


def span(record: SpanRecord) -> bytes:
    """The encoded ``Span`` of a record (without its field tag)."""
    return b"".join(_span_parts(record))


def span_field(record: SpanRecord) -> bytes:
    """A record's span as a ``ScopeSpans.spans`` field: the unit requests are made of."""
    body = b"".join(_span_parts(record))
    size = len(body)
    return (b"\x12" + _SMALL[size] if size < 0x80 else b"\x12" + varint(size)) + body


class Encoder:
    """Encodes batches of records for one resource and instrumentation scope."""

    def __init__(
        self,
        resource_attributes: Mapping[str, AttributeValue],
        scope_name: str,
        scope_version: str,
        resource_schema_url: str = "",
        scope_schema_url: str = "",
    ) -> None:
        self._resource = _field(1, attributes(1, resource_attributes))
        self._scope = _field(1, _text(1, scope_name) + _text(2, scope_version))
        self._resource_schema = _text(3, resource_schema_url) if resource_schema_url else b""
        self._scope_schema = _text(3, scope_schema_url) if scope_schema_url else b""

    def request(self, records: Iterable[SpanRecord]) -> bytes:
        """One ``ExportTraceServiceRequest`` holding every record."""
        return self.join([span_field(r) for r in records])

    def wrap(self, span_fields: bytes) -> bytes:
        """One request holding spans already encoded (:func:`span_field`, concatenated)."""
        return self.join([span_fields])

    def join(self, span_fields: Sequence[bytes]) -> bytes:
        """One request holding the spans :func:`span_field` encoded, copied once."""
        scope = len(self._scope) + sum(map(len, span_fields)) + len(self._scope_schema)
        resource = len(self._resource) + 1 + varint_size(scope) + scope
        resource += len(self._resource_schema)
        head = (b"\x0a", varint(resource), self._resource, b"\x12", varint(scope), self._scope)
        return b"".join((*head, *span_fields, self._scope_schema, self._resource_schema))

    def request_size(self, span_bytes: int) -> int:
        """The size of what :meth:`join` makes of span fields of ``span_bytes`` bytes."""
        scope = len(self._scope) + span_bytes + len(self._scope_schema)
        resource = len(self._resource) + 1 + varint_size(scope) + scope
        resource += len(self._resource_schema)
        return 1 + varint_size(resource) + resource

    def sizes(self, records: Sequence[SpanRecord]) -> list[int]:
        """The encoded size of each record's span (for splitting batches by size)."""
        return [len(span(r)) for r in records]
