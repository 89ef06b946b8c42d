"""The chart's values as the objects carry them: environment, files, listeners, rules.

The bridge's environment and secrets, the OTLP TLS files, the two listeners, the sidecar's
two forms (native or plain), the state volume and the shutdown deadlines, the alert rules
and the dashboards.

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
    build_app_chart,
    chart_fixtures,
    helm,
    parse,
    pod_spec_of,
    render,
    render_app_chart,
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
    "shutdown_open_runs": "close",  # an emptyDir goes with the pod
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


# ---- the sidecar's two forms, startup and shutdown ---------------------------------------

# The pod of a chart written for one form of the sidecar: BRIDGE is where it puts the bridge.
ONE_FORM_POD = """{{- $bridge := index .Subcharts "otel-bridge" }}
apiVersion: v1
kind: Pod
metadata:
  name: written-for-one-form
spec:
  containers:
    - name: app
      image: app:1
BRIDGE
  volumes:
    {{- include "otel-bridge.sidecar.volumes" $bridge | nindent 4 }}
"""
PLAIN_BRIDGE = '    {{- include "otel-bridge.sidecar.container" $bridge | nindent 4 }}'
NATIVE_BRIDGE = (
    '  initContainers:\n    {{- include "otel-bridge.sidecar.initContainer" $bridge | nindent 4 }}'
)


def failure(*args: str) -> str:
    """The error of a `helm template` that must fail."""
    result = helm("template", *args, check=False)
    assert result.returncode != 0, result.stdout[-2000:]
    return result.stderr


def standalone_failure(*settings: str) -> str:
    """The error of rendering standalone mode (with its token Secret) with these --set values."""
    sets = ["secrets.controlToken.existingSecret=t", *settings]
    return failure("x", str(CHART), *[arg for s in sets for arg in ("--set", s)])


def test_native_sidecar_is_an_init_container_ready_before_the_app(app_chart: Rendered) -> None:
    """By default the bridge is an init container with restartPolicy Always and a startup probe."""
    spec = pod_spec_of(app_chart)
    (bridge,) = spec["initContainers"]
    assert bridge["name"] == "otel-bridge" and bridge["restartPolicy"] == "Always"
    assert bridge["startupProbe"] == {
        "httpGet": {"path": "/readyz", "port": "bridge-metrics"},
        "periodSeconds": 1,
        "timeoutSeconds": 1,
        "failureThreshold": 60,
    }
    assert [c["name"] for c in spec["containers"]] == ["app"]
    # The app's pod covers the app's shutdown, then the bridge's drain deadline and margin.
    env = {e["name"]: e.get("value") for e in bridge["env"]}
    assert env["OTEL_BRIDGE_SHUTDOWN_TIMEOUT_S"] == "20"
    assert spec["terminationGracePeriodSeconds"] == 40


def test_plain_sidecar_is_an_ordinary_container_when_native_is_off(app_chart_dir: Path) -> None:
    """sidecar.native=false puts the bridge among the app's containers, without restartPolicy."""
    rendered = render_app_chart(app_chart_dir, "--set", "otel-bridge.sidecar.native=false")
    spec = pod_spec_of(rendered)
    assert "initContainers" not in spec
    assert [c["name"] for c in spec["containers"]] == ["app", "otel-bridge"]
    bridge = bridge_container(rendered)
    assert "restartPolicy" not in bridge
    assert bridge["startupProbe"]["httpGet"]["path"] == "/readyz"
    assert {v["name"] for v in spec["volumes"]} == {"otel-bridge-tmp", "otel-bridge-state"}


def test_each_sidecar_template_refuses_the_other_form(tmp_path: Path) -> None:
    """A chart written for one form fails with the other setting, saying what to change."""
    work = build_app_chart(tmp_path)
    pod = work / "templates" / "deployment.yaml"
    pod.write_text(ONE_FORM_POD.replace("BRIDGE", PLAIN_BRIDGE))  # as before the native one
    error = failure("shop", str(work))
    assert '"otel-bridge.sidecar.initContainer"' in error and "sidecar.native false" in error
    plain = render_app_chart(work, "--set", "otel-bridge.sidecar.native=false")
    assert [c["name"] for c in plain.one("Pod")["spec"]["containers"]] == ["app", "otel-bridge"]
    pod.write_text(ONE_FORM_POD.replace("BRIDGE", NATIVE_BRIDGE))
    error = failure("shop", str(work), "--set", "otel-bridge.sidecar.native=false")
    assert 'include "otel-bridge.sidecar.container" in the pod\'s containers' in error
    native = render_app_chart(work)
    assert native.one("Pod")["spec"]["initContainers"][0]["restartPolicy"] == "Always"


def test_native_sidecar_needs_kubernetes_1_29(app_chart_dir: Path) -> None:
    """Before 1.29 the native sidecar fails the render (naming the fix); the plain form renders."""
    old = ["shop", str(app_chart_dir), "--kube-version", "1.28.9"]
    error = failure(*old)
    assert "needs Kubernetes 1.29 or later, and this is v1.28.9" in error
    assert "set sidecar.native false" in error
    helm("template", *old, "--set", "otel-bridge.sidecar.native=false")
    helm("template", "shop", str(app_chart_dir), "--kube-version", "1.29.0")


@pytest.mark.parametrize(
    ("settings", "least"),
    [
        (["terminationGracePeriodSeconds=24"], 25),  # 20 s of drain + 5 s of margin
        (["config.shutdown_timeout_s=40"], 45),  # a longer drain, the default 30 s grace
    ],
)
def test_grace_period_must_cover_the_drain_deadline(
    settings: list[str], least: int, app_chart_dir: Path
) -> None:
    """A grace period under shutdown_timeout_s + 5 s fails in both modes, naming the least one."""
    standalone = standalone_failure(*settings)
    sidecar = failure(
        "shop",
        str(app_chart_dir),
        *[arg for s in settings for arg in ("--set", f"otel-bridge.{s}")],
    )
    for error in (standalone, sidecar):
        assert "must exceed config.shutdown_timeout_s" in error
        assert f"Set terminationGracePeriodSeconds to {least} or more" in error
    enough = [*settings, f"terminationGracePeriodSeconds={least}"]
    render("--set", "secrets.controlToken.existingSecret=t",
           *[arg for s in enough for arg in ("--set", s)])  # fmt: skip


def test_grace_period_check_takes_fractional_deadlines() -> None:
    """shutdown_timeout_s 27.5 needs 33 s (rounded up); 32 fails, 33 renders."""
    base = ["x", str(CHART), "--set", "secrets.controlToken.existingSecret=t",
            "--set-json", "config.shutdown_timeout_s=27.5"]  # fmt: skip
    assert "to 33 or more" in failure(*base, "--set", "terminationGracePeriodSeconds=32")
    helm("template", *base, "--set", "terminationGracePeriodSeconds=33")


# ---- the state volume ------------------------------------------------------------------

STATE_MOUNT = "/var/lib/otel-bridge"


def state_volume(rendered: Rendered) -> dict[str, Any]:
    """The otel-bridge-state volume of the one rendered pod template, and its mount checked."""
    mounts = {m["name"]: m["mountPath"] for m in bridge_container(rendered)["volumeMounts"]}
    assert mounts["otel-bridge-state"] == STATE_MOUNT
    volumes = pod_spec_of(rendered)["volumes"]
    found: list[dict[str, Any]] = [v for v in volumes if v["name"] == "otel-bridge-state"]
    assert len(found) == 1, rendered.name
    return found[0]


@pytest.mark.parametrize("scenario", ["default", "app-with-sidecar"])
def test_state_dir_is_on_an_emptydir_by_default(
    scenario: str, scenarios: dict[str, Rendered], app_chart: Rendered
) -> None:
    """OTEL_BRIDGE_STATE_DIR is set under the state volume, an emptyDir with a size limit."""
    rendered = app_chart if scenario == "app-with-sidecar" else scenarios[scenario]
    env = {e["name"]: e.get("value") for e in bridge_container(rendered)["env"]}
    assert env["OTEL_BRIDGE_STATE_DIR"] == f"{STATE_MOUNT}/state"
    assert env["OTEL_BRIDGE_STATE_MAX_BYTES"] == str(256 * 1024 * 1024)
    assert env["OTEL_BRIDGE_STATE_FLUSH_INTERVAL_S"] == "0.2"
    assert state_volume(rendered) == {
        "name": "otel-bridge-state",
        "emptyDir": {"sizeLimit": "512Mi"},
    }
    assert rendered.of_kind("PersistentVolumeClaim") == []
    if scenario == "default":
        assert "strategy" not in rendered.one("Deployment")["spec"]


def test_state_size_limit_can_be_left_out() -> None:
    """A null stateSizeLimit leaves the emptyDir unlimited (and the budget check out)."""
    text = render(
        "--set", "secrets.controlToken.existingSecret=t", "--set", "stateSizeLimit=null",
        "--show-only", "templates/deployment.yaml",
    )  # fmt: skip
    assert state_volume(parse("no-limit", text)) == {"name": "otel-bridge-state", "emptyDir": {}}


def test_persistence_puts_the_state_on_a_claim_for_one_recreated_replica(
    scenarios: dict[str, Rendered],
) -> None:
    """persistence.enabled: a PVC as the state volume, one replica, the Recreate strategy."""
    rendered = scenarios["standalone-persistence"]
    claim = rendered.one("PersistentVolumeClaim")
    assert claim["metadata"]["name"] == "otel-bridge-state"
    assert claim["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": "standard",
        "resources": {"requests": {"storage": "2Gi"}},
    }
    assert state_volume(rendered)["persistentVolumeClaim"] == {"claimName": "otel-bridge-state"}
    deployment = rendered.one("Deployment")["spec"]
    assert deployment["replicas"] == 1 and deployment["strategy"] == {"type": "Recreate"}
    assert deployment["template"]["spec"]["terminationGracePeriodSeconds"] == 50
    env = {e["name"]: e.get("value") for e in bridge_container(rendered)["env"]}
    assert env["OTEL_BRIDGE_SHUTDOWN_TIMEOUT_S"] == "40"
    assert env["OTEL_BRIDGE_STATE_MAX_BYTES"] == str(1024**3)


def test_open_runs_are_kept_at_shutdown_only_where_the_state_outlives_the_pod(
    scenarios: dict[str, Rendered],
) -> None:
    """SHUTDOWN_OPEN_RUNS: close on an emptyDir, keep on a claim; a set value wins."""

    def open_runs(rendered: Rendered) -> str | None:
        env = {e["name"]: e.get("value") for e in bridge_container(rendered)["env"]}
        return env.get("OTEL_BRIDGE_SHUTDOWN_OPEN_RUNS")

    assert open_runs(scenarios["default"]) == "close"
    assert open_runs(scenarios["standalone-persistence"]) == "keep"
    chosen = parse("keep", render(
        "--set", "secrets.controlToken.existingSecret=t",
        "--set", "config.shutdown_open_runs=keep", "--show-only", "templates/deployment.yaml",
    ))  # fmt: skip
    assert open_runs(chosen) == "keep"


def test_persistence_with_an_existing_claim_creates_none() -> None:
    """persistence.existingClaim mounts that claim and no claim is rendered."""
    rendered = parse("existing", render(
        "--set", "secrets.controlToken.existingSecret=t", "--set", "persistence.enabled=true",
        "--set", "persistence.existingClaim=bridge-state",
    ))  # fmt: skip
    assert rendered.of_kind("PersistentVolumeClaim") == []
    assert state_volume(rendered)["persistentVolumeClaim"] == {"claimName": "bridge-state"}


PERSISTENT = "persistence.enabled=true"


@pytest.mark.parametrize(
    ("settings", "culprit"),
    [
        # Several bridges on one claim, a rolling update onto it, a claim for every app pod.
        ([PERSISTENT, "replicaCount=2"], "use replicaCount 1"),
        ([PERSISTENT, "strategy.type=RollingUpdate"], "needs strategy.type Recreate"),
        ([PERSISTENT, "mode=sidecar"], "persistence.enabled is for standalone mode"),
        # A volume under 1.25 x the disk budget: evicted (emptyDir) or full (claim).
        ([PERSISTENT, "persistence.size=300Mi"], "persistence.size (300Mi) must be at least"),
        (["stateSizeLimit=300Mi"], "stateSizeLimit (300Mi) must be at least 1.25 times"),
        (["config.state_max_bytes=536870912"], "stateSizeLimit (512Mi) must be at least 1.25"),
        # A state dir on the read-only root filesystem or the small /tmp.
        (["config.state_dir=/data"], 'config.state_dir "/data" is not on a writable volume'),
        (["config.state_dir=/tmp/state"], "use a directory under /var/lib/otel-bridge"),
    ],
)
def test_state_that_would_fail_at_run_time_fails_the_render(
    settings: list[str], culprit: str
) -> None:
    """A shared or small claim, a small emptyDir or a state dir on no writable volume fails."""
    assert culprit in standalone_failure(*settings)


def test_state_dir_elsewhere_needs_a_writable_mount_and_null_turns_it_off() -> None:
    """A state dir on an extra writable mount renders; null leaves OTEL_BRIDGE_STATE_DIR unset."""
    token = ["--set", "secrets.controlToken.existingSecret=t"]
    show = ["--show-only", "templates/deployment.yaml"]
    mounted = render(
        *token, *show, "--set", "config.state_dir=/data/bridge",
        "--set-json", 'extraVolumes=[{"name":"data","persistentVolumeClaim":{"claimName":"d"}}]',
        "--set-json", 'extraVolumeMounts=[{"name":"data","mountPath":"/data"}]',
    )  # fmt: skip
    container = bridge_container(parse("mounted", mounted))
    assert {"name": "OTEL_BRIDGE_STATE_DIR", "value": "/data/bridge"} in container["env"]
    read_only = 'extraVolumeMounts=[{"name":"data","mountPath":"/data","readOnly":true}]'
    assert "is not on a writable volume" in failure(
        "x", str(CHART), *token, "--set", "config.state_dir=/data/bridge",
        "--set-json", read_only,
    )  # fmt: skip
    off = render(*token, *show, "--set", "config.state_dir=null")
    names = {e["name"] for e in bridge_container(parse("off", off))["env"]}
    assert "OTEL_BRIDGE_STATE_DIR" not in names
