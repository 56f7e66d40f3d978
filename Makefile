# Meshlet — build, test and cluster targets. `make help` lists them.
SHELL := /bin/bash
CARGO ?= cargo
# Downloads and builds of upstream tooling (Kubernetes binaries, kind, node
# image) are cached here; git-ignored, safe to delete.
export MESHLET_CACHE ?= $(CURDIR)/.cache

.PHONY: quickstart bench-operator link-order fuzz help build test test-unit lint fmt crds crds-check k8s-bins kind-up kind-down images e2e-smoke e2e bench ci deploy deploy-check install uninstall e2e-flagger

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## Build every crate and binary
	$(CARGO) build --workspace --all-targets

test: k8s-bins ## The test suite: unit tests and integration tests against a real kube-apiserver
	$(CARGO) test --workspace

test-unit: ## Unit tests only (no Kubernetes binaries needed)
	$(CARGO) test --workspace --lib --bins

lint: ## rustfmt and clippy, warnings are errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt --all

crds: ## Regenerate the SMI CRD manifests in crds/yaml/ from the Rust types
	$(CARGO) run -q -p meshlet-crds --bin crdgen -- crds/yaml

k8s-bins: ## Build (or reuse cached) Kubernetes, etcd, CoreDNS and pause binaries from Go modules
	e2e/k8s/build.sh

kind-up: k8s-bins ## Bring up the `meshlet` kind cluster (offline-capable)
	e2e/kind/up.sh

kind-down: ## Delete the kind cluster and stop what kind-up started
	e2e/kind/down.sh

e2e-smoke: ## Smoke test on the kind cluster: a Deployment, a Service, HTTP 200 by ClusterIP and DNS
	e2e/kind/load-test-images.sh
	$(CARGO) test --workspace --features meshlet-e2e/kind --test smoke -- --nocapture

bench: ## Proxy benchmark: direct vs one and two proxies (and nginx if installed) at 1k/5k rps and max; writes target/bench/proxy.json
	proxy/bench/run.sh

link-order: ## Regenerate proxy/link/order.txt: the functions the proxy runs (callgrind profile), placed first by the static link
	proxy/link/profile.sh

quickstart: k8s-bins ## Kind cluster + Meshlet installed + a demo (client, v1/v2 behind a TrafficSplit)
	e2e/kind/quickstart.sh

images: ## Container images meshlet/{operator,webhook,proxy,proxy-init,testserver}:dev (static binaries, no registry)
	e2e/kind/images-meshlet.sh

deploy: ## Render charts/meshlet (default values) into deploy/meshlet.yaml
	deploy/render.sh

deploy-check: ## Fail when deploy/meshlet.yaml is not what the chart renders
	deploy/render.sh --check

install: ## Install Meshlet into the kind cluster: make images, kind load, kubectl apply -f deploy/meshlet.yaml, wait Ready
	e2e/kind/install.sh

uninstall: ## Remove Meshlet from the kind cluster (the SMI CRDs stay)
	e2e/kind/uninstall.sh

e2e: kind-up ## End-to-end suite on kind: install, injection, canary, mTLS, access, TrafficMetrics, bad input, resilience, uninstall
	e2e/kind/e2e.sh

e2e-flagger: kind-up ## Flagger (built from its Go module, linkerd provider) drives a canary on Meshlet: promotion of a healthy release, rollback of a failing one; installs Meshlet if needed
	e2e/kind/flagger-e2e.sh

bench-operator: ## Operator figures: recompute cost at 1,000 services / 10,000 endpoints, weight-change propagation p99, metrics scrape cost at 1,000 pods
	$(CARGO) run -q --release -p meshlet-operator --example bench_compute
	$(CARGO) test -q --release -p meshlet-operator --test propagation -- --nocapture
	$(CARGO) run -q --release --example bench_scrape -- 1000

fuzz: ## Bounded fuzz runs of the proxy's detector and config decoder (FUZZ_SECONDS each; nightly + cargo-fuzz)
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz
	proxy/fuzz/run.sh
