"""Where spans leave: span sinks (OTLP over gRPC or HTTP, an OTLP/JSON file, memory).

A sink's ``export`` raises :class:`ExportError` when the spans did not arrive; the
:class:`~otel_bridge.export_queue.ExportQueue` in front of it counts and logs that.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Protocol

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otel_bridge.core.records import SpanRecord
from otel_bridge.errors import ExportError
from otel_bridge.sinks.otlp import encoder_for, to_readable_span, traces_data
from otel_bridge.sinks.otlp_exporters import GrpcBytesExporter, HttpBytesExporter, bytes_exporter


class SpanSink(Protocol):
    """Something finished spans are delivered to."""

    name: str

    def export(self, records: Sequence[SpanRecord]) -> None:
        """Deliver records or raise :class:`ExportError`."""

    def shutdown(self) -> None:
        """Release resources; called once, after the last export."""


class OtlpSink:
    """OTLP via the OpenTelemetry SDK exporters, configured by the standard OTEL_* variables.

    With the bridge's exporters (:mod:`.otlp_exporters`) a batch is encoded straight to
    protobuf bytes; any other SDK ``SpanExporter`` gets SDK spans (the reference path).
    """

    def __init__(self, exporter: SpanExporter, resource: Resource, name: str = "otlp") -> None:
        self.name = name
        self._exporter = exporter
        self._resource = resource
        self._encoder = encoder_for(resource)

    def export(self, records: Sequence[SpanRecord]) -> None:
        """Send one batch; raise when the exporter reports failure."""
        exporter = self._exporter
        if isinstance(exporter, GrpcBytesExporter | HttpBytesExporter):
            sent = exporter.export_bytes(self._encoder.request(records), len(records))
        else:
            spans = [to_readable_span(r, self._resource) for r in records]
            sent = exporter.export(spans) is SpanExportResult.SUCCESS
        if not sent:
            raise ExportError(f"{self.name}: exporter reported failure for {len(records)} spans")

    def shutdown(self) -> None:
        """Shut the SDK exporter down."""
        self._exporter.shutdown()


def otlp_protocol(environ: dict[str, str] | None = None) -> str:
    """Return the OTLP protocol the environment chooses: ``grpc`` (default) or ``http/protobuf``."""
    env = os.environ if environ is None else environ
    value = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"
    )
    value = value.strip().lower()
    if value not in ("grpc", "http/protobuf"):
        raise ValueError(
            f"unsupported OTLP protocol {value!r}: use grpc or http/protobuf "
            "(OTEL_EXPORTER_OTLP_PROTOCOL)"
        )
    return value


def otlp_sink_from_env(resource: Resource, protocol: str | None = None) -> OtlpSink:
    """Build the OTLP sink the standard environment variables describe."""
    chosen = protocol or otlp_protocol()
    name = "otlp-grpc" if chosen == "grpc" else "otlp-http"
    return OtlpSink(bytes_exporter(chosen), resource, name)


class FileSink:
    """JSON Lines of OTLP/JSON ``TracesData``, one line per batch (the Collector's format)."""

    def __init__(self, path: str | Path, resource: Resource, name: str = "file") -> None:
        self.name = name
        self.path = Path(path)
        self._resource = resource
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = self.path.open("a", encoding="utf-8")

    def export(self, records: Sequence[SpanRecord]) -> None:
        """Append one ``TracesData`` line."""
        line = json.dumps(traces_data(records, self._resource), separators=(",", ":"))
        try:
            with self._lock:
                self._file.write(line + "\n")
                self._file.flush()
        except (OSError, ValueError) as exc:  # ValueError: written after shutdown
            raise ExportError(f"{self.name}: cannot write {self.path}: {exc}") from exc

    def shutdown(self) -> None:
        """Close the file; raise :class:`ExportError` if what it still held is lost."""
        try:
            with self._lock:
                self._file.close()
        except OSError as exc:
            raise ExportError(f"{self.name}: cannot close {self.path}: {exc}") from exc


class ConsoleSink:
    """OTLP/JSON ``TracesData`` lines on standard output (``OTEL_TRACES_EXPORTER=console``)."""

    def __init__(self, resource: Resource, name: str = "console", out: IO[str] | None = None):
        self.name = name
        self._resource = resource
        self._out = out
        self._lock = threading.Lock()

    def export(self, records: Sequence[SpanRecord]) -> None:
        """Print one line."""
        line = json.dumps(traces_data(records, self._resource), separators=(",", ":"))
        out = self._out or sys.stdout
        try:
            with self._lock:
                out.write(line + "\n")
                out.flush()
        except (OSError, ValueError) as exc:
            raise ExportError(f"{self.name}: cannot write: {exc}") from exc

    def shutdown(self) -> None:
        """Nothing to release (standard output stays open)."""


class MemorySink:
    """Keeps every record; for tests, the demo's waterfall and replay summaries."""

    def __init__(self, name: str = "memory") -> None:
        self.name = name
        self.records: list[SpanRecord] = []
        self._lock = threading.Lock()

    def export(self, records: Sequence[SpanRecord]) -> None:
        """Keep the records."""
        with self._lock:
            self.records.extend(records)

    def shutdown(self) -> None:
        """Nothing to release."""
