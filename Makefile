# lbaas — what people run. `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
DATA_DIR ?= .data
PYTEST_ARGS ?=

.PHONY: help setup run test test-api test-dbs test-e2e test-dashboard dashboard-shots lint bench bench-api bench-dataplane bench-health bench-tls bench-udp clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	touch $@

setup: $(VENV)/.installed ## create .venv, install the project (and, as root, Debian packages)
	@if [ "$$(id -u)" = 0 ] && ! { command -v haproxy && command -v keepalived && command -v ip \
	    && command -v nft && command -v chromium; } >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy keepalived iproute2 nftables chromium; fi

run: setup ## run every role in one process (SQLite in $(DATA_DIR), API on 127.0.0.1:9876)
	$(VENV)/bin/lbaas serve --data-dir $(DATA_DIR)

test: setup lint ## lint, then the whole suite on SQLite, then the API suite on PostgreSQL and MariaDB
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-dbs

test-api: setup ## the API suite on SQLite only (fast)
	$(VENV)/bin/pytest -q tests/api $(PYTEST_ARGS)

test-dbs: setup ## the API suite on PostgreSQL and MariaDB (local servers on standard ports)
	LBAAS_TEST_DATABASE=postgresql $(VENV)/bin/pytest -q tests/api $(PYTEST_ARGS)
	LBAAS_TEST_DATABASE=mariadb $(VENV)/bin/pytest -q tests/api $(PYTEST_ARGS)

test-e2e: setup ## end-to-end tests through the openstack CLI
	$(VENV)/bin/pytest -q -m e2e tests/e2e $(PYTEST_ARGS)

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

bench-health: setup ## member-down detection, SINGLE/ACTIVE_STANDBY failover outage at the VIP
	$(PY) bench/bench_health.py

bench-tls: setup ## TERMINATED_HTTPS req/s and handshakes/s vs a hand-written HAProxy TLS config
	$(PY) bench/bench_tls.py

bench-udp: setup ## UDP datagrams/s and round trips via the VIP (nftables) vs direct to a member
	$(PY) bench/bench_udp.py

clean: ## remove the virtualenv and local data
	rm -rf $(VENV) $(DATA_DIR)
