# The targets the README and .ci/run both call.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

# The lock files (hashes of every file of every pin; see README "Dependencies and the lock
# file"): requirements.lock for the image, requirements-dev.lock (the same pins plus the dev
# tools) for the venv and CI. Both also pin the build backend (pyproject's
# [build-system] requires), so the project itself installs without fetching anything.
LOCK := requirements.lock
DEV_LOCK := requirements-dev.lock
UV_VERSION := 0.13.9
UV_VENV := .tools/uv
UV := $(UV_VENV)/bin/uv
# Linux, macOS and Windows, CPython >= 3.11 (the image's and CI's 3.11 included).
UV_COMPILE := $(UV) pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--annotation-style line --custom-compile-command 'make lock'
BUILD_REQUIRES := $(PY) -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))'

.PHONY: venv lock lock-upgrade demo test test-fast system tools lint typecheck check bench bench-restart fuzz dashboards image chart-sync chart-docs clean

# The venv installs the locked pins, hash-checked, then the project itself (no dependency
# resolution and no download: tests run against exactly the lock). PyPI only: a machine-wide
# find-links directory is ignored.
$(BIN)/otel-bridge: pyproject.toml $(DEV_LOCK)
	@echo "creating $(VENV) and installing otel-bridge with its dev tools from $(DEV_LOCK) (about a minute, once)"
	$(PY) -m venv $(VENV)
	env -u PIP_FIND_LINKS $(BIN)/pip install -q --require-hashes -r $(DEV_LOCK)
	$(BIN)/pip install -q --no-deps --no-build-isolation --no-index -e .
	touch $@

venv: $(BIN)/otel-bridge

$(UV):
	$(PY) -m venv $(UV_VENV)
	env -u PIP_FIND_LINKS $(UV_VENV)/bin/pip install -q uv==$(UV_VERSION)

## lock: refresh the lock files after a change to pyproject.toml's dependencies (pins kept
## where still allowed); lock-upgrade: move every pin to the newest allowed version
lock: $(UV)
	$(BUILD_REQUIRES) | UV_SYSTEM_CERTS=1 $(UV_COMPILE) $(LOCK_ARGS) pyproject.toml - --extra dev -o $(DEV_LOCK)
	$(BUILD_REQUIRES) | UV_SYSTEM_CERTS=1 $(UV_COMPILE) $(LOCK_ARGS) pyproject.toml - -c $(DEV_LOCK) -o $(LOCK)

lock-upgrade:
	$(MAKE) lock LOCK_ARGS=--upgrade

## demo: embedded LAO simulator + bridge; prints waterfalls, writes demo-traces.jsonl
demo: venv
	$(BIN)/otel-bridge demo

## system: Debian packages (prometheus, podman, buildah, mmdebstrap) and the Go tools
system:
	bash .ci/install-system.sh

## tools: only the pinned Go tools (jaeger, helm, otelcol) into .tools/bin (no root needed)
tools:
	bash tools/build.sh

## test: everything the test suite needs, then the whole suite
test: venv system
	$(BIN)/pytest

## test-fast: the tests that start no server or binary (under a minute; no `make system`)
test-fast: venv
	$(BIN)/pytest -m "not integration"

lint: venv
	$(BIN)/ruff check otel_bridge tests dashboards bench tools
	$(BIN)/ruff format --check otel_bridge tests dashboards bench tools

typecheck: venv
	$(BIN)/mypy

check: lint typecheck test

## dashboards: regenerate dashboards/*.json from dashboards/generate.py
dashboards: venv
	$(BIN)/python dashboards/generate.py

## image: the container image, offline (mmdebstrap base + buildah; needs `make system`)
image:
	bash tools/image/build.sh

## chart-sync: copy dashboards/ and the alert rules into the Helm chart
chart-sync:
	bash tools/image/sync-chart-files.sh

## chart-docs: regenerate the chart README's values table and the sidecar example
chart-docs: venv
	$(BIN)/python tools/image/chart_docs.py

## bench: the side-by-side end-to-end benchmark (bridge vs the stock SDK way), then the
## egress policy and the in-process core path
bench: venv
	$(BIN)/python -m bench.e2e.run
	$(BIN)/python -m bench.redaction
	$(BIN)/python -m bench.throughput

## bench-restart: real bridges on a state dir: resume after SIGKILL, an OTLP outage (~2 min)
bench-restart: venv
	$(BIN)/python -m bench.restart

## fuzz: the long fuzz run of frames -> engine -> outputs (CI runs 150 examples of it)
fuzz: venv
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-20000} $(BIN)/pytest -q -o timeout=0 -p no:cacheprovider tests/test_fuzz_egress.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
