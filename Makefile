# lbaas — what people run. `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
DATA_DIR ?= .data
PYTEST_ARGS ?=

.PHONY: help setup run test test-api test-dbs test-e2e test-scale lint bench bench-api bench-dataplane bench-health bench-tls bench-udp bench-scale clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	touch $@

setup: $(VENV)/.installed ## create .venv, install the project (and, as root, Debian packages)
	@if [ "$$(id -u)" = 0 ] && ! { command -v haproxy && command -v keepalived && command -v ip \
	    && command -v nft && test -x /usr/lib/rabbitmq/bin/rabbitmq-server; } >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy keepalived iproute2 nftables rabbitmq-server; fi

run: setup ## run every role in one process (SQLite in $(DATA_DIR), API on 127.0.0.1:9876)
	$(VENV)/bin/lbaas serve --data-dir $(DATA_DIR)

test: setup lint ## lint, the whole suite on SQLite, the API suite on PostgreSQL and MariaDB, the roles as processes
	$(VENV)/bin/pytest -q --ignore=tests/scale $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-dbs
	$(MAKE) --no-print-directory test-scale

test-api: setup ## the API suite on SQLite only (fast)
	$(VENV)/bin/pytest -q tests/api $(PYTEST_ARGS)

test-dbs: setup ## the API suite on PostgreSQL and MariaDB (local servers on standard ports)
	LBAAS_TEST_DATABASE=postgresql $(VENV)/bin/pytest -q tests/api $(PYTEST_ARGS)
	LBAAS_TEST_DATABASE=mariadb $(VENV)/bin/pytest -q tests/api $(PYTEST_ARGS)

test-scale: setup ## api/worker/health-manager/housekeeping as processes on PostgreSQL and MariaDB with RabbitMQ: kill storm, broker outage, database restart (slow, root)
	$(VENV)/bin/pytest -q -m scale tests/scale $(PYTEST_ARGS)

test-e2e: setup ## end-to-end tests through the openstack CLI
	$(VENV)/bin/pytest -q -m e2e tests/e2e $(PYTEST_ARGS)

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

bench-scale: setup ## 1,000 load balancers through 2 API processes, 1 vs 3 workers; CPU per load balancer; heartbeats/s
	$(PY) bench/bench_scale.py

clean: ## remove the virtualenv and local data
	rm -rf $(VENV) $(DATA_DIR)
