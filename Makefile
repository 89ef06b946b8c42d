# The targets the README and .ci/run both call.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: venv demo test test-fast system tools lint typecheck check bench fuzz dashboards image chart-sync chart-docs clean

$(BIN)/otel-bridge: pyproject.toml
	@echo "creating $(VENV) and installing otel-bridge with its dev tools (about a minute, once)"
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(BIN)/otel-bridge

## demo: embedded LAO simulator + bridge; prints waterfalls, writes demo-traces.jsonl
demo: venv
	$(BIN)/otel-bridge demo

## system: Debian packages (prometheus, podman, buildah, mmdebstrap) and the Go tools
system:
	bash .ci/install-system.sh

## tools: only the pinned Go tools (jaeger, helm) into .tools/bin (no root needed)
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

## fuzz: the long fuzz run of frames -> engine -> outputs (CI runs 150 examples of it)
fuzz: venv
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-20000} $(BIN)/pytest -q -o timeout=0 -p no:cacheprovider tests/test_fuzz_egress.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
