"""The Prometheus alert rules: valid, complete, each proven firing and not firing, runbooks."""

from __future__ import annotations

import re
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_dashboards import DASHBOARDS, PROMTOOL, RULE_TESTS, RULES, alert_rules

from support.process import require_binary

pytestmark = pytest.mark.integration

# The conditions the issues ask alerts for, and the alerts that cover them.
REQUIRED = {
    "flow failure ratio high": "LaoFlowFailureRatioHigh",
    "flow p95 duration above a threshold": "LaoFlowDurationP95High",
    "runs stuck in flight": "LaoFlowRunsStuck",
    "bridge upstream disconnected": "OtelBridgeUpstreamDisconnected",
    "reconnecting in a loop": "OtelBridgeReconnectLoop",
    "exports failing": "OtelBridgeSpanExportFailing",
    "spans dropped": "OtelBridgeSpansDropped",
    "frames rejected": "OtelBridgeFramesRejected",
    "bridge absent": "OtelBridgeAbsent",
    "subscriptions ending failed": "OtelBridgeSubscriptionsFailed",
}
README = DASHBOARDS / "README.md"
HEADING = re.compile(r"^#{1,6} (.+)$", re.MULTILINE)
SET_OPERATOR = re.compile(r"(and|or|unless)\b(\s+(on|ignoring)\s*\([^)]*\))?")
COMPARISON = re.compile(r"(>=|<=|==|!=|>|<)(\s*bool\b)?")


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
    """Failure ratio, p95, stuck runs, upstream, reconnects, exports, drops, rejects, absence."""
    names = {rule["alert"] for rule in alert_rules()}
    assert set(REQUIRED.values()) <= names


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: str(rule["alert"]))
def test_alert_has_for_severity_summary_and_description(rule: dict[str, Any]) -> None:
    """Each alert waits with ``for:``, has a severity and a templated summary and description."""
    assert rule["for"].endswith("m")
    assert rule["labels"]["severity"] in {"warning", "critical"}
    assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}
    if rule["expr"].startswith("absent("):  # no series, so no labels to name or group by
        return
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
                assert set(alert["exp_annotations"]) == {"summary", "description", "runbook_url"}
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


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation out, dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_runbook_url_points_to_a_section_of_the_readme() -> None:
    """Each alert's ``runbook_url`` is ``dashboards/README.md#<anchor>`` of its own section."""
    anchors = {github_anchor(h) for h in HEADING.findall(README.read_text(encoding="utf-8"))}
    assert github_anchor("The bridge's scrape job") == "the-bridges-scrape-job" in anchors
    for rule in alert_rules():
        path, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert (path, anchor) == ("dashboards/README.md", rule["alert"].lower()), rule["alert"]
        assert anchor in anchors, f"{rule['alert']}: no section #{anchor} in {README.name}"


def test_absence_alert_matches_the_bridge_job_by_pattern() -> None:
    """``OtelBridgeAbsent`` watches ``up`` of any job named like the bridge (README: adapt)."""
    (rule,) = [r for r in alert_rules() if r["alert"] == "OtelBridgeAbsent"]
    assert rule["expr"].strip() == 'absent(up{job=~".*otel-bridge.*"} == 1)'
    readme = README.read_text(encoding="utf-8")
    assert "### The bridge's scrape job" in readme and 'up{job=~".*otel-bridge.*"}' in readme


# -- splitting an alert into the signals it thresholds ------------------------------------------


def top_level(expr: str) -> Iterator[int]:
    """Yield the indexes of ``expr`` outside parentheses, brackets, braces and strings."""
    depth, quote = 0, ""
    for i, ch in enumerate(expr):
        if quote:
            quote = "" if ch == quote and expr[i - 1] != "\\" else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0:
            yield i


def signals(expr: str) -> list[str]:
    """Split ``a > x and b >= y unless on (l) c > z`` into the signals ``a``, ``b``, ``c``."""
    clauses, start = [], 0
    positions = list(top_level(expr))
    skip_to = -1
    for i in positions:
        if i < skip_to or (i > 0 and (expr[i - 1].isalnum() or expr[i - 1] == "_")):
            continue
        match = SET_OPERATOR.match(expr, i)
        if match:
            clauses.append(expr[start:i])
            start = skip_to = match.end()
    clauses.append(expr[start:])
    out: list[str] = []
    for clause in map(str.strip, clauses):
        if clause.startswith("absent(") and clause.endswith(")"):  # the series it watches
            out += signals(clause[len("absent(") : -1])
            continue
        cut = [i for i in top_level(clause) if COMPARISON.match(clause, i)]
        out.append((clause[: cut[0]] if cut else clause).strip())
    return out


def test_alert_signals_are_split_at_set_operators_and_comparisons() -> None:
    """The splitter finds each thresholded signal, leaving comparisons inside calls alone."""
    expr = 'sum by (a) (x{l=">"}) > 0\nunless on (a)\nsum by (a) (increase(y[1h])) >= 3'
    assert signals(expr) == ['sum by (a) (x{l=">"})', "sum by (a) (increase(y[1h]))"]
    assert signals("(a / b) > 0.25\nand\nc >= 3") == ["(a / b)", "c"]
    assert signals('absent(up{job=~".*b.*"} == 1)') == ['up{job=~".*b.*"}']
    assert signals("histogram_quantile(0.95, sum by (le) (r)) > 1800") == [
        "histogram_quantile(0.95, sum by (le) (r))"
    ]
