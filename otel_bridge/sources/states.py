"""The closed sets of a subscription's life: its states and how a connection ended.

Enums, so a typo is a type error and never a new metric series
(``otel_bridge_subscriptions{state}``).
"""

from __future__ import annotations

from enum import StrEnum


class SubscriptionState(StrEnum):
    """Where a run subscription is in its life."""

    PENDING = "pending"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    DONE = "done"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        """Still following (or trying to follow) its run."""
        return self not in (SubscriptionState.DONE, SubscriptionState.FAILED)


class ConnectOutcome(StrEnum):
    """How one upstream connection ended, which decides what the subscription does next."""

    CLOSED = "closed"  # closed normally (by the server, or by us once the run ended)
    RETRY = "retry"  # lost or refused for a reason a retry may fix
    FATAL = "fatal"  # refused for good (bad URL, 401/403, ...): retrying is pointless
