"""The upstream WebSocket client: picows callbacks, websockets' behaviour kept.

:func:`connect` opens one run socket and hands each message to a callback: ``str`` for a
text message, ``bytes`` for a binary one, fragmented messages reassembled, at most
``MAX_MESSAGE_BYTES`` each. Messages are queued as picows reads them and handed on in batches,
one batch per event-loop turn (a burst cannot stall the loop), in order; a full queue pauses
reading (``sources/ws_frames.py``, with the frame rules). What websockets did for the bridge
before is done here:

- protocol pings every ``ping_interval`` (fixed, not only when idle), the connection dropped
  (close 1011 ``keepalive ping timeout``) when no pong comes within ``ping_timeout``; one
  timer per connection, no task; server pings are answered by picows;
- the close handshake: a server's close is echoed, ours waits ``CLOSE_TIMEOUT_S`` for the
  answer; how it ended reads like websockets' ``ConnectionClosed`` (``received 1011 ...``),
  and is normal only when both sides' close codes are 1000, 1001 or 1005;
- sends are dropped (``send`` returns False, ``dropped_sends`` counts) while the write buffer
  is full; redirects are not followed (a 3xx is :class:`Refused`); masking keys come from
  libc ``rand()``, seeded per process (``ws_frames.seed_masks``);
- the handshake: ``open_timeout`` for everything (TCP, TLS, proxy, upgrade), extra headers,
  ``User-Agent: otel-bridge``, proxies from the environment as websockets 15+ picks them,
  an HTTP answer other than 101 raised as :class:`Refused` with its status, a bad URL as
  :class:`BadURL`; the URL's path is sent as given (already percent-encoded).

permessage-deflate is not in picows: ``sources/ws_deflate.py`` keeps websockets for it.
What both share (errors, the interface, the close wording) is in ``sources/ws_common.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Sequence
from typing import Any

from picows import (
    WSCloseCode,
    WSHandshakeError,
    WSInvalidStatusError,
    WSInvalidURL,
    WSMsgType,
    WSParsedURL,
    WSTransport,
    ws_connect,
)
from websockets.exceptions import InvalidURI
from websockets.frames import Close
from websockets.proxy import get_proxy
from websockets.uri import parse_uri

from otel_bridge.sources.ws_common import (
    MAX_MESSAGE_BYTES,
    BadURL,
    HandshakeFailed,
    OnMessage,
    Refused,
    Upstream,
    close_reason,
)
from otel_bridge.sources.ws_frames import WRITE_BUFFER_CAP, Receiver, seed_masks

CLOSE_TIMEOUT_S = 10.0  # websockets' default close_timeout
NO_STATUS = 1005  # a close frame without a code (picows reports 0)
READ_BUFFER_BYTES = 2048  # picows's smallest; it grows with the largest frame seen
USER_AGENT = ("User-Agent", "otel-bridge")
TEXT, BINARY, CONTINUATION = WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION
PONG, CLOSE = WSMsgType.PONG, WSMsgType.CLOSE


class _QuietLog(logging.LoggerAdapter[logging.Logger]):
    """picows's log, warnings and up only (it logs every connect and disconnect at INFO).

    One object for every connection: given a plain Logger, picows makes a child Logger per
    connection, which never goes away.
    """

    def isEnabledFor(self, level: int) -> bool:
        """Only warnings and errors."""
        return level >= logging.WARNING and self.logger.isEnabledFor(level)


PICOWS_LOG = _QuietLog(logging.getLogger("picows.client"))


def _close(info: Any) -> Close | None:
    """The close info of picows (WSCloseInfo) as websockets' Close (None stays None)."""
    if info is None:
        return None
    return Close(int(info.code) or NO_STATUS, info.reason)


class Link(Receiver):
    """One upstream connection: messages to ``on_message``, pings, the close handshake."""

    __slots__ = ("_abandoned", "_interval", "_ping_at", "_sock", "_timeout", "_timer")

    def __init__(self, on_message: OnMessage, ping_interval: float, ping_timeout: float) -> None:
        super().__init__(on_message)
        self._interval = ping_interval
        self._timeout = ping_timeout
        self._timer: asyncio.TimerHandle | None = None
        self._ping_at = 0.0  # when the unanswered ping went; 0.0: none is
        self._abandoned = False
        self._sock: socket.socket | None = None  # to hang up before picows has a transport

    # ---- picows's callbacks ------------------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        """Handshake done: start pinging (or drop it, if given up meanwhile)."""
        self.transport = transport
        if self._abandoned:
            transport.disconnect(False)
            return
        self._timer = self._loop.call_later(self._interval, self._ping)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        """Gone: stop the timer, say how it ended (``closed``, once the queue is handed on)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._ended_with(self._reason(transport))
        # picows keeps what broke the connection (a parser error, whose close frame says it
        # already) in a future of its own: take it, or asyncio logs it as never retrieved.
        self._loop.create_task(_consume(transport))

    # ---- pings ---------------------------------------------------------------------------

    def _ping(self) -> None:
        transport = self.transport
        if transport is None or transport.is_close_frame_sent:
            return
        self._ping_at = self._loop.time()
        transport.send_ping(b"otel-bridge")
        self._timer = self._loop.call_later(self._timeout, self._ping_overdue)

    def _pong(self) -> None:
        if not self._ping_at:
            return  # unsolicited
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(self._ping_at + self._interval, self._ping)
        self._ping_at = 0.0

    def _ping_overdue(self) -> None:
        self._timer = None
        self._fail(WSCloseCode.INTERNAL_ERROR, "keepalive ping timeout")

    # ---- closing ---------------------------------------------------------------------------

    def close(self) -> None:
        """Start the close handshake (1000); hang up if the server does not answer in time."""
        transport = self.transport
        if transport is None or transport.is_disconnected:
            return
        self._closing = True
        if not transport.is_close_frame_sent:
            transport.send_close(WSCloseCode.OK)
        self._loop.call_later(CLOSE_TIMEOUT_S, transport.disconnect, False)

    def abandon(self) -> None:
        """Given up (cancelled, timed out): drop the connection, also mid-handshake."""
        self._abandoned = True
        if self.transport is not None:
            self.transport.disconnect(False)
        elif self._sock is not None:  # the transport reads EOF and closes
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)

    async def dial(self, url: WSParsedURL) -> socket.socket:
        """Picows's socket factory: a connected TCP socket to ``url``'s host, kept to hang up.

        Each address ``getaddrinfo`` gives is tried in turn (as asyncio's create_connection
        does without happy eyeballs); the last error is raised if none answers.
        """
        loop = self._loop
        infos = await loop.getaddrinfo(url.host, url.port, type=socket.SOCK_STREAM)
        error: OSError = OSError(f"no address for {url.host}")
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, address)
            except OSError as exc:
                sock.close()
                error = exc
                continue
            except BaseException:
                sock.close()
                raise
            self._sock = sock
            return sock
        raise error

    def send(self, text: str) -> bool:
        """Send a text frame; False when the connection is closing or gone.

        Also False, the frame dropped and counted in ``dropped_sends``, while the write buffer
        is full (the server does not read): the bridge never queues without bound. Protocol
        pings still go, so a stuck server misses the pong deadline.
        """
        transport = self.transport
        if transport is None or transport.is_close_frame_sent or transport.is_disconnected:
            return False
        if (
            self._write_paused
            or transport.underlying_transport.get_write_buffer_size() > WRITE_BUFFER_CAP
        ):
            self.dropped_sends += 1
            return False
        transport.send(TEXT, text.encode())
        return True

    async def send_text(self, text: str) -> bool:
        """``send`` for callers that may hold a websockets connection instead."""
        return self.send(text)

    def _reason(self, transport: WSTransport) -> str | None:
        """None if the close handshake was a normal one, else why not."""
        handshake = transport.close_handshake
        if handshake is None:
            reason = close_reason(None, None, False)
        else:
            rcvd, sent = _close(handshake.recv), _close(handshake.sent)
            reason = close_reason(rcvd, sent, bool(handshake.recv_then_sent))
        failure = self._failure
        if reason is not None and failure is not None and failure not in reason:
            reason = f"{reason} ({failure})"
        return reason


async def _consume(transport: WSTransport) -> None:
    """Wait for picows's end of a connection, dropping the error it may hold."""
    with contextlib.suppress(Exception):
        await transport.wait_disconnected()


def proxy_for(url: str) -> str | None:
    """The proxy websockets (15+) would use for ``url``: from the environment, or none."""
    try:
        return get_proxy(parse_uri(url))
    except InvalidURI as exc:
        raise BadURL(str(exc)) from None


async def connect(
    url: str,
    link: Link,
    *,
    headers: Sequence[tuple[str, str]],
    open_timeout: float,
    ssl_context: ssl.SSLContext | None,
) -> None:
    """Open ``url`` for ``link``.

    Raises :class:`Refused`, :class:`BadURL`, :class:`HandshakeFailed`, OSError or
    TimeoutError. If cancelled or timed out before the connection opens, the half-open
    connection is dropped when it opens.
    """
    proxy = proxy_for(url)
    seed_masks()
    if all(name.lower() != "user-agent" for name, _ in headers):  # as websockets: yours wins
        headers = [*headers, USER_AGENT]
    try:
        async with asyncio.timeout(open_timeout):
            await ws_connect(
                lambda: link,
                url,
                ssl_context=ssl_context,
                disconnect_on_exception=False,
                websocket_handshake_timeout=open_timeout,
                logger_name=PICOWS_LOG,
                max_frame_size=MAX_MESSAGE_BYTES,
                extra_headers=headers,
                proxy=proxy,
                read_buffer_init_size=READ_BUFFER_BYTES,
                socket_factory=link.dial,
                use_aiofastnet=False,
                max_redirects=0,  # a 3xx is a Refused status, as with websockets
            )
    except WSInvalidStatusError as exc:
        link.abandon()
        status = exc.response.status if exc.response is not None else 0
        raise Refused(int(status)) from None
    except WSInvalidURL as exc:
        raise BadURL(str(exc)) from None
    except WSHandshakeError as exc:
        link.abandon()
        raise HandshakeFailed.of(exc) from None
    except TimeoutError:
        link.abandon()
        raise TimeoutError("timed out during opening handshake") from None
    except BaseException:
        link.abandon()
        raise


__all__ = ["BadURL", "HandshakeFailed", "Link", "Refused", "Upstream", "connect", "proxy_for"]
