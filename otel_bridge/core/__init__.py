"""The pure core: frames in, span records and notices out.

No asyncio, sockets, threads, clocks, files, OpenTelemetry SDK or Prometheus here (a test
walks the imports). Drivers in :mod:`otel_bridge.sources` feed :class:`Engine`; sinks in
:mod:`otel_bridge.sinks` take its outputs.
"""

from otel_bridge.core.engine import Engine

__all__ = ["Engine"]
