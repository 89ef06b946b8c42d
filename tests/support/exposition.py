"""Reading a Prometheus text exposition in tests: one number, however it is labelled."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families


def metric_value(text: str, name: str, default: float = 0.0, **labels: str) -> float:
    """The sum of the samples of ``name`` (with or without ``_total``) carrying ``labels``.

    ``default`` when no sample matches (the metric is not exposed, or not with these labels).
    """
    wanted = name.removesuffix("_total")
    found = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.removesuffix("_total") == wanted
        and all(sample.labels.get(k) == v for k, v in labels.items())
    ]
    return sum(found) if found else default


async def fetch_metrics(http: aiohttp.ClientSession, metrics_url: str) -> str:
    """The exposition the bridge at ``metrics_url`` serves on /metrics."""
    async with http.get(f"{metrics_url}/metrics") as response:
        return await response.text()
