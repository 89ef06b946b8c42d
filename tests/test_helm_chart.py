"""The Helm chart: linted, rendered for every ci/ scenario, validated, scanned, documented.

Uses the pinned helm of .tools/bin (tools/build.sh), kubernetes-validate and checkov from
.tools/pyvenv (tools/image/pytools.sh). Locally a missing tool skips the test; with CI=true
it fails it. What the values become in the objects: test_helm_values.py.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from helm_support import (
    CHART,
    CHART_DEFAULT_DIFFERS,
    EXAMPLES,
    HELM,
    KUBE_VERSION,
    NAMESPACE,
    REPO,
    SCENARIOS,
    Rendered,
    bridge_container,
    chart_fixtures,
    helm,
    values_file,
)
from image_tools import python_tool

import otel_bridge
from otel_bridge.settings import SECRET_FIELDS, Settings
from support.process import require_binary

pytestmark = pytest.mark.integration

# checkov findings the chart accepts on purpose, each with its reason.
CHECKOV_SKIPS = {
    "CKV_K8S_43": "Image by digest: nothing is published yet, so the default is the appVersion "
    "tag; image.digest pins one (the standalone-full scenario sets it and passes).",
    "CKV_K8S_15": "pullPolicy Always: with a release tag IfNotPresent saves a registry round "
    "trip per pod start; checkov accepts IfNotPresent once image.digest is set.",
    "CKV_K8S_35": "Secrets as files: the bridge reads control_token and upstream_api_key "
    "from OTEL_BRIDGE_* variables only; they come from secretKeyRef, never inline.",
}


# Fixtures: the ci/ scenarios and the example app chart, rendered once for this module.
scenarios, app_chart_dir, app_chart = chart_fixtures()


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
    assert kinds["standalone-persistence"] == [
        "Deployment", "NetworkPolicy", "PersistentVolumeClaim", "PodDisruptionBudget",
        "Service", "ServiceAccount",
    ]  # fmt: skip
    assert kinds["standalone-full"] == [
        "ConfigMap", "ConfigMap", "Deployment", "Ingress", "NetworkPolicy",
        "PodDisruptionBudget", "PrometheusRule", "Service", "ServiceAccount", "ServiceMonitor",
    ]  # fmt: skip
    for rendered in scenarios.values():
        for obj in rendered.objects:
            dashboards = obj["kind"] == "ConfigMap" and rendered.name == "standalone-full"
            assert obj["metadata"]["namespace"] == ("monitoring" if dashboards else NAMESPACE)
    assert scenarios["standalone-full"].one("Deployment")["spec"]["replicas"] == 3


def test_sidecar_template_adds_the_bridge_to_an_app_pod(app_chart: Rendered) -> None:
    """An app chart including the named templates gets the native sidecar and volumes only."""
    assert sorted(o["kind"] for o in app_chart.objects) == [
        "ConfigMap", "ConfigMap", "Deployment", "NetworkPolicy", "PodMonitor", "PrometheusRule",
    ]  # fmt: skip
    spec = app_chart.one("Deployment")["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["initContainers"]] == ["otel-bridge"]
    assert [c["name"] for c in spec["containers"]] == ["app"]
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
        ("otlp.tls.secretName=x", "'secretName' not allowed"),  # existingSecret
        ("prometheusRule.disabledRules=OtelBridgeAbsent", "/prometheusRule/disabledRules"),
        ("dashboards.namespace=Monitoring", "/dashboards/namespace"),  # not a namespace name
        ("sidecar.natve=false", "'natve' not allowed"),  # native
        ("persistence.storageClassName=x", "'storageClassName' not allowed"),  # storageClass
        ("persistence.size=lots", "/persistence/size"),  # a quantity
        ("persistence.accessModes={ReadWriteSometimes}", "/persistence/accessModes"),
        ("stateSizeLimit=1GB", "/stateSizeLimit"),  # 1G or 1Gi
        ("config.state_max_bytes=1000", "/config/state_max_bytes"),  # 1 MiB at least
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


# ---- the workload, the chart's metadata and docs -------------------------------------


@pytest.mark.parametrize(
    "scenario", ["default", "standalone-full", "standalone-persistence", "app-with-sidecar"]
)
def test_bridge_container_is_hardened_and_probed(
    scenario: str, scenarios: dict[str, Rendered], app_chart: Rendered
) -> None:
    """Non-root, read-only root, no capabilities, seccomp, limits, startup/health/ready probes."""
    rendered = app_chart if scenario == "app-with-sidecar" else scenarios[scenario]
    container = bridge_container(rendered)
    ctx = container["securityContext"]
    assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] == 10001
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"]["drop"] == ["ALL"]
    assert ctx["seccompProfile"]["type"] == "RuntimeDefault"
    assert container["startupProbe"]["httpGet"] == {"path": "/readyz", "port": "bridge-metrics"}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert set(container["resources"]["limits"]) == {"cpu", "memory"}
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/tmp", "/var/lib/otel-bridge"} <= mounts
    if scenario != "app-with-sidecar":
        spec = rendered.one("Deployment")["spec"]["template"]["spec"]
        assert spec["automountServiceAccountToken"] is False
        assert spec["securityContext"]["runAsNonRoot"] is True


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


def test_chart_metadata_has_an_inline_icon_and_no_invented_urls() -> None:
    """Chart.yaml's icon is an inline SVG (nothing hosted); home and sources only when real."""
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    prefix = "data:image/svg+xml;base64,"
    assert chart["icon"].startswith(prefix)
    svg = base64.b64decode(chart["icon"].removeprefix(prefix), validate=True).decode()
    assert svg.startswith("<svg ") and "viewBox" in svg and "<script" not in svg
    for url in [chart.get("home"), *chart.get("sources", [])]:
        if url is not None:  # none yet: the project has no public page or repository
            parts = urlsplit(url)
            assert parts.scheme == "https" and not parts.netloc.endswith("example.com"), url


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
    assert "from the Secret otel-bridge-otlp-client" in full
    assert "Left out: LaoFlowDurationP95High" in full and "in namespace monitoring" in full
    assert "on an emptyDir" in notes and "persistence.enabled=true" in notes
    kept = render_notes(tmp_path / "kept", "--values", str(values_file("standalone-persistence")))
    assert "on the PersistentVolumeClaim otel-bridge-state" in kept
    sidecar = render_notes(tmp_path / "sidecar", "--values", str(values_file("sidecar")))
    assert 'initContainers:\n       {{- include "otel-bridge.sidecar.initContainer"' in sidecar
    assert 'include "otel-bridge.sidecar.terminationGracePeriodSeconds"' in sidecar
    assert "native sidecar" in sidecar and "sidecar.native=false" in sidecar
    assert "http://127.0.0.1:9465/v1/runs" in sidecar
    assert "only the pod's own containers reach it" in sidecar
    assert "persistence.enabled" not in sidecar  # standalone only
    plain = render_notes(
        tmp_path / "plain", "--values", str(values_file("sidecar")), "--set", "sidecar.native=false"
    )
    assert 'containers:\n       {{- include "otel-bridge.sidecar.container"' in plain
    assert "initContainer" not in plain
