"""A keep-alive HTTP client for the loopback control endpoints of the benchmark's processes."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

from bench.e2e.procs import BenchError


class Http:
    """A keep-alive HTTP/1.1 client to one loopback server."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None) -> None:
        url = urlsplit(base_url)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.headers = headers or {}
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        """One request (retried once on a dropped connection): status and body."""
        data = None if body is None else json.dumps(body).encode()
        headers = {**self.headers, "Content-Type": "application/json"}
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            try:
                self.conn.request(method, path, body=data, headers=headers)
                response = self.conn.getresponse()
                payload = response.read()
                if response.getheader("Connection", "").lower() == "close":
                    self.close()
                return response.status, payload
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def json(self, path: str) -> Any:
        """GET a JSON document."""
        status, payload = self.request("GET", path)
        if status != 200:
            raise BenchError(f"GET {path}: HTTP {status}")
        return json.loads(payload)

    def probe(self, path: str) -> int:
        """The status of a GET, 0 when nobody answers."""
        try:
            return self.request("GET", path)[0]
        except (OSError, http.client.HTTPException):
            return 0

    def close(self) -> None:
        """Drop the connection."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None
