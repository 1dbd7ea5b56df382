# Taskline: `make run` starts the whole stack, `make test` runs every test.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint format bench clean

$(VENV)/.runtime: requirements.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@

run: $(VENV)/.runtime
	scripts/run.sh

test: $(VENV)/.dev
	scripts/ensure-services.sh
	scripts/ensure-test-tools.sh
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(VENV)/.dev
	scripts/ensure-services.sh
	bench/ensure-tools.sh
	$(PY) -m pip install -q --disable-pip-version-check -r bench/requirements.txt
	$(PY) -m bench.suite $(BENCH_ARGS)
	$(PY) -m bench.leibniz_bench

clean:
	rm -rf var .pytest_cache .ruff_cache
