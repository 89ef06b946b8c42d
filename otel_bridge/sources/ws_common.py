"""What both upstream clients share: their errors, their interface, how a close is told.

``sources/ws_client.py`` (picows, the default) and ``sources/ws_deflate.py`` (websockets,
for ``upstream_compression``) raise the same errors from their handshakes and describe an
abnormal close in websockets' words (``received 1011 (internal error) ...``), so a
subscription and its log lines do not depend on which one is in use.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any, Protocol

from websockets.frames import Close

from otel_bridge.core.errors import BridgeError

OnMessage = Callable[[str | bytes], None]  # str for a text message, bytes for a binary one

MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # the socket's own limit; the engine's is max_frame_bytes
OK_CLOSE_CODES = frozenset({1000, 1001, 1005})
HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # an RFC 7230 token
HEADER_VALUE_BAD = re.compile(r"[\r\n\x00]")


def header_safe(value: Any) -> Any:
    """A header setting (a value, or a NAME -> VALUE dict), checked to be safe on the wire.

    Names must be RFC 7230 tokens, values free of CR, LF and NUL (else a value could add
    headers of its own). The ValueError never shows a value: it may be a secret.
    """
    if isinstance(value, dict):
        for name, text in value.items():
            if not HEADER_NAME.fullmatch(name):
                raise ValueError("a header name is not an RFC 7230 token (not shown)")
            if HEADER_VALUE_BAD.search(text):
                raise ValueError(f"header {name}: the value has CR, LF or NUL (not shown)")
    elif isinstance(value, str) and HEADER_VALUE_BAD.search(value):
        raise ValueError("the value has CR, LF or NUL (not shown)")
    return value


class UpstreamError(BridgeError):
    """The upstream socket could not be opened (raised by both clients' handshakes)."""


class Refused(UpstreamError):
    """The upstream answered the handshake with an HTTP status other than 101."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class BadURL(UpstreamError, ValueError):
    """The upstream URL is not a WebSocket URL."""


class HandshakeFailed(UpstreamError):
    """The opening handshake went wrong otherwise (its text names the library's error)."""

    @classmethod
    def of(cls, exc: Exception) -> HandshakeFailed:
        """Wrap a library's handshake error, keeping its name in the text."""
        return cls(f"{type(exc).__name__}: {exc}")


class Upstream(Protocol):
    """What a subscription holds of its connection (:class:`Link`, or ws_deflate's)."""

    @property
    def closed(self) -> asyncio.Future[str | None]:
        """Done at the end of the connection: None if closed normally, else why."""

    def close(self) -> None:
        """Start the close handshake."""

    def abandon(self) -> None:
        """Given up: drop the connection now (or as soon as it opens)."""

    async def send_text(self, text: str) -> bool:
        """Send a text frame; False when not connected."""


def close_reason(rcvd: Close | None, sent: Close | None, rcvd_then_sent: bool) -> str | None:
    """None for a normal close, else why it was not, worded like websockets' ConnectionClosed."""
    if rcvd is not None and sent is not None:
        if rcvd.code in OK_CLOSE_CODES and sent.code in OK_CLOSE_CODES:
            return None
        first, then = (("received", rcvd), ("sent", sent))[:: 1 if rcvd_then_sent else -1]
        return f"connection closed: {first[0]} {first[1]}; then {then[0]} {then[1]}"
    if rcvd is not None:
        return f"connection closed: received {rcvd}; no close frame sent"
    if sent is not None:
        return f"connection closed: sent {sent}; no close frame received"
    return "connection closed: no close frame received or sent"
