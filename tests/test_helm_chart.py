"""The Helm chart: linted, rendered for every ci/ scenario, validated, scanned, documented.

Uses the pinned helm of .tools/bin (tools/build.sh), kubernetes-validate and checkov from
.tools/pyvenv (tools/image/pytools.sh) and Debian's promtool. Locally a missing tool skips
the test; with CI=true it fails it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_image import python_tool

import otel_bridge
from otel_bridge.settings import SECRET_FIELDS, Settings, load_settings
from support.process import require_binary

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "helm" / "otel-bridge"
EXAMPLES = REPO / "helm" / "examples"
SCENARIOS = sorted(
    p.name.removesuffix("-values.yaml") for p in (CHART / "ci").glob("*-values.yaml")
)
HELM = REPO / ".tools" / "bin" / "helm"
PROMTOOL = Path("/usr/bin/promtool")
KUBE_VERSION = "1.37.0"  # the newest kubernetes-validate 1.37 knows; helm's client-go too
NAMESPACE = "lao"
MONITORING_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}

# checkov findings the chart accepts on purpose, each with its reason.
CHECKOV_SKIPS = {
    "CKV_K8S_43": "Image by digest: nothing is published yet, so the default is the appVersion "
    "tag; image.digest pins one (the standalone-full scenario sets it and passes).",
    "CKV_K8S_15": "pullPolicy Always: with a release tag IfNotPresent saves a registry round "
    "trip per pod start; checkov accepts IfNotPresent once image.digest is set.",
    "CKV_K8S_35": "Secrets as files: the bridge reads control_token and upstream_api_key "
    "from OTEL_BRIDGE_* variables only; they come from secretKeyRef, never inline.",
}

# Values whose chart default differs from the bridge's, and why.
CHART_DEFAULT_DIFFERS = {
    "listen_host": "0.0.0.0",  # a pod is probed and scraped on its own address
    "log_format": "json",  # what log collectors parse
    "control_host": None,  # chosen by mode: 0.0.0.0 standalone, 127.0.0.1 sidecar
}
# What the default scenario (standalone with its required token) gives the bridge.
STANDALONE_DIFFERS = {
    **CHART_DEFAULT_DIFFERS,
    "control_host": "0.0.0.0",  # the Service reaches the control listener...
    "control_token": "t0ken",  # ...so a token is required
}


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the pinned helm."""
    binary = require_binary(HELM, "bash tools/build.sh helm")
    result = subprocess.run(
        [str(binary), *args], capture_output=True, text=True, timeout=120, check=False
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def values_file(scenario: str) -> Path:
    """The ci/ values file of a scenario."""
    return CHART / "ci" / f"{scenario}-values.yaml"


@dataclass(frozen=True)
class Rendered:
    """One rendered scenario: the manifest text and its objects."""

    name: str
    text: str
    objects: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        """The rendered objects of one kind."""
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str) -> dict[str, Any]:
        """The single rendered object of one kind."""
        found = self.of_kind(kind)
        assert len(found) == 1, f"{self.name}: {len(found)} {kind}"
        return found[0]


def parse(name: str, text: str) -> Rendered:
    """Parse a multi-document manifest."""
    return Rendered(name, text, [doc for doc in yaml.safe_load_all(text) if doc])


def render(*args: str) -> str:
    """Helm template of the chart, with the current Kubernetes version."""
    return helm(
        "template", "otel-bridge", str(CHART), "--namespace", NAMESPACE,
        "--kube-version", KUBE_VERSION, *args,
    ).stdout  # fmt: skip


@pytest.fixture(scope="module")
def scenarios() -> dict[str, Rendered]:
    """Every ci/*-values.yaml rendered."""
    return {s: parse(s, render("--values", str(values_file(s)))) for s in SCENARIOS}


@pytest.fixture(scope="module")
def app_chart_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of helm/examples/app-with-sidecar with this chart as its built dependency."""
    root = tmp_path_factory.mktemp("app")
    work = root / "examples" / "app-with-sidecar"
    shutil.copytree(EXAMPLES / "app-with-sidecar", work, ignore=shutil.ignore_patterns("charts"))
    (root / "otel-bridge").symlink_to(CHART)  # its dependency: file://../../otel-bridge
    helm("dependency", "build", str(work))
    return work


@pytest.fixture(scope="module")
def app_chart(app_chart_dir: Path) -> Rendered:
    """helm/examples/app-with-sidecar rendered with this chart as its dependency."""
    text = helm(
        "template", "shop", str(app_chart_dir), "--namespace", "shop",
        "--kube-version", KUBE_VERSION,
    ).stdout  # fmt: skip
    return parse("app-with-sidecar", text)


@pytest.fixture(scope="module")
def manifests_dir(
    scenarios: dict[str, Rendered], app_chart: Rendered, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Every rendered manifest, plus the plain sidecar example, one file each."""
    out = tmp_path_factory.mktemp("manifests")
    for rendered in [*scenarios.values(), app_chart]:
        (out / f"{rendered.name}.yaml").write_text(rendered.text)
    shutil.copy(EXAMPLES / "sidecar-pod.yaml", out / "sidecar-pod.yaml")
    return out


def pod_specs(rendered: Rendered) -> Iterator[dict[str, Any]]:
    """The pod specs of the rendered workloads."""
    for obj in rendered.of_kind("Deployment"):
        yield obj["spec"]["template"]["spec"]


def bridge_container(rendered: Rendered) -> dict[str, Any]:
    """The otel-bridge container of the one rendered Deployment."""
    spec = rendered.one("Deployment")["spec"]["template"]["spec"]
    return next(c for c in spec["containers"] if c["name"] == "otel-bridge")


# ---- helm lint / template -------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_helm_lint_strict(scenario: str) -> None:
    """`helm lint --strict` passes for each ci/ scenario."""
    result = helm("lint", "--strict", str(CHART), "--values", str(values_file(scenario)))
    assert "0 chart(s) failed" in result.stdout
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout


def test_scenarios_render_the_objects_of_their_mode(scenarios: dict[str, Rendered]) -> None:
    """Standalone renders the workload objects, sidecar only the monitoring ones."""
    kinds = {name: sorted(o["kind"] for o in r.objects) for name, r in scenarios.items()}
    assert kinds["default"] == [
        "Deployment", "NetworkPolicy", "PodDisruptionBudget", "Service", "ServiceAccount",
    ]  # fmt: skip
    assert kinds["sidecar"] == ["ConfigMap", "ConfigMap", "PodMonitor", "PrometheusRule"]
    assert kinds["standalone-full"] == [
        "ConfigMap", "ConfigMap", "Deployment", "Ingress", "NetworkPolicy",
        "PodDisruptionBudget", "PrometheusRule", "Service", "ServiceAccount", "ServiceMonitor",
    ]  # fmt: skip
    for rendered in scenarios.values():
        for obj in rendered.objects:
            assert obj["metadata"]["namespace"] == NAMESPACE
    assert scenarios["standalone-full"].one("Deployment")["spec"]["replicas"] == 3


def test_sidecar_template_adds_the_bridge_to_an_app_pod(app_chart: Rendered) -> None:
    """An app chart including the named templates gets the container and volumes, no workload."""
    assert sorted(o["kind"] for o in app_chart.objects) == [
        "ConfigMap", "ConfigMap", "Deployment", "NetworkPolicy", "PodMonitor", "PrometheusRule",
    ]  # fmt: skip
    spec = app_chart.one("Deployment")["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["app", "otel-bridge"]
    assert {v["name"] for v in spec["volumes"]} == {"otel-bridge-tmp", "otel-bridge-state"}
    env = {e["name"]: e for e in bridge_container(app_chart)["env"]}
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"].endswith(":4317")
    assert env["OTEL_BRIDGE_UPSTREAM_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == (
        "lao-credentials"
    )


def test_sidecar_mode_refuses_a_service_monitor() -> None:
    """A ServiceMonitor needs a Service: in sidecar mode the chart says to use the PodMonitor."""
    sets = ["--set", "mode=sidecar", "--set", "serviceMonitor.enabled=true"]
    result = helm("template", "x", str(CHART), *sets, check=False)
    assert result.returncode != 0
    assert "use podMonitor" in result.stderr


@pytest.mark.parametrize(
    ("setting", "culprit"),
    [
        ("config.conect_timeout_s=3", "'conect_timeout_s' not allowed"),  # misspelled setting
        ("replicas=2", "'replicas' not allowed"),  # replicaCount
        ("serviceMonitor.enable=true", "'enable' not allowed"),  # enabled
        ("secrets.controlToken.value=hunter2", "'value' not allowed"),  # no inline secrets
        ("config.capture=everything", "/config/capture"),  # none, redacted or full
        ("mode=daemonset", "/mode"),
    ],
)
def test_schema_rejects_misspelled_or_bad_values(setting: str, culprit: str) -> None:
    """values.schema.json rejects unknown keys and bad values, naming the culprit."""
    result = helm("template", "x", str(CHART), "--set", setting, check=False)
    assert result.returncode != 0
    assert "schema" in result.stderr
    assert culprit in result.stderr


# ---- Kubernetes schemas and checkov ----------------------------------------------------


@pytest.mark.timeout(900)
def test_manifests_validate_against_kubernetes_schemas(manifests_dir: Path) -> None:
    """kubernetes-validate --strict accepts every rendered object (offline schemas)."""
    validate = python_tool("kubernetes-validate")
    files = sorted(manifests_dir.glob("*.yaml"))
    result = subprocess.run(
        [str(validate), "--strict", "--kubernetes-version", KUBE_VERSION, *map(str, files)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "ERROR" not in output
    # Only the Prometheus Operator kinds have no schema there (promtool checks the rules).
    for warning in re.findall(r"^WARN .*$", output, re.MULTILINE):
        assert "monitoring.coreos.com" in warning, warning
    assert output.count(" passed for resource ") >= 12


@pytest.mark.timeout(900)
def test_checkov_finds_no_failed_checks(manifests_dir: Path, tmp_path: Path) -> None:
    """Checkov finds nothing in the rendered manifests but the skips written above."""
    checkov = python_tool("checkov")
    failed = []
    # One file (one scenario) at a time: checkov's graph checks would otherwise let the
    # NetworkPolicy of one scenario cover the pods of another.
    for manifest in sorted(manifests_dir.glob("*.yaml")):
        result = subprocess.run(
            [
                str(checkov), "--file", str(manifest), "--framework", "kubernetes",
                "--skip-check", ",".join(CHECKOV_SKIPS), "--skip-download", "--output", "json",
                "--quiet",
            ],
            capture_output=True, text=True, timeout=600, check=False,
            env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "HOME": str(tmp_path)},
        )  # fmt: skip
        text = result.stdout.strip()
        assert text.startswith(("[", "{")), result.stdout[-4000:] + result.stderr[-4000:]
        loaded = json.loads(text)
        reports = loaded if isinstance(loaded, list) else [loaded]
        for report in reports:
            assert report["summary"]["parsing_errors"] == 0, manifest.name
            assert report["summary"]["passed"] > 0, manifest.name
            failed += [
                (f["check_id"], f["check_name"], manifest.name, f["resource"])
                for f in report["results"]["failed_checks"]
            ]
    assert failed == []


# ---- what the objects carry ------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["default", "standalone-full", "app-with-sidecar"])
def test_bridge_container_is_hardened_and_probed(
    scenario: str, scenarios: dict[str, Rendered], app_chart: Rendered
) -> None:
    """Non-root, read-only root, no capabilities, seccomp, limits, health and ready probes."""
    rendered = app_chart if scenario == "app-with-sidecar" else scenarios[scenario]
    container = bridge_container(rendered)
    ctx = container["securityContext"]
    assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] == 10001
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"]["drop"] == ["ALL"]
    assert ctx["seccompProfile"]["type"] == "RuntimeDefault"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert set(container["resources"]["limits"]) == {"cpu", "memory"}
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/tmp", "/var/lib/otel-bridge"} <= mounts
    if scenario != "app-with-sidecar":
        spec = rendered.one("Deployment")["spec"]["template"]["spec"]
        assert spec["automountServiceAccountToken"] is False
        assert spec["securityContext"]["runAsNonRoot"] is True


def resolve_env(container: dict[str, Any], secrets: dict[str, str]) -> dict[str, str]:
    """The environment the kubelet would give the container (fieldRefs and secrets faked)."""
    env: dict[str, str] = {}
    for item in container["env"]:
        if "value" in item:
            env[item["name"]] = re.sub(
                r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m[1], m[0]), item["value"]
            )
        elif "fieldRef" in item["valueFrom"]:
            env[item["name"]] = f"<{item['valueFrom']['fieldRef']['fieldPath']}>"
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = secrets[f"{ref['name']}/{ref['key']}"]
    return env


def test_rendered_environment_is_what_the_bridge_reads(scenarios: dict[str, Rendered]) -> None:
    """The full scenario's env, as the kubelet expands it, loads into the intended Settings."""
    secrets = {
        "otel-bridge-control/token": "t0ken",
        "lao-credentials/api-key": "k3y",
        "lao-credentials/headers": "Authorization=Bearer abc",
        "collector-credentials/headers": "x-team=blue",
    }
    env = resolve_env(bridge_container(scenarios["standalone-full"]), secrets)
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


def test_chart_config_covers_every_bridge_setting() -> None:
    """values.yaml and the schema have one config key per non-secret setting, with its default."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    expected = set(Settings.model_fields) - SECRET_FIELDS
    assert set(values["config"]) == expected
    assert set(schema["properties"]["config"]["properties"]) == expected
    defaults = Settings().model_dump(mode="json")
    for name, value in values["config"].items():
        want = CHART_DEFAULT_DIFFERS.get(name, defaults[name])
        assert value == want, name


def test_chart_version_is_the_package_version() -> None:
    """Chart appVersion = otel_bridge.__version__, the package's one version (the image tag)."""
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "otel_bridge.__version__"
    }
    assert chart["appVersion"] == otel_bridge.__version__


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


@pytest.mark.parametrize("scenario", ["sidecar", "standalone-full"])
def test_prometheus_rule_passes_promtool_and_is_the_repo_rule_file(
    scenario: str, scenarios: dict[str, Rendered], tmp_path: Path
) -> None:
    """The PrometheusRule's groups pass `promtool check rules` and equal the repo's file."""
    promtool = require_binary(PROMTOOL, "apt-get install prometheus")
    groups = scenarios[scenario].one("PrometheusRule")["spec"]["groups"]
    rule_file = tmp_path / "rules.yaml"
    rule_file.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    result = subprocess.run(
        [str(promtool), "check", "rules", str(rule_file)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    source = yaml.safe_load((REPO / "dashboards" / "alerts" / "otel-bridge-rules.yaml").read_text())
    assert groups == source["groups"]
    count = sum(len(g["rules"]) for g in groups)
    assert f"SUCCESS: {count} rules found" in result.stdout


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


def test_chart_files_are_copies_of_the_repo_files() -> None:
    """helm/otel-bridge/files/ mirrors dashboards/ (run tools/image/sync-chart-files.sh)."""
    result = subprocess.run(
        ["bash", str(REPO / "tools" / "image" / "sync-chart-files.sh"), "--check"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, (
        f"{result.stdout}{result.stderr}run tools/image/sync-chart-files.sh to update the chart"
    )
    copies = {p.relative_to(CHART / "files") for p in (CHART / "files").rglob("*") if p.is_file()}
    sources = {Path("dashboards") / p.name for p in (REPO / "dashboards").glob("*.json")}
    assert copies == sources | {Path("alerts/otel-bridge-rules.yaml")}


def test_chart_readme_and_sidecar_example_are_current() -> None:
    """The values table and the sidecar snippets are what tools/image/chart_docs.py makes."""
    require_binary(HELM, "bash tools/build.sh helm")
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "image" / "chart_docs.py"), "--check"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr + "run tools/image/chart_docs.py"


def schema_leaves(schema: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """The documented values: schema properties, down to those without sub-properties."""
    for name, prop in schema.get("properties", {}).items():
        if prop.get("type") == "object" and "properties" in prop:
            yield from schema_leaves(prop, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}"


def test_chart_readme_lists_every_value() -> None:
    """Every value of values.yaml has a schema entry and a row in the chart README."""
    readme = (CHART / "README.md").read_text()
    schema = json.loads((CHART / "values.schema.json").read_text())
    documented = set(schema_leaves(schema))
    missing = sorted(leaf for leaf in documented if f"| `{leaf}` |" not in readme)
    assert missing == []

    def paths(node: dict[str, Any], sub: dict[str, Any], prefix: str = "") -> Iterator[str]:
        for key, value in node.items():
            prop = sub["properties"].get(key, {})
            if isinstance(value, dict) and "properties" in prop:
                yield from paths(value, prop, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}"

    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(paths(values, schema)) <= documented


def render_notes(tmp_path: Path, *args: str) -> str:
    """NOTES.txt as `helm install` prints it.

    `helm install --dry-run=client` of the pinned helm still asks a cluster for its version,
    so the notes are rendered by `helm template` from a copy of the chart in which they are
    wrapped into a ConfigMap.
    """
    chart = tmp_path / "otel-bridge"
    shutil.copytree(CHART, chart)
    notes = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "zz-notes.yaml").write_text(
        '{{- define "test.notes" }}' + notes + "{{ end }}\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\n"
        'data:\n  notes: {{ include "test.notes" . | toJson }}\n'
    )
    out = helm(
        "template", "otel-bridge", str(chart), "--namespace", NAMESPACE,
        "--show-only", "templates/zz-notes.yaml", *args,
    ).stdout  # fmt: skip
    return str(yaml.safe_load(out)["data"]["notes"])


def test_notes_say_what_to_do_next(tmp_path: Path) -> None:
    """NOTES.txt says how to check the bridge and register runs, on which port, with what."""
    notes = render_notes(tmp_path / "default", "--values", str(values_file("default")))
    assert "rollout status deployment/otel-bridge" in notes
    assert "curl -s localhost:9464/readyz" in notes
    assert "POST http://otel-bridge.lao.svc:9465/v1/runs" in notes.replace("-XPOST ", "POST ")
    assert "Authorization: Bearer" in notes and "bearer.<token>" in notes
    assert "NOT exported: set otlp.endpoint" in notes
    full = render_notes(tmp_path / "full", "--values", str(values_file("standalone-full")))
    assert "WARNING" not in full
    assert "Authorization: Bearer" in full
    assert "3 replicas" in full
    sidecar = render_notes(tmp_path / "sidecar", "--values", str(values_file("sidecar")))
    assert 'include "otel-bridge.sidecar.container"' in sidecar
    assert "http://127.0.0.1:9465/v1/runs" in sidecar
    assert "only the pod's own containers reach it" in sidecar


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


def pod_spec_of(rendered: Rendered) -> dict[str, Any]:
    """The pod spec of the one rendered Deployment."""
    spec: dict[str, Any] = rendered.one("Deployment")["spec"]["template"]["spec"]
    return spec
