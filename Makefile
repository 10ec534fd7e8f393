# The two commands a user needs: `make up` and `make test`. Everything else is a helper.
SHELL := /bin/bash
PY := .venv/bin/python
export PYTHONPATH := $(CURDIR):$(CURDIR)/infra/local
PLATFORM := $(PY) -m localplatform

.PHONY: bench-cluster build-args prerequisites prerequisites-test typecheck test-cluster up down status export-status clean distclean test lint lint-go bench venv seed reconcile lock dashboard dashboards \
	deploy-tools kind-up kind-deploy kind-reconcile knative-deploy kind-down compose-up compose-down cluster-tools

## What the platform needs from the system: Debian packages installed (as root) or named in one line.
prerequisites:
	@infra/local/prerequisites.sh up
prerequisites-test:
	@infra/local/prerequisites.sh test

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
up: prerequisites venv
	$(PLATFORM) --profile dev up

## Stop exactly what `make up` started; keep the data.
down: venv
	$(PLATFORM) --profile dev down

## Demo campaigns through the campaigns API (COUNT=300 by default; SEED=n for another set).
seed: venv
	$(PLATFORM) --profile dev seed $(if $(COUNT),--count $(COUNT)) $(if $(SEED),--seed $(SEED))

## Today's numbers (or DATE=yyyy-mm-dd) per campaign from the budget ledger, daily_metrics, the
## live counters and events_log; prints every difference and exits 1 if there is one.
reconcile: venv
	$(PLATFORM) --profile dev reconcile $(if $(DATE),--date $(DATE))

## Each component with pid, address and health; each function with its replicas, requests in
## flight and the autoscaler's last decision.
status: venv
	$(PLATFORM) --profile dev status

## The log-level export's hours: exported, failed (with the error) and pending, lag per type.
export-status: venv
	$(PY) -m localplatform.export_status --profile dev

## Stop and remove the platform's state (data, logs, secrets); keep built binaries and images.
clean: venv
	$(PLATFORM) --profile dev clean

## Also remove every downloaded or built artifact (.local/ and .venv/).
distclean: clean
	rm -rf .local .venv build template

## The whole test suite against real services started for it in their own namespace, then the
## product on a real kind cluster (test-cluster).
test: prerequisites-test venv deploy-tools lint lint-go typecheck
	infra/docker/start-dockerd.sh  # function images and compose are built and run in the tests
	$(PY) infra/docker/local_images.py all  # base images built here where none can be pulled
	$(PLATFORM) --profile test build
	cd infra/provider && go test -count=1 ./...
	cd infra/compose/provider && go test -count=1 ./...
	cd infra/autoscaler && go test -count=1 ./...
	cd infra/kube-provider && go test -count=1 ./...
	cd tests/e2e/openrtb_client && go mod download  # the e2e OpenRTB client's modules, before the netns
	$(PY) infra/prebid-server/pbs_tree.py >/dev/null  # Prebid Server's tree and modules, before the netns
	cd tests/deploy/kind_config && go mod download  # kind's config types, for checking kind-cluster.yaml
	infra/kind/openfaas-chart.sh >/dev/null  # helm and the OpenFaaS chart, before the netns
	infra/kind/prebuild.sh start  # the cluster's Go builds, at idle priority beside the suite
	$(PLATFORM) test -q -p no:cacheprovider --ignore=tests/cluster tests
	$(MAKE) --no-print-directory test-cluster

## The kind cluster's tests (tests/cluster), `make test`'s last stage: a cluster of this test
## instance is created, the product deployed on it (infra/k8s/deploy.sh), checked and deleted.
test-cluster: venv deploy-tools
	infra/docker/start-dockerd.sh
	infra/kind/prebuild.sh wait
	$(PY) -m pytest -q -p no:cacheprovider tests/cluster

## A Prometheus graph link for every dashboard panel's query (Grafana does not run here).
PROMETHEUS_URL ?= http://127.0.0.1:9090
dashboard: venv
	$(PY) infra/grafana/build_dashboards.py --links $(PROMETHEUS_URL)

## Regenerate infra/grafana/dashboards/*.json from infra/grafana/panels.py (commit the result).
dashboards: venv
	$(PY) infra/grafana/build_dashboards.py

## Lint and format (ruff), in `make test` too.
lint: venv
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

## Types (mypy, pyproject.toml [tool.mypy]), in `make test` too.
typecheck: venv
	.venv/bin/mypy

## gofmt and go vet on every Go module of the repository (each go.mod outside the built and
## downloaded trees); any unformatted file or vet finding fails.
GO_MODULES = $(sort $(dir $(shell find . \( -path ./.local -o -path ./.venv -o -path ./build \
	-o -path ./template -o -name node_modules \) -prune -o -name go.mod -print)))
lint-go:
	@for module in $(GO_MODULES); do \
		echo "==> lint-go: $$module"; \
		unformatted=$$(cd $$module && gofmt -l .); \
		[ -z "$$unformatted" ] || { echo "FAILED: gofmt -l in $$module: $$unformatted" >&2; exit 1; }; \
		[ -z "$$(cd $$module && go list ./... 2>/dev/null)" ] || (cd $$module && go vet ./...) \
			|| { echo "FAILED: go vet in $$module" >&2; exit 1; }; \
	done

## faas-cli's --build-arg flags that swap the template's upstream bases for the stand-ins built
## here (where no registry is reachable): faas-cli up --skip-push -f hello.yml $$(make -s build-args)
build-args: venv
	@$(PY) infra/docker/local_images.py build-args

## serve against the no-op on the kind cluster (after kind-up kind-deploy), and the idle
## cluster's CPU and memory: tests/benchmarks/kind_serve.py. Prints figures, asserts nothing.
bench-cluster: venv
	$(PY) -m tests.benchmarks.kind_serve

## Benchmarks: print figures, assert nothing.
bench: up
	$(PY) -m tests.benchmarks.run

## What tests/deploy needs, pinned (faas-cli, the operators' CRDs); cached, so fast when present.
deploy-tools: venv
	$(PY) -m localplatform.deploy_tools

# ---- Kubernetes (kind) and Docker Compose: need Docker, which the local platform does not ----
KIND_CLUSTER ?= adserver
export KIND_CLUSTER
# $(call need,tool,where to get it): fail with a clear message when a tool is missing.
need = @command -v $(1) >/dev/null 2>&1 || { echo "FAILED: $(1) is not installed: $(2)" >&2; exit 1; }
DOCKER_HINT := install Docker (https://docs.docker.com/engine/install/)
KIND_HINT := install kind (https://kind.sigs.k8s.io/docs/user/quick-start/\#installation)
KUBECTL_HINT := install kubectl (https://kubernetes.io/docs/tasks/tools/)
HELM_HINT := install helm 3 (https://helm.sh/docs/intro/install/)

## Create the kind cluster of kind-cluster.yaml: one control plane and two workers, ready. Where
## no node image can be pulled, every tool and image is built here first (infra/kind/README.md;
## cached). Host ports on 127.0.0.1: KIND_GATEWAY_PORT (8080), KIND_PROMETHEUS_PORT (9090),
## KIND_GRAFANA_PORT (3000).
KIND_GATEWAY_PORT ?= 8080
KIND_PROMETHEUS_PORT ?= 9090
KIND_GRAFANA_PORT ?= 3000
export KIND_GATEWAY_PORT KIND_PROMETHEUS_PORT KIND_GRAFANA_PORT
kind-up: venv
	$(call need,docker,$(DOCKER_HINT))
	@infra/kind/up.sh

# The cluster's registry on 127.0.0.1 (infra/kind/registry.sh), for pushing the product's images.
KIND_REGISTRY_PORT ?= 5001
export KIND_REGISTRY_PORT
# kind, kubectl and helm as `make kind-up` built them (pinned), where it built them.
cluster-tools kind-deploy kind-reconcile knative-deploy: export PATH := $(CURDIR)/.local/kind/bin:$(PATH)

# What deploying to the kind cluster needs on this machine.
cluster-tools:
	$(call need,docker,$(DOCKER_HINT))
	$(call need,kind,$(KIND_HINT))
	$(call need,kubectl,$(KUBECTL_HINT))
	$(call need,helm,$(HELM_HINT))

## Install everything on it with OpenFaaS CE (Helm chart 15.0.6): the stores, the migrations,
## the connector and every function (faas-cli deploy -f stack.yml), images built here and pushed
## to the cluster's registry. Idempotent and quick the second time (infra/k8s/deploy.sh says
## each step; OPENFAAS_SOURCES_DIR: the chart's archive where its repository is refused).
kind-deploy: cluster-tools deploy-tools
	@echo "==> deploying to kind cluster $(KIND_CLUSTER) with OpenFaaS (infra/k8s/deploy.sh openfaas)"
	infra/k8s/deploy.sh openfaas

## `make reconcile` against the kind cluster's PostgreSQL and Redis (kubectl port-forward;
## infra/k8s/reconcile.sh): today's numbers, or DATE=yyyy-mm-dd; exit 1 on a difference.
kind-reconcile: cluster-tools venv
	infra/k8s/reconcile.sh $(if $(DATE),--date $(DATE))

## The fully open-source path instead: Knative Serving and Eventing (docs/kubernetes.md).
knative-deploy: cluster-tools deploy-tools
	@echo "==> deploying to kind cluster $(KIND_CLUSTER) with Knative (infra/k8s/deploy.sh knative)"
	infra/k8s/deploy.sh knative

## Delete the kind cluster and everything in it: no node container, volume or network is left
## (secret files in .local/k8s/secrets stay).
kind-down:
	$(call need,docker,$(DOCKER_HINT))
	@infra/kind/down.sh

## The whole product in Docker (docker-compose.yml): functions behind the gateway, the stores.
compose-up: venv
	$(call need,docker,$(DOCKER_HINT))
	@docker compose version >/dev/null 2>&1 || { echo "FAILED: the Docker Compose plugin is missing (docker compose)" >&2; exit 1; }
	@echo "==> compose: secret files in $$(infra/compose/make-secrets.sh)"
	@echo "==> compose: gateway :8080, PostgreSQL :15432, Redis :16379, Kafka :19092, Prometheus :19090, Grafana :3000"
	docker compose up -d --build

## Stop the compose services (volumes stay; `docker compose down -v` removes them).
compose-down:
	$(call need,docker,$(DOCKER_HINT))
	docker compose down
