# The two commands a user needs: `make up` and `make test`. Everything else is a helper.
SHELL := /bin/bash
PY := .venv/bin/python
export PYTHONPATH := $(CURDIR):$(CURDIR)/infra/local
PLATFORM := $(PY) -m localplatform

.PHONY: up down status clean distclean test lint bench venv seed lock dashboard dashboards

venv: .venv/.installed
.venv/.installed: requirements/dev.lock
	python3 -m venv .venv
	.venv/bin/pip install --quiet --no-deps -r requirements/dev.lock
	touch $@

## Re-resolve requirements/dev.lock (every transitive version pinned) from requirements/dev.txt.
lock: venv
	.venv/bin/uv pip compile --quiet --python-version 3.11 --no-header requirements/dev.txt \
		-o requirements/dev.lock

## Start the whole platform on this machine (idempotent: restarts only what is down).
up: venv
	$(PLATFORM) --profile dev up

## Stop exactly what `make up` started; keep the data.
down: venv
	$(PLATFORM) --profile dev down

## Demo campaigns through the campaigns API (COUNT=300 by default; SEED=n for another set).
seed: venv
	$(PLATFORM) --profile dev seed $(if $(COUNT),--count $(COUNT)) $(if $(SEED),--seed $(SEED))

## Each component with pid, address and health; each function with its replicas, requests in
## flight and the autoscaler's last decision.
status: venv
	$(PLATFORM) --profile dev status

## Stop and remove the platform's state (data, logs, secrets); keep built binaries and images.
clean: venv
	$(PLATFORM) --profile dev clean

## Also remove every downloaded or built artifact (.local/ and .venv/).
distclean: clean
	rm -rf .local .venv build template

## The whole test suite against real services started for it in their own namespace.
test: venv
	$(PLATFORM) --profile test build
	cd infra/provider && go test -count=1 ./...
	cd infra/autoscaler && go test -count=1 ./...
	$(PLATFORM) test -q -p no:cacheprovider tests

## A Prometheus graph link for every dashboard panel's query (Grafana does not run here).
PROMETHEUS_URL ?= http://127.0.0.1:9090
dashboard: venv
	$(PY) infra/grafana/build_dashboards.py --links $(PROMETHEUS_URL)

## Regenerate infra/grafana/dashboards/*.json from infra/grafana/panels.py (commit the result).
dashboards: venv
	$(PY) infra/grafana/build_dashboards.py

lint: venv
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

## Benchmarks: print figures, assert nothing.
bench: up
	$(PY) -m tests.benchmarks.run
