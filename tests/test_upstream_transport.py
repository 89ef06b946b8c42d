"""A subscription's socket on either client: picows by default, websockets with compression."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from otel_bridge.sources.states import SubscriptionState
from otel_bridge.sources.upstream import Subscription
from otel_bridge.sources.ws_client import Link
from otel_bridge.sources.ws_deflate import DeflateLink
from support.ports import LOOPBACK
from support.rig import FAST_RECONNECT, running_bridge
from support.silent import silent_server
from support.timing import UNIT, wait_for

pytestmark = pytest.mark.integration

GREETING = '{"type": "system", "message": "Connected to workflow"}'
COMPRESSION = pytest.mark.parametrize("compression", [False, True], ids=["picows", "deflate"])


class Socket:
    """An aiohttp run socket that greets, then records what the client sends and offers."""

    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []
        self.received: list[str] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Greet, then keep what comes until the client leaves."""
        self.headers.append(dict(request.headers))
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(GREETING)
        async for message in ws:
            self.received.append(str(message.data))
        return ws


@asynccontextmanager
async def serving(socket: Socket, tls: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    """``socket`` at ``ws(s)://127.0.0.1:PORT``."""
    app = web.Application()
    app.router.add_get("/ws/{flow}/{run}", socket.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, LOOPBACK, 0, ssl_context=tls)
        await site.start()
        yield f"{'wss' if tls else 'ws'}://{LOOPBACK}:{site.port}"
    finally:
        await runner.cleanup()


def client_of(sub: Subscription) -> Any:
    """The subscription's live connection object (None between connections)."""
    return sub._ws  # which client is in use is the point here


@COMPRESSION
async def test_either_client_offers_compression_only_when_asked(compression: bool) -> None:
    """Picows without compression, websockets when permessage-deflate is offered; same frames."""
    socket = Socket()
    async with (
        serving(socket) as url,
        running_bridge(
            url, upstream_compression=compression, upstream_api_key="k1", app_ping_interval_s=0
        ) as server,
    ):
        sub, _ = server.bridge.subscribe("My Flow", "r 1")
        await wait_for(lambda: sub.frames >= 1, 10 * UNIT, "the greeting")
        assert isinstance(client_of(sub), DeflateLink if compression else Link)
        assert await sub.send_upstream('{"type":"ping"}')
        await wait_for(lambda: socket.received, 10 * UNIT, "the forwarded ping")
    assert socket.received == ['{"type":"ping"}']
    headers = socket.headers[0]
    assert ("permessage-deflate" in headers.get("Sec-WebSocket-Extensions", "")) is compression
    assert headers["User-Agent"] == "otel-bridge"
    assert headers["x-api-key"] == "k1"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert, key)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    request = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
    names = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        [openssl, *request, "-keyout", str(key), "-out", str(cert), *names],
        check=True,
        capture_output=True,
    )
    return cert, key


@COMPRESSION
@pytest.mark.parametrize("trust", ["ca_file", "insecure", "none"])
async def test_wss_verifies_the_upstream_with_the_configured_ca(
    certificate: tuple[Path, Path], compression: bool, trust: str
) -> None:
    """wss:// with tls_ca_file or tls_insecure connects; an unknown certificate is refused."""
    cert, key = certificate
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    options: dict[str, Any] = {"upstream_compression": compression, **FAST_RECONNECT}
    if trust == "ca_file":
        options["tls_ca_file"] = str(cert)
    elif trust == "insecure":
        options["tls_insecure"] = True
    socket = Socket()
    async with serving(socket, tls) as url, running_bridge(url, **options) as server:
        sub, _ = server.bridge.subscribe("F", "r1")
        if trust == "none":
            await wait_for(lambda: sub.error, 10 * UNIT, "a failed connection")
            assert "CERTIFICATE_VERIFY_FAILED" in str(sub.error)
            assert sub.frames == 0 and socket.headers == []
        else:
            await wait_for(lambda: sub.frames >= 1, 10 * UNIT, "the greeting over TLS")
            assert sub.state is SubscriptionState.CONNECTED


@COMPRESSION
async def test_stop_during_a_handshake_hangs_up_at_once(compression: bool) -> None:
    """An upstream that never answers the upgrade: stop() returns and the socket is closed."""
    async with silent_server() as silent:
        url = f"ws://{LOOPBACK}:{silent.port}"
        async with running_bridge(
            url, upstream_compression=compression, connect_timeout_s=60
        ) as bridge:
            sub, _ = bridge.bridge.subscribe("F", "r1")
            await wait_for(lambda: silent.accepted, 10 * UNIT, "the connection")
            await asyncio.wait_for(sub.stop(), 2 * UNIT)
            await wait_for(lambda: silent.ended, 2 * UNIT, "the hang-up")
        assert sub.state is SubscriptionState.DONE and sub.connects == 0
