"""Secrets out of JSON text, structure-aware, without parsing it: works on a cut prefix too.

:func:`redact_json` scans JSON text token by token (strings, punctuation, scalars), keeping
a stack of the containers it is in, and replaces by ``"[REDACTED]"``:

- the value (string, number, object or array) of a secret-named key, at any depth;
- the ``value``/``val`` of a header pair written as an object whose ``name``/``key``/
  ``header`` is a secret key (``{"name": "x-api-key", "value": "…"}``);
- the second item of a two-item list whose first is a secret key (``[["x-api-key","…"]]``);
- secret shapes inside any other string (:func:`~.secrets.redact_text`).

The text may be cut anywhere (a payload cut to its size cap): an unterminated string or
container still gets its rule applied up to the end of the text, so a cut never reveals
part of a secret. Invalid JSON is scanned the same way, token by token, and the result is
never less redacted than :func:`~.secrets.redact_text` alone would make it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from otel_bridge.core.secrets import (
    REDACTED,
    is_secret_key,
    might_hold_secret_json,
    redact_text,
)

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\Z)|[{}\[\],:]|[^\s{}\[\],:"]+', re.S)
_QUOTED = json.dumps(REDACTED)
_PAIR_NAMES = frozenset({"name", "key", "header"})
_PAIR_VALUES = frozenset({"value", "val"})
Span = tuple[int, int]


def _decode(token: str) -> str:
    """The text of a JSON string token (best effort for a cut or odd one)."""
    if len(token) >= 2 and token.endswith('"'):
        if "\\" not in token:
            return token[1:-1]
        try:
            value = json.loads(token)
        except ValueError:
            return token[1:-1]
        return value if isinstance(value, str) else token[1:-1]
    return token[1:]


@dataclass
class _Frame:
    """A container being scanned: an object (``{``) or an array (``[``)."""

    kind: str
    start: int
    expect_key: bool = True
    key: str | None = None
    secret_from: int | None = None  # where the value of a secret key began
    pair_secret: bool = False  # a header pair whose name is a secret key
    pair_values: list[Span] = field(default_factory=list)
    items: list[tuple[str | None, Span]] = field(default_factory=list)  # arrays: first two


class _Scan:
    """One pass over a JSON text, collecting the spans to replace."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.cuts: list[Span] = []
        self.texts: list[Span] = []
        self.stack: list[_Frame] = []

    def run(self) -> str:
        for match in _TOKEN.finditer(self.text):
            self.token(match.group(0), match.start(), match.end())
        end = len(self.text)
        while self.stack:
            self.close(end)
        return self.render()

    def token(self, token: str, start: int, end: int) -> None:
        top = self.stack[-1] if self.stack else None
        first = token[0]
        if first in "{[":
            if top is not None:
                self.value_begins(top, start)
            self.stack.append(_Frame(first, start))
        elif first in "}]":
            if top is not None and top.kind == ("{" if first == "}" else "["):
                self.close(end)
        elif first == ",":
            if top is not None and top.kind == "{":
                top.expect_key, top.key = True, None
        elif first == ":":
            if top is not None and top.kind == "{":
                top.expect_key = False
        elif top is not None and top.kind == "{" and top.expect_key:
            top.key = _decode(token) if first == '"' else token
        else:
            self.scalar(top, token, start, end)

    def value_begins(self, top: _Frame, start: int) -> None:
        """A value starts in ``top``: remember it when its key is a secret one."""
        if top.kind == "{" and top.key is not None and is_secret_key(top.key, "x"):
            top.secret_from = start
        elif top.kind == "[" and len(top.items) < 3:
            top.items.append((None, (start, start)))

    def scalar(self, top: _Frame | None, token: str, start: int, end: int) -> None:
        is_string = token[0] == '"'
        if top is not None and top.kind == "{":
            key = top.key
            value = _decode(token) if is_string else None if token == "null" else token
            if key is not None and is_secret_key(key, value):
                if token != "null":
                    self.cuts.append((start, end))
                return
            if key is not None and is_string:
                lowered = key.lower()
                if lowered in _PAIR_NAMES and is_secret_key(_decode(token), "x"):
                    top.pair_secret = True
                elif lowered in _PAIR_VALUES:
                    top.pair_values.append((start, end))
        elif top is not None and top.kind == "[" and len(top.items) < 3:
            top.items.append((_decode(token) if is_string else None, (start, end)))
        if is_string:
            self.texts.append((start, end))

    def close(self, end: int) -> None:
        frame = self.stack.pop()
        if frame.kind == "{":
            if frame.secret_from is not None:  # a secret key's object/array value, cut
                self.cuts.append((frame.secret_from, end))
            if frame.pair_secret:
                self.cuts.extend(frame.pair_values)
        elif len(frame.items) == 2:
            name, _ = frame.items[0]
            if name is not None and is_secret_key(name, "x"):
                self.cuts.append(frame.items[1][1])
        parent = self.stack[-1] if self.stack else None
        if parent is not None and parent.kind == "{" and parent.secret_from is not None:
            self.cuts.append((parent.secret_from, end))
            parent.secret_from = None
        elif parent is not None and parent.kind == "[" and parent.items:
            name, (begin, _) = parent.items[-1]
            parent.items[-1] = (name, (begin, end))

    def render(self) -> str:
        text = self.text
        cuts = _merge(self.cuts)
        replacements = [(start, end, _QUOTED) for start, end in cuts]
        index = 0
        for start, end in self.texts:  # string tokens, in order
            while index < len(cuts) and cuts[index][1] <= start:
                index += 1
            if index < len(cuts) and cuts[index][0] <= start:
                continue  # inside a cut already
            token = text[start:end]
            if might_hold_secret_json(token):
                plain = _decode(token)
                cleaned = redact_text(plain)
                if cleaned != plain:
                    replacements.append((start, end, json.dumps(cleaned, ensure_ascii=False)))
        replacements.sort()
        out: list[str] = []
        pos = 0
        for start, end, replacement in replacements:
            out.append(text[pos:start])
            out.append(replacement)
            pos = end
        out.append(text[pos:])
        return "".join(out)


def _merge(spans: list[Span]) -> list[Span]:
    """Sorted, non-overlapping spans (an outer cut swallows the cuts inside it)."""
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def redact_json(text: str) -> str:
    """Return JSON text (possibly cut) with every secret replaced, structure kept."""
    if not might_hold_secret_json(text):
        return text
    return _Scan(text).run()
