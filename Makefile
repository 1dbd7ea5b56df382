# Taskline: `make run` starts the whole stack, `make test` runs every test.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# Only the locked versions, every file checked against its hash in the lock.
PIP_INSTALL := $(PY) -m pip install -q --disable-pip-version-check --require-hashes
# `make lock` pins every transitive dependency of requirements*.txt with its files' hashes;
# `make lock LOCK_ARGS=--upgrade` also moves the unpinned transitive ones to their latest.
PIP_COMPILE := CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/pip-compile --quiet \
	--generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links \
	--no-emit-trusted-host $(LOCK_ARGS)

.PHONY: run worker test lint format bench clean secrets lock

# Swagger UI's files for /docs (git-ignored), from the npm registry, checked against
# swagger-ui.lock. Fetched again when the lock moves; while they are missing (no network),
# everything else works, /docs says so, and the next make tries again.
SWAGGER_UI := taskline/api/swagger_ui

$(SWAGGER_UI)/.pinned: swagger-ui.lock scripts/fetch_swagger_ui.py
	python3 scripts/fetch_swagger_ui.py || echo "/docs will say that Swagger UI is missing" >&2

$(VENV)/.runtime: requirements.lock pyproject.toml | $(SWAGGER_UI)/.pinned
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PIP_INSTALL) -r requirements.lock
	# The project itself (the `taskline` command); its dependencies are the lock's.
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

$(VENV)/.dev: requirements-dev.lock $(VENV)/.runtime
	$(PIP_INSTALL) -r requirements-dev.lock
	@touch $@

# The RabbitMQ and Redis that the tests and the benchmarks share with other programs (guest,
# no password), whatever .env says; `make run` has its own user and Redis (.env's URLs).
SHARED_SERVICES := TASKLINE_BROKER_URL=amqp://guest:guest@127.0.0.1:5672// \
	TASKLINE_REDIS_URL=redis://127.0.0.1:6379/0

# Random secrets in .env: `make secrets` (and every `make run`) adds missing ones and never
# changes a value already there.
secrets:
	python3 scripts/write_secrets.py .env

run: $(VENV)/.runtime secrets
	scripts/run.sh

# One more worker of a line (a hot standby, or the first of a line), here or on another machine
# with the same .env: `make worker` (the main line), `make worker LINE=slow`
# (TASKLINE_WORKER_NAME=name to choose its node name).
worker: $(VENV)/.runtime
	scripts/worker.sh

test: $(VENV)/.dev
	$(SHARED_SERVICES) scripts/ensure-services.sh
	scripts/ensure-test-tools.sh
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m mypy
	$(PY) -m pytest

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m mypy

format: $(VENV)/.dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The runtime lock first; the development lock takes its versions as they are.
lock: $(VENV)/.dev
	$(PIP_COMPILE) -o requirements.lock requirements.txt
	$(PIP_COMPILE) -o requirements-dev.lock requirements-dev.txt requirements.lock

bench: $(VENV)/.dev
	$(SHARED_SERVICES) scripts/ensure-services.sh
	bench/ensure-tools.sh
	$(PY) -m pip install -q --disable-pip-version-check -r bench/requirements.txt
	$(PY) -m bench.suite $(BENCH_ARGS)
	$(PY) -m bench.leibniz_bench

clean:
	rm -rf var .pytest_cache .ruff_cache .mypy_cache
