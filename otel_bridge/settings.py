"""Every setting of the bridge, with its default, its flag, its environment variable and its help.

Sources, later ones winning: defaults, a TOML config file (``--config`` or
``OTEL_BRIDGE_CONFIG``; keys are the field names), ``OTEL_BRIDGE_<FIELD>`` environment
variables, command-line flags. The standard ``OTEL_*`` variables configure the OTLP
exporter and the resource (service name, resource attributes) as in any OpenTelemetry SDK.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from otel_bridge.core.redaction import CaptureMode
from otel_bridge.errors import SettingsError
from otel_bridge.sources.ws_common import header_safe

ENV_PREFIX = "OTEL_BRIDGE_"


class Settings(BaseModel):
    """The bridge's settings (see README, "Configuration")."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    listen_host: str = Field(
        "127.0.0.1", description="Address of the metrics listener (/metrics, /healthz, /readyz)."
    )
    port: int = Field(
        9464, ge=0, le=65535, description="Port of the metrics listener (0: any free)."
    )
    control_host: str = Field(
        "127.0.0.1",
        description="Address of the control listener (/v1/*, /ws/*); "
        "other than loopback only with control_token.",
    )
    control_port: int = Field(
        9465, ge=0, le=65535, description="Port of the control listener (0: any free)."
    )
    http_header_timeout_s: float = Field(
        10.0, gt=0, description="Close a connection whose request head takes longer to arrive."
    )
    http_keepalive_timeout_s: float = Field(
        75.0, gt=0, description="Close a kept-alive connection idle for this long."
    )
    http_max_connections: int = Field(
        256, ge=1, description="Open connections per listener at most; more are closed at once."
    )
    upstream_url: str = Field(
        "wss://lao-socket.studio.lyzr.ai",
        description="Base URL of the LAO run socket; runs are at {upstream_url}/ws/{flow}/{run}.",
    )
    upstream_api_key: str | None = Field(
        None, description="Sent upstream as the x-api-key header (LAO does not require it)."
    )
    upstream_origin: str | None = Field(None, description="Origin header sent upstream.")
    upstream_headers: dict[str, str] = Field(
        default_factory=dict,
        description="Extra upstream headers, as NAME=VALUE pairs separated by commas.",
    )
    tls_ca_file: str | None = Field(None, description="CA bundle to verify the upstream with.")
    tls_insecure: bool = Field(
        False, description="Do not verify the upstream's TLS certificate (testing only)."
    )
    upstream_compression: bool = Field(
        False,
        description="Offer permessage-deflate upstream: uses the websockets client instead of "
        "picows (more CPU per frame, more memory per socket).",
    )
    connect_timeout_s: float = Field(15.0, gt=0, description="Upstream connect timeout.")
    app_ping_interval_s: float = Field(
        30.0,
        ge=0,
        description='Send {"type":"ping"} upstream this often, like LAO\'s client (0: off).',
    )
    ws_ping_interval_s: float = Field(
        20.0, gt=0, description="WebSocket protocol ping interval (liveness)."
    )
    ws_ping_timeout_s: float = Field(
        20.0, gt=0, description="Reconnect when a protocol ping is not answered in this time."
    )
    reconnect_initial_s: float = Field(1.0, gt=0, description="First reconnect delay.")
    reconnect_max_s: float = Field(30.0, gt=0, description="Longest reconnect delay.")
    give_up_after_s: float = Field(
        600.0,
        gt=0,
        description="Stop reconnecting after failing this long; the run ends as timeout.",
    )
    terminal_grace_s: float = Field(
        2.0, ge=0, description="Keep reading this long after the terminal event, then close."
    )
    inactivity_timeout_s: float = Field(
        1800.0, gt=0, description="Close a run with no event for this long (result timeout)."
    )
    max_run_duration_s: float = Field(
        86400.0, gt=0, description="Close a run open for this long (result timeout)."
    )
    capture: CaptureMode = Field(
        CaptureMode.REDACTED,
        description="Payload attributes: none, redacted (secrets removed) or full (raw).",
    )
    max_payload_bytes: int = Field(4096, ge=64, description="Size cap of a payload attribute.")
    max_frame_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        le=16 * 1024 * 1024,
        description="Frames larger than this are rejected unread (counted as too_large).",
    )
    max_open_tasks: int = Field(
        1000, ge=1, description="Open task executions kept per run; more starts are dropped."
    )
    timestamp_max_age_s: float = Field(
        86400.0,
        gt=0,
        description="Event timestamps older than this are replaced by the receive time.",
    )
    timestamp_max_skew_s: float = Field(
        300.0,
        ge=0,
        description="Event timestamps this far ahead of the receive time are replaced too.",
    )
    traces_out: str | None = Field(
        None, description="Also write spans to this file as OTLP/JSON lines."
    )
    otlp: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Export OTLP: auto means on when an OTEL_EXPORTER_OTLP_*ENDPOINT is set.",
    )
    export_queue_size: int = Field(
        20000, ge=1, description="Spans held in memory per exporter at most (more go to state_dir)."
    )
    export_max_request_bytes: int = Field(
        4 * 1024 * 1024,
        ge=64 * 1024,
        description="Largest OTLP request sent; bigger batches are split, a bigger span trimmed.",
    )
    export_retry_max_s: float = Field(
        30.0, gt=0, description="Longest wait between retries of a failed export (with jitter)."
    )
    state_dir: str | None = Field(
        None,
        description="Directory of the durable state (SQLite): open runs, followed runs and "
        "spans not yet delivered survive restarts. Unset: memory only.",
    )
    state_max_bytes: int = Field(
        256 * 1024 * 1024,
        ge=1024 * 1024,
        description="Disk budget of state_dir; spans past it are dropped (counted, logged).",
    )
    state_flush_interval_s: float = Field(
        0.2,
        gt=0,
        le=10,
        description="Most time between an event and its run's state on disk (finished spans "
        "not yet delivered: twice that).",
    )
    shutdown_open_runs: Literal["keep", "close"] = Field(
        "keep",
        description="On SIGTERM with a state_dir: keep open runs there to continue after the "
        "next start, or close them (result error) when the state dir will not outlive the "
        "process (an emptyDir of a pod being deleted). Without a state_dir: always close.",
    )
    shutdown_timeout_s: float = Field(
        20.0,
        gt=0,
        description="On SIGTERM, all exporters together get this long to deliver; the rest "
        "stays in state_dir for the next start.",
    )
    control_token: str | None = Field(
        None,
        description="If set, /v1/* and /ws/* require it as 'Authorization: Bearer <token>' "
        "(or the WebSocket subprotocol bearer.<token>).",
    )
    max_label_values: int = Field(
        200, ge=1, description="Distinct flow_name / task_name label values before __other__."
    )
    flow_allow: list[str] = Field(
        default_factory=list, description="Regexes of flow names allowed as labels (comma list)."
    )
    flow_deny: list[str] = Field(
        default_factory=list, description="Regexes of flow names never used as labels."
    )
    task_allow: list[str] = Field(
        default_factory=list, description="Regexes of task names allowed as labels."
    )
    task_deny: list[str] = Field(
        default_factory=list, description="Regexes of task names never used as labels."
    )
    max_subscriptions: int = Field(
        10000, ge=1, description="Runs followed at once at most; more are refused (429)."
    )
    client_buffer_frames: int = Field(
        1000, ge=1, description="Pass-through: frames buffered per slow client before it is cut."
    )
    log_format: Literal["text", "json"] = Field("text", description="Log line format.")
    log_level: str = Field("INFO", description="Log level (DEBUG, INFO, WARNING, ERROR).")

    @field_validator("upstream_headers", mode="before")
    @classmethod
    def _headers(cls, value: Any) -> Any:
        if isinstance(value, str):
            pairs = [p for p in value.split(",") if p.strip()]
            out = {}
            for pair in pairs:
                name, sep, val = pair.partition("=")
                if not sep or not name.strip():
                    shown = name.partition(":")[0].strip()[:40]  # never echo a value
                    raise ValueError(f"header starting {shown!r} is not NAME=VALUE")
                out[name.strip()] = val.strip()
            return out
        return value

    @field_validator("upstream_headers", "upstream_api_key", "upstream_origin")
    @classmethod
    def _on_the_wire(cls, value: Any) -> Any:
        return header_safe(value)

    @field_validator("flow_allow", "flow_deny", "task_allow", "task_deny", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()]
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("log_level must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return value.upper()

    @field_validator("flow_allow", "flow_deny", "task_allow", "task_deny")
    @classmethod
    def _regexes(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None
        return value

    @field_validator("control_token")
    @classmethod
    def _token(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value:
            raise ValueError("control_token must not be empty (unset it to go without one)")
        if any(c.isspace() or not c.isprintable() for c in value):
            raise ValueError("control_token must not contain spaces or control characters")
        return value

    @model_validator(mode="after")
    def _doors(self) -> Settings:
        if not self.control_token and not is_loopback(self.control_host):
            raise ValueError(
                f"control_host ({env_of('control_host')}) {self.control_host!r} is not a "
                f"loopback address: set control_token ({env_of('control_token')}) too, or "
                "anyone who reaches the port can follow runs and use the pass-through socket"
            )
        if self.control_port and self.control_port == self.port:
            raise ValueError(
                f"control_port ({env_of('control_port')}) must differ from port "
                f"({env_of('port')}), the metrics listener"
            )
        return self

    @field_validator("upstream_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("ws://", "wss://")):
            raise ValueError("upstream_url must start with ws:// or wss://")
        return value.rstrip("/")

    def upstream_header_list(self) -> list[tuple[str, str]]:
        """Every header to send upstream."""
        headers = list(self.upstream_headers.items())
        if self.upstream_api_key:
            headers.append(("x-api-key", self.upstream_api_key))
        if self.upstream_origin:
            headers.append(("Origin", self.upstream_origin))
        return headers

    def otlp_enabled(
        self, environ: Mapping[str, str] | None = None, exporters: Sequence[str] | None = None
    ) -> bool:
        """Whether spans go out over OTLP.

        ``auto``: when ``OTEL_TRACES_EXPORTER`` lists ``otlp``, or is unset and an OTLP
        endpoint variable is set.
        """
        if self.otlp != "auto":
            return self.otlp == "on"
        env = os.environ if environ is None else environ
        if exporters is None:
            raw = env.get("OTEL_TRACES_EXPORTER", "")
            exporters = [e.strip().lower() for e in raw.split(",") if e.strip()]
        if exporters:
            return "otlp" in exporters
        return any(
            env.get(k)
            for k in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        )


def is_loopback(host: str) -> bool:
    """Whether a listen address is reachable from this host only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


SECRET_FIELDS = frozenset({"upstream_api_key", "control_token"})


def flag_of(name: str) -> str:
    """The command-line flag of a field."""
    return "--" + name.replace("_", "-")


def env_of(name: str) -> str:
    """The environment variable of a field."""
    return ENV_PREFIX + name.upper()


def add_setting_flags(parser: argparse.ArgumentParser, only: Sequence[str] | None = None) -> None:
    """Add a flag for every setting (or the ``only`` ones), defaulting to 'not given'."""
    parser.add_argument(
        "--config", default=None, help=f"TOML file of settings (env {ENV_PREFIX}CONFIG)."
    )
    for name, info in Settings.model_fields.items():
        if only is not None and name not in only:
            continue
        default = info.get_default(call_default_factory=True)
        shown = "unset" if default in (None, [], {}) else default
        if name in SECRET_FIELDS:
            shown = "unset"
        help_text = f"{info.description} [env {env_of(name)}; default {shown}]"
        if info.annotation is bool:
            parser.add_argument(
                flag_of(name),
                dest=name,
                default=None,
                action=argparse.BooleanOptionalAction,
                help=help_text,
            )
        else:
            parser.add_argument(flag_of(name), dest=name, default=None, help=help_text)


def load_settings(
    args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Merge defaults, config file, environment and flags; raise SettingsError on bad values."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    config = getattr(args, "config", None) or env.get(ENV_PREFIX + "CONFIG")
    if config:
        try:
            values.update(tomllib.loads(Path(config).read_text(encoding="utf-8")))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"config file {config}: {exc}") from exc
    for name in Settings.model_fields:
        if env_of(name) in env:
            values[name] = env[env_of(name)]
    if args is not None:
        for name in Settings.model_fields:
            given = getattr(args, name, None)
            if given is not None:
                values[name] = given
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            if not error["loc"]:  # a rule across settings names them itself
                problems.append(error["msg"].removeprefix("Value error, "))
                continue
            field = str(error["loc"][0])
            where = f"{flag_of(field)} / {env_of(field)}"
            problems.append(f"{field} ({where}): {error['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
