"""The command line: replay (bad lines, split streams, metrics), settings, help, demo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import SEED_SECRETS, seed_events
from otel_bridge.cli import build_parser, main
from otel_bridge.settings import Settings, SettingsError, env_of, load_settings
from otel_bridge.sinks.otlp import spans_of

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("restore_root_logging")]

ROOT = Path(__file__).parent.parent


def read_spans(path: Path) -> list[dict[str, object]]:
    """Every span of an OTLP/JSON lines file."""
    return [s for line in path.read_text().splitlines() for s in spans_of(json.loads(line))]


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_replay_skips_bad_lines_and_keeps_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad lines are reported with line numbers; every valid event still becomes spans."""
    events = [json.dumps(e) for e in seed_events()]
    lines = ["connection established", events[0], "{broken json", events[1], "[1,2]", *events[2:]]
    rec = write_lines(tmp_path / "rec.jsonl", lines)
    out = tmp_path / "spans.jsonl"
    assert main(["replay", str(rec), "--traces-out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"{rec}:3: skipped: invalid_json" in err
    assert f"{rec}:5: skipped: not_an_object" in err
    spans = read_spans(out)
    assert sum(s["name"].startswith("invoke_workflow") for s in spans) == 2  # type: ignore[union-attr]
    assert len(spans) == 2 + 3 + 1
    text = out.read_text()
    assert not any(secret in text for secret in SEED_SECRETS)


def test_replay_in_two_halves_with_state_matches_one_pass(tmp_path: Path) -> None:
    """A stream replayed in two invocations sharing --state gives the same spans as one pass."""
    events = [json.dumps(e) for e in seed_events("Customer_Support_Pipeline")]
    whole = write_lines(tmp_path / "whole.jsonl", events)
    first = write_lines(tmp_path / "a.jsonl", events[:3])
    second = write_lines(tmp_path / "b.jsonl", events[3:])
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    state = tmp_path / "state.json"
    assert main(["replay", str(whole), "--traces-out", str(one)]) == 0
    assert main(["replay", str(first), "--traces-out", str(two), "--state", str(state)]) == 0
    assert main(["replay", str(second), "--traces-out", str(two), "--state", str(state)]) == 0

    def key(span: dict[str, object]) -> tuple[object, ...]:
        return (
            span["spanId"],
            span.get("parentSpanId"),
            span["name"],
            span["startTimeUnixNano"],
            span["endTimeUnixNano"],
        )

    assert sorted(map(key, read_spans(one))) == sorted(map(key, read_spans(two)))
    assert json.loads(state.read_text())["open_runs"] == []


def test_replay_in_two_halves_with_state_dir_matches_one_pass(tmp_path: Path) -> None:
    """--state-dir (the serve command's store) carries a run between replays like --state."""
    events = [json.dumps(e) for e in seed_events("Customer_Support_Pipeline")]
    whole = write_lines(tmp_path / "whole.jsonl", events)
    first = write_lines(tmp_path / "a.jsonl", events[:3])
    second = write_lines(tmp_path / "b.jsonl", events[3:])
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    state = tmp_path / "state"
    assert main(["replay", str(whole), "--traces-out", str(one)]) == 0
    for part in (first, second):
        args = ["replay", str(part), "--traces-out", str(two), "--state-dir", str(state)]
        assert main([*args, "--otlp", "off"]) == 0
    assert sorted(s["spanId"] for s in read_spans(one)) == sorted(
        s["spanId"] for s in read_spans(two)
    )
    root = [s for s in read_spans(two) if "parentSpanId" not in s]
    assert len(root) == 1 and root[0]["startTimeUnixNano"] == next(
        s["startTimeUnixNano"] for s in read_spans(one) if "parentSpanId" not in s
    )
    assert (
        main(["replay", str(first), "--state", str(tmp_path / "s.json"), "--state-dir", str(state)])
        == 2
    )


def test_replay_state_file_holds_no_secret_and_is_owner_only(tmp_path: Path) -> None:
    """A run carried over in --state keeps no seed secret on disk, in a 0600 file."""
    events = [json.dumps(e) for e in seed_events()]
    # Split right after the seed's first task_started (its input carries the api key).
    first = write_lines(tmp_path / "a.jsonl", events[:2])
    state = tmp_path / "state.json"
    out = tmp_path / "spans.jsonl"
    assert main(["replay", str(first), "--traces-out", str(out), "--state", str(state)]) == 0
    text = state.read_text()
    assert json.loads(text)["open_runs"], "the split run must be carried over"
    assert "sentiment_analyzer" in text
    assert not any(secret in text for secret in SEED_SECRETS)
    assert state.stat().st_mode & 0o777 == 0o600


def test_replay_reports_poison_lines_and_keeps_every_valid_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A deeply nested line and a non-UTF-8 line are reported; the valid lines still export."""
    events = [json.dumps(e) for e in seed_events("Customer_Support_Pipeline")]
    deep = '{"event_type": "task_started", "input": ' + "[" * 900 + '"\\ud800"' + "]" * 900 + "}"
    rec = tmp_path / "rec.jsonl"
    rec.write_bytes(
        (events[0] + "\n" + deep + "\n").encode()
        + b'{"event_type": "task_started", "task_name": "\xff\xfe"}\n'
        + ("\n".join(events[1:]) + "\n").encode()
    )
    out = tmp_path / "spans.jsonl"
    assert main(["replay", str(rec), "--traces-out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"{rec}:2: skipped:" in err
    assert f"{rec}:3: skipped: not_utf8" in err
    whole = tmp_path / "whole.jsonl"
    assert (
        main(["replay", str(write_lines(tmp_path / "w.jsonl", events)), "--traces-out", str(whole)])
        == 0
    )
    names = sorted(str(s["name"]) for s in read_spans(out))
    assert names == sorted(str(s["name"]) for s in read_spans(whole))


def test_replay_writes_metrics(tmp_path: Path) -> None:
    """--metrics-out writes an exposition counting the replayed runs by result."""
    rec = write_lines(tmp_path / "rec.jsonl", [json.dumps(e) for e in seed_events()])
    metrics = tmp_path / "metrics.prom"
    assert main(["replay", str(rec), "--metrics-out", str(metrics)]) == 0
    text = metrics.read_text()
    assert 'lao_flow_runs_total{flow_name="Financial_Data_Pipeline",result="failure"} 1.0' in text
    assert 'lao_flow_runs_total{flow_name="Customer_Support_Pipeline",result="success"} 1.0' in text


def test_replay_of_missing_file_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    """A missing recording exits 2 with the file's name."""
    assert main(["replay", "/nonexistent.jsonl"]) == 2
    assert "no such file: /nonexistent.jsonl" in capsys.readouterr().err


def test_settings_precedence_file_env_flag(tmp_path: Path) -> None:
    """A config file is overridden by the environment, which is overridden by flags."""
    config = tmp_path / "bridge.toml"
    config.write_text('port = 1111\ncapture = "none"\nlog_format = "json"\n')
    args = build_parser().parse_args(["serve", "--config", str(config), "--port", "3333"])
    env = {env_of("port"): "2222", env_of("capture"): "full"}
    settings = load_settings(args, env)
    assert settings.port == 3333
    assert settings.capture.value == "full"
    assert settings.log_format == "json"


def test_bad_setting_names_flag_and_variable(capsys: pytest.CaptureFixture[str]) -> None:
    """A bad value exits 2 naming the setting's flag and environment variable."""
    with pytest.raises(SettingsError, match="--capture / OTEL_BRIDGE_CAPTURE"):
        load_settings(build_parser().parse_args(["serve", "--capture", "everything"]), {})
    assert main(["serve", "--upstream-url", "http://nope"]) == 2
    assert "upstream_url must start with ws:// or wss://" in capsys.readouterr().err


def test_every_setting_is_in_help_and_readme(capsys: pytest.CaptureFixture[str]) -> None:
    """Every setting's flag is in `serve --help`, and its variable is documented in the README."""
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    help_text = capsys.readouterr().out
    readme = (ROOT / "README.md").read_text()
    for name in Settings.model_fields:
        assert "--" + name.replace("_", "-") in help_text
        assert env_of(name) in readme, f"{env_of(name)} missing from README"


def test_demo_plays_flows_and_writes_traces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`otel-bridge demo` shows waterfalls and writes every run's spans, secrets redacted."""
    out = tmp_path / "demo.jsonl"
    assert main(["demo", "--traces-out", str(out), "--time-scale", "0.02", "--flows", "2"]) == 0
    shown = capsys.readouterr().out
    assert "invoke_workflow Customer_Support_Pipeline" in shown
    assert "never ended (success)" in shown
    spans = read_spans(out)
    roots = [s for s in spans if str(s["name"]).startswith("invoke_workflow")]
    assert len(roots) == 4
    assert not any(secret in out.read_text() for secret in SEED_SECRETS)
