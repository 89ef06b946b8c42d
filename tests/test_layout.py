"""The code's layout holds: a pure core, small modules, one exception root, no leaks."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import otel_bridge
from otel_bridge.errors import BridgeError

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "otel_bridge"
CORE = PACKAGE / "core"
MAX_MODULE_LINES = 400
# What core/ may import besides itself: the standard library's pure parts, pydantic.
CORE_ALLOWED = frozenset(
    {
        "__future__",
        "collections",
        "dataclasses",
        "datetime",
        "enum",
        "hashlib",
        "json",
        "math",
        "re",
        "typing",
        "pydantic",
        "re2",
        "urllib",
        "orjson",
        "msgspec",
        "heapq",
        "bisect",
        "functools",
    }
)


def imports_of(path: Path, package: str | None = None) -> set[str]:
    """Every module a source file imports (absolute names; relative ones resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    if package is None:
        package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                found.add(f"{base}.{node.module}" if node.module else base)
            elif node.module:
                found.add(node.module)
    return found


def sources(folder: Path) -> list[Path]:
    """The Python files below a folder."""
    return sorted(folder.rglob("*.py"))


@pytest.mark.parametrize("path", sources(CORE), ids=lambda p: p.name)
def test_core_imports_nothing_outside_core(path: Path) -> None:
    """core/ imports only core/, pydantic and pure standard modules (no I/O, clocks, SDK)."""
    for name in imports_of(path):
        if name.startswith("otel_bridge."):
            assert name.startswith("otel_bridge.core"), f"{path.name} imports {name}"
        else:
            assert name.split(".")[0] in CORE_ALLOWED, f"{path.name} imports {name}"


def test_the_import_walk_sees_a_forbidden_import(tmp_path: Path) -> None:
    """The walker finds plain, dotted and relative imports (so the rule above can fail)."""
    module = tmp_path / "probe.py"
    lines = ["import time", "from os import path", "from ..sinks import router", "import x.y"]
    module.write_text("\n".join(lines) + "\n", encoding="utf-8")
    found = imports_of(module, "otel_bridge.core")
    assert {"time", "os", "otel_bridge.sinks", "x.y"} <= found


def test_nothing_outside_core_touches_the_tracker() -> None:
    """Outside core/, only the engine is used: no import of the tracker or its run state."""
    private = {f"otel_bridge.core.{name}" for name in ("tracker", "run_state", "snapshot")}
    for path in sources(PACKAGE):
        if CORE in path.parents:
            continue
        touched = imports_of(path) & private
        assert not touched, f"{path.relative_to(ROOT)} imports {sorted(touched)}"


@pytest.mark.parametrize(
    "path",
    sources(PACKAGE) + sources(ROOT / "dashboards") + sources(ROOT / "bench"),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_no_module_over_400_lines(path: Path) -> None:
    """Modules stay small enough to read in one sitting."""
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)} has {lines} lines"


def test_every_exception_descends_from_the_one_root() -> None:
    """Every exception class the package defines is a BridgeError, and errors.py draws them."""
    tree = (PACKAGE / "errors.py").read_text(encoding="utf-8")
    for info in pkgutil.walk_packages(otel_bridge.__path__, "otel_bridge."):
        if info.name.endswith("__main__"):  # importing it runs the command line
            continue
        module = importlib.import_module(info.name)
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__ or not issubclass(cls, BaseException):
                continue
            assert issubclass(cls, BridgeError), f"{info.name}.{name} is not a BridgeError"
            assert name in tree, f"{name} is missing from the tree in errors.py"


def test_readme_layout_section_names_every_module() -> None:
    """The README's layout section names every module of core/, sources/, sinks/ and store/."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## How the code is laid out", 1)[1].split("\n## ", 1)[0]
    for folder in ("core", "sources", "sinks", "store"):
        for path in sources(PACKAGE / folder):
            if path.name != "__init__.py":
                assert path.name in section, f"{folder}/{path.name} missing from the README"
