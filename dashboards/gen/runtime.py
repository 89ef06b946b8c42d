"""The "Runtime" row of the "otel-bridge health" dashboard: the bridge process itself.

CPU, resident memory, Python garbage collections and the Python version, from the standard
process and Python collectors of the bridge's ``/metrics`` (``process_cpu_seconds_total``,
``process_resident_memory_bytes``, ``python_gc_collections_total``, ``python_info``).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row
from grafana_foundation_sdk.models.common import BigValueTextMode

from .panels import query, single, ts
from .promql import INSTANCE, rate


def runtime_row(dashboard: Dashboard) -> Dashboard:
    """Add the "Runtime" row: CPU, memory, GC collections and the Python version."""
    return (
        dashboard.with_row(Row("Runtime"))
        .with_panel(
            ts(
                "CPU",
                "CPU time the bridge process uses per second, by instance (100% = one core).",
                [
                    query(
                        f"sum by (instance) ({rate('process_cpu_seconds_total', INSTANCE)})",
                        "{{instance}}",
                    )
                ],
                unit="percentunit",
            )
        )
        .with_panel(
            ts(
                "Resident memory",
                "Resident set size of the bridge process, by instance.",
                [
                    query(
                        f"sum by (instance) (process_resident_memory_bytes{{{INSTANCE}}})",
                        "{{instance}}",
                    )
                ],
                unit="bytes",
            )
        )
        .with_panel(
            ts(
                "GC collections by generation",
                "Python garbage collections per second, by instance and generation.",
                [
                    query(
                        "sum by (instance, generation) "
                        f"({rate('python_gc_collections_total', INSTANCE)})",
                        "{{instance}} gen {{generation}}",
                    )
                ],
                unit="ops",
                width=18,
            )
        )
        .with_panel(
            single(
                "Python",
                "The Python implementation and version the bridge instances run (value: how many).",
                f"count by (implementation, version) (python_info{{{INSTANCE}}})",
                legend="{{implementation}} {{version}}",
                width=6,
                height=8,
            ).text_mode(BigValueTextMode.NAME)
        )
    )
