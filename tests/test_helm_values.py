"""The chart's values as the objects carry them: environment, files, listeners, rules.

The bridge's environment and secrets, the OTLP TLS files, the two listeners, the alert
rules and the dashboards.

Renders the ci/ scenarios and helm/examples/app-with-sidecar with the pinned helm
(helm_support.py); promtool is Debian's. Locally a missing tool skips the test; with
CI=true it fails it.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from helm_support import (
    CHART,
    CHART_DEFAULT_DIFFERS,
    NAMESPACE,
    REPO,
    Rendered,
    bridge_container,
    chart_fixtures,
    helm,
    pod_spec_of,
    render,
    resolve_env,
    values_of,
)

from otel_bridge.otel_env import check_exporter_variables
from otel_bridge.settings import Settings, load_settings
from support.process import require_binary

pytestmark = pytest.mark.integration

PROMTOOL = Path("/usr/bin/promtool")
RULES = REPO / "dashboards" / "alerts" / "otel-bridge-rules.yaml"
# The Secrets the standalone-full scenario names, as the kubelet would read them.
FULL_SECRETS = {
    "otel-bridge-control/token": "t0ken",
    "lao-credentials/api-key": "k3y",
    "lao-credentials/headers": "Authorization=Bearer abc",
    "collector-credentials/headers": "x-team=blue",
}
# What the default scenario (standalone with its required token) gives the bridge.
STANDALONE_DIFFERS = {
    **CHART_DEFAULT_DIFFERS,
    "control_host": "0.0.0.0",  # the Service reaches the control listener...
    "control_token": "t0ken",  # ...so a token is required
}


# Fixtures: the ci/ scenarios and the example app chart, rendered once for this module.
scenarios, app_chart_dir, app_chart = chart_fixtures()

# ---- the bridge's environment and secrets -----------------------------------------------


def test_rendered_environment_is_what_the_bridge_reads(scenarios: dict[str, Rendered]) -> None:
    """The full scenario's env, as the kubelet expands it, loads into the intended Settings."""
    env = resolve_env(bridge_container(scenarios["standalone-full"]), FULL_SECRETS)
    settings = load_settings(environ=env)
    assert settings.control_token == "t0ken"
    assert settings.upstream_api_key == "k3y"
    assert settings.upstream_headers == {"X-Tenant": "acme", "Authorization": "Bearer abc"}
    assert settings.upstream_url == "wss://lao-socket.internal.example.com"
    assert settings.flow_allow == ["^Customer_.*", "^Financial_.*"]
    assert settings.export_queue_size == 1_000_000
    assert settings.inactivity_timeout_s == 900.5
    assert settings.capture.value == "none"
    assert settings.otlp == "on" and settings.log_level == "DEBUG"
    assert env["OTEL_EXPORTER_OTLP_HEADERS"] == "X-Scope-OrgID=lao,x-team=blue"
    assert env["OTEL_RESOURCE_ATTRIBUTES"] == (
        "k8s.pod.name=<metadata.name>,k8s.namespace.name=<metadata.namespace>,"
        "k8s.node.name=<spec.nodeName>,k8s.pod.uid=<metadata.uid>,"
        "deployment.environment.name=prod"
    )
    assert env["OTEL_SERVICE_NAME"] == "lao-workflows-prod"
    # The defaults load too, and are the bridge's own (but for the listed exceptions).
    token = {"otel-bridge-control/token": "t0ken"}
    default = load_settings(environ=resolve_env(bridge_container(scenarios["default"]), token))
    differs = {
        name: getattr(default, name)
        for name in Settings.model_fields
        if getattr(default, name) != Settings().model_dump()[name]
    }
    assert differs == STANDALONE_DIFFERS


def test_secrets_come_only_from_existing_secrets(scenarios: dict[str, Rendered]) -> None:
    """No Secret object is rendered and secret settings are secretKeyRefs, never values."""
    for rendered in scenarios.values():
        assert rendered.of_kind("Secret") == []
    env = bridge_container(scenarios["standalone-full"])["env"]
    for name in ("OTEL_BRIDGE_CONTROL_TOKEN", "OTEL_BRIDGE_UPSTREAM_API_KEY"):
        (item,) = [e for e in env if e["name"] == name]
        assert set(item) == {"name", "valueFrom"}
        assert "secretKeyRef" in item["valueFrom"]
    names = {e["name"] for e in bridge_container(scenarios["default"])["env"]}
    assert "OTEL_BRIDGE_CONTROL_TOKEN" in names  # standalone requires it
    assert "OTEL_BRIDGE_UPSTREAM_API_KEY" not in names


# ---- the monitoring objects ------------------------------------------------------------


def source_groups() -> list[dict[str, Any]]:
    """The groups of the repo's dashboards/alerts/otel-bridge-rules.yaml."""
    groups: list[dict[str, Any]] = yaml.safe_load(RULES.read_text())["groups"]
    return groups


def expected_groups(values: dict[str, Any]) -> list[dict[str, Any]]:
    """The repo's groups less disabledRules, additionalRuleLabels under each alert's own."""
    rule_values = values.get("prometheusRule", {})
    disabled = set(rule_values.get("disabledRules", []))
    extra = rule_values.get("additionalRuleLabels", {})
    groups = []
    for group in copy.deepcopy(source_groups()):
        group["rules"] = [
            r for r in group["rules"] if r.get("alert", r.get("record")) not in disabled
        ]
        for rule in group["rules"]:
            if "alert" in rule and extra:
                rule["labels"] = {**extra, **rule.get("labels", {})}
        if group["rules"]:
            groups.append(group)
    return groups


def alerts_of(groups: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The alerting rules of some groups, by name."""
    return {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}


@pytest.mark.parametrize("scenario", ["sidecar", "standalone-full"])
def test_prometheus_rule_passes_promtool_and_is_the_repo_rule_file(
    scenario: str, scenarios: dict[str, Rendered], tmp_path: Path
) -> None:
    """The PrometheusRule passes `promtool check rules`: the repo's file, as the values edit it."""
    promtool = require_binary(PROMTOOL, "apt-get install prometheus")
    groups = scenarios[scenario].one("PrometheusRule")["spec"]["groups"]
    rule_file = tmp_path / "rules.yaml"
    rule_file.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    result = subprocess.run(
        [str(promtool), "check", "rules", str(rule_file)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert groups == expected_groups(values_of(scenario))
    if scenario == "sidecar":  # no rule value set: the file unchanged
        assert groups == source_groups()
    count = sum(len(g["rules"]) for g in groups)
    assert f"SUCCESS: {count} rules found" in result.stdout


def test_additional_rule_labels_reach_every_alert_but_keep_its_severity(
    scenarios: dict[str, Rendered],
) -> None:
    """AdditionalRuleLabels label every alert; an alert's own severity is not overridden."""
    extra = values_of("standalone-full")["prometheusRule"]["additionalRuleLabels"]
    assert extra["team"] == "platform" and extra["severity"] == "page"
    rendered = alerts_of(scenarios["standalone-full"].one("PrometheusRule")["spec"]["groups"])
    source = alerts_of(source_groups())
    assert rendered
    for name, rule in rendered.items():
        assert rule["labels"]["team"] == "platform", name
        assert rule["labels"]["severity"] == source[name]["labels"]["severity"], name
    plain = alerts_of(scenarios["sidecar"].one("PrometheusRule")["spec"]["groups"])
    assert all("team" not in rule["labels"] for rule in plain.values())


def test_disabled_rules_are_left_out(scenarios: dict[str, Rendered]) -> None:
    """DisabledRules drop those alerts only; a group left empty is dropped with them."""
    disabled = values_of("standalone-full")["prometheusRule"]["disabledRules"]
    rendered = alerts_of(scenarios["standalone-full"].one("PrometheusRule")["spec"]["groups"])
    assert set(rendered) == set(alerts_of(source_groups())) - set(disabled)
    (group, *_) = source_groups()
    names = ",".join(r["alert"] for r in group["rules"] if "alert" in r)
    text = render(
        "--set", "mode=sidecar", "--set", "prometheusRule.enabled=true",
        "--set", f"prometheusRule.disabledRules={{{names}}}",
        "--show-only", "templates/prometheusrule.yaml",
    )  # fmt: skip
    groups = yaml.safe_load(text)["spec"]["groups"]
    assert group["name"] not in {g["name"] for g in groups} and groups


def test_an_unknown_disabled_rule_fails_naming_the_rules() -> None:
    """A misspelt name in disabledRules fails the render instead of silently disabling nothing."""
    result = helm(
        "template", "x", str(CHART), "--set", "mode=sidecar",
        "--set", "prometheusRule.enabled=true",
        "--set", "prometheusRule.disabledRules={OtelBridgeAbsnet}", check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "OtelBridgeAbsnet is not a rule" in result.stderr and "OtelBridgeAbsent" in result.stderr


def test_dashboards_namespace_places_the_configmaps(scenarios: dict[str, Rendered]) -> None:
    """dashboards.namespace puts the ConfigMaps there; empty keeps the release's namespace."""
    for scenario, namespace in [("standalone-full", "monitoring"), ("sidecar", NAMESPACE)]:
        maps = scenarios[scenario].of_kind("ConfigMap")
        assert maps and {cm["metadata"]["namespace"] for cm in maps} == {namespace}
        others = [o for o in scenarios[scenario].objects if o["kind"] != "ConfigMap"]
        assert {o["metadata"]["namespace"] for o in others} == {NAMESPACE}


@pytest.mark.parametrize("scenario", ["sidecar", "standalone-full"])
def test_dashboard_configmaps_carry_the_repo_dashboards(
    scenario: str, scenarios: dict[str, Rendered]
) -> None:
    """One ConfigMap per dashboards/*.json, same JSON, labelled for the Grafana sidecar."""
    maps = scenarios[scenario].of_kind("ConfigMap")
    carried = {key: text for cm in maps for key, text in cm["data"].items()}
    sources = {p.name: p for p in (REPO / "dashboards").glob("*.json")}
    assert set(carried) == set(sources)
    for name, path in sources.items():
        assert json.loads(carried[name]) == json.loads(path.read_text())
        assert carried[name].rstrip("\n") == path.read_text().rstrip("\n")
    for cm in maps:
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert cm["metadata"]["annotations"]["grafana_folder"]


# ---- OTLP over TLS ---------------------------------------------------------------------

TLS_DIR = "/etc/otel-bridge/otlp-tls"
TLS_VARIABLES = {
    "OTEL_EXPORTER_OTLP_CERTIFICATE": "ca.crt",
    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": "tls.crt",
    "OTEL_EXPORTER_OTLP_CLIENT_KEY": "tls.key",
}


def test_otlp_tls_secret_is_mounted_read_only_and_named_by_the_exporter_variables(
    scenarios: dict[str, Rendered], tmp_path: Path
) -> None:
    """otlp.tls mounts the Secret's keys read-only; the SDK's variables name those files."""
    tls = values_of("standalone-full")["otlp"]["tls"]
    container = bridge_container(scenarios["standalone-full"])
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == TLS_DIR]
    assert mount["readOnly"] is True
    (volume,) = [v for v in pod_spec_of(scenarios["standalone-full"])["volumes"]
                 if v["name"] == mount["name"]]  # fmt: skip
    assert volume["secret"]["secretName"] == tls["existingSecret"]
    assert volume["secret"]["defaultMode"] == 0o444  # no fsGroup needed to read it
    files = {item["path"]: item["key"] for item in volume["secret"]["items"]}
    assert files == {"ca.crt": tls["caKey"], "tls.crt": tls["certKey"], "tls.key": tls["keyKey"]}
    env = resolve_env(container, FULL_SECRETS)
    for name, file in TLS_VARIABLES.items():
        assert env[name] == f"{TLS_DIR}/{file}", name
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith("https://")
    assert "OTEL_EXPORTER_OTLP_INSECURE" not in env
    # The bridge checks these variables at start: with the files in place it accepts them.
    for file in files:
        (tmp_path / file).write_text("-----BEGIN CERTIFICATE-----\n")
    check_exporter_variables({k: v.replace(TLS_DIR, str(tmp_path)) for k, v in env.items()})
    default = bridge_container(scenarios["default"])
    assert not {e["name"] for e in default["env"]} & set(TLS_VARIABLES)
    assert all(m["mountPath"] != TLS_DIR for m in default["volumeMounts"])


def test_otlp_tls_with_a_ca_only_sets_only_the_certificate() -> None:
    """With no client certificate only the CA is mounted, named by _CERTIFICATE alone."""
    text = render(
        "--set", "secrets.controlToken.existingSecret=t", "--set",
        "otlp.endpoint=https://collector:4318", "--set", "otlp.protocol=http/protobuf",
        "--set", "otlp.tls.existingSecret=collector-ca", "--set", "otlp.tls.certKey=",
        "--set", "otlp.tls.keyKey=", "--show-only", "templates/deployment.yaml",
    )  # fmt: skip
    rendered = Rendered("ca-only", text, [yaml.safe_load(text)])
    env = {e["name"]: e.get("value") for e in bridge_container(rendered)["env"]}
    assert env["OTEL_EXPORTER_OTLP_CERTIFICATE"] == f"{TLS_DIR}/ca.crt"
    assert "OTEL_EXPORTER_OTLP_CLIENT_KEY" not in env
    assert "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE" not in env
    (volume,) = [v for v in pod_spec_of(rendered)["volumes"] if "secret" in v]
    assert volume["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}]


@pytest.mark.parametrize(
    ("settings", "culprit"),
    [
        (["otlp.endpoint=http://collector:4317"], "an https:// otlp.endpoint"),
        (["otlp.endpoint=https://collector:4317", "otlp.insecure=true"], "otlp.insecure false"),
        (["otlp.endpoint=https://collector:4317", "otlp.tls.keyKey="], "both certKey and keyKey"),
        (
            ["otlp.endpoint=https://c:4317", "otlp.tls.caKey=", "otlp.tls.certKey=",
             "otlp.tls.keyKey="],
            "are all empty",
        ),
    ],
)  # fmt: skip
def test_otlp_tls_that_would_not_be_used_fails_saying_why(
    settings: list[str], culprit: str
) -> None:
    """TLS files with a plain-text endpoint, half a client pair or no key at all fail the render."""
    sets = ["secrets.controlToken.existingSecret=t", "otlp.tls.existingSecret=otlp-tls", *settings]
    result = helm(
        "template", "x", str(CHART), *[arg for s in sets for arg in ("--set", s)], check=False
    )
    assert result.returncode != 0
    assert culprit in result.stderr


# ---- the doors: two listeners, a token wherever the control port leaves the pod --------


def test_a_control_listener_beyond_the_pod_without_a_token_fails_with_a_how_to(
    app_chart_dir: Path,
) -> None:
    """Standalone without a token Secret, or a sidecar moved off loopback, fails saying how."""
    standalone = helm("template", "x", str(CHART), check=False)  # no values at all
    sidecar = helm(
        "template", "shop", str(app_chart_dir), "--set", "otel-bridge.config.control_host=0.0.0.0",
        check=False,
    )  # fmt: skip
    for result in (standalone, sidecar):
        assert result.returncode != 0
        assert "secrets.controlToken.existingSecret" in result.stderr
        assert "openssl rand -hex 32" in result.stderr
    allowed = ["--set", "otel-bridge.secrets.controlToken.existingSecret=shop-control"]
    opened = helm("template", "shop", str(app_chart_dir), *allowed, "--set",
                  "otel-bridge.config.control_host=0.0.0.0").stdout  # fmt: skip
    assert "bridge-control" in opened


def test_standalone_splits_control_and_metrics_ports(scenarios: dict[str, Rendered]) -> None:
    """Control on 0.0.0.0:9465 behind a token, metrics on 9464; each object uses its port."""
    rendered = scenarios["standalone-full"]
    container = bridge_container(rendered)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"bridge-metrics": 9464, "bridge-control": 9465}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["OTEL_BRIDGE_CONTROL_HOST"] == "0.0.0.0" and env["OTEL_BRIDGE_LISTEN_HOST"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] == "bridge-metrics"
    service = rendered.one("Service")["spec"]["ports"]
    assert {(p["name"], p["port"], p["targetPort"]) for p in service} == {
        ("control", 9465, "bridge-control"),
        ("metrics", 9464, "bridge-metrics"),
    }
    assert [e["port"] for e in rendered.one("ServiceMonitor")["spec"]["endpoints"]] == ["metrics"]
    paths = rendered.one("Ingress")["spec"]["rules"][0]["http"]["paths"]
    assert {p["backend"]["service"]["port"]["name"] for p in paths} == {"control"}
    rules = rendered.one("NetworkPolicy")["spec"]["ingress"]
    by_port = {r["ports"][0]["port"]: r.get("from") for r in rules}
    assert set(by_port) == {"bridge-control", "bridge-metrics"}
    assert by_port["bridge-control"] and by_port["bridge-metrics"] is None


def test_sidecar_keeps_the_control_listener_on_loopback(
    app_chart: Rendered, scenarios: dict[str, Rendered]
) -> None:
    """In a sidecar the control API is on 127.0.0.1 (no token needed) and only metrics is a port."""
    container = bridge_container(app_chart)
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["OTEL_BRIDGE_CONTROL_HOST"] == "127.0.0.1"
    assert "OTEL_BRIDGE_CONTROL_TOKEN" not in env
    assert [p["name"] for p in container["ports"]] == ["bridge-metrics"]
    app = next(c for c in pod_spec_of(app_chart)["containers"] if c["name"] == "app")
    assert {"name": "OTEL_BRIDGE_URL", "value": "http://127.0.0.1:9465"} in app["env"]
    monitor = scenarios["sidecar"].one("PodMonitor")["spec"]["podMetricsEndpoints"]
    assert [e["port"] for e in monitor] == ["bridge-metrics"]
