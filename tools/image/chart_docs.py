"""Generates the Helm chart's documentation from the chart itself.

- ``helm/otel-bridge/README.md``: the table of every value (from ``values.schema.json``
  for types and descriptions, ``values.yaml`` for defaults) and the sidecar snippet for
  pods not managed by Helm, each between ``<!-- NAME:start -->`` / ``<!-- NAME:end -->``;
- ``helm/examples/sidecar-pod.yaml``: the example app of ``helm/examples/app-with-sidecar``
  rendered with the chart, a complete Deployment to copy from.

    .venv/bin/python tools/image/chart_docs.py          # rewrite
    .venv/bin/python tools/image/chart_docs.py --check  # exit 1 if anything is stale

Needs ``.tools/bin/helm`` (``tools/build.sh helm``) for the snippet.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "otel-bridge"
EXAMPLE = ROOT / "helm" / "examples" / "app-with-sidecar"
SIDECAR_POD = ROOT / "helm" / "examples" / "sidecar-pod.yaml"
README = CHART / "README.md"
HELM = Path(os.environ.get("HELM", ROOT / ".tools" / "bin" / "helm"))


def value_rows(schema: dict[str, Any], values: Any, prefix: str = "") -> list[str]:
    """One Markdown table row per documented value, in schema order."""
    rows = []
    for name, prop in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        default = values.get(name) if isinstance(values, dict) else None
        if prop.get("type") == "object" and "properties" in prop:
            rows.extend(value_rows(prop, default or {}, f"{path}."))
            continue
        kind = prop.get("type", "")
        kind = " or ".join(kind) if isinstance(kind, list) else kind
        if "enum" in prop:
            kind = " \\| ".join(f"`{json.dumps(v)}`" for v in prop["enum"])
        shown = json.dumps(default, ensure_ascii=False) if name in (values or {}) else ""
        if len(shown) > 60:
            shown = "see values.yaml"
        elif shown:
            shown = f"`{shown}`"
        text = prop.get("description", "").replace("|", "\\|")
        rows.append(f"| `{path}` | {kind} | {shown} | {text} |")
    return rows


def values_table() -> str:
    """The README's table of every value."""
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    head = ["| value | type | default | meaning |", "|---|---|---|---|"]
    return "\n".join(head + value_rows(schema, values))


def render_example() -> list[dict[str, Any]]:
    """The example app chart rendered with the real chart as its dependency."""
    if not HELM.is_file():
        sys.exit(f"chart_docs.py: {HELM} not found (tools/build.sh helm)")
    with tempfile.TemporaryDirectory() as tmp:
        # The example names its dependency as file://../../otel-bridge.
        work = Path(tmp) / "examples" / EXAMPLE.name
        shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns("charts", "*.lock"))
        (Path(tmp) / "otel-bridge").symlink_to(CHART)
        helm = [str(HELM)]
        subprocess.run([*helm, "dependency", "build", str(work)], check=True, capture_output=True)
        out = subprocess.run(
            [*helm, "template", "shop", str(work), "--namespace", "shop"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def sidecar_pod_yaml() -> str:
    """helm/examples/sidecar-pod.yaml: the example's workload objects, for pods outside Helm."""
    objects = [d for d in render_example() if d["kind"] in ("Deployment", "NetworkPolicy")]
    header = (
        "# otel-bridge as a sidecar in a pod that Helm does not manage: copy the init container\n"
        '# named "otel-bridge" (a native sidecar, Kubernetes >= 1.29), the volumes\n'
        '# "otel-bridge-tmp" and "otel-bridge-state" and the terminationGracePeriodSeconds into\n'
        "# your pod; set the image to the one you pushed. Generated from\n"
        "# helm/examples/app-with-sidecar by tools/image/chart_docs.py; do not edit.\n"
    )
    return header + yaml.safe_dump_all(objects, sort_keys=False, width=100)


def sidecar_snippet(pod_yaml: str) -> str:
    """The README's snippet: the grace period, the bridge (a native sidecar), its volumes."""
    deployment = next(d for d in yaml.safe_load_all(pod_yaml) if d["kind"] == "Deployment")
    spec = deployment["spec"]["template"]["spec"]
    part = {
        "terminationGracePeriodSeconds": spec["terminationGracePeriodSeconds"],
        "initContainers": [c for c in spec["initContainers"] if c["name"] == "otel-bridge"],
        "volumes": [v for v in spec["volumes"] if v["name"].startswith("otel-bridge-")],
    }
    return "```yaml\n" + yaml.safe_dump(part, sort_keys=False, width=100) + "```"


def replace_block(text: str, name: str, body: str) -> str:
    """Replace what stands between the markers of block `name`."""
    pattern = re.compile(rf"(<!-- {name}:start -->\n)(?:.*?\n)?(<!-- {name}:end -->)", re.DOTALL)
    if not pattern.search(text):
        sys.exit(f"chart_docs.py: README.md has no <!-- {name}:start/end --> markers")
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or with --check, compare) the generated docs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)
    pod_yaml = sidecar_pod_yaml()
    readme = README.read_text(encoding="utf-8")
    readme = replace_block(readme, "values", values_table())
    readme = replace_block(readme, "sidecar", sidecar_snippet(pod_yaml))
    stale = []
    for path, text in ((README, readme), (SIDECAR_POD, pod_yaml)):
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != text:
            stale.append(path)
            if not args.check:
                path.write_text(text, encoding="utf-8")
    for path in stale:
        verb = "stale" if args.check else "wrote"
        print(f"{verb}: {path.relative_to(ROOT)}")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
