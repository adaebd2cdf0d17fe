# lbaas — what people run. `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
DATA_DIR ?= .data
PYTEST_ARGS ?=
SERVE_ARGS ?=
DEB_PACKAGES := haproxy keepalived iproute2 nftables rabbitmq-server chromium
# `make test` runs each of these targets, whatever the others did, then prints a summary.
TEST_SUITES := lint test-sqlite test-postgresql test-mariadb test-scale test-fleet test-tempest
TUTORIAL := $(DATA_DIR)/tutorial

.PHONY: help setup run tutorial-env test test-sqlite test-postgresql test-mariadb test-api test-dbs test-e2e test-scale test-fleet test-tempest test-dashboard dashboard-shots lint bench bench-api bench-dataplane bench-health bench-tls bench-udp bench-scale bench-fleet clean

help: ## list the targets
	@grep -E '^[a-zA-Z0-9_.-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	@echo "setup: creating $(VENV) and installing lbaas with its test tools (pip, a few minutes)"
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	set -o pipefail; $(PIP) install --progress-bar off -e '.[test]' \
	    | { grep -E '^(Collecting|Successfully)' || true; }
	touch $@

setup: $(VENV)/.installed ## create .venv, install the project (and, as root, Debian packages)
	@if [ "$$(id -u)" = 0 ] && ! { command -v haproxy && command -v keepalived && command -v ip \
	    && command -v nft && test -x /usr/lib/rabbitmq/bin/rabbitmq-server \
	    && command -v chromium; } >/dev/null; then \
	  echo "setup: installing Debian packages: $(DEB_PACKAGES) (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_PACKAGES); fi
	@echo "setup: done. lbaas and openstack are in $(VENV)/bin: 'source $(VENV)/bin/activate'," \
	    "or 'make tutorial-env' for the README's shell"

run: setup ## run every role in one process (SQLite in .data, API on 127.0.0.1:9876); SERVE_ARGS="--log-level DEBUG ..." adds options
	$(VENV)/bin/lbaas serve --data-dir $(DATA_DIR) $(SERVE_ARGS)

tutorial-env: setup ## .data/tutorial/: clouds.yaml and an env file to source for the README's commands
	@mkdir -p $(TUTORIAL)
	@$(VENV)/bin/lbaas clouds-yaml --data-dir $(DATA_DIR) > $(TUTORIAL)/clouds.yaml
	@{ echo "# made by 'make tutorial-env': the openstack CLI and lbaas for the README"; \
	   echo ". '$(abspath $(VENV))/bin/activate'"; \
	   echo "export OS_CLIENT_CONFIG_FILE='$(abspath $(TUTORIAL))/clouds.yaml' OS_CLOUD=lbaas"; \
	   echo "export LBAAS_DATA_DIR='$(abspath $(DATA_DIR))'"; } > $(TUTORIAL)/env
	@echo "tutorial-env: wrote $(TUTORIAL)/clouds.yaml and $(TUTORIAL)/env;" \
	    "now: source $(TUTORIAL)/env && cd $(TUTORIAL)"

test: setup ## every suite (lint, SQLite, PostgreSQL, MariaDB, the roles as processes, the lab fleet, tempest), then a summary
	@MAKE="$(MAKE)" tools/run-suites $(TEST_SUITES)

test-sqlite: setup ## the whole suite on SQLite (as root with HAProxy: real amphorae too)
	$(VENV)/bin/pytest -q --ignore=tests/scale --ignore=tests/fleet $(PYTEST_ARGS)

test-postgresql: setup ## the API suite, the worker's one-statement read and settle and the health manager's batches on PostgreSQL (local server, standard port)
	LBAAS_TEST_DATABASE=postgresql $(VENV)/bin/pytest -q tests/api tests/render/test_reconciler_read.py tests/health $(PYTEST_ARGS)

test-mariadb: setup ## the API suite on MariaDB (local server, standard port)
	LBAAS_TEST_DATABASE=mariadb $(VENV)/bin/pytest -q tests/api $(PYTEST_ARGS)

test-api: setup ## the API suite on SQLite only (fast)
	$(VENV)/bin/pytest -q tests/api $(PYTEST_ARGS)

test-dbs: setup ## the API suite on PostgreSQL and MariaDB, both run, then a summary
	@MAKE="$(MAKE)" tools/run-suites test-postgresql test-mariadb

test-scale: setup ## api/worker/health-manager/housekeeping as processes on PostgreSQL and MariaDB with RabbitMQ: kill storm, broker outage, database restart (slow, root)
	$(VENV)/bin/pytest -q -m scale tests/scale $(PYTEST_ARGS)

test-fleet: setup ## a 3-host lab fleet: placement, overlay traffic, anti-affinity, lost hosts, drain, lab down (slow, root)
	$(VENV)/bin/pytest -q -m fleet tests/fleet $(PYTEST_ARGS)

test-e2e: setup ## end-to-end tests through the openstack CLI
	$(VENV)/bin/pytest -q -m e2e tests/e2e $(PYTEST_ARGS)

test-tempest: setup ## upstream's API tests (octavia-tempest-plugin) vs lbaas, noop deployment
	tools/tempest/run $(TEMPEST_ARGS)

test-dashboard: setup ## the dashboard's browser tests (Debian's Chromium via Playwright)
	$(VENV)/bin/pytest -q tests/dashboard $(PYTEST_ARGS)

dashboard-shots: setup ## rerun the dashboard's browser tests, saving docs/dashboard/*.png
	LBAAS_DASHBOARD_SHOTS=$(CURDIR)/docs/dashboard $(VENV)/bin/pytest -q tests/dashboard $(PYTEST_ARGS)

lint: setup ## ruff and the import-layer contract
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/lint-imports

bench: setup ## every benchmark: api, dataplane, health, tls and udp (the last four as root)
	$(PY) bench/bench_api.py
	$(PY) bench/bench_dataplane.py
	$(PY) bench/bench_health.py
	$(PY) bench/bench_tls.py
	$(PY) bench/bench_udp.py

bench-api: setup ## API requests/s, latency, CPU per request, POST->ACTIVE (fake drivers)
	$(PY) bench/bench_api.py

bench-dataplane: setup ## amphora POST->ACTIVE, req/s via VIP vs hand HAProxy vs direct, memory
	$(PY) bench/bench_dataplane.py

bench-fleet: setup ## 3-host lab: POST->ACTIVE on a lab host vs local, req/s with members across the overlay vs same host, host-loss outage (root)
	$(PY) bench/bench_fleet.py

bench-health: setup ## member-down detection, SINGLE/ACTIVE_STANDBY failover outage at the VIP
	$(PY) bench/bench_health.py

bench-tls: setup ## TERMINATED_HTTPS req/s and handshakes/s vs a hand-written HAProxy TLS config
	$(PY) bench/bench_tls.py

bench-udp: setup ## UDP datagrams/s and round trips via the VIP (nftables) vs direct to a member
	$(PY) bench/bench_udp.py

bench-scale: setup ## 1,000 load balancers through 2 API processes, 1 vs 3 workers, six POSTs and single-call; CPU per load balancer; heartbeats/s
	$(PY) bench/bench_scale.py

clean: ## remove the virtualenv and local data
	rm -rf $(VENV) $(DATA_DIR)
