"""A real Prometheus (Debian's /usr/bin/prometheus) scraping given targets every second.

    with PrometheusServer(["127.0.0.1:9464"]) as prom:
        prom.wait_for_targets_up()
        prom.wait_for("otel_bridge_runs_total", lambda data: bool(data["result"]))

Exemplar storage is on and the scrape negotiates OpenMetrics (the only exposition format
that carries exemplars), so `query_exemplars` sees the trace ids the bridge attaches.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Self

from . import _http
from .ports import LOOPBACK, free_port
from .process import ManagedServer, ServerProcess, require_binary

PROMETHEUS_BINARY = Path("/usr/bin/prometheus")
JOB = "test"
OPENMETRICS_FIRST = ["OpenMetricsText1.0.0", "OpenMetricsText0.0.1", "PrometheusText0.0.4"]


@cache
def prometheus_version(binary: Path = PROMETHEUS_BINARY) -> tuple[int, int, int]:
    """(major, minor, patch) of `binary --version`, e.g. (2, 42, 0) on Debian bookworm."""
    out = subprocess.run(
        [str(binary), "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    match = re.search(r"version (\d+)\.(\d+)\.(\d+)", out.stdout + out.stderr)
    if not match:
        raise RuntimeError(f"cannot parse `{binary} --version`: {out.stdout!r}")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def _timestamp(moment: datetime | float) -> str:
    if isinstance(moment, datetime):
        return f"{moment.timestamp():.3f}"
    return f"{moment:.3f}"


class PrometheusServer(ManagedServer):
    """Runs Prometheus on a free loopback port with a temp TSDB; scrapes `targets` every 1s.

    `targets` are "host:port" strings, scraped at `metrics_path` under job "test". Use as
    a context manager (or start()/stop()); a failing `with` body dumps the log to stderr.
    """

    def __init__(
        self,
        targets: Sequence[str],
        *,
        metrics_path: str = "/metrics",
        scrape_interval: str = "1s",
        binary: Path | None = None,
        workdir: Path | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self.scrape_targets = list(targets)
        self.metrics_path = metrics_path
        self.scrape_interval = scrape_interval
        self.binary = binary
        self.startup_timeout = startup_timeout
        self._workdir_arg = workdir
        self._tmp = None
        self.workdir: Path | None = None
        self.process = None
        self.port = free_port()

    @property
    def url(self) -> str:
        """Base URL of the web API/UI."""
        return f"http://{LOOPBACK}:{self.port}"

    # -- lifecycle -------------------------------------------------------------------

    def config(self, version: tuple[int, int, int]) -> dict[str, Any]:
        """Return the prometheus.yml to run with, for a Prometheus of `version`."""
        scrape: dict[str, Any] = {
            "job_name": JOB,
            "scrape_interval": self.scrape_interval,
            "scrape_timeout": self.scrape_interval,
            "metrics_path": self.metrics_path,
            "static_configs": [{"targets": self.scrape_targets}],
        }
        # scrape_protocols exists from 2.49 on; older versions (Debian bookworm's 2.42)
        # already send an Accept header that prefers OpenMetrics 1.0.0.
        if version >= (2, 49, 0):
            scrape["scrape_protocols"] = OPENMETRICS_FIRST
        return {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.scrape_interval,
            },
            "scrape_configs": [scrape],
        }

    def start(self) -> Self:
        """Write the config, start Prometheus and wait for /-/ready."""
        binary = require_binary(
            self.binary or PROMETHEUS_BINARY,
            "run .ci/install-system.sh (apt-get install prometheus)",
        )
        if self._workdir_arg is not None:
            self.workdir = self._workdir_arg
            self.workdir.mkdir(parents=True, exist_ok=True)
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="prometheus-")
            self.workdir = Path(self._tmp.name)
        config_path = self.workdir / "prometheus.yml"
        # JSON is YAML: no YAML library needed to write it.
        config_path.write_text(json.dumps(self.config(prometheus_version(binary)), indent=2))
        self.process = ServerProcess(
            "prometheus",
            [
                str(binary),
                f"--config.file={config_path}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address={LOOPBACK}:{self.port}",
                "--enable-feature=exemplar-storage",
                "--log.level=info",
            ],
            self.workdir / "prometheus.log",
            cwd=self.workdir,
        )
        self.process.start()
        try:
            self.process.wait_until(self._ready, self.startup_timeout, "/-/ready")
        except BaseException:
            self.stop()
            raise
        return self

    def _ready(self) -> bool | None:
        status, _ = _http.get(f"{self.url}/-/ready", timeout=1.0)
        return True if status == 200 else None

    # -- HTTP API --------------------------------------------------------------------

    def _api(self, path: str, params: dict[str, str | int | float]) -> Any:
        if self.process is None:
            raise RuntimeError("PrometheusServer is not started")
        self.process.ensure_running()
        body = _http.get_json(f"{self.url}{path}", params)
        if body.get("status") != "success":
            raise RuntimeError(f"{path} {params}: {body}")
        return body["data"]

    def query(self, expr: str, at: datetime | float | None = None) -> dict[str, Any]:
        """Instant query; returns `data` ({"resultType": ..., "result": [...]})."""
        params: dict[str, str | int | float] = {"query": expr}
        if at is not None:
            params["time"] = _timestamp(at)
        data: dict[str, Any] = self._api("/api/v1/query", params)
        return data

    def query_value(self, expr: str) -> float | None:
        """Return the value of a one-sample (or scalar) query; None when empty."""
        data = self.query(expr)
        if data["resultType"] == "scalar":
            return float(data["result"][1])
        result = data["result"]
        if not result:
            return None
        if len(result) > 1:
            raise ValueError(f"{expr!r} yields {len(result)} series, expected one")
        return float(result[0]["value"][1])

    def query_exemplars(
        self,
        expr: str,
        start: datetime | float,
        end: datetime | float,
    ) -> list[dict[str, Any]]:
        """Exemplars of `expr` between start and end ([{"seriesLabels", "exemplars"}])."""
        data = self._api(
            "/api/v1/query_exemplars",
            {"query": expr, "start": _timestamp(start), "end": _timestamp(end)},
        )
        return list(data or [])

    def wait_for(
        self,
        expr: str,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float = 15.0,
    ) -> dict[str, Any]:
        """Poll query(expr) until predicate(data) is true; return that data."""
        deadline = time.monotonic() + timeout
        while True:
            data = self.query(expr)
            if predicate(data):
                return data
            if time.monotonic() > deadline:
                raise TimeoutError(f"{expr!r}: predicate still false after {timeout}s: {data}")
            time.sleep(0.2)

    def wait_for_exemplars(
        self,
        expr: str,
        timeout: float = 15.0,
    ) -> list[dict[str, Any]]:
        """Poll query_exemplars(expr) over the last hour until some exemplar is there."""
        deadline = time.monotonic() + timeout
        while True:
            now = datetime.now(UTC).timestamp()
            found = self.query_exemplars(expr, now - 3600, now + 60)
            if any(series.get("exemplars") for series in found):
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"no exemplars for {expr!r} after {timeout}s")
            time.sleep(0.2)

    def targets(self) -> list[dict[str, Any]]:
        """Active scrape targets (`health` is "up", "down" or "unknown"; see `lastError`)."""
        data = self._api("/api/v1/targets", {"state": "active"})
        return list(data.get("activeTargets") or [])

    def target_health(self) -> dict[str, str]:
        """Map each active target's scrapeUrl to its health."""
        return {t["scrapeUrl"]: t["health"] for t in self.targets()}

    def wait_for_targets_up(self, timeout: float = 15.0) -> list[dict[str, Any]]:
        """Poll until every configured target has been scraped successfully."""
        deadline = time.monotonic() + timeout
        while True:
            targets = self.targets()
            if len(targets) >= len(self.scrape_targets) and all(
                t["health"] == "up" for t in targets
            ):
                return targets
            if time.monotonic() > deadline:
                detail = [(t["scrapeUrl"], t["health"], t.get("lastError")) for t in targets]
                raise TimeoutError(f"targets not all up after {timeout}s: {detail}")
            time.sleep(0.2)
