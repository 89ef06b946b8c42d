"""Rendering the Helm chart for the tests: the pinned helm, the ci/ scenarios, the example.

Shared by test_helm_chart.py (lint, schemas, scans, docs) and test_helm_values.py (what
the values become). Uses the pinned helm of .tools/bin (tools/build.sh); locally a missing
helm skips the test, with CI=true it fails it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.process import require_binary

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "helm" / "otel-bridge"
EXAMPLES = REPO / "helm" / "examples"
SCENARIOS = sorted(
    p.name.removesuffix("-values.yaml") for p in (CHART / "ci").glob("*-values.yaml")
)
HELM = REPO / ".tools" / "bin" / "helm"
KUBE_VERSION = "1.37.0"  # the newest kubernetes-validate 1.37 knows; helm's client-go too
NAMESPACE = "lao"

# Values whose chart default differs from the bridge's, and why.
CHART_DEFAULT_DIFFERS = {
    "listen_host": "0.0.0.0",  # a pod is probed and scraped on its own address
    "log_format": "json",  # what log collectors parse
    "control_host": None,  # chosen by mode: 0.0.0.0 standalone, 127.0.0.1 sidecar
    "state_dir": "/var/lib/otel-bridge/state",  # on the state volume (emptyDir or a claim)
    "shutdown_open_runs": None,  # chosen by the volume: keep on a claim, close on an emptyDir
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


def values_of(scenario: str) -> dict[str, Any]:
    """The values a ci/ scenario sets."""
    values: dict[str, Any] = yaml.safe_load(values_file(scenario).read_text()) or {}
    return values


def render_scenarios() -> dict[str, Rendered]:
    """Every ci/*-values.yaml rendered."""
    return {s: parse(s, render("--values", str(values_file(s)))) for s in SCENARIOS}


def build_app_chart(root: Path) -> Path:
    """A copy of helm/examples/app-with-sidecar under root, this chart its built dependency."""
    work = root / "examples" / "app-with-sidecar"
    shutil.copytree(EXAMPLES / "app-with-sidecar", work, ignore=shutil.ignore_patterns("charts"))
    (root / "otel-bridge").symlink_to(CHART)  # its dependency: file://../../otel-bridge
    helm("dependency", "build", str(work))
    return work


def render_app_chart(work: Path, *args: str) -> Rendered:
    """The example app chart (from build_app_chart) rendered, with more helm arguments."""
    text = helm(
        "template", "shop", str(work), "--namespace", "shop", "--kube-version", KUBE_VERSION,
        *args,
    ).stdout  # fmt: skip
    return parse("app-with-sidecar", text)


def chart_fixtures() -> tuple[Any, Any, Any]:
    """The module-scoped fixtures (scenarios, app_chart_dir, app_chart) for one test module.

    A module assigns them to those names: each module then renders the chart once.
    """

    @pytest.fixture(scope="module")
    def scenarios() -> dict[str, Rendered]:
        """Every ci/*-values.yaml rendered."""
        return render_scenarios()

    @pytest.fixture(scope="module")
    def app_chart_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
        """A copy of helm/examples/app-with-sidecar with this chart as its built dependency."""
        return build_app_chart(tmp_path_factory.mktemp("app"))

    @pytest.fixture(scope="module")
    def app_chart(app_chart_dir: Path) -> Rendered:
        """helm/examples/app-with-sidecar rendered with this chart as its dependency."""
        return render_app_chart(app_chart_dir)

    return scenarios, app_chart_dir, app_chart


def bridge_container(rendered: Rendered) -> dict[str, Any]:
    """The otel-bridge container of the one rendered Deployment (a native sidecar or not)."""
    spec = rendered.one("Deployment")["spec"]["template"]["spec"]
    listed = [*spec.get("initContainers", []), *spec["containers"]]
    found: list[dict[str, Any]] = [c for c in listed if c["name"] == "otel-bridge"]
    assert len(found) == 1, f"{rendered.name}: {len(found)} otel-bridge containers"
    return found[0]


def pod_spec_of(rendered: Rendered) -> dict[str, Any]:
    """The pod spec of the one rendered Deployment."""
    spec: dict[str, Any] = rendered.one("Deployment")["spec"]["template"]["spec"]
    return spec


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
