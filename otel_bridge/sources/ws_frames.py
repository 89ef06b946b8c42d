"""Frame rules of the upstream client: limits, close codes, the inbox's water marks.

Kept apart from ``sources/ws_client.py`` (picows's callbacks) so the rules read in one place:

- a fragmented message holds at most ``MAX_FRAGMENTS`` frames (websockets 17's default, 4096)
  and ``MAX_MESSAGE_BYTES``; above either the connection is dropped with 1009;
- a close code from the server must be one a peer may send (RFC 6455 7.4): 1000-1003,
  1007-1014 or 3000-4999; anything else (1005, 1006 and 1015 among them) fails with 1002;
- received messages wait in an inbox that is emptied ``BATCH`` at a time, one batch per
  event-loop turn; above ``HIGH_MESSAGES`` or ``HIGH_BYTES`` the socket stops being read until
  the inbox is below the low marks.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
from collections import deque

from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport

from otel_bridge.sources.ws_common import MAX_MESSAGE_BYTES, OnMessage

MAX_FRAGMENTS = 4096  # websockets 17's MAX_FRAGMENTS
BATCH = 64  # messages handed on per event-loop turn
HIGH_MESSAGES, LOW_MESSAGES = 1024, 256  # inbox size: stop reading above, read again below
HIGH_BYTES, LOW_BYTES = 8 * 1024 * 1024, 2 * 1024 * 1024
WRITE_BUFFER_CAP = 1024 * 1024  # bytes queued to send: above it, sends are dropped
TEXT, BINARY, CONTINUATION = WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION
PONG, CLOSE = WSMsgType.PONG, WSMsgType.CLOSE


def valid_close_code(code: int) -> bool:
    """Whether a peer may send ``code`` in a close frame (RFC 6455 7.4, as websockets)."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


_seeded = False


def seed_masks() -> None:
    """Seed libc's ``rand()`` once per process from ``os.urandom``.

    picows draws its client masking keys from libc ``rand()``, never seeded: without this
    every process sends the same keys. Seeded, they differ per process, but ``rand()`` is still
    not a CSPRNG (its keys are predictable from a few observed ones); picows offers no way to
    supply keys or a random source, so this is the best we can do here.
    """
    global _seeded
    if _seeded:
        return
    _seeded = True
    try:
        libc = ctypes.CDLL(None)
        libc.srand(ctypes.c_uint(int.from_bytes(os.urandom(4), "little")))
    except (OSError, AttributeError):  # no libc rand to seed: picows's keys stay as they are
        pass


class Receiver(WSListener):
    """What a connection receives: frames checked, messages reassembled, queued, handed on.

    ``closed`` is done when the connection is gone (``_ended_with``) and every message
    received before is handed on. The pings, the handshake and the sending are ``Link``'s.
    """

    __slots__ = (
        "_buf",
        "_closing",
        "_count",
        "_draining",
        "_end",
        "_ended",
        "_failure",
        "_kind",
        "_loop",
        "_paused",
        "_queue",
        "_queued",
        "_write_paused",
        "closed",
        "dropped_sends",
        "on_message",
        "transport",
    )

    def __init__(self, on_message: OnMessage) -> None:
        self.on_message = on_message
        self.transport: WSTransport | None = None
        self._loop = asyncio.get_running_loop()
        self._buf: bytearray | None = None  # a fragmented message so far
        self._kind = TEXT  # ... and its type
        self._count = 0  # ... and how many frames it came in
        self._failure: str | None = None  # why we dropped the connection, if we did
        self._closing = False  # a close frame went or came: data frames are ignored
        self._queue: deque[str | bytes] = deque()  # received, not yet handed on
        self._queued = 0  # their length
        self._draining = False  # a batch is scheduled
        self._paused = False  # reading paused: the queue is over its high marks
        self._write_paused = False  # the transport's write buffer is over its high mark
        self._ended = False  # disconnected; ``closed`` is set once the queue is empty
        self._end: str | None = None
        self.dropped_sends = 0  # frames not sent: the write buffer was full
        # A future, not a coroutine: an idle connection holds no frame or shield for its end.
        self.closed: asyncio.Future[str | None] = self._loop.create_future()

    def _pong(self) -> None:
        """A pong came (``Link`` keeps the pings)."""

    def _ended_with(self, reason: str | None) -> None:
        """The connection is gone: ``closed`` says ``reason`` once the queue is handed on."""
        self._buf = None
        self._closing = self._ended = True
        self._end = reason
        if not self._draining and not self.closed.done():
            self.closed.set_result(reason)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        """A frame: a whole message is queued for ``on_message``."""
        kind = frame.msg_type
        if frame.rsv1 or frame.rsv2 or frame.rsv3:  # no extension is negotiated
            self._fail(WSCloseCode.PROTOCOL_ERROR, "reserved bits must be 0")
        elif kind is TEXT or kind is BINARY or kind is CONTINUATION:
            if self._closing or frame.payload_size > MAX_MESSAGE_BYTES:
                return  # after a close, or one picows refused
            if not frame.fin or kind is CONTINUATION or self._buf is not None:
                self._fragment(frame, kind)
            elif kind is BINARY:
                self._push(frame.get_payload_as_bytes())
            else:
                try:
                    text = frame.get_payload_as_utf8_text()
                except UnicodeDecodeError:
                    self._fail(WSCloseCode.INVALID_TEXT, "invalid UTF-8")
                    return
                self._push(text)
        elif kind is PONG:
            self._pong()
        elif kind is CLOSE:
            self._closed_by_peer(transport, frame)

    def pause_writing(self) -> None:
        """The transport's write buffer is over its high mark: drop sends until it drains."""
        self._write_paused = True

    def resume_writing(self) -> None:
        """Below the low mark again."""
        self._write_paused = False

    # ---- the queue -----------------------------------------------------------------------

    def _push(self, message: str | bytes) -> None:
        """Queue a message; hand the queue on in the next loop turn; stop reading when full."""
        queue = self._queue
        queue.append(message)
        self._queued += len(message)
        if not self._draining:
            self._draining = True
            self._loop.call_soon(self._drain)
        if (len(queue) > HIGH_MESSAGES or self._queued > HIGH_BYTES) and not self._paused:
            self._paused = True
            transport = self.transport
            if transport is not None and not transport.is_disconnected:
                transport.underlying_transport.pause_reading()

    def _drain(self) -> None:
        """Hand on up to ``BATCH`` messages, in order; the rest in the next loop turn."""
        queue, on_message = self._queue, self.on_message
        try:
            for _ in range(min(BATCH, len(queue))):
                message = queue.popleft()
                self._queued -= len(message)
                on_message(message)
        finally:
            if queue:
                self._loop.call_soon(self._drain)
            else:
                self._draining = False
                if self._ended and not self.closed.done():
                    self.closed.set_result(self._end)
            if self._paused and len(queue) <= LOW_MESSAGES and self._queued <= LOW_BYTES:
                self._paused = False
                transport = self.transport
                if transport is not None and not transport.is_disconnected:
                    transport.underlying_transport.resume_reading()

    # ---- messages in pieces ------------------------------------------------------------

    def _fragment(self, frame: WSFrame, kind: WSMsgType) -> None:
        """Reassemble a fragmented message (no control frame lands here)."""
        buf = self._buf
        if kind is CONTINUATION:
            if buf is None:
                self._fail(WSCloseCode.PROTOCOL_ERROR, "unexpected continuation frame")
                return
        elif buf is not None:
            self._fail(WSCloseCode.PROTOCOL_ERROR, "expected a continuation frame")
            return
        else:
            buf = self._buf = bytearray()
            self._kind, self._count = kind, 0
        self._count += 1
        if self._count > MAX_FRAGMENTS:
            self._fail(WSCloseCode.MESSAGE_TOO_BIG, "too many fragments")
            return
        if len(buf) + frame.payload_size > MAX_MESSAGE_BYTES:
            self._fail(WSCloseCode.MESSAGE_TOO_BIG, f"over size limit ({MAX_MESSAGE_BYTES} bytes)")
            return
        buf += frame.get_payload_as_memoryview()
        if not frame.fin:
            return
        self._buf = None
        if self._kind is BINARY:
            self._push(bytes(buf))
            return
        try:
            text = buf.decode()
        except UnicodeDecodeError:
            self._fail(WSCloseCode.INVALID_TEXT, "invalid UTF-8")
            return
        self._push(text)

    # ---- closing ---------------------------------------------------------------------------

    def _fail(self, code: WSCloseCode, reason: str) -> None:
        """Drop the connection: send a close frame, then cut the TCP connection at once."""
        transport = self.transport
        if transport is None:
            return
        self._failure = reason
        self._closing = True
        self._buf = None
        if not transport.is_close_frame_sent:
            transport.send_close(code, reason.encode())
        transport.disconnect(False)

    def _closed_by_peer(self, transport: WSTransport, frame: WSFrame) -> None:
        """The server's close frame: echo it (unless we started the close), then hang up.

        A code a peer may not send, or a close in the middle of a fragmented message, is
        answered with 1002 (never echoed), and the close is abnormal.
        """
        self._closing = True
        if transport.is_close_frame_sent:
            transport.disconnect()
            return
        code = frame.get_close_code()
        if code.value and not valid_close_code(code.value):
            self._fail(WSCloseCode.PROTOCOL_ERROR, "invalid status code")
        elif self._buf is not None:
            self._fail(WSCloseCode.PROTOCOL_ERROR, "incomplete fragmented message")
        else:
            transport.send_close(code if code.value else WSCloseCode.OK, frame.get_close_message())
            transport.disconnect()
