"""The core's exceptions; the whole tree is drawn in :mod:`otel_bridge.errors`."""

from __future__ import annotations


class BridgeError(Exception):
    """The root of every exception otel-bridge raises on purpose."""


class TraceParentError(BridgeError, ValueError):
    """A traceparent value that is not a valid W3C trace context."""


class StateError(BridgeError, ValueError):
    """Saved engine state that cannot be used (unknown version, damaged data)."""
