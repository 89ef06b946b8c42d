"""The LAO stand-in of the end-to-end benchmark: per-run sockets serving pre-serialised frames.

Run (``bench/e2e/run.py`` starts it, pinned next to the receiver)::

    .venv/bin/python -m bench.e2e.source --runs 200 --tasks 50 --tag r1 --port-file PATH

It builds every frame of ``--runs`` runs of flow ``Bench_Flow`` before listening (what the
frames hold: ``bench/e2e/frames.py``).

Runs are served at ``/ws/Bench_Flow/{run}``. Nothing is sent before ``POST /go`` (LAO has no
replay, so the runner first waits until every run socket has a subscriber). Plain HTTP on
the same port:

- ``GET /status``: runs, subscribed runs, connections, events sent, frames nobody received,
  ``go_ns`` and ``done_ns`` (``time.monotonic_ns``, comparable across processes);
- ``POST /go?rate=N``: send every event, paced at N events/s (0: as fast as the sockets take
  them, waiting only on sockets with over 1 MiB unsent);
- ``GET /send_times``: for each span-closing frame (a task's end, keyed by its ``task_id``, and
  ``flow_completed``, keyed ``run:{run}``) the monotonic ns when it was handed to the socket.

The port it listens on is written to ``--port-file`` as JSON once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from bench.e2e.frames import FLOW, Frame, build_frames, ws_frame

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
BUSY_CHUNK = 64  # frames written between two looks at the event loop when not paced
HIGH_WATER = 1 << 20  # unsent bytes on one socket before the unpaced sender waits for it


def unmask(data: bytes, mask: bytes) -> bytes:
    """Unmask a client frame's payload."""
    size = len(data)
    if not size:
        return data
    key = int.from_bytes((mask * (size // 4 + 1))[:size], "big")
    return (int.from_bytes(data, "big") ^ key).to_bytes(size, "big")


@dataclass
class Source:
    """The server's state: who listens to which run, what was sent when."""

    run_names: list[str]
    frames: list[Frame]
    subscribers: list[set[asyncio.StreamWriter]] = field(default_factory=list)
    send_ns: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    missed: int = 0
    go_ns: int | None = None
    done_ns: int | None = None
    sender: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.subscribers = [set() for _ in self.run_names]
        self.index = {name: i for i, name in enumerate(self.run_names)}

    def status(self) -> dict[str, Any]:
        """What the runner polls."""
        return {
            "runs": len(self.run_names),
            "events": len(self.frames),
            "subscribed": sum(1 for s in self.subscribers if s),
            "connections": sum(len(s) for s in self.subscribers),
            "sent": self.sent,
            "missed": self.missed,
            "go_ns": self.go_ns,
            "done_ns": self.done_ns,
        }

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One connection: a WebSocket upgrade to a run socket, or one control request."""
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            line, *rest = head.decode("latin-1").split("\r\n")
            method, target, _ = line.split(" ", 2)
            headers = {}
            for header in rest:
                name, _, value = header.partition(":")
                headers[name.strip().lower()] = value.strip()
            if headers.get("upgrade", "").lower() == "websocket":
                await self.websocket(target, headers, reader, writer)
            else:
                length = int(headers.get("content-length", "0") or 0)
                if length:
                    await reader.readexactly(length)
                status, body = self.control(method, target)
                writer.write(
                    f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (TimeoutError, OSError, ValueError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def control(self, method: str, target: str) -> tuple[str, bytes]:
        """Answer one control request."""
        url = urlsplit(target)
        if method == "GET" and url.path == "/status":
            return "200 OK", json.dumps(self.status()).encode()
        if method == "GET" and url.path == "/send_times":
            return "200 OK", json.dumps(self.send_ns).encode()
        if method == "POST" and url.path == "/go":
            if self.sender is not None:
                return "409 Conflict", b'{"error": "already started"}'
            rate = float(parse_qs(url.query).get("rate", ["0"])[0])
            self.sender = asyncio.create_task(self.send_all(rate))
            return "202 Accepted", b"{}"
        return "404 Not Found", b'{"error": "no such endpoint"}'

    async def websocket(
        self,
        target: str,
        headers: dict[str, str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        """Accept a run socket, then answer the client's pings until it closes."""
        parts = urlsplit(target).path.split("/")
        run = unquote(parts[3]) if len(parts) == 4 and parts[1] == "ws" else ""
        if unquote(parts[2] if len(parts) > 2 else "") != FLOW or run not in self.index:
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            return
        accept = base64.b64encode(
            hashlib.sha1(headers["sec-websocket-key"].encode() + WS_GUID).digest()
        )
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        subscribers = self.subscribers[self.index[run]]
        subscribers.add(writer)
        try:
            while True:
                b0, b1 = await reader.readexactly(2)
                size = b1 & 0x7F
                if size == 126:
                    size = int.from_bytes(await reader.readexactly(2), "big")
                elif size == 127:
                    size = int.from_bytes(await reader.readexactly(8), "big")
                mask = await reader.readexactly(4) if b1 & 0x80 else b""
                data = await reader.readexactly(size)
                if mask:
                    data = unmask(data, mask)
                opcode = b0 & 0x0F
                if opcode == 0x9:  # ping
                    writer.write(ws_frame(data, 0xA))
                elif opcode == 0x8:  # close: answer with the same code, then hang up
                    subscribers.discard(writer)
                    writer.write(ws_frame(data[:2], 0x8))
                    await writer.drain()
                    return
                # text frames (the client's {"type":"ping"}) and pongs are ignored
        finally:
            subscribers.discard(writer)

    async def send_all(self, rate: float) -> None:
        """Send every frame in order; paced at ``rate`` events/s, or as fast as possible."""
        frames, total = self.frames, len(self.frames)
        self.go_ns = time.monotonic_ns()
        start = self.go_ns / 1e9
        done = 0
        while done < total:
            if rate > 0:
                due = min(total, int((time.monotonic() - start) * rate) + 1)
            else:
                due = min(total, done + BUSY_CHUNK)
            full: set[asyncio.StreamWriter] = set()
            for frame in frames[done:due]:
                subscribers = self.subscribers[frame.run]
                if not subscribers:
                    self.missed += 1
                for writer in subscribers:
                    transport = writer.transport
                    if not transport.is_closing():
                        transport.write(frame.data)
                        if transport.get_write_buffer_size() > HIGH_WATER:
                            full.add(writer)
                if frame.key is not None:
                    self.send_ns[frame.key] = time.monotonic_ns()
            self.sent += due - done
            done = due
            if rate > 0:
                await asyncio.sleep(max(0.0, start + done / rate - time.monotonic()))
            else:
                for writer in full:
                    with contextlib.suppress(OSError):
                        await writer.drain()
                await asyncio.sleep(0)
        self.done_ns = time.monotonic_ns()


def write_port_file(path: str, ports: dict[str, int]) -> None:
    """Write the ports atomically (the runner polls for the file)."""
    temp = Path(path + ".tmp")
    temp.write_text(json.dumps(ports))
    os.replace(temp, path)


async def serve(args: argparse.Namespace) -> None:
    """Build the frames, listen, write the port file, serve until SIGTERM."""
    names, frames = build_frames(args.runs, args.tasks, args.tag)
    source = Source(names, frames)
    server = await asyncio.start_server(source.handle, "127.0.0.1", args.port, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    write_port_file(args.port_file, {"port": port})
    sizes = sorted(len(f.data) for f in frames)
    print(
        f"source: {len(names)} runs, {len(frames)} frames "
        f"(median {sizes[len(sizes) // 2]} B, max {sizes[-1]} B) on port {port}",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    """Parse arguments and serve."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--tag", default="r", help="prefix of run names (unique per measure)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", required=True)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
