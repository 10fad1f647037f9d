# distributed-sum: `make run` starts the local stack, `make test` runs every check CI runs.
# Everything a target needs (virtualenv, Python packages, the Kafka broker jars) is set up on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help venv proto proto-check lint kafka test test-unit test-integration run clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 20

$(INSTALLED): pyproject.toml requirements/dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements/dev.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

venv: $(INSTALLED) ## create .venv and install the pinned dependencies

proto: $(INSTALLED) ## regenerate src/distsum/v1 from proto/
	$(BIN)/python scripts/gen_proto.py

proto-check: $(INSTALLED) ## fail when the generated protobuf code is stale
	$(BIN)/python scripts/gen_proto.py --check

lint: $(INSTALLED) ## ruff (lint + format) and mypy
	$(BIN)/ruff check src tests scripts
	$(BIN)/ruff format --check src tests scripts
	$(BIN)/mypy src tests scripts

kafka: ## fetch and verify the Apache Kafka broker jars (cached outside the repo)
	tools/kafka/fetch-kafka.sh >/dev/null

test-unit: $(INSTALLED) ## the fast unit tests of the core
	$(BIN)/pytest tests/unit

test-integration: $(INSTALLED) kafka ## integration and fault tests against a real broker, gunicorn and gRPC
	$(BIN)/pytest tests/integration

test: proto-check lint test-unit test-integration ## everything CI runs

run: $(INSTALLED) kafka ## run Kafka, the sum service and the ledger in the foreground (Ctrl-C stops)
	$(BIN)/python -m devstack.run

clean: ## remove local state (.run) and caches; keeps .venv and the Kafka jar cache
	rm -rf .run .pytest_cache .mypy_cache .ruff_cache .hypothesis
