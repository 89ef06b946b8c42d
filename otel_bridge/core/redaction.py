"""The egress policy: what may leave the bridge, redacted and capped, in one place.

Everything that leaves (span names and attributes, metric label values, logs, state files,
API answers) goes through a :class:`PayloadPolicy` or :func:`clean_name`:

- **payloads** (task inputs and outputs, error details, partial results, unknown events):
  compact JSON, cut to ``max_bytes`` plus a margin *first*, then redacted structure-aware
  (:mod:`.json_redaction`), then cut to ``max_bytes``: megabytes are never scanned to keep
  kilobytes, and a secret straddling the cut cannot leak in part;
- **free text** (messages, error descriptions, close reasons): cut, redacted, cut;
- **names and ids** (flow, run, task and agent names, task ids, error types and codes):
  secret shapes redacted in every capture mode, cut to :data:`NAME_MAX_BYTES` with
  :data:`CUT_MARK` at the end.

Capture modes (``PayloadPolicy.mode``): ``none`` exports no payload attributes; ``redacted``
(the default) exports them with secrets replaced by ``[REDACTED]``; ``full`` exports raw
payloads and messages and must be chosen explicitly (names are redacted even then).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

import orjson

from otel_bridge.core.json_redaction import redact_json
from otel_bridge.core.secrets import (
    REDACTED,
    is_secret_key,
    might_hold_secret,
    might_hold_secret_json,
    redact_text,
)

__all__ = [
    "CUT_MARK",
    "NAME_MAX_BYTES",
    "REDACTED",
    "CaptureMode",
    "PayloadPolicy",
    "clean_name",
    "compact_json",
    "is_secret_key",
    "redact",
    "redact_text",
    "truncate_utf8",
]

NAME_MAX_BYTES = 256
CUT_MARK = "…[cut]"
# Cut this many characters beyond the cap before redacting, so that a secret straddling the
# cap is still recognised whole (a PEM block or a JWT is recognised even when cut).
MARGIN_CHARS = 2048
_PAIR_NAME_KEYS = ("name", "key", "header")
_PAIR_VALUE_KEYS = frozenset({"value", "val"})


class CaptureMode(StrEnum):
    """How much of task inputs, outputs and errors is exported."""

    NONE = "none"
    REDACTED = "redacted"
    FULL = "full"


def compact_json(value: Any) -> str:
    """Serialise a JSON-like value compactly, tolerating non-JSON leaves."""
    try:
        return orjson.dumps(value).decode("utf-8")
    except (TypeError, orjson.JSONEncodeError):  # big ints, odd keys, surrogates: the slow way
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def truncate_utf8(text: str, max_bytes: int) -> tuple[str, bool]:
    """Cut a string to at most ``max_bytes`` UTF-8 bytes; tell whether it was cut."""
    if len(text) * 4 <= max_bytes:  # cannot be over, whatever the characters
        return text, False
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) <= max_bytes:
        return text, False
    return raw[:max_bytes].decode("utf-8", errors="ignore"), True


def _cut_chars(text: str, max_bytes: int) -> str:
    """A prefix long enough to hold the first ``max_bytes`` bytes, plus the margin."""
    limit = max_bytes + MARGIN_CHARS
    return text if len(text) <= limit else text[:limit]


def clean_name(value: str, max_bytes: int = NAME_MAX_BYTES) -> str:
    """A name or id as it may leave: secret shapes redacted, cut to ``max_bytes``."""
    if len(value) > max_bytes + MARGIN_CHARS:  # long ones are cut first and never cached
        return _clean_name(value[: max_bytes + MARGIN_CHARS], max_bytes, True)
    return _cached_name(value, max_bytes)


@lru_cache(maxsize=16384)
def _cached_name(value: str, max_bytes: int) -> str:
    return _clean_name(value, max_bytes, False)


def _clean_name(text: str, max_bytes: int, cut_already: bool) -> str:
    text = redact_text(text)
    kept, was_cut = truncate_utf8(text, max_bytes)
    if not (was_cut or cut_already):
        return kept
    room = max_bytes - len(CUT_MARK.encode())
    return truncate_utf8(text, room)[0] + CUT_MARK


def _is_secret_pair(mapping: dict[Any, Any]) -> bool:
    """Tell whether a mapping is a name/value pair whose name is a secret key."""
    for name_key in _PAIR_NAME_KEYS:
        name = mapping.get(name_key)
        if isinstance(name, str):
            value = next((v for k, v in mapping.items() if str(k).lower() in _PAIR_VALUE_KEYS), "")
            return is_secret_key(name, value)
    return False


def _key_rule_fires(value: Any, strings: list[str]) -> bool:
    """Collect the string leaves :func:`redact` would scan; tell whether a key rule fires.

    Leaves are handled in their container's loop and keys that name no secret are known
    from a cache, so a 1 KB payload costs one call per container, not one per node. An
    item whose key rule fires is not walked (it is replaced whole).
    """
    kind = type(value)
    if kind is str:
        if len(value) > 3:
            strings.append(value)
        return False
    fires = False
    if kind is dict:
        if ("name" in value or "key" in value or "header" in value) and _is_secret_pair(value):
            fires = True
        for key, item in value.items():
            if item is not None:
                named = _SECRET_NAMED.get(key)
                if named is None:
                    named = _may_name_secret(key)
                if named and is_secret_key(str(key), item):
                    fires = True
                    continue
            inner = type(item)
            if inner is str:
                if len(item) > 3:
                    strings.append(item)
            elif (inner is dict or inner is list or inner is tuple) and _key_rule_fires(
                item, strings
            ):
                fires = True
    elif kind is list or kind is tuple:
        if len(value) == 2 and type(value[0]) is str and is_secret_key(value[0], "x"):
            fires = True
        for item in value:
            inner = type(item)
            if inner is str:
                if len(item) > 3:
                    strings.append(item)
            elif (inner is dict or inner is list or inner is tuple) and _key_rule_fires(
                item, strings
            ):
                fires = True
    return fires


_SECRET_NAMED: dict[str, bool] = {}
_SECRET_NAMED_MAX = 16384


def _may_name_secret(key: Any) -> bool:
    """Whether a key names a secret for some value (cached per string key, bounded)."""
    if type(key) is not str:
        return is_secret_key(str(key), "x")
    named = _SECRET_NAMED.get(key)
    if named is None:
        named = is_secret_key(key, "x")
        if len(_SECRET_NAMED) < _SECRET_NAMED_MAX:
            _SECRET_NAMED[key] = named
    return named


def redact(value: Any, *, strings: bool = True) -> Any:
    """Return a copy of a JSON-like value with secrets replaced, at any depth.

    ``strings=False`` applies the key rules only: for a caller that knows no string leaf
    holds a secret shape (one scan of them all found no trigger).
    """
    if isinstance(value, dict):
        pair = _is_secret_pair(value)
        return {
            str(k): (
                REDACTED
                if v is not None
                and (is_secret_key(str(k), v) or (pair and str(k).lower() in _PAIR_VALUE_KEYS))
                else redact(v, strings=strings)
            )
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        items = [redact(item, strings=strings) for item in value]
        if len(items) == 2 and isinstance(items[0], str) and is_secret_key(items[0], "x"):
            items[1] = REDACTED
        return items
    if isinstance(value, str) and strings:
        return redact_text(value) if len(value) > 3 else value
    return value


@dataclass(frozen=True)
class PayloadPolicy:
    """The egress policy of payloads and text: capture mode and the size cap in bytes."""

    mode: CaptureMode = CaptureMode.REDACTED
    max_bytes: int = 4096

    def text(self, value: str) -> str:
        """A free-text value (a message): cut, redacted unless mode is full, capped."""
        value = _cut_chars(value, self.max_bytes)
        if self.mode is not CaptureMode.FULL:
            value = redact_text(value)
        return truncate_utf8(value, self.max_bytes)[0]

    def payload(self, value: Any) -> tuple[str | None, bool]:
        """A payload attribute: (compact JSON or None when not captured, truncated)."""
        if self.mode is CaptureMode.NONE or value is None:
            return None, False
        text = compact_json(value)
        limit = self.max_bytes + MARGIN_CHARS
        if self.mode is CaptureMode.REDACTED and len(text) <= limit:
            if not might_hold_secret(text):  # what payload_json would find, without a rescan
                return truncate_utf8(text, self.max_bytes)
            # Whole and parsed already: the text's trigger may be a mere key ("key_issues");
            # one scan of the string leaves, with the key rules, says whether to walk at all.
            strings: list[str] = []
            keys = _key_rule_fires(value, strings)
            shaped = might_hold_secret("\x00".join(strings))
            if keys or shaped:
                text = compact_json(redact(value, strings=shaped))
            return truncate_utf8(text, self.max_bytes)
        return self.payload_json(text)

    def payload_json(self, text: str) -> tuple[str | None, bool]:
        """A payload already serialised as JSON text: cut, redacted, capped."""
        if self.mode is CaptureMode.NONE:
            return None, False
        cut = _cut_chars(text, self.max_bytes)
        was_cut = len(cut) < len(text)
        if self.mode is CaptureMode.REDACTED and might_hold_secret_json(cut):
            cut = redact_json(cut)
        kept, truncated = truncate_utf8(cut, self.max_bytes)
        return kept, truncated or was_cut
