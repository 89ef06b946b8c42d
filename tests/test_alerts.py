"""The Prometheus alert rules: valid, complete, and each proven firing and not firing."""

from __future__ import annotations

import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_dashboards import PROMTOOL, RULE_TESTS, RULES, alert_rules

from support.process import require_binary

pytestmark = pytest.mark.integration

# The conditions issue 3 asks alerts for, and the alerts that cover them.
REQUIRED = {
    "flow failure ratio high": "LaoFlowFailureRatioHigh",
    "flow p95 duration above a threshold": "LaoFlowDurationP95High",
    "runs stuck in flight": "LaoFlowRunsStuck",
    "bridge upstream disconnected": "OtelBridgeUpstreamDisconnected",
    "reconnecting in a loop": "OtelBridgeReconnectLoop",
    "exports failing": "OtelBridgeSpanExportFailing",
    "spans dropped": "OtelBridgeSpansDropped",
    "frames rejected": "OtelBridgeFramesRejected",
}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run promtool (skipped locally, failed under CI, when it is not installed)."""
    binary = require_binary(PROMTOOL, "apt-get install prometheus")
    return subprocess.run(
        [str(binary), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=RULES.parent,
    )


def rule_tests() -> list[dict[str, Any]]:
    """Every alert_rule_test case of the promtool test file."""
    data = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))
    return [case for test in data["tests"] for case in test.get("alert_rule_test", [])]


def test_promtool_check_rules_passes() -> None:
    """``promtool check rules`` accepts the rule file."""
    result = promtool("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_promtool_rule_unit_tests_pass() -> None:
    """``promtool test rules`` passes: each alert fires on its condition, not on look-alikes."""
    result = promtool("test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_condition_of_the_issue_has_an_alert() -> None:
    """Failure ratio, p95, stuck runs, upstream, reconnects, exports, drops, rejects."""
    names = {rule["alert"] for rule in alert_rules()}
    assert set(REQUIRED.values()) <= names


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: str(rule["alert"]))
def test_alert_has_for_severity_summary_and_description(rule: dict[str, Any]) -> None:
    """Each alert waits with ``for:``, has a severity and a templated summary and description."""
    assert rule["for"].endswith("m")
    assert rule["labels"]["severity"] in {"warning", "critical"}
    assert set(rule["annotations"]) >= {"summary", "description"}
    subject = "flow_name" if rule["alert"].startswith("LaoFlow") else "instance"
    for text in (rule["annotations"]["summary"], rule["annotations"]["description"]):
        assert f"{{{{ $labels.{subject} }}}}" in text
    by = "by (flow_name" if subject == "flow_name" else "by (job, instance"
    assert by in rule["expr"]


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    """The promtool tests expect each alert to fire at some time and to be silent at another."""
    firing: dict[str, int] = defaultdict(int)
    silent: dict[str, int] = defaultdict(int)
    for case in rule_tests():
        if case["exp_alerts"]:
            firing[case["alertname"]] += 1
            for alert in case["exp_alerts"]:
                assert set(alert["exp_annotations"]) == {"summary", "description"}
        else:
            silent[case["alertname"]] += 1
    names = {rule["alert"] for rule in alert_rules()}
    assert set(firing) == names
    assert set(silent) == names


def test_rule_tests_load_the_shipped_rule_file() -> None:
    """The promtool test file tests the very rule file the Helm chart ships."""
    data = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))
    assert [(RULE_TESTS.parent / f).resolve() for f in data["rule_files"]] == [RULES.resolve()]
    assert Path(RULES).suffix == ".yaml"
