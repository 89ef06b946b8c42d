"""Where spans leave: span sinks (OTLP over gRPC or HTTP, an OTLP/JSON file, memory).

A sink's ``export`` raises :class:`ExportError` when the spans did not arrive and may later,
:class:`ExportRejected` when the receiver refused them for good; ``delivered`` counts the
records at the front of the batch that did arrive. The
:class:`~otel_bridge.export_queue.ExportQueue` in front of it counts, retries or drops.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Protocol

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otel_bridge.core.records import SpanRecord
from otel_bridge.core.trim import trim
from otel_bridge.errors import ExportError, ExportRejected
from otel_bridge.sinks.otlp import encoder_for, to_readable_span, traces_data
from otel_bridge.sinks.otlp_exporters import (
    SENT,
    GrpcBytesExporter,
    HttpBytesExporter,
    Outcome,
    bytes_exporter,
)
from otel_bridge.sinks.otlp_wire import span_field

log = logging.getLogger(__name__)
DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024  # an OpenTelemetry Collector's gRPC default


class SpanSink(Protocol):
    """Something finished spans are delivered to."""

    name: str

    def export(self, records: Sequence[SpanRecord]) -> None:
        """Deliver records, or raise :class:`ExportError` (:class:`ExportRejected`: for good)."""

    def shutdown(self) -> None:
        """Release resources; called once, after the last export."""


class OtlpSink:
    """OTLP via the OpenTelemetry SDK exporters, configured by the standard OTEL_* variables.

    With the bridge's exporters (:mod:`.otlp_exporters`) a batch is encoded straight to
    protobuf bytes; any other SDK ``SpanExporter`` gets SDK spans (the reference path).
    No request is over ``max_request_bytes``: a bigger batch goes as several requests, in
    order, and a span too big alone is trimmed (:func:`~otel_bridge.core.trim.trim`) and
    counted in :attr:`trimmed`.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        resource: Resource,
        name: str = "otlp",
        *,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    ) -> None:
        self.name = name
        self.max_request_bytes = max_request_bytes
        self.trimmed = 0  # spans trimmed to fit, since the start
        self._exporter = exporter
        self._resource = resource
        self._encoder = encoder_for(resource)

    def export(self, records: Sequence[SpanRecord]) -> None:
        """Send one batch as one request or several; raise as the module docstring says."""
        fields = [span_field(r) for r in records]
        if self._encoder.request_size(sum(map(len, fields))) <= self.max_request_bytes:
            self._send([(records, fields)], len(records))
            return
        self._send(self._split(records, fields), len(records))

    def _split(
        self, records: Sequence[SpanRecord], fields: list[bytes]
    ) -> list[tuple[Sequence[SpanRecord], list[bytes]]]:
        """Contiguous chunks of the batch, each request within the limit; trims and logs."""
        limit, size_of = self.max_request_bytes, self._encoder.request_size
        chunks: list[tuple[Sequence[SpanRecord], list[bytes]]] = []
        start, size, trimmed = 0, 0, 0
        kept: list[SpanRecord] = []
        for index, field in enumerate(fields):
            record = records[index]
            if size_of(len(field)) > limit:
                record = trim(record, limit, lambda r: size_of(len(span_field(r))))
                field = span_field(record)
                trimmed += 1
            if kept and size_of(size + len(field)) > limit:
                chunks.append((kept, fields[start:index]))
                start, size, kept = index, 0, []
            fields[index] = field
            kept.append(record)
            size += len(field)
        chunks.append((kept, fields[start:]))
        self.trimmed += trimmed
        if trimmed:
            log.warning(
                "%s: %d of %d spans over %d bytes trimmed to fit (lao.payload.truncated); "
                "sent as %d requests",
                self.name,
                trimmed,
                len(records),
                limit,
                len(chunks),
            )
        else:
            log.debug(
                "%s: %d spans sent as %d requests of at most %d bytes",
                self.name,
                len(records),
                len(chunks),
                limit,
            )
        return chunks

    def _send(self, chunks: list[tuple[Sequence[SpanRecord], list[bytes]]], total: int) -> None:
        """Send the chunks in order; at the first failure, raise with what arrived before."""
        delivered = 0
        for number, (records, fields) in enumerate(chunks, 1):
            outcome = self._send_one(records, fields)
            if not outcome.sent:
                where = f" (request {number} of {len(chunks)})" if len(chunks) > 1 else ""
                message = (
                    f"{self.name}: {total - delivered} of {total} spans not delivered{where}: "
                    f"{'refused' if outcome.permanent else 'failed'}, {outcome.reason}"
                )
                error = ExportRejected if outcome.permanent else ExportError
                raise error(message, delivered=delivered)
            delivered += len(records)

    def _send_one(self, records: Sequence[SpanRecord], fields: list[bytes]) -> Outcome:
        """One request: the encoded span fields, or SDK spans for any other exporter."""
        exporter = self._exporter
        if isinstance(exporter, GrpcBytesExporter | HttpBytesExporter):
            return exporter.export_bytes(self._encoder.join(fields), len(records))
        spans = [to_readable_span(r, self._resource) for r in records]
        if exporter.export(spans) is SpanExportResult.SUCCESS:
            return SENT
        return Outcome(sent=False, reason="exporter reported failure")

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


def otlp_sink_from_env(
    resource: Resource,
    protocol: str | None = None,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
) -> OtlpSink:
    """Build the OTLP sink the standard environment variables describe."""
    chosen = protocol or otlp_protocol()
    name = "otlp-grpc" if chosen == "grpc" else "otlp-http"
    return OtlpSink(bytes_exporter(chosen), resource, name, max_request_bytes=max_request_bytes)


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
