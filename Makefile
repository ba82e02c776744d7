# appzen-etl — the two commands: `make demo` runs the nightly job on the embedded default,
# `make test` runs every check CI runs. `make check` is the fast lane while you work: lint, types
# and the tests that need no server (under a minute). All build .venv from uv.lock by themselves.
PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: demo test check lint typecheck install services bench release clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --locked --python $(PYTHON)
	@touch $@

install: $(VENV)/.synced

demo: install
	$(BIN)/python -m flows.demo

services:
	@scripts/ensure-services.sh
	@scripts/ensure-chromium.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

test: install services lint typecheck
	$(BIN)/pytest -n 4 --dist loadfile --no-loadscope-reorder --durations=40  # 4 workers (most tests wait on servers and subprocesses); a file stays on one worker; files in collection order (tests/conftest.py puts the longest first); the 40 longest set-ups, calls and teardowns listed at the end (where the time goes, in every CI run)

check: install lint typecheck
	$(BIN)/pytest --fast -n 2  # on both cores (tests spread one by one); leaves out the tests marked for servers, Prefect, a browser, or slow

bench: install services
	$(BIN)/python -m benchmarks

release: install  # dist/releases/<version>/: the wheel and its pinned requirements, for workers
	UV=$(UV) scripts/release.sh dist/releases

clean:
	rm -rf $(VENV) $(TOOLS) .state .mypy_cache .ruff_cache .pytest_cache
