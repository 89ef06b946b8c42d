"""The subscription gauge, kept by state change, matches the subscriptions the bridge holds."""

from __future__ import annotations

from collections import Counter

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from otel_bridge import bridge as bridge_module
from otel_bridge.bridge import Bridge
from otel_bridge.settings import Settings
from otel_bridge.sinks.metrics import SUBSCRIPTION_STATES
from support.exposition import metric_value
from support.ports import free_port
from support.timing import UNIT, wait_for


def gauge(registry: CollectorRegistry) -> dict[str, float]:
    """``otel_bridge_subscriptions`` by state, as scraped."""
    text = generate_latest(registry).decode()
    name = "otel_bridge_subscriptions"
    return {s: metric_value(text, name, state=s) for s in SUBSCRIPTION_STATES}


def held(bridge: Bridge) -> dict[str, float]:
    """The states of the subscriptions the bridge holds, counted directly."""
    counts = Counter(str(sub.state) for sub in bridge.subscriptions.values())
    return {s: float(counts.get(s, 0)) for s in SUBSCRIPTION_STATES}


async def test_gauge_follows_subscribe_give_up_unsubscribe_and_prune(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through reconnects, give-ups, DELETE and pruning, the gauge equals a direct count."""
    monkeypatch.setattr(bridge_module, "KEEP_FINISHED", 2)
    settings = Settings(
        upstream_url=f"ws://127.0.0.1:{free_port()}",  # nobody listens: reconnect, then give up
        reconnect_initial_s=0.05,
        reconnect_max_s=0.1,
        give_up_after_s=0.5 * UNIT,
    )
    registry = CollectorRegistry()
    bridge = Bridge(settings, registry=registry, sinks=[])
    await bridge.start()
    try:
        for n in range(4):
            bridge.subscribe("flow", f"first-{n}")
        await wait_for(lambda: held(bridge)["failed"] == 4, message="four subscriptions give up")
        assert gauge(registry) == held(bridge)
        for n in range(3):  # each subscribe prunes finished subscriptions beyond the last 2
            bridge.subscribe("flow", f"second-{n}")
        assert 2 <= len([s for s in bridge.subscriptions.values() if not s.active]) <= 3
        assert await bridge.unsubscribe("flow", "second-0")
        assert gauge(registry) == held(bridge)
        assert sum(gauge(registry).values()) == len(bridge.subscriptions)
        await wait_for(lambda: held(bridge)["failed"] >= 4, message="second round gives up")
        assert gauge(registry) == held(bridge)
    finally:
        await bridge.stop()
