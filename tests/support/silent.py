"""A TCP server that accepts and never answers: an upstream whose handshake hangs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from support.ports import LOOPBACK


@dataclass
class Silent:
    """Where the server listens, and when each connection came and was hung up by the client."""

    port: int = 0
    accepted: list[float] = field(default_factory=list)
    ended: list[float] = field(default_factory=list)


@asynccontextmanager
async def silent_server() -> AsyncIterator[Silent]:
    """Serve on a free loopback port until the block ends."""
    silent = Silent()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        silent.accepted.append(time.monotonic())
        await reader.read()  # until the client hangs up
        silent.ended.append(time.monotonic())
        writer.close()

    server = await asyncio.start_server(handle, LOOPBACK, 0)
    silent.port = server.sockets[0].getsockname()[1]
    async with server:
        yield silent
