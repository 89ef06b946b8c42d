"""Secrets out, size capped: everything the bridge exports or logs from a payload passes here.

Three capture modes (``PayloadPolicy.mode``):

- ``none``: payload attributes are not exported at all;
- ``redacted`` (default): secrets replaced by ``[REDACTED]`` at any depth, by key name
  (api_key, authorization, token, secret, password, credential, cookie, private_key, ...;
  also the value of a ``{"name": <secret key>, "value": ...}`` pair), and by value shape
  (bearer/basic credentials, ``sk-…`` keys, JWTs, cloud keys, URL userinfo, secret-named
  query parameters, ``key: value`` / ``key=value`` pairs with a secret key inside text).
  A number under a token-count key (``max_tokens: 512``) is not a secret;
- ``full``: raw payloads; must be chosen explicitly.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

REDACTED = "[REDACTED]"


class CaptureMode(StrEnum):
    """How much of task inputs, outputs and errors is exported."""

    NONE = "none"
    REDACTED = "redacted"
    FULL = "full"


_SECRET_KEY = re.compile(
    r"api_?key|apikey|authorization|auth_?token|token|secret|passw(or)?d|credential|cookie"
    r"|private_?key|session_?key|signature|client_?secret|access_?key",
)
# Keys that name counts or limits of LLM tokens, not secrets (when their value is a number).
_COUNT_KEY = re.compile(r"tokens$|tokens?_(count|used|limit|total)|^(max|num|total)_tokens?")
# Keys of a {"name": ..., "value": ...} pair (HTTP headers as a list, HAR, Postman).
_PAIR_NAME_KEYS = ("name", "key", "header")
_PAIR_VALUE_KEYS = frozenset({"value", "val"})

_SECRET_VALUE = re.compile(
    r"(?i:\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{4,})"
    r"|\bsk-[A-Za-z0-9_-]{6,}"
    r"|\b[rs]k_(?:live|test)_[A-Za-z0-9]{8,}"
    r"|\bAIza[0-9A-Za-z_-]{30,}"
    r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"
    r"|\bAKIA[0-9A-Z]{16}\b"
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}"
    r"|\bxox[abprs]-[A-Za-z0-9-]{10,}"
)
# Every repetition before a literal is bounded or anchored: payloads run to megabytes and
# an unbounded ``[a-z]*`` prefix makes a regex quadratic in the length of a run of letters.
# Any userinfo (user:password@ or a token as user@) in a URL.
_URL_USERINFO = re.compile(
    r"(?<![a-z0-9+.-])(?P<scheme>[a-z][a-z0-9+.-]{0,31}://)[^/?#\s@]+@", re.I
)
_QUERY_SECRET = re.compile(
    r"(?P<key>[?&](?:[a-z0-9_-]{0,40}(?:api[_-]?key|token|secret|password|signature|sig)))"
    r"=[^&#\s]+",
    re.I,
)
# key: value / key=value / "key": "value" inside free text (a JSON body sent as a string,
# a header line, a log line). Bare numbers are left alone (``max_token=512``).
_TEXT_PAIR = re.compile(
    r"(?P<key>(?:api[_-]?key|apikey|token|secret|passw(?:or)?d|credentials?"
    r"|private[_-]?key|authorization)[\"']?\s*[:=]\s*[\"']?)"
    r"(?P<value>[^\s\"'&,;}\]]+)",
    re.I,
)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool | int | float):
        return True
    return isinstance(value, str) and value.strip().isdigit()


def is_secret_key(key: str, value: Any = None) -> bool:
    """Tell whether a mapping key names a secret (a number under a token-count key does not)."""
    normal = key.lower().replace("-", "_")
    if not _SECRET_KEY.search(normal):
        return False
    return not (_COUNT_KEY.search(normal) and (value is None or _is_number(value)))


def _text_pair(match: re.Match[str]) -> str:
    value = match.group("value")
    if value.isdigit() or value == REDACTED or value.startswith("[REDACTED"):
        return match.group(0)
    return f"{match.group('key')}{REDACTED}"


def redact_text(text: str) -> str:
    """Replace secret-looking parts of a string."""
    text = _SECRET_VALUE.sub(REDACTED, text)
    text = _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
    text = _QUERY_SECRET.sub(lambda m: f"{m.group('key')}={REDACTED}", text)
    return _TEXT_PAIR.sub(_text_pair, text)


def _is_secret_pair(mapping: dict[Any, Any]) -> bool:
    """Tell whether a mapping is a name/value pair whose name is a secret key."""
    for name_key in _PAIR_NAME_KEYS:
        name = mapping.get(name_key)
        if isinstance(name, str):
            value = next((v for k, v in mapping.items() if str(k).lower() in _PAIR_VALUE_KEYS), "")
            return is_secret_key(name, value)
    return False


def redact(value: Any) -> Any:
    """Return a copy of a JSON-like value with secrets replaced, at any depth."""
    if isinstance(value, dict):
        pair = _is_secret_pair(value)
        return {
            str(k): (
                REDACTED
                if v is not None
                and (is_secret_key(str(k), v) or (pair and str(k).lower() in _PAIR_VALUE_KEYS))
                else redact(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def compact_json(value: Any) -> str:
    """Serialise a JSON-like value compactly, tolerating non-JSON leaves."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def truncate_utf8(text: str, max_bytes: int) -> tuple[str, bool]:
    """Cut a string to at most ``max_bytes`` UTF-8 bytes; tell whether it was cut."""
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text, False
    return raw[:max_bytes].decode("utf-8", errors="ignore"), True


@dataclass(frozen=True)
class PayloadPolicy:
    """What payload attributes look like: capture mode and the size cap in bytes."""

    mode: CaptureMode = CaptureMode.REDACTED
    max_bytes: int = 4096

    def text(self, value: str) -> str:
        """Prepare a free-text attribute (a message): redacted unless mode is full, capped."""
        if self.mode is not CaptureMode.FULL:
            value = redact_text(value)
        return truncate_utf8(value, self.max_bytes)[0]

    def payload(self, value: Any) -> tuple[str | None, bool]:
        """Render a payload attribute: (compact JSON or None when not captured, truncated)."""
        if self.mode is CaptureMode.NONE or value is None:
            return None, False
        if self.mode is CaptureMode.REDACTED:
            value = redact(value)
        return truncate_utf8(compact_json(value), self.max_bytes)
