"""Where metrics leave: the Prometheus text and OpenMetrics expositions of a registry.

``/metrics`` answers with OpenMetrics 1.0 (the only format that carries the histograms'
``trace_id`` exemplars) when the scraper's ``Accept`` header asks for it, else with the
Prometheus text format 0.0.4. ``otel-bridge replay --metrics-out FILE`` writes the registry
once, at the end of a replay, with :func:`write_metrics_file`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder, generate_latest
from prometheus_client.openmetrics import exposition as om

OPENMETRICS_ACCEPT = "application/openmetrics-text; version=1.0.0"
OPENMETRICS_CONTENT_TYPE = om.CONTENT_TYPE_LATEST
TEXT_CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


def render(registry: CollectorRegistry, accept_header: str | None) -> tuple[bytes, str]:
    """Return ``(body, content_type)`` for a scrape sending ``accept_header``."""
    encoder, content_type = choose_encoder(accept_header or "")
    return encoder(registry), content_type


def encode(registry: CollectorRegistry, *, openmetrics_format: bool = True) -> bytes:
    """Encode the registry as OpenMetrics 1.0 (exemplars, ``# EOF``) or as text 0.0.4."""
    if openmetrics_format:
        return render(registry, OPENMETRICS_ACCEPT)[0]
    return generate_latest(registry)


def write_metrics_file(
    registry: CollectorRegistry, path: str | Path, openmetrics: bool = True
) -> None:
    """Write the registry's exposition to ``path`` atomically (temp file, then rename).

    OpenMetrics by default, so the file keeps the exemplars; ``openmetrics=False`` writes
    the text format a node-exporter textfile collector reads (name the file ``*.prom``).
    """
    target = Path(path)
    body = encode(registry, openmetrics_format=openmetrics)
    directory = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(body)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
