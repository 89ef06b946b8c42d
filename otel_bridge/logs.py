"""Log lines: one per notable thing, plain text or JSON, through the egress policy.

Every message, field and traceback is redacted (:func:`~otel_bridge.core.secrets.redact_text`,
cut first) and capped at :data:`MAX_FIELD_CHARS`. Text lines escape control characters, so
a newline inside a run name or a frame cannot forge a log line; traceback lines are indented
under the line they belong to. JSON lines are one object each (``json.dumps`` escapes).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from otel_bridge.core.redaction import CUT_MARK, MARGIN_CHARS, redact_text

MAX_FIELD_CHARS = 2048
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


def clean(text: str, limit: int = MAX_FIELD_CHARS) -> str:
    """A string as it may be logged: cut, redacted, capped."""
    cut = text[: limit + MARGIN_CHARS]
    cleaned = redact_text(cut)
    if len(cleaned) > limit or len(cut) < len(text):
        return cleaned[:limit] + CUT_MARK
    return cleaned


def escape(text: str) -> str:
    """Control characters as visible escapes (a newline becomes backslash-n)."""
    return _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.__dict__.items():
        if key in _STANDARD:
            continue
        out[key] = clean(value) if isinstance(value, str) else value
    return out


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value ...``, one line per record."""

    def format(self, record: logging.LogRecord) -> str:
        """Render one record."""
        when = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S.%f")[:-3]
        message = escape(clean(record.getMessage()))
        parts = [f"{when} {record.levelname:<7} {record.name}: {message}"]
        for key, value in _fields(record).items():
            shown = escape(value) if isinstance(value, str) else escape(str(value))
            parts.append(
                f"{key}={shown!r}" if isinstance(value, str) and " " in shown else f"{key}={shown}"
            )
        line = " ".join(parts)
        if record.exc_info:
            trace = clean(self.formatException(record.exc_info), 16 * MAX_FIELD_CHARS)
            line += "".join(f"\n    | {escape(part)}" for part in trace.splitlines())
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        """Render one record."""
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": clean(record.getMessage()),
        }
        line.update(_fields(record))
        if record.exc_info:
            line["exception"] = clean(self.formatException(record.exc_info), 16 * MAX_FIELD_CHARS)
        return json.dumps(line, default=str, ensure_ascii=False)


def setup_logging(fmt: str = "text", level: str = "INFO") -> None:
    """Configure the root logger for the CLI (only the entry point calls this)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("websockets", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
