# emitgate — the single entry point for building, running and testing.
#
#   make setup     install what is missing (idempotent): redis-server, redis-sentinel,
#                  rabbitmq-server (the AMQP suites run their own broker process), npm
#                  packages (buf, the Socket.IO test harness), grpcurl, helm,
#                  chromium + Selenium (console test), and each SDK's
#                  toolchain packages
#   make build     build the gateway (target/debug/emitgate)
#   make run       start a loopback Redis if none answers, then the gateway
#   make test      every test in the repository (runs setup first)
#   make lint      rustfmt, clippy, buf lint + breaking, SDK linters,
#                  generated-code drift checks, no path outside the
#                  repository, and the deployment files (make lint-deploy:
#                  Helm chart, Dockerfile, compose)
#   make generate  regenerate the SDKs' code from proto/
#   make release   optimized build (target/release/emitgate)
#   make bench     benchmark: emitgate vs the Redis limit, the reference
#                  emitters, a no-op gRPC call and Centrifugo (built on
#                  first use), and each SDK's Publisher against the
#                  bench's Rust load client; table on stdout, JSON + PNG
#                  in bench/results/
#   make bench-profile  perf flamegraphs of the gateway under load
#
# CI (.ci/run) runs `make lint test`, the same commands as a developer.

SHELL := /bin/bash
.DEFAULT_GOAL := help

REPO := $(CURDIR)
BUF := $(REPO)/tools/node_modules/.bin/buf
TOOLS_BIN := $(REPO)/.tools/bin
GRPCURL_VERSION := v1.9.3
HELM_VERSION := v3.22.0
HELM := $(TOOLS_BIN)/helm
# The peer the full benchmark measures beside the gateway (not make test).
CENTRIFUGO_VERSION := v6.9.1
SDKS := python go php
# The gateway binary the SDK and harness tests start.
export EMITGATE_BIN := $(REPO)/target/debug/emitgate
export GRPCURL := $(TOOLS_BIN)/grpcurl
CARGO := cargo
# apt-get runs as root, or through sudo when there is one.
SUDO := $(shell [ "$$(id -u)" = 0 ] || { command -v sudo >/dev/null 2>&1 && echo sudo; })

.PHONY: help setup setup-system setup-node setup-grpcurl setup-sdks setup-fixtures setup-bench setup-browser \
	setup-bench-profile setup-bench-peers setup-deploy build release run test test-rust test-harness test-sdks lint lint-rust lint-proto \
	lint-docs lint-sdks lint-deploy render-chart test-deploy generate clean bench bench-smoke bench-profile

help:
	@sed -n '2,22p' Makefile | sed 's/^# \{0,1\}//'

## ---- setup -----------------------------------------------------------------

setup: setup-system setup-node setup-grpcurl setup-sdks setup-fixtures setup-bench setup-browser setup-deploy

# rabbitmq-server: the AMQP suites start the broker themselves on free
# loopback ports with their own node name and directories
# (tests/src/amqp.rs); a system service the package may start is not used.
setup-system:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v redis-sentinel >/dev/null || missing="$$missing redis-sentinel"; \
	command -v node >/dev/null || missing="$$missing nodejs npm"; \
	command -v go >/dev/null || missing="$$missing golang-go"; \
	[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || missing="$$missing rabbitmq-server"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@command -v $(CARGO) >/dev/null || { echo "Rust is needed: https://rustup.rs" >&2; exit 1; }

# npm only when the lock file is newer than the installed tree.
setup-node: tools/node_modules/.package-lock.json tests/harness/node_modules/.package-lock.json

# `npm install`, not `npm ci`, for buf: npm 11 refuses `ci` when the lock
# lacks buf's optional per-platform packages, which some registries omit;
# `install` keeps the locked version; `--no-save` keeps it from writing the
# per-platform packages it found into the lock file, so setup leaves the
# tree clean.
tools/node_modules/.package-lock.json: tools/package-lock.json
	npm install --prefix tools --no-save --no-audit --no-fund
	@touch $@

%/node_modules/.package-lock.json: %/package-lock.json
	npm ci --prefix $* --no-audit --no-fund
	@touch $@

# The other server stacks the dialect suites run against: Socket.IO 2 with
# socket.io-redis 5 (npm), python-socketio 5 (a venv with pinned packages).
PY_FIXTURE := tests/fixtures/python-socketio
setup-fixtures: tests/fixtures/socketio-v2/node_modules/.package-lock.json $(PY_FIXTURE)/.venv/.requirements-installed

$(PY_FIXTURE)/.venv/.requirements-installed: $(PY_FIXTURE)/requirements.txt
	@python3 -c 'import ensurepip, venv' 2>/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends python3-venv; }
	python3 -m venv $(PY_FIXTURE)/.venv
	$(PY_FIXTURE)/.venv/bin/pip install --disable-pip-version-check -q -r $<
	@touch $@

# The admin console test (tests/tests/console.rs): Debian's chromium and
# chromium-driver, driven by Selenium from a venv with pinned packages, and
# a font for the page's text in its screenshot.
BROWSER_VENV := tests/browser/.venv
setup-browser: $(BROWSER_VENV)/.requirements-installed
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing="$$missing fonts-dejavu-core"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(BROWSER_VENV)/.requirements-installed: tests/browser/requirements.txt
	@python3 -c 'import ensurepip, venv' 2>/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends python3-venv; }
	python3 -m venv $(BROWSER_VENV)
	$(BROWSER_VENV)/bin/pip install --disable-pip-version-check -q -r $<
	@touch $@

setup-grpcurl: $(TOOLS_BIN)/grpcurl-$(GRPCURL_VERSION)

$(TOOLS_BIN)/grpcurl-$(GRPCURL_VERSION):
	GOBIN=$(TOOLS_BIN) go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)
	@touch $@

# What `make lint-deploy` and `make test-deploy` need: helm (built from its
# Go module, pinned), PyYAML in a venv for the scripts (Python >= 3.11 for
# tomllib), the compose example's npm packages, openssl for a test
# certificate.
DEPLOY_VENV := deploy/.venv
setup-deploy: $(TOOLS_BIN)/helm-$(HELM_VERSION) $(DEPLOY_VENV)/.requirements-installed \
	deploy/example/node_modules/.package-lock.json
	@command -v openssl >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends openssl; }

$(TOOLS_BIN)/helm-$(HELM_VERSION):
	GOBIN=$(TOOLS_BIN) go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	@touch $@

$(DEPLOY_VENV)/.requirements-installed: deploy/requirements.txt
	@python3 -c 'import ensurepip, venv' 2>/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends python3-venv; }
	python3 -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/pip install --disable-pip-version-check -q -r $<
	@touch $@

setup-sdks:
	@for s in $(SDKS); do $(MAKE) --no-print-directory -C sdk/$$s setup || exit 1; done

# The benchmark's reference emitters (@socket.io/redis-emitter from npm,
# python-socketio in a venv, both pinned) and a font for its chart.
BENCH_VENV := bench/.venv
setup-bench: bench/node/node_modules/.package-lock.json $(BENCH_VENV)/.requirements-installed
	@[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends fonts-dejavu-core; }

$(BENCH_VENV)/.requirements-installed: bench/python/requirements.txt
	@python3 -c 'import ensurepip, venv' 2>/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends python3-venv; }
	python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --disable-pip-version-check -q -r $<
	@touch $@

# Only for the full `make bench`: Centrifugo, built from its Go module
# (pinned) like grpcurl and helm; `make bench-smoke` skips that peer.
setup-bench-peers: $(TOOLS_BIN)/centrifugo-$(CENTRIFUGO_VERSION)

$(TOOLS_BIN)/centrifugo-$(CENTRIFUGO_VERSION):
	GOBIN=$(TOOLS_BIN) go install github.com/centrifugal/centrifugo/v6@$(CENTRIFUGO_VERSION)
	@touch $@

# Only for `make bench-profile`: perf (Debian's linux-perf) and inferno's
# flamegraph tools.
INFERNO_VERSION := 0.12.8
setup-bench-profile: setup-bench $(TOOLS_BIN)/inferno-$(INFERNO_VERSION)
	@command -v perf >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends linux-perf; }

$(TOOLS_BIN)/inferno-$(INFERNO_VERSION):
	$(CARGO) install --locked --root $(REPO)/.tools inferno@$(INFERNO_VERSION)
	@touch $@

## ---- build and run ---------------------------------------------------------

build:
	$(CARGO) build --locked -p emitgate

release:
	$(CARGO) build --locked --release -p emitgate

# Extra gateway flags: make run ARGS="--key myapp"
run: build
	@scripts/run.sh $(ARGS)

## ---- tests -----------------------------------------------------------------

test: setup build
	$(MAKE) --no-print-directory test-rust test-harness test-sdks test-deploy bench-smoke

test-rust:
	$(CARGO) test --locked --workspace

test-harness:
	npm test --prefix tests/harness

test-sdks:
	@for s in $(SDKS); do echo "== sdk/$$s"; $(MAKE) --no-print-directory -C sdk/$$s test || exit 1; done

## ---- benchmark -------------------------------------------------------------

# One run on this machine: redis-server, the reference emitters and the
# release gateway; extra flags: make bench BENCH_ARGS="--seconds 8".
bench: setup-bench setup-sdks setup-bench-peers
	$(CARGO) build --locked --release -p emitgate -p emitgate-bench
	target/release/emitgate-bench --centrifugo $(TOOLS_BIN)/centrifugo $(BENCH_ARGS)

# What `make test` runs: every scenario end to end for a fraction of a
# second against the debug gateway; fails on errors or lost events, never
# on timings. Results go to target/bench-smoke/, not bench/results/.
bench-smoke: setup-bench setup-sdks
	$(CARGO) build --locked -p emitgate -p emitgate-bench
	target/debug/emitgate-bench --quick --strict --gateway target/debug/emitgate --out target/bench-smoke
	@test -s target/bench-smoke/latest.json && test -s target/bench-smoke/latest.png

bench-profile: setup-bench-profile
	$(CARGO) build --locked --release -p emitgate -p emitgate-bench
	target/release/emitgate-bench --profile $(BENCH_ARGS)

## ---- lint and generated code ----------------------------------------------

lint: setup lint-rust lint-proto lint-docs lint-sdks lint-deploy

lint-rust:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

lint-proto:
	$(BUF) lint
	@if git rev-parse --verify -q main >/dev/null && git cat-file -e main:buf.yaml 2>/dev/null; then \
		echo "buf breaking against main"; $(BUF) breaking --against '.git#branch=main'; \
	else echo "buf breaking: no main branch with buf.yaml to compare against"; fi

# No file cites a document outside the repository or names a path outside it.
lint-docs:
	scripts/check-paths.sh

# Each SDK's lint regenerates its code and fails on drift.
lint-sdks:
	@for s in $(SDKS); do echo "== sdk/$$s"; $(MAKE) --no-print-directory -C sdk/$$s lint || exit 1; done

# The Helm chart linted and rendered with the default values and with
# ci/full-values.yaml (every optional part on), then deploy/check.py: the
# renders parse and hold what they should, the Dockerfile builds with the
# release recipe above, the compose example pins the harness's versions.
# No container engine is needed (none is on the CI machine).
CHART := deploy/helm/emitgate
CHART_FULL_VALUES := $(CHART)/ci/full-values.yaml
# helm's offline default is Kubernetes 1.20, older than the chart's kubeVersion.
HELM_KUBE := --kube-version 1.30.0
RENDERS := target/helm/default.yaml target/helm/full.yaml
lint-deploy: setup-deploy
	$(HELM) lint --strict $(HELM_KUBE) $(CHART)
	$(HELM) lint --strict $(HELM_KUBE) $(CHART) -f $(CHART_FULL_VALUES)
	@$(MAKE) --no-print-directory render-chart
	$(DEPLOY_VENV)/bin/python deploy/check.py $(RENDERS)

render-chart:
	@mkdir -p target/helm
	$(HELM) template emitgate $(CHART) $(HELM_KUBE) --namespace realtime > target/helm/default.yaml
	$(HELM) template emitgate $(CHART) $(HELM_KUBE) --namespace realtime -f $(CHART_FULL_VALUES) > target/helm/full.yaml

# The compose example's processes (without containers) and the chart's
# rendered configs, run with the debug gateway against real redis-server,
# socket.io and socket.io-client processes on loopback.
test-deploy: setup-deploy setup-grpcurl build render-chart
	$(DEPLOY_VENV)/bin/python deploy/smoke_test.py $(EMITGATE_BIN) $(GRPCURL) $(RENDERS)

generate:
	@for s in $(SDKS); do $(MAKE) --no-print-directory -C sdk/$$s generate || exit 1; done

clean:
	$(CARGO) clean
	rm -rf .run
