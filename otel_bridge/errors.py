"""Every exception otel-bridge raises on purpose, under one root.

::

    BridgeError                      anything otel-bridge raises on purpose
    ├── SettingsError (ValueError)   a setting with a bad value; the CLI exits 2 with it
    ├── StateError (ValueError)      saved state of another version, or damaged
    ├── TraceParentError (ValueError)  a traceparent that is not W3C trace context
    ├── SamplerError (ValueError)    an OTEL_TRACES_SAMPLER / _ARG that cannot be used
    ├── InvalidName (ValueError)     a flow/run name the bridge will not put in a URL
    ├── RunConflict                  the run already ended, or the bridge is stopping
    │   └── TooManySubscriptions     ``max_subscriptions`` runs are followed already
    ├── UpstreamError                a run socket's handshake failed (sources/ws_common.py)
    │   ├── Refused                  answered with an HTTP status, not 101 (fatal or retried)
    │   ├── BadURL (ValueError)      not a ws:// or wss:// URL (fatal)
    │   └── HandshakeFailed          any other handshake failure (retried)
    ├── ExportError (RuntimeError)   spans a sink could not deliver yet (retried)
    │   └── ExportRejected           spans the receiver refused for good (dropped, counted)
    └── FlowError (ValueError)       a run-dag body the LAO simulator refuses (HTTP 422);
                                     otel_bridge.simulator.FlowError, not the flow_error event

The core's own (:class:`StateError`, :class:`TraceParentError`, :class:`SamplerError`) live
in ``core/``, since ``core/`` imports nothing outside itself.
Errors of the libraries underneath (aiohttp, websockets, grpc) are caught at the edges
and become one of these, a log line and a counter, or an HTTP answer.
"""

from __future__ import annotations

from otel_bridge.core.errors import BridgeError, StateError, TraceParentError
from otel_bridge.core.sampling import SamplerError

__all__ = [
    "BridgeError",
    "ExportError",
    "ExportRejected",
    "InvalidName",
    "RunConflict",
    "SamplerError",
    "SettingsError",
    "StateError",
    "TooManySubscriptions",
    "TraceParentError",
]


class SettingsError(BridgeError, ValueError):
    """A setting with a bad value; the message names the setting and its source."""


class InvalidName(BridgeError, ValueError):
    """A flow or run name the bridge will not put into an upstream URL."""


class RunConflict(BridgeError):
    """A run that cannot be subscribed (it already ended, or the bridge is stopping)."""


class TooManySubscriptions(RunConflict):
    """``max_subscriptions`` runs are followed already."""


class ExportError(BridgeError, RuntimeError):
    """Spans that a sink could not deliver now; worth retrying later (the receiver is down).

    ``delivered`` counts the records at the front of the batch that did arrive before the
    failure (a sink that sends a batch in several requests): only the rest is retried.
    """

    def __init__(self, message: str, *, delivered: int = 0) -> None:
        super().__init__(message)
        self.delivered = delivered


class ExportRejected(ExportError):
    """Spans the receiver refused for good (malformed, too large, unauthorised): not retried."""
