"""A real Jaeger v2 (OTel-collector based) with in-memory storage, read through the v3 API.

    with JaegerServer() as jaeger:
        exporter = OTLPSpanExporter(endpoint=jaeger.otlp_grpc_endpoint, insecure=True)
        ...
        trace = jaeger.wait_for_trace(trace_id_hex, min_spans=2)
        names = [span.name for span in spans_of(trace)]

The binary is `.tools/bin/jaeger`, built by `tools/build.sh` (pinned in tools/jaeger/go.mod).
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

from . import _http
from .ports import LOOPBACK, free_ports, port_is_open
from .process import TOOLS_BIN, ManagedServer, ServerProcess, require_binary

JAEGER_BINARY = TOOLS_BIN / "jaeger"
_STORE = "memstore"


class TraceNotFoundError(LookupError):
    """The v3 API answered 404 for a trace id."""


def normalize_trace_id(trace_id: str | int) -> str:
    """Format a trace id (int or hex string) as 32 lowercase hex digits."""
    if isinstance(trace_id, int):
        return f"{trace_id:032x}"
    return trace_id.strip().lower().rjust(32, "0")


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def decode_any_value(value: dict[str, Any]) -> Any:
    """Turn an OTLP-JSON AnyValue ({"stringValue": "x"}, {"intValue": "3"}, …) into Python."""
    if "stringValue" in value:
        return value["stringValue"]
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:
        return int(value["intValue"])  # OTLP JSON encodes int64 as a string
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "arrayValue" in value:
        return [decode_any_value(v) for v in value["arrayValue"].get("values", [])]
    if "kvlistValue" in value:
        return decode_attributes(value["kvlistValue"].get("values", []))
    if "bytesValue" in value:
        return value["bytesValue"]
    return None


def decode_attributes(attributes: list[dict[str, Any]]) -> dict[str, Any]:
    """OTLP-JSON `attributes` ([{"key": k, "value": AnyValue}]) as a plain dict."""
    return {kv["key"]: decode_any_value(kv.get("value", {})) for kv in attributes}


@dataclass(frozen=True)
class Span:
    """One span read back from Jaeger, with its resource's service name."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    service: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    status: dict[str, Any]
    resource: dict[str, Any]
    raw: dict[str, Any] = field(repr=False)


def spans_of(traces: dict[str, Any]) -> list[Span]:
    """Flatten an OTLP-JSON TracesData ({"resourceSpans": [...]}) into Span records."""
    result: list[Span] = []
    for resource_spans in traces.get("resourceSpans", []):
        resource = decode_attributes(resource_spans.get("resource", {}).get("attributes", []))
        service = str(resource.get("service.name", ""))
        for scope_spans in resource_spans.get("scopeSpans", []):
            for raw in scope_spans.get("spans", []):
                result.append(
                    Span(
                        trace_id=raw.get("traceId", ""),
                        span_id=raw.get("spanId", ""),
                        parent_span_id=raw.get("parentSpanId", ""),
                        name=raw.get("name", ""),
                        kind=int(raw.get("kind", 0)),
                        service=service,
                        start_ns=int(raw.get("startTimeUnixNano", 0)),
                        end_ns=int(raw.get("endTimeUnixNano", 0)),
                        attributes=decode_attributes(raw.get("attributes", [])),
                        status=raw.get("status", {}),
                        resource=resource,
                        raw=raw,
                    ),
                )
    return result


def split_by_trace(traces: dict[str, Any]) -> list[dict[str, Any]]:
    """Split one combined TracesData into one TracesData per trace id, in first-seen order.

    The v3 search answers with every matching trace merged into one TracesData.
    """
    per_trace: dict[str, dict[str, Any]] = {}
    for resource_spans in traces.get("resourceSpans", []):
        resource_only = {k: v for k, v in resource_spans.items() if k != "scopeSpans"}
        for scope_spans in resource_spans.get("scopeSpans", []):
            scope_only = {k: v for k, v in scope_spans.items() if k != "spans"}
            for span in scope_spans.get("spans", []):
                trace = per_trace.setdefault(span.get("traceId", ""), {"resourceSpans": []})
                rs_list: list[dict[str, Any]] = trace["resourceSpans"]
                if not rs_list or rs_list[-1]["_from"] is not resource_spans:
                    rs_list.append({"_from": resource_spans, **resource_only, "scopeSpans": []})
                ss_list: list[dict[str, Any]] = rs_list[-1]["scopeSpans"]
                if not ss_list or ss_list[-1]["_from"] is not scope_spans:
                    ss_list.append({"_from": scope_spans, **scope_only, "spans": []})
                ss_list[-1]["spans"].append(span)
    for trace in per_trace.values():  # drop the bookkeeping references
        for rs in trace["resourceSpans"]:
            del rs["_from"]
            for ss in rs["scopeSpans"]:
                del ss["_from"]
    return list(per_trace.values())


class JaegerServer(ManagedServer):
    """Runs `.tools/bin/jaeger` on free loopback ports: OTLP gRPC+HTTP in, memory store, v3 API.

    Use as a context manager (or call start()/stop()). If the `with` body raises, the
    Jaeger log is written to stderr so the failing test shows it.
    """

    def __init__(
        self,
        binary: Path | None = None,
        *,
        workdir: Path | None = None,
        max_traces: int = 10_000,
        startup_timeout: float = 60.0,
        log_level: str = "info",
    ) -> None:
        self.binary = binary
        self.max_traces = max_traces
        self.startup_timeout = startup_timeout
        self.log_level = log_level
        self._workdir_arg = workdir
        self._tmp = None
        self.workdir: Path | None = None
        self.process = None
        grpc_port, http_port, query_http, query_grpc = free_ports(4)
        self.otlp_grpc_port = grpc_port
        self.otlp_http_port = http_port
        self.query_port = query_http
        self.query_grpc_port = query_grpc

    # -- addresses -------------------------------------------------------------------

    @property
    def otlp_grpc_endpoint(self) -> str:
        """host:port for OTLPSpanExporter (gRPC, insecure=True)."""
        return f"{LOOPBACK}:{self.otlp_grpc_port}"

    @property
    def otlp_http_endpoint(self) -> str:
        """Base URL of the OTLP/HTTP receiver (traces go to `<this>/v1/traces`)."""
        return f"http://{LOOPBACK}:{self.otlp_http_port}"

    @property
    def otlp_http_traces_url(self) -> str:
        """Full URL for the OTLP/HTTP span exporter."""
        return f"{self.otlp_http_endpoint}/v1/traces"

    @property
    def query_url(self) -> str:
        """Base URL of jaeger_query (UI, /api/v3/…)."""
        return f"http://{LOOPBACK}:{self.query_port}"

    # -- lifecycle -------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """Return the collector configuration this server runs with."""
        return {
            "service": {
                "extensions": ["jaeger_storage", "jaeger_query"],
                "pipelines": {
                    "traces": {
                        "receivers": ["otlp"],
                        "processors": [],  # no batch: spans are queryable as soon as sent
                        "exporters": ["jaeger_storage_exporter"],
                    },
                },
                # No internal-metrics server (it would take the fixed port 8888).
                "telemetry": {"metrics": {"level": "none"}, "logs": {"level": self.log_level}},
            },
            "extensions": {
                "jaeger_storage": {
                    "backends": {_STORE: {"memory": {"max_traces": self.max_traces}}},
                },
                "jaeger_query": {
                    "storage": {"traces": _STORE},
                    "http": {"endpoint": f"{LOOPBACK}:{self.query_port}"},
                    "grpc": {"endpoint": f"{LOOPBACK}:{self.query_grpc_port}"},
                    # Self-tracing exports to 127.0.0.1:4317 and stalls shutdown for 10 s.
                    "enable_tracing": False,
                },
            },
            "receivers": {
                "otlp": {
                    "protocols": {
                        "grpc": {"endpoint": self.otlp_grpc_endpoint},
                        "http": {"endpoint": f"{LOOPBACK}:{self.otlp_http_port}"},
                    },
                },
            },
            "exporters": {"jaeger_storage_exporter": {"trace_storage": _STORE}},
        }

    def start(self) -> Self:
        """Write the config, start Jaeger and wait until the query API and receivers answer."""
        binary = require_binary(
            self.binary or JAEGER_BINARY,
            "run tools/build.sh (or .ci/install-system.sh) to build it",
        )
        if self._workdir_arg is not None:
            self.workdir = self._workdir_arg
            self.workdir.mkdir(parents=True, exist_ok=True)
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="jaeger-")
            self.workdir = Path(self._tmp.name)
        config_path = self.workdir / "jaeger.yaml"
        # JSON is YAML: no YAML library needed to write it.
        config_path.write_text(json.dumps(self.config(), indent=2))
        self.process = ServerProcess(
            "jaeger",
            [str(binary), f"--config={config_path}"],
            self.workdir / "jaeger.log",
            cwd=self.workdir,
        )
        self.process.start()
        try:
            self.process.wait_until(self._ready, self.startup_timeout, "readiness")
        except BaseException:
            self.stop()
            raise
        return self

    def _ready(self) -> bool | None:
        status, _ = _http.get(f"{self.query_url}/api/v3/services", timeout=1.0)
        if status != 200:
            return None
        if not (port_is_open(self.otlp_grpc_port) and port_is_open(self.otlp_http_port)):
            return None
        return True

    # -- v3 query API ----------------------------------------------------------------

    def _ensure_running(self) -> None:
        if self.process is None:
            raise RuntimeError("JaegerServer is not started")
        self.process.ensure_running()

    def services(self) -> list[str]:
        """Service names Jaeger has seen (GET /api/v3/services)."""
        self._ensure_running()
        body = _http.get_json(f"{self.query_url}/api/v3/services")
        return list(body.get("services") or [])

    def operations(self, service: str) -> list[str]:
        """Span names seen for `service` (GET /api/v3/operations)."""
        self._ensure_running()
        body = _http.get_json(f"{self.query_url}/api/v3/operations", {"service": service})
        return [op["name"] for op in body.get("operations") or []]

    def get_trace(self, trace_id: str | int) -> dict[str, Any]:
        """One trace as OTLP JSON ({"resourceSpans": [...]}); TraceNotFoundError on 404."""
        self._ensure_running()
        tid = normalize_trace_id(trace_id)
        try:
            body = _http.get_json(f"{self.query_url}/api/v3/traces/{tid}")
        except _http.HTTPStatusError as err:
            if err.status == 404:
                raise TraceNotFoundError(tid) from err
            raise
        result: dict[str, Any] = body["result"]
        return result

    def find_traces(
        self,
        service: str,
        operation: str | None = None,
        *,
        start_time_min: datetime | None = None,
        start_time_max: datetime | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Traces of `service` (and span name `operation`), one OTLP-JSON dict per trace.

        The window defaults to the last 30 days up to a day ahead, so replayed runs with
        older event timestamps are still found. An empty result ([]) is not an error.
        """
        self._ensure_running()
        now = datetime.now(UTC)
        params: dict[str, str | int | float] = {
            "query.service_name": service,
            "query.start_time_min": _rfc3339(start_time_min or now - timedelta(days=30)),
            "query.start_time_max": _rfc3339(start_time_max or now + timedelta(days=1)),
            "query.num_traces": min(limit, self.max_traces),
        }
        if operation is not None:
            params["query.operation_name"] = operation
        try:
            body = _http.get_json(f"{self.query_url}/api/v3/traces", params)
        except _http.HTTPStatusError as err:
            if err.status == 404:  # the v3 API answers 404 "No traces found"
                return []
            raise
        return split_by_trace(body.get("result") or {})

    # -- polling ---------------------------------------------------------------------

    def wait_for_trace(
        self,
        trace_id: str | int,
        min_spans: int = 1,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """Poll get_trace until the trace has at least `min_spans` spans; return it."""
        tid = normalize_trace_id(trace_id)
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            try:
                trace = self.get_trace(tid)
            except TraceNotFoundError:
                pass
            else:
                seen = len(spans_of(trace))
                if seen >= min_spans:
                    return trace
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"trace {tid}: {seen} span(s) after {timeout}s, wanted >= {min_spans}",
                )
            time.sleep(0.1)

    def wait_for_traces(
        self,
        service: str,
        operation: str | None = None,
        min_traces: int = 1,
        timeout: float = 10.0,
    ) -> list[dict[str, Any]]:
        """Poll find_traces until at least `min_traces` traces match; return them."""
        deadline = time.monotonic() + timeout
        while True:
            traces = self.find_traces(service, operation)
            if len(traces) >= min_traces:
                return traces
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"service {service!r} operation {operation!r}: {len(traces)} trace(s) "
                    f"after {timeout}s, wanted >= {min_traces}",
                )
            time.sleep(0.1)
