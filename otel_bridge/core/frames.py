"""Where frames become events: the classification of raw WebSocket frames.

A frame is one WebSocket message as received. :func:`classify_frame` turns it into one of

- an event of :mod:`.events` (the six documented types, or :class:`UnknownEvent`),
- :class:`Noise` (greetings, ``Echoing:`` echoes, keepalive/ping/pong, plain text), ignored,
- :class:`Rejected` (not usable: broken JSON, not an object, no event type), counted.

The size limit counts UTF-8 bytes; JSON nested deeper than :data:`MAX_PAYLOAD_DEPTH` is cut
there (the event is kept); lone UTF-16 surrogates are replaced.
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec
import orjson

from otel_bridge.core.events import (
    FAST_DECODER,
    KNOWN_EVENT_TYPES,
    TrackedEvent,
    event_from_dict,
    parse_int,
    settle,
)
from otel_bridge.core.outputs import FrameIgnored, FrameRejected, NoiseReason, RejectReason

NOISE_EVENT_TYPES = frozenset({"keepalive", "ping", "pong", "heartbeat"})
_LONE_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
MAX_FRAME_BYTES = 1024 * 1024
"""The default size limit of a frame (``max_frame_bytes``); larger ones are rejected."""
# JSON nested deeper than this is cut (the deeper value becomes DEPTH_CUT): redaction,
# serialisation and the event models all recurse, and a legal frame may nest ~1000 levels.
MAX_PAYLOAD_DEPTH = 64
DEPTH_CUT = "[nested too deep]"


# A frame's classification is the engine's notice about it (the preview is added there).
Noise = FrameIgnored
Rejected = FrameRejected
Frame = TrackedEvent | Noise | Rejected


def _text_noise(text: str) -> Noise:
    lowered = text.lower()
    if lowered.startswith("echoing:"):
        return Noise(NoiseReason.ECHO)
    if "connection established" in lowered or lowered.startswith("connected"):
        return Noise(NoiseReason.GREETING)
    return Noise(NoiseReason.TEXT)


def _frame_size(frame: str | bytes, limit: int) -> int:
    """Return the frame's size in bytes (UTF-8 for text), computed only when it could matter."""
    if isinstance(frame, str) and limit // 4 < len(frame) <= limit:
        return len(frame.encode("utf-8", errors="surrogatepass"))
    return len(frame)


def classify_frame(frame: str | bytes, max_bytes: int = MAX_FRAME_BYTES) -> Frame:
    """Classify one received WebSocket frame; one over ``max_bytes`` is rejected unread."""
    size = _frame_size(frame, max_bytes)
    if size > max_bytes:
        return Rejected(RejectReason.TOO_LARGE, f"{size} bytes")
    if isinstance(frame, bytes):
        try:
            frame = frame.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Rejected(RejectReason.NOT_UTF8, str(exc))
    text = frame.strip()
    if not text.startswith(("{", "[")):
        return _text_noise(text)
    # Fewer brackets than the depth limit cannot nest deeper than it: skip the walk.
    shallow = text.count("{") + text.count("[") <= MAX_PAYLOAD_DEPTH
    if shallow and len(text) <= FAST_DECODE_CHARS:  # the common frame: one C-level decode
        try:
            event = FAST_DECODER.decode(text)
        except (msgspec.MsgspecError, UnicodeEncodeError):  # raw surrogates: _decode's
            pass
        else:
            if settle(event):
                return event
    try:
        data = _decode(text)
    except (ValueError, RecursionError) as exc:
        return Rejected(RejectReason.INVALID_JSON, str(exc)[:200])
    return classify_object(data, shallow=shallow)


# The fast decode of a frame not of the common shape fails, possibly at its very end, and
# the frame is decoded again: above this size that costs more than the fast way saves
# (callgrind, per frame of 24 KB: 646k -> 482k instructions with an unknown field at its
# end, 434k -> 468k for the common shape; at 1 MB 23.6M -> 16.9M and 16.9M -> 17.0M).
FAST_DECODE_CHARS = 16 * 1024


def _decode(text: str) -> Any:
    """Decode a frame's JSON as the fast decode does, tolerating what it refuses."""
    try:
        return msgspec.json.decode(text)
    except (msgspec.DecodeError, RecursionError):  # deep nesting, NaN, lone surrogates
        pass
    except UnicodeEncodeError:  # raw lone surrogates in a str frame: replaced, as escaped ones
        text = text.encode("utf-8", "replace").decode("utf-8")
        return _decode(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        data = json.loads(text, parse_int=parse_int)
    if _LONE_SURROGATE.search(text):
        # Cut first: the scrub recurses, and valid JSON may nest deeper than the stack.
        if isinstance(data, dict | list) and _depth_exceeds(data, MAX_PAYLOAD_DEPTH):
            data = _cut_depth(data, MAX_PAYLOAD_DEPTH)
        data = _scrub_surrogates(data)
    return data


# An oversized frame is not parsed, but its envelope is looked for in its first and last
# ENVELOPE_WINDOW characters, so a run still ends when its terminal event is too large.
ENVELOPE_WINDOW = 64 * 1024
ENVELOPE_FIELDS = ("event_type", "flow_name", "run_name", "task_id", "task_name", "timestamp")
_SCALAR = r'("(?:[^"\\]|\\.){0,512}"|-?[0-9][0-9.eE+-]{0,31})'
_ENVELOPE = {name: re.compile(rf'"{name}"\s{{0,8}}:\s{{0,8}}{_SCALAR}') for name in ENVELOPE_FIELDS}


def oversized_envelope(frame: str | bytes, size: int) -> TrackedEvent | None:
    """The envelope of a frame too large to parse (its payloads replaced by a marker)."""
    ends = (frame[:ENVELOPE_WINDOW], frame[-ENVELOPE_WINDOW:])
    texts = [e.decode("utf-8", "ignore") if isinstance(e, bytes) else e for e in ends]
    found: dict[str, Any] = {}
    for name, pattern in _ENVELOPE.items():
        for text in texts:
            match = pattern.search(text)
            if match is not None:
                try:
                    found[name] = json.loads(match.group(1))
                except ValueError:
                    continue
                break
    if found.get("event_type") not in KNOWN_EVENT_TYPES:
        return None
    marker = f"[frame of {size} bytes, over the size limit: payload not kept]"
    kind = found["event_type"]
    if kind in ("task_failed", "flow_error"):
        found["error"] = {"type": "_OTHER", "message": marker}
    elif kind in ("task_completed", "flow_completed", "task_started"):
        found["input" if kind == "task_started" else "output"] = marker
    event = classify_object(found, shallow=True)
    return None if isinstance(event, Noise | Rejected) else event


def _scrub_surrogates(value: Any) -> Any:
    """Replace lone UTF-16 surrogates (valid JSON escapes, invalid text) in every string."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_scrub_surrogates(k): _scrub_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_surrogates(v) for v in value]
    return value


def classify_object(data: Any, *, shallow: bool = False) -> Frame:
    """Classify an already decoded JSON value (a recorded frame, a test's dict).

    ``shallow`` says the caller knows it nests less than the depth limit.
    """
    if not isinstance(data, dict):
        return Rejected(RejectReason.NOT_AN_OBJECT, type(data).__name__)
    kind = data.get("event_type")
    if kind is None:
        return _untyped_noise(data)
    if not isinstance(kind, str) or not kind:
        return Rejected(RejectReason.NO_EVENT_TYPE, f"event_type is {kind!r}")
    if kind.lower() in NOISE_EVENT_TYPES:
        return Noise(NoiseReason.KEEPALIVE)
    if not shallow and _depth_exceeds(data, MAX_PAYLOAD_DEPTH):
        data = _cut_depth(data, MAX_PAYLOAD_DEPTH)
    return event_from_dict(data)


def _untyped_noise(data: dict[str, Any]) -> Frame:
    kind = data.get("type")
    if isinstance(kind, str) and kind.lower() in NOISE_EVENT_TYPES:
        return Noise(NoiseReason.KEEPALIVE)
    message = data.get("message")
    if isinstance(message, str) and message.lower().startswith("echoing:"):
        return Noise(NoiseReason.ECHO)
    if kind == "system":
        return Noise(NoiseReason.SYSTEM)
    if isinstance(message, str) and len(data) <= 2:
        return _text_noise(message)
    return Rejected(RejectReason.NO_EVENT_TYPE, "object without event_type")


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Tell, without recursing, whether dicts/lists nest deeper than ``limit`` levels."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, dict | list):
                if depth >= limit:
                    return True
                stack.append((child, depth + 1))
    return False


def _cut_depth(value: Any, levels: int) -> Any:
    """Copy ``value``, replacing containers nested deeper than ``levels`` by DEPTH_CUT."""
    if not isinstance(value, dict | list):
        return value
    if levels <= 0:
        return DEPTH_CUT
    if isinstance(value, dict):
        return {k: _cut_depth(v, levels - 1) for k, v in value.items()}
    return [_cut_depth(v, levels - 1) for v in value]
