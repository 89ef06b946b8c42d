"""Standard OTEL_* variables behave as in the SDKs: exporter list, disable, samplers, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import seed_events
from otel_bridge.core import Engine
from otel_bridge.core.engine import Limits
from otel_bridge.core.ids import TraceParent, run_trace_id
from otel_bridge.core.records import SpanRecord
from otel_bridge.core.sampling import Sampler
from otel_bridge.errors import SettingsError
from otel_bridge.otel_env import read_otel_env

ROOT = Path(__file__).parent.parent
pytestmark = pytest.mark.integration  # runs the command line as a process


def recording(tmp_path: Path, runs: int = 1) -> Path:
    """A recording of the seed's two flows, ``runs`` times under different run names."""
    lines = []
    for n in range(runs):
        for event in seed_events():
            lines.append(json.dumps({**event, "run_name": f"{event['run_name']}-{n}"}))
    path = tmp_path / "rec.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m otel_bridge ARGS`` with only the given OTEL_* variables set."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return subprocess.run(
        [sys.executable, "-m", "otel_bridge", *args],
        env={**clean, **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def console_spans(stdout: str) -> list[dict[str, object]]:
    """The spans printed by the console exporter (OTLP/JSON lines)."""
    spans = []
    for line in stdout.splitlines():
        if line.startswith('{"resourceSpans"'):
            for rs in json.loads(line)["resourceSpans"]:
                for ss in rs["scopeSpans"]:
                    spans.extend(ss["spans"])
    return spans


def test_console_exporter_prints_otlp_json_and_unknown_values_are_ignored(tmp_path: Path) -> None:
    """OTEL_TRACES_EXPORTER=bogus,console prints spans on stdout and warns about bogus."""
    done = cli(tmp_path, "replay", str(recording(tmp_path)), OTEL_TRACES_EXPORTER="bogus,console")
    assert done.returncode == 0, done.stderr
    assert len(console_spans(done.stdout)) == 2 + 3 + 1
    assert "unknown exporter ignored" in done.stderr and "bogus" in done.stderr


def replay_counted(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], str]:
    """Replay the seed with the console exporter and ``env``; (the process, its metrics)."""
    metrics = tmp_path / "m.prom"
    rec = str(recording(tmp_path))
    done = cli(tmp_path, "replay", rec, "--metrics-out", str(metrics), **env)
    assert done.returncode == 0, done.stderr
    return done, metrics.read_text()


def test_sdk_disabled_exports_nothing_but_counts(tmp_path: Path) -> None:
    """OTEL_SDK_DISABLED=true: no spans anywhere, the metrics still count the runs."""
    done, metrics = replay_counted(
        tmp_path, OTEL_TRACES_EXPORTER="console", OTEL_SDK_DISABLED="true"
    )
    assert console_spans(done.stdout) == []
    assert "OTEL_SDK_DISABLED=true" in done.stderr
    assert 'lao_flow_runs_total{flow_name="Financial_Data_Pipeline",result="failure"} 1.0' in (
        metrics
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "localhost:4317"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "novalue"),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/no/such/ca.pem"),
        ("OTEL_TRACES_SAMPLER", "sometimes"),
        ("OTEL_TRACES_SAMPLER_ARG", "lots"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "-5"),
    ],
)
def test_a_bad_variable_is_one_line_and_exit_code_2(
    tmp_path: Path, variable: str, value: str
) -> None:
    """A bad OTEL_* value ends the command with one line naming it, exit 2, no traceback."""
    env = {variable: value, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}
    if variable == "OTEL_TRACES_SAMPLER_ARG":
        env["OTEL_TRACES_SAMPLER"] = "traceidratio"
    done = cli(tmp_path, "replay", str(recording(tmp_path)), **env)
    assert done.returncode == 2
    assert variable in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_always_off_exports_no_run_but_counts_them(tmp_path: Path) -> None:
    """OTEL_TRACES_SAMPLER=always_off: no spans out; runs still counted."""
    done, metrics = replay_counted(
        tmp_path, OTEL_TRACES_EXPORTER="console", OTEL_TRACES_SAMPLER="always_off"
    )
    assert console_spans(done.stdout) == []
    assert 'result="success"} 1.0' in metrics


def test_trace_id_ratio_decides_per_run_the_same_every_time(tmp_path: Path) -> None:
    """Traceidratio keeps whole runs, chosen by trace id: two replays export the same ones."""
    rec = str(recording(tmp_path, runs=20))
    env = {
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_TRACES_SAMPLER": "traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.5",
    }
    first = {s["traceId"] for s in console_spans(cli(tmp_path, "replay", rec, **env).stdout)}
    second = {s["traceId"] for s in console_spans(cli(tmp_path, "replay", rec, **env).stdout)}
    assert first == second
    assert 0 < len(first) < 40
    sampler = Sampler.parse("traceidratio", "0.5")
    expected = {
        f"{run_trace_id(e['flow_name'], e['run_name'] + f'-{n}'):032x}"
        for n in range(20)
        for e in seed_events()[:1] + seed_events("Financial_Data_Pipeline")[:1]
        if sampler.sampled(run_trace_id(e["flow_name"], e["run_name"] + f"-{n}"), None)
    }
    assert first == expected


def test_unsampled_traceparent_means_not_exported_and_tracestate_is_kept() -> None:
    """A registered traceparent decides (parent-based default); its tracestate rides along."""
    engine = Engine(limits=Limits(sampler=Sampler()))
    events = seed_events("Customer_Support_Pipeline")
    off = TraceParent(0xABC, 0xDEF, sampled=False)
    on = TraceParent(0x123, 0x456, sampled=True, state="vendor=x")
    outputs = []
    for run, parent in (("off", off), ("on", on)):
        engine.set_parent("Customer_Support_Pipeline", run, parent)
        for i, event in enumerate(events):
            raw = json.dumps({**event, "run_name": run})
            ts = int((1_756_806_125 + i) * 1e9)
            outputs += engine.receive(raw, run=("Customer_Support_Pipeline", run), received_ns=ts)
    spans = [o for o in outputs if isinstance(o, SpanRecord)]
    assert {s.sampled for s in spans if s.run_name == "off"} == {False}
    assert {s.sampled for s in spans if s.run_name == "on"} == {True}
    assert {s.trace_state for s in spans if s.run_name == "on"} == {"vendor=x"}


def test_version_names_the_sdk(tmp_path: Path) -> None:
    """``python -m otel_bridge --version`` prints its version and the OpenTelemetry SDK's."""
    done = cli(tmp_path, "--version")
    assert done.returncode == 0
    assert done.stdout.startswith("otel-bridge ") and "OpenTelemetry SDK 1." in done.stdout


def test_bsp_variables_size_the_export_queues() -> None:
    """OTEL_BSP_* are read (and a bad one is a SettingsError naming it)."""
    env = read_otel_env(
        {
            "OTEL_BSP_MAX_QUEUE_SIZE": "100",
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "10",
            "OTEL_BSP_SCHEDULE_DELAY": "50",
        }
    )
    assert (env.queue_size, env.batch_size, env.delay_s) == (100, 10, 0.05)
    with pytest.raises(SettingsError, match="OTEL_BSP_SCHEDULE_DELAY"):
        read_otel_env({"OTEL_BSP_SCHEDULE_DELAY": "soon"})
