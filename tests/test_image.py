"""The container image: really built (buildah, vfs, chroot), and run as its user.

No image registry is reachable here, so the build's base is made by
``tools/image/base.sh`` (mmdebstrap + podman import) and the built image is run with
``buildah run --isolation chroot`` (``podman run`` needs an OCI runtime that cannot set
rlimits in this sandbox). Locally a missing tool skips these tests; with CI=true it fails
them. The Dockerfile itself is linted by test_dockerfile.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from image_tools import tool_failure

import otel_bridge
from support.ports import LOOPBACK, free_ports, port_is_open
from support.process import ServerProcess, require_binary

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
IMAGE_TOOLS = REPO / "tools" / "image"
BUILD_TIMEOUT_S = 1800  # cold: ~2.5 min measured (mmdebstrap ~30 s, pip ~60 s, vfs commits)
USER = "10001:10001"

# A run as LAO streams it (from the seed docs' example), secrets and all.
FLOW, RUN = "Customer_Support_Pipeline", "ticket_78453"
RECORDING = [
    {
        "event_type": "flow_started",
        "task_id": "cust-support-001",
        "flow_name": FLOW,
        "run_name": RUN,
        "timestamp": 1756806125.043,
        "message": "Starting customer support workflow",
    },
    {
        "event_type": "task_started",
        "task_id": "b29aa07f-9341-4ac5-9160-4f7e1f594654",
        "task_name": "sentiment_analyzer",
        "flow_name": FLOW,
        "run_name": RUN,
        "timestamp": 1756806127.234,
        "input": {"config": {"agent_id": "sentiment-v2", "api_key": "sk-prod-sentiment-key"}},
    },
    {
        "event_type": "task_completed",
        "task_id": "b29aa07f-9341-4ac5-9160-4f7e1f594654",
        "task_name": "sentiment_analyzer",
        "flow_name": FLOW,
        "run_name": RUN,
        "timestamp": 1756806132.567,
        "execution_time": 5.33,
        "output": {"sentiment": "highly_negative", "confidence": 0.94},
    },
    {
        "event_type": "flow_completed",
        "task_id": "pipeline-complete",
        "task_name": "flow",
        "flow_name": FLOW,
        "run_name": RUN,
        "timestamp": 1756806138.456,
    },
]


# ---- the built image ------------------------------------------------------------------


@dataclass(frozen=True)
class BuiltImage:
    """The image tools/image/build.sh built, and how to reach its storage."""

    name: str
    storage: tuple[str, ...]
    config: dict[str, Any]
    build_seconds: float

    def buildah(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run buildah on the image's storage."""
        return subprocess.run(
            ["buildah", *self.storage, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture(scope="session")
def built_image() -> BuiltImage:
    """Build the image once per session (warm: seconds; cold: a few minutes)."""
    for tool in ("buildah", "podman", "mmdebstrap"):
        require_binary(tool, "bash .ci/install-system.sh installs it")
    if os.geteuid() != 0:
        tool_failure("building the image needs root (mmdebstrap, buildah's vfs storage)")
    start = time.monotonic()
    result = subprocess.run(
        ["bash", str(IMAGE_TOOLS / "build.sh")],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    elapsed = time.monotonic() - start
    assert result.returncode == 0, f"image build failed:\n{result.stderr[-8000:]}"
    out = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    storage = ("--root", out["root"], "--runroot", out["runroot"], "--storage-driver", "vfs")
    inspect = subprocess.run(
        ["buildah", *storage, "inspect", "--type", "image", out["image"]],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    config = json.loads(inspect.stdout)
    return BuiltImage(out["image"], storage, config, elapsed)


@pytest.fixture(scope="session")
def container(built_image: BuiltImage) -> Iterator[str]:
    """A working container of the image, removed afterwards."""
    name = f"otel-bridge-test-{os.getpid()}"
    made = built_image.buildah("from", "--pull-never", "--name", name, built_image.name)
    assert made.returncode == 0, made.stderr
    yield name
    built_image.buildah("rm", name)


def run_argv(
    image: BuiltImage,
    container: str,
    *argv: str,
    env: dict[str, str] | None = None,
    volumes: tuple[str, ...] = (),
) -> list[str]:
    """The buildah command running argv in the container (image user, chroot, host net)."""
    cmd = ["buildah", *image.storage, "run", "--isolation", "chroot", "--network", "host"]
    for key, value in (env or {}).items():
        cmd += ["--env", f"{key}={value}"]
    for volume in volumes:
        cmd += ["--volume", volume]
    return [*cmd, container, "--", *argv]


def entrypoint(image: BuiltImage) -> tuple[list[str], list[str]]:
    """The image's ENTRYPOINT and CMD."""
    cfg = image.config["Docker"]["config"]
    return list(cfg["Entrypoint"]), list(cfg["Cmd"])


@pytest.mark.timeout(BUILD_TIMEOUT_S)
def test_image_config(built_image: BuiltImage) -> None:
    """Entrypoint otel-bridge serve, non-root user, metrics on 0.0.0.0, control on loopback."""
    cfg = built_image.config["Docker"]["config"]
    assert entrypoint(built_image) == (["otel-bridge"], ["serve"])
    assert cfg["User"] == USER
    assert {"9464/tcp", "9465/tcp"} <= set(cfg["ExposedPorts"])
    env = dict(item.split("=", 1) for item in cfg["Env"])
    assert env["OTEL_BRIDGE_LISTEN_HOST"] == "0.0.0.0"
    assert env["OTEL_BRIDGE_CONTROL_PORT"] == "9465"
    assert "OTEL_BRIDGE_CONTROL_HOST" not in env  # the control listener stays on loopback
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert cfg["Healthcheck"]["Test"][0] == "CMD"
    labels = cfg["Labels"]
    assert labels["org.opencontainers.image.version"] == otel_bridge.__version__
    assert labels["org.opencontainers.image.title"] == "otel-bridge"
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.base.name"].startswith("localhost/otel-bridge-base:")
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    if head:
        assert labels["org.opencontainers.image.revision"].startswith(head)
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", labels["org.opencontainers.image.created"]
    )


@pytest.mark.timeout(BUILD_TIMEOUT_S)
def test_image_runs_as_its_user_without_compiler_pip_or_build_secret(
    built_image: BuiltImage, container: str
) -> None:
    """The process is uid 10001; no cc, no pip, no pip cache, no build CA bundle in the image."""
    probe = (
        "import os, shutil, sys; "
        "print(os.getuid(), os.getgid()); "
        "print([t for t in ('cc', 'gcc', 'pip', 'pip3') if shutil.which(t)]); "
        "print(os.path.exists('/opt/otel-bridge/bin/pip'), os.path.exists('/root/.cache'), "
        "os.path.exists('/run/secrets/ca'))"
    )
    result = subprocess.run(
        run_argv(built_image, container, "python3", "-c", probe),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["10001 10001", "[]", "False False False"]
    # The build's CA bundle (the machine's, with its TLS interception CA) is in no layer.
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    if bundle.is_file():
        mounted = built_image.buildah("mount", container)
        assert mounted.returncode == 0, mounted.stderr
        try:
            root = Path(mounted.stdout.strip())
            digest = hashlib.sha256(bundle.read_bytes()).hexdigest()
            size = bundle.stat().st_size
            same = [
                p
                for p in _image_files(root)
                if stat.S_ISREG(p.lstat().st_mode)
                and p.lstat().st_size == size
                and hashlib.sha256(p.read_bytes()).hexdigest() == digest
            ]
            assert same == [], "the build CA bundle was copied into the image"
        finally:
            built_image.buildah("umount", container)


@pytest.mark.timeout(BUILD_TIMEOUT_S)
def test_entrypoint_serves_health_and_metrics(
    built_image: BuiltImage, container: str, tmp_path: Path
) -> None:
    """The image's ENTRYPOINT+CMD, as its user, answers health and /metrics; /v1 elsewhere."""
    port, control_port = free_ports(2)
    entry, cmd = entrypoint(built_image)
    # Loopback for the test (the image's own default is 0.0.0.0).
    env = {
        "OTEL_BRIDGE_LISTEN_HOST": LOOPBACK,
        "OTEL_BRIDGE_PORT": str(port),
        "OTEL_BRIDGE_CONTROL_PORT": str(control_port),
    }
    server = ServerProcess(
        "otel-bridge image",
        run_argv(built_image, container, *entry, *cmd, env=env),
        tmp_path / "serve.log",
    )
    server.start()
    try:

        def get(path: str, on: int = port) -> tuple[int, str] | None:
            with urllib.request.urlopen(f"http://{LOOPBACK}:{on}{path}", timeout=2) as resp:
                return resp.status, resp.read().decode()

        assert server.wait_until(lambda: get("/healthz"), 60, "/healthz")[0] == 200
        assert server.wait_until(lambda: get("/readyz"), 30, "/readyz")[0] == 200
        status, body = server.wait_until(lambda: get("/metrics"), 30, "/metrics")
        assert status == 200
        assert "# TYPE lao_flow_runs_total counter" in body
        runs = server.wait_until(lambda: get("/v1/runs", control_port), 30, "/v1/runs")
        assert runs == (200, '{"runs": []}')
    except BaseException:
        server.dump_log()
        raise
    finally:
        server.stop()
    assert not port_is_open(port), "the bridge outlived its buildah run"


@pytest.mark.timeout(BUILD_TIMEOUT_S)
def test_image_refuses_a_published_control_port_without_a_token(
    built_image: BuiltImage, container: str
) -> None:
    """OTEL_BRIDGE_CONTROL_HOST=0.0.0.0 without a token: exit 2 and one line, no listener."""
    entry, cmd = entrypoint(built_image)
    env = {"OTEL_BRIDGE_CONTROL_HOST": "0.0.0.0", "OTEL_BRIDGE_PORT": "0"}
    result = subprocess.run(
        run_argv(built_image, container, *entry, *cmd, env=env),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    # The bridge's one line comes first; buildah then reports the exit status.
    lines = result.stderr.strip().splitlines()
    assert [line for line in lines if line.startswith("otel-bridge:")] == lines[:1]
    assert "set control_token" in lines[0]


@pytest.mark.timeout(BUILD_TIMEOUT_S)
def test_entrypoint_replays_a_recording_to_a_file_writing_only_state_and_tmp(
    built_image: BuiltImage, container: str, tmp_path: Path
) -> None:
    """`replay` in the image exports the run as OTLP/JSON and writes nothing outside its dirs."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "rec.jsonl").write_text("".join(json.dumps(e) + "\n" for e in RECORDING))
    if os.geteuid() == 0:
        shutil.chown(data, 10001, 10001)
    else:
        data.chmod(0o777)
    mounted = built_image.buildah("mount", container)
    assert mounted.returncode == 0, mounted.stderr
    root = Path(mounted.stdout.strip())
    before = {p: p.lstat().st_mtime_ns for p in _image_files(root)}
    try:
        entry, _ = entrypoint(built_image)
        argv = [*entry, "replay", "/data/rec.jsonl", "--traces-out", "/data/spans.jsonl"]
        result = subprocess.run(
            run_argv(built_image, container, *argv, volumes=(f"{data}:/data",)),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        after = {p: p.lstat().st_mtime_ns for p in _image_files(root)}
    finally:
        built_image.buildah("umount", container)
    changed = sorted(str(p.relative_to(root)) for p, t in after.items() if before.get(p) != t)
    assert changed == [], f"written outside /tmp and /var/lib/otel-bridge: {changed}"

    batches = [
        rs
        for line in (data / "spans.jsonl").read_text().splitlines()
        for rs in json.loads(line)["resourceSpans"]
    ]
    spans = [span for rs in batches for ss in rs["scopeSpans"] for span in ss["spans"]]
    services = {
        attr["value"]["stringValue"]
        for rs in batches
        for attr in rs["resource"]["attributes"]
        if attr["key"] == "service.name"
    }
    assert services == {"lao-workflows"}
    assert sorted(span["name"] for span in spans) == [
        "invoke_agent sentiment_analyzer",
        f"invoke_workflow {FLOW}",
    ]
    trace_id = hashlib.sha256(f"lao-run\0{FLOW}\0{RUN}".encode()).digest()[:16].hex()
    assert {span["traceId"] for span in spans} == {trace_id}
    assert "sk-prod-sentiment-key" not in (data / "spans.jsonl").read_text()


# Mount points and the image's writable directories (emptyDirs in Kubernetes).
NOT_SCANNED = {"tmp", "data", "proc", "sys", "dev", "run"}


def _image_files(root: Path) -> list[Path]:
    """Every file and directory of the container's root, except the writable mounts."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        if rel == Path("."):
            dirnames[:] = [d for d in dirnames if d not in NOT_SCANNED]
        if str(rel) == "var/lib":
            dirnames[:] = [d for d in dirnames if d != "otel-bridge"]
        found += [Path(dirpath) / name for name in filenames]
        found += [Path(dirpath) / name for name in dirnames]
    return found
