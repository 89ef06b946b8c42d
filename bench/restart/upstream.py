"""The LAO stand-in of the restart benchmark: runs cut in two, the second part held back.

Run (``bench/restart`` starts it)::

    .venv/bin/python -m bench.restart.upstream --runs 500 --tasks 10 --open 5 --port-file PATH

``bench/e2e/source.py`` with one addition. With ``--open K`` each run is cut after the
``task_started`` of task K: ``POST /go`` sends every run's first part (``flow_started``,
tasks 0 to K-1 started and ended, task K started) to the sockets following it, as the e2e
source sends whole runs; the rest (task K's end, the later tasks, ``flow_completed``) is
held. After ``POST /arm``, the first socket that connects to a run gets that run's rest at
once, on connecting: LAO has no replay, so a bridge that restarts mid-run sees only what
comes after its new socket connected. ``GET /status`` adds ``reconnected`` (runs whose rest
went out) and ``first_reconnect_ns`` / ``last_reconnect_ns`` (``time.monotonic_ns``, the
clock the runner and the receiver use). Without ``--open``, runs are whole and nothing is
held (the outage measurement).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any
from urllib.parse import unquote, urlsplit

from bench.e2e.frames import Frame, build_frames
from bench.e2e.source import Source, write_port_file


class HeldSource(Source):
    """The e2e source, holding each run's rest for the next socket that connects after arming."""

    def __init__(self, run_names: list[str], frames: list[Frame], held: list[bytes]) -> None:
        super().__init__(run_names, frames)
        self.held = held
        self.released = [False] * len(run_names)
        self.armed = False
        self.reconnected = 0
        self.first_reconnect_ns: int | None = None
        self.last_reconnect_ns: int | None = None

    def status(self) -> dict[str, Any]:
        """The e2e source's status, and the reconnections after arming."""
        return {
            **super().status(),
            "armed": self.armed,
            "reconnected": self.reconnected,
            "first_reconnect_ns": self.first_reconnect_ns,
            "last_reconnect_ns": self.last_reconnect_ns,
        }

    def control(self, method: str, target: str) -> tuple[str, bytes]:
        """``POST /arm``, or what the e2e source answers."""
        if method == "POST" and urlsplit(target).path == "/arm":
            self.armed = True
            return "200 OK", b"{}"
        return super().control(method, target)

    async def websocket(
        self,
        target: str,
        headers: dict[str, str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        """The e2e source's run socket; once armed, a run's rest goes out on connecting.

        ``Source.websocket`` answers the handshake and registers the socket before its first
        ``await``; the callback scheduled here runs after that, on the next loop turn.
        """
        asyncio.get_running_loop().call_soon(self.release, target, writer)
        await super().websocket(target, headers, reader, writer)

    def release(self, target: str, writer: asyncio.StreamWriter) -> None:
        """Send a run's held rest to a socket that was accepted after arming (once per run)."""
        parts = urlsplit(target).path.split("/")
        run = self.index.get(unquote(parts[-1]))
        if run is None or not self.armed or self.released[run]:
            return
        if writer not in self.subscribers[run] or writer.transport.is_closing():
            return
        self.released[run] = True
        writer.transport.write(self.held[run])
        now_ns = time.monotonic_ns()
        self.first_reconnect_ns = self.first_reconnect_ns or now_ns
        self.last_reconnect_ns = now_ns
        self.reconnected += 1


def build(
    runs: int, tasks: int, open_task: int | None, tag: str
) -> tuple[list[str], list[Frame], list[bytes]]:
    """Run names, the first parts (interleaved step by step across runs), each run's rest."""
    names, frames = build_frames(runs, tasks, tag)
    cut = len(frames) if open_task is None else (2 * open_task + 2) * runs
    held = [bytearray() for _ in names]
    for frame in frames[cut:]:
        held[frame.run] += frame.data
    return names, frames[:cut], [bytes(rest) for rest in held]


async def serve(args: argparse.Namespace) -> None:
    """Build the frames, listen, write the port file, serve until SIGTERM."""
    names, frames, held = build(args.runs, args.tasks, args.open, args.tag)
    source = HeldSource(names, frames, held)
    server = await asyncio.start_server(source.handle, "127.0.0.1", 0, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    write_port_file(args.port_file, {"port": port})
    print(
        f"upstream: {len(names)} runs, {len(frames)} frames first, "
        f"{sum(map(len, held)):,} bytes held, on port {port}",
        flush=True,
    )
    async with server:  # until SIGTERM (the default action: nothing to clean up)
        await server.serve_forever()


def main() -> None:
    """Parse arguments and serve."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--open", type=int, help="the task left open (default: whole runs)")
    parser.add_argument("--tag", default="r", help="prefix of run names (unique per measure)")
    parser.add_argument("--port-file", required=True)
    args = parser.parse_args()
    if args.open is not None and not 0 <= args.open < args.tasks:
        parser.error("--open must be a task number below --tasks")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
