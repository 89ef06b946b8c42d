"""The lock files: every dependency pinned with hashes; the venv, CI and the image use them.

requirements.lock (the image) and requirements-dev.lock (the venv, so CI) are written by
`make lock` from pyproject.toml; these tests say when one of them is stale or unused.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.metadata
import importlib.util
import re
import sys
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements.lock"
DEV_LOCK = REPO / "requirements-dev.lock"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
SHA256 = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class Pin:
    """One locked requirement: name==version, its marker, its hashes, who wants it."""

    name: str
    version: Version
    marker: Marker | None
    hashes: tuple[str, ...]
    via: str


@cache
def read_lock(path: Path) -> dict[str, Pin]:
    """The pins of a hash-pinned requirements file, by canonical name."""
    pins: dict[str, Pin] = {}
    last = ""
    for line in re.sub(r"\\\n\s*", " ", path.read_text()).splitlines():
        text = line.strip()
        if text.startswith("# via ") and last:  # the annotation of the pin above
            pins[last] = dataclasses.replace(pins[last], via=text.removeprefix("# via "))
        if not text or text.startswith("#"):
            continue
        spec, *hashes = text.split("--hash=")
        req = Requirement(spec.strip())
        (exact,) = req.specifier
        assert exact.operator == "==", f"{path.name}: {req} is not an exact pin"
        last = canonicalize_name(req.name)
        assert last not in pins, f"{path.name}: {last} pinned twice"
        hashes = [h.strip() for h in hashes]
        pins[last] = Pin(last, Version(exact.version), req.marker, tuple(hashes), "")
    assert pins, f"{path.name} pins nothing"
    return pins


def declared(*groups: str) -> list[Requirement]:
    """The requirements pyproject declares: `project` (runtime), an extra's, `build-system`."""
    reqs: list[str] = []
    for group in groups:
        if group == "project":
            reqs += PYPROJECT["project"]["dependencies"]
        elif group == "build-system":
            reqs += PYPROJECT["build-system"]["requires"]
        else:
            reqs += PYPROJECT["project"]["optional-dependencies"][group]
    return [Requirement(r) for r in reqs]


def assert_pinned(req: Requirement, lock: Path) -> None:
    """The lock pins the requirement, with hashes, at a version its specifier allows."""
    pin = read_lock(lock).get(canonicalize_name(req.name))
    assert pin is not None, f"{req.name} is not in {lock.name}: run `make lock`"
    assert pin.hashes, f"{lock.name}: {req.name} has no hash"
    assert req.specifier.contains(pin.version, prereleases=True), (
        f"{lock.name} pins {req.name}=={pin.version}, pyproject wants {req}: run `make lock`"
    )


@pytest.mark.parametrize("req", declared("project", "build-system"), ids=str)
@pytest.mark.parametrize("lock", [LOCK, DEV_LOCK], ids=lambda p: p.name)
def test_runtime_and_build_requirements_are_pinned_in_both_locks(
    req: Requirement, lock: Path
) -> None:
    """Every runtime dependency and the build backend are pinned, hashed, as pyproject allows."""
    assert_pinned(req, lock)


@pytest.mark.parametrize("req", declared("dev"), ids=str)
def test_dev_requirements_are_pinned_in_the_dev_lock(req: Requirement) -> None:
    """Every dependency of the dev extra is pinned in requirements-dev.lock, hashed."""
    assert_pinned(req, DEV_LOCK)


@pytest.mark.parametrize("lock", [LOCK, DEV_LOCK], ids=lambda p: p.name)
def test_every_pin_is_exact_and_carries_sha256_hashes(lock: Path) -> None:
    """Each entry is name==version with sha256 hashes only (what --require-hashes checks)."""
    for pin in read_lock(lock).values():
        assert pin.hashes, pin.name
        for digest in pin.hashes:
            assert SHA256.fullmatch(digest), f"{lock.name}: {pin.name} {digest}"


def test_the_image_lock_is_the_dev_lock_without_the_dev_tools() -> None:
    """Both locks agree on every shared pin: the image runs what CI tested."""
    dev = read_lock(DEV_LOCK)
    for name, pin in read_lock(LOCK).items():
        assert name in dev, f"{name} is in requirements.lock only"
        assert (pin.version, pin.marker, set(pin.hashes)) == (
            dev[name].version,
            dev[name].marker,
            set(dev[name].hashes),
        ), name


@pytest.mark.parametrize(
    ("lock", "groups"),
    [(LOCK, ("project",)), (DEV_LOCK, ("project", "dev"))],
    ids=["requirements.lock", "requirements-dev.lock"],
)
def test_the_locks_direct_requirements_are_pyprojects(lock: Path, groups: tuple[str]) -> None:
    """What the lock says pyproject wants is what pyproject declares (no stale entries)."""
    direct = {name for name, pin in read_lock(lock).items() if "(pyproject.toml)" in pin.via}
    assert direct == {canonicalize_name(r.name) for r in declared(*groups)}, "run `make lock`"


def test_the_venv_has_the_dev_locks_versions() -> None:
    """The running venv (CI's: `make venv`) holds exactly the locked version of every pin."""
    stale = {}
    for name, pin in read_lock(DEV_LOCK).items():
        if pin.marker is not None and not pin.marker.evaluate():
            continue
        try:
            installed = Version(importlib.metadata.version(name))
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed != pin.version:
            stale[name] = (str(installed), str(pin.version))
    assert stale == {}, f"installed vs locked; run `make venv`: {stale}"


# ---- who installs from the locks ------------------------------------------------------


def joined_lines(path: Path) -> list[str]:
    """The file's lines with backslash continuations joined."""
    return re.sub(r"\\\n\s*", " ", path.read_text()).splitlines()


def test_the_dockerfile_installs_the_lock_with_hash_checking() -> None:
    """The image's one downloading pip step is requirements.lock with --require-hashes."""
    lines = joined_lines(REPO / "Dockerfile")
    installs = [ln for ln in lines if ln.startswith("RUN ") and "pip install" in ln]
    downloading = [ln for ln in installs if "--no-index" not in ln]
    assert len(downloading) == 1, downloading
    (step,) = downloading
    assert "--require-hashes" in step and "-r requirements.lock" in step
    assert "--only-binary=:all:" in step  # no sdist is built in the image
    assert any(re.match(r"COPY (\S+ )*requirements\.lock ", ln) for ln in lines)
    for line in installs:
        if line is not step:  # the bridge itself: no index, no dependencies, no fetching
            assert "--no-deps" in line and "--no-build-isolation" in line, line
    assert "tomllib" not in "\n".join(lines), "requirements come from the lock, not pyproject"


def make_rule(target: str) -> tuple[list[str], list[str]]:
    """A Makefile rule's prerequisites and recipe lines."""
    lines = (REPO / "Makefile").read_text().splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(f"{target}:"))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return lines[start].split(":", 1)[1].split(), recipe


def test_make_venv_installs_the_dev_lock_then_the_project_alone() -> None:
    """`make venv` (CI's first step) installs the lock hash-checked, then `-e .` with no deps."""
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^DEV_LOCK := requirements-dev\.lock$", makefile, re.MULTILINE)
    assert re.search(r"^LOCK := requirements\.lock$", makefile, re.MULTILINE)
    prerequisites, recipe = make_rule("$(BIN)/otel-bridge")
    assert {"pyproject.toml", "$(DEV_LOCK)"} <= set(prerequisites)  # a new lock reinstalls
    pip = [ln for ln in recipe if "pip install" in ln]
    assert len(pip) == 2, recipe
    assert "--require-hashes -r $(DEV_LOCK)" in pip[0]
    assert all(flag in pip[1] for flag in ("--no-deps", "--no-index", "-e .")), pip[1]
    _, lock_recipe = make_rule("lock")
    assert sum("-o $(DEV_LOCK)" in ln for ln in lock_recipe) == 1
    assert sum("-o $(LOCK)" in ln and "-c $(DEV_LOCK)" in ln for ln in lock_recipe) == 1
    assert "make lock" in (REPO / "README.md").read_text()
    assert "make lock" in DEV_LOCK.read_text() and "make lock" in LOCK.read_text()


def test_ci_runs_make_venv_first() -> None:
    """.ci/run builds the venv with `make venv` before any test: CI tests against the lock."""
    steps = [ln.strip() for ln in (REPO / ".ci" / "run").read_text().splitlines()]
    makes = [ln for ln in steps if ln.startswith("make ")]
    assert makes[0] == "make venv", makes


# ---- declared = imported --------------------------------------------------------------


@cache
def imported_distributions() -> dict[str, set[str]]:
    """The installed distributions whose modules otel_bridge imports, with those modules."""
    owner: dict[Path, str] = {}
    for dist in importlib.metadata.distributions():
        for file in dist.files or []:
            owner[Path(str(dist.locate_file(file))).resolve()] = canonicalize_name(
                dist.metadata["Name"]
            )
    found: dict[str, set[str]] = {}
    for path in (REPO / "otel_bridge").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top == "otel_bridge":
                    continue
                spec = importlib.util.find_spec(module)
                assert spec is not None and spec.origin, f"{path.name} imports {module}"
                dist = owner.get(Path(spec.origin).resolve(), f"<unowned {module}>")
                found.setdefault(dist, set()).add(module)
    return found


def test_imported_protobuf_and_otlp_proto_are_declared() -> None:
    """The protobuf and opentelemetry-proto modules are imported, and both are declared."""
    runtime = {canonicalize_name(r.name) for r in declared("project")}
    imported = imported_distributions()
    for name in ("protobuf", "opentelemetry-proto"):
        assert name in imported and name in runtime, name


def test_every_declared_runtime_dependency_is_used() -> None:
    """Each runtime dependency is imported, or is a meta-package one of whose parts is."""
    imported = set(imported_distributions())
    unused = []
    for req in declared("project"):
        name = canonicalize_name(req.name)
        parts = {
            canonicalize_name(Requirement(r).name)
            for r in importlib.metadata.requires(name) or []
            if "extra ==" not in r
        }
        if name not in imported and not parts & imported:
            unused.append(name)
    assert unused == []
