"""The dashboards by file name, and the committed JSON text of each."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from .health import health
from .workflows import workflows

DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    "lao-workflows.json": workflows,
    "otel-bridge-health.json": health,
}


def to_dict(dashboard: Dashboard) -> dict[str, Any]:
    """Build the dashboard and finish what the SDK leaves open (panel ids, shared crosshair)."""
    data: dict[str, Any] = json.loads(json.dumps(dashboard.build(), cls=JSONEncoder))
    for number, panel in enumerate(data["panels"], start=1):
        panel["id"] = number
    data["id"] = None
    data["version"] = 1
    data["graphTooltip"] = 1  # shared crosshair
    return data


def render(name: str) -> str:
    """Return the committed text of dashboard file ``name``."""
    return json.dumps(to_dict(DASHBOARDS[name]()), indent=2, ensure_ascii=False) + "\n"
