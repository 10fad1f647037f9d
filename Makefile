# distributed-sum: `make run` starts the local stack, `make test` runs every check CI runs.
# Everything a target needs (virtualenv, Python packages, the Kafka broker jars) is set up on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
export PATH := $(CURDIR)/$(BIN):$(PATH)
# A skipped test fails every test target unless its reason is an expected one (tests/skips.py).
export DISTSUM_STRICT_SKIPS := 1

.PHONY: help venv proto proto-check lint kafka images test test-unit test-integration test-chart test-deploy \
	test-promql test-containers run bench soak clean cluster-up cluster-down e2e e2e-up e2e-down loadtest

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 20

$(INSTALLED): pyproject.toml requirements/dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# Hash-checked (scripts/lock.sh): an index cannot substitute a package. The project's own install
	@# builds with the locked setuptools instead of fetching a build backend unchecked.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements/dev.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@# The harness (make run, bench, soak; the tests' stack) is importable here, never part of the package.
	echo "$(CURDIR)/harness" > "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/distsum-harness.pth"
	touch $@

venv: $(INSTALLED) ## create .venv and install the pinned dependencies

proto: $(INSTALLED) ## regenerate src/distsum/v1 from proto/
	$(BIN)/python scripts/gen_proto.py

proto-check: $(INSTALLED) ## fail when the generated protobuf code is stale
	$(BIN)/python scripts/gen_proto.py --check

lint: $(INSTALLED) ## ruff (lint + format), mypy and shellcheck
	$(BIN)/shellcheck -x scripts/*.sh scripts/*/*.sh tools/kafka/*.sh offline/*.sh offline/*/*.sh offline/go/*/*.sh
	$(BIN)/ruff check src harness tests scripts
	$(BIN)/ruff format --check src harness tests scripts
	$(BIN)/mypy src harness tests scripts

kafka: ## fetch and verify the Apache Kafka broker jars (cached outside the repo)
	tools/kafka/fetch-kafka.sh >/dev/null

test-unit: $(INSTALLED) ## the fast unit tests of the core
	$(BIN)/pytest tests/unit

test-integration: $(INSTALLED) kafka ## integration and fault tests against a real broker, gunicorn and gRPC
	$(BIN)/pytest tests/integration

test-chart: $(INSTALLED) ## Helm chart: lint, render every overlay, kubeconform + Strimzi API checks (offline)
	$(BIN)/pytest tests/chart

test-deploy: $(INSTALLED) ## offline checks of k8s/, skaffold.yaml, scripts/cluster and the k6 load test (loadtest/)
	$(BIN)/pytest tests/deploy

test-promql: $(INSTALLED) kafka ## dashboards' and alerts' PromQL against a real Prometheus scraping the real services
	$(BIN)/pytest tests/promql

images: ## build both service images (starts a Docker engine and makes a local base image when needed)
	scripts/docker/build-images.sh

test-containers: $(INSTALLED) kafka ## the images run hardened against a real broker (skipped where Docker can't run)
	@if scripts/docker/engine.sh check; then \
		scripts/docker/build-images.sh && $(BIN)/pytest tests/containers; \
	else \
		echo "test-containers: SKIPPED, no Docker engine can run here (see the reason above)"; \
	fi

test: proto-check lint test-unit test-chart test-deploy test-integration test-promql test-containers ## everything CI runs

run: $(INSTALLED) kafka ## run Kafka, the sum service and the ledger in the foreground (Ctrl-C stops)
	$(BIN)/python -m localstack.run

bench: $(INSTALLED) kafka ## measure the local stack (ghz, CPU per call, ledger rates, lag); not in make test
	$(BIN)/python -m bench.run

soak: $(INSTALLED) kafka ## long run under every fault at once, checked through the contract (~15 min); not in make test
	$(BIN)/python -m soak.run

cluster-up: ## kind cluster "distsum" with Strimzi, monitoring, Loki, Tempo, Alloy and the app (needs internet)
	scripts/cluster/up.sh

cluster-down: ## delete the kind cluster "distsum"
	scripts/cluster/kind.sh down distsum

e2e: $(INSTALLED) ## the chart on a real kind cluster, built offline where no registry answers (tests/e2e)
	@if scripts/docker/engine.sh check; then \
		scripts/e2e/run.sh; \
	else \
		echo "e2e: SKIPPED, no Docker engine can run here (see the reason above)"; \
	fi

e2e-up: ## create (or reuse) the e2e kind cluster "distsum-e2e" and wait until it is ready
	scripts/cluster/kind.sh up distsum-e2e

e2e-down: ## delete the e2e kind cluster "distsum-e2e"
	scripts/cluster/kind.sh down distsum-e2e

loadtest: ## the k6 load test as a Job in the current kubectl context's cluster, then the ledger's total against k6's; fails like k6 or on a wrong total
	scripts/loadtest.sh

clean: ## remove local state (.run) and caches; keeps .venv and the Kafka jar cache
	rm -rf .run .pytest_cache .mypy_cache .ruff_cache .hypothesis
