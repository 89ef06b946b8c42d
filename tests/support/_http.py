"""Tiny stdlib HTTP client for the support servers (loopback only, never a proxy)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

# Loopback servers only: ignore any *_proxy variables of the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

Params = Mapping[str, str | int | float] | None


class HTTPStatusError(RuntimeError):
    """A server answered with a non-2xx status."""

    def __init__(self, url: str, status: int, body: str) -> None:
        super().__init__(f"GET {url} -> HTTP {status}: {body[:500]}")
        self.url = url
        self.status = status
        self.body = body


def build_url(url: str, params: Params = None) -> str:
    """Append `params` to `url` as a query string."""
    if not params:
        return url
    return f"{url}?{urllib.parse.urlencode({k: str(v) for k, v in params.items()})}"


def get(url: str, params: Params = None, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET `url`; return (status, body) for any HTTP status, raise OSError if unreachable."""
    full = build_url(url, params)
    try:
        with _OPENER.open(full, timeout=timeout) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as err:
        with err:
            return int(err.code), bytes(err.read())


def get_json(url: str, params: Params = None, timeout: float = 5.0) -> Any:
    """GET `url` and decode its JSON body; raise HTTPStatusError on a non-2xx status."""
    status, body = get(url, params, timeout)
    if not 200 <= status < 300:
        raise HTTPStatusError(build_url(url, params), status, body.decode(errors="replace"))
    return json.loads(body)
