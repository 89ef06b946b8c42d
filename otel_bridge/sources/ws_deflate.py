"""The upstream client with permessage-deflate (``upstream_compression``): websockets.

picows (``sources/ws_client.py``, the default) has no compression extension, so a bridge
that offers permessage-deflate upstream keeps websockets' client, behind the same
interface (:class:`~otel_bridge.sources.ws_common.Upstream`): messages to a callback,
the same errors, the same close reasons. It costs more CPU per frame and memory per socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Sequence

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from otel_bridge.sources.ws_common import (
    MAX_MESSAGE_BYTES,
    BadURL,
    HandshakeFailed,
    OnMessage,
    Refused,
)


class DeflateLink:
    """One upstream connection over websockets, with compression offered."""

    def __init__(self, on_message: OnMessage, ping_interval: float, ping_timeout: float) -> None:
        self.on_message = on_message
        self._interval = ping_interval
        self._timeout = ping_timeout
        self._ws: ClientConnection | None = None
        self._closer: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[str | None] | None = None

    @property
    def closed(self) -> asyncio.Future[str | None]:
        """Done at the end of the connection: None if closed normally, else why."""
        assert self._reader is not None, "closed before open"
        return self._reader

    async def open(
        self,
        url: str,
        *,
        headers: Sequence[tuple[str, str]],
        open_timeout: float,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        """Connect; the same errors as ``ws_client.connect``."""
        try:
            self._ws = await connect(
                url,
                additional_headers=list(headers),
                open_timeout=open_timeout,
                ping_interval=self._interval,
                ping_timeout=self._timeout,
                compression="deflate",
                max_size=MAX_MESSAGE_BYTES,
                ssl=ssl_context,
                user_agent_header="otel-bridge",
            )
        except InvalidStatus as exc:
            raise Refused(exc.response.status_code) from None
        except InvalidURI as exc:
            raise BadURL(str(exc)) from None
        except (InvalidHandshake, ConnectionClosed) as exc:
            raise HandshakeFailed.of(exc) from None
        self._reader = asyncio.ensure_future(self._read(self._ws))

    def close(self) -> None:
        """Start the close handshake."""
        if self._ws is not None and self._closer is None:
            self._closer = asyncio.ensure_future(self._ws.close())

    def abandon(self) -> None:
        """Drop the connection now (websockets drops one whose opening was cancelled)."""
        if self._reader is not None:
            self._reader.cancel()
        if self._ws is not None:
            self._ws.transport.abort()

    async def send_text(self, text: str) -> bool:
        """Send a text frame; False when not connected."""
        if self._ws is None:
            return False
        try:
            await self._ws.send(text)
        except ConnectionClosed:
            return False
        return True

    async def _read(self, ws: ClientConnection) -> str | None:
        """Read until the end: None if closed normally, else why."""
        try:
            async for message in ws:
                self.on_message(message)
        except ConnectionClosed as exc:
            return f"connection closed: {exc}"
        finally:
            if self._closer is not None:
                with contextlib.suppress(Exception):
                    await self._closer
        return None
