"""The standard ``OTEL_*`` variables, read and checked the way the OpenTelemetry SDKs read them.

- ``OTEL_SDK_DISABLED=true``: no trace export at all (metrics and the pass-through keep
  working); one log line says so.
- ``OTEL_TRACES_EXPORTER``: a comma list of ``otlp``, ``console`` (OTLP/JSON lines on
  stdout), ``none``; an unknown value is warned about and ignored, as the spec says.
- ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG``: see :mod:`otel_bridge.core.sampling`.
- ``OTEL_BSP_MAX_QUEUE_SIZE``, ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE``, ``OTEL_BSP_SCHEDULE_DELAY``
  (ms): the export queues' size, batch size and delay.
- ``OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION``, ``_ENDPOINT``, ``_HEADERS``, ``_CERTIFICATE``,
  ``_CLIENT_KEY``, ``_CLIENT_CERTIFICATE``, ``_TIMEOUT``: checked before anything starts, so a
  bad value is one line naming the variable and exit code 2, never a traceback.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from otel_bridge.core.sampling import Sampler
from otel_bridge.errors import SettingsError

log = logging.getLogger(__name__)

EXPORTERS = ("otlp", "console", "none")
COMPRESSIONS = ("gzip", "deflate", "none")


@dataclass(frozen=True)
class OtelEnv:
    """What the standard variables ask for."""

    disabled: bool = False
    exporters: tuple[str, ...] = ()  # empty: not set (the bridge's own default applies)
    sampler: Sampler = field(default_factory=Sampler)
    queue_size: int | None = None
    batch_size: int | None = None
    delay_s: float | None = None


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return value.strip() if value is not None and value.strip() != "" else None


def _both(env: Mapping[str, str], suffix: str) -> tuple[str, str] | None:
    """(variable, value) of OTEL_EXPORTER_OTLP_TRACES_<suffix>, else OTEL_EXPORTER_OTLP_<suffix>."""
    for name in (f"OTEL_EXPORTER_OTLP_TRACES_{suffix}", f"OTEL_EXPORTER_OTLP_{suffix}"):
        value = _get(env, name)
        if value is not None:
            return name, value
    return None


def _positive(env: Mapping[str, str], name: str) -> int | None:
    value = _get(env, name)
    if value is None:
        return None
    if not value.isdigit() or int(value) <= 0:
        raise SettingsError(f"{name}={value!r} is not a positive whole number")
    return int(value)


def check_exporter_variables(env: Mapping[str, str]) -> None:
    """Raise :class:`SettingsError` naming the first OTLP exporter variable that is unusable."""
    found = _both(env, "COMPRESSION")
    if found and found[1].lower() not in COMPRESSIONS:
        raise SettingsError(f"{found[0]}={found[1]!r}: use one of {', '.join(COMPRESSIONS)}")
    found = _both(env, "ENDPOINT")
    if found:
        parts = urlsplit(found[1])
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SettingsError(f"{found[0]}={found[1]!r} is not an http(s)://host:port URL")
    found = _both(env, "HEADERS")
    if found:
        for pair in found[1].split(","):
            name, sep, _ = pair.partition("=")
            if not sep or not name.strip():
                raise SettingsError(f"{found[0]}: {pair.strip()!r} is not NAME=VALUE")
    for suffix in ("CERTIFICATE", "CLIENT_KEY", "CLIENT_CERTIFICATE"):
        found = _both(env, suffix)
        if found and not Path(found[1]).is_file():
            raise SettingsError(f"{found[0]}={found[1]!r}: no such file")
    found = _both(env, "TIMEOUT")
    if found:
        try:
            float(found[1])
        except ValueError:
            raise SettingsError(f"{found[0]}={found[1]!r} is not a number") from None


def read_otel_env(environ: Mapping[str, str] | None = None) -> OtelEnv:
    """Read and check the standard variables; raise :class:`SettingsError` for a bad one."""
    env = os.environ if environ is None else environ
    disabled = (_get(env, "OTEL_SDK_DISABLED") or "false").lower() == "true"
    exporters: list[str] = []
    for item in (_get(env, "OTEL_TRACES_EXPORTER") or "").split(","):
        name = item.strip().lower()
        if not name:
            continue
        if name not in EXPORTERS:
            log.warning("OTEL_TRACES_EXPORTER: unknown exporter ignored", extra={"value": name})
            continue
        exporters.append(name)
    try:
        sampler = Sampler.parse(
            _get(env, "OTEL_TRACES_SAMPLER"), _get(env, "OTEL_TRACES_SAMPLER_ARG")
        )
    except ValueError as exc:
        raise SettingsError(str(exc)) from exc
    delay = _positive(env, "OTEL_BSP_SCHEDULE_DELAY")
    check_exporter_variables(env)
    return OtelEnv(
        disabled=disabled,
        exporters=tuple(exporters),
        sampler=sampler,
        queue_size=_positive(env, "OTEL_BSP_MAX_QUEUE_SIZE"),
        batch_size=_positive(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"),
        delay_s=delay / 1000 if delay is not None else None,
    )
