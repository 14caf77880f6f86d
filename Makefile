# regcred — `make help` lists the targets.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# One version string everywhere: the file VERSION holds the release this
# tree becomes when tagged v<VERSION> (Chart.yaml's version and appVersion
# are the same; test/chart checks). The build of that tag, with no local
# change, is VERSION itself; any other build is VERSION-<commit>[-dirty].
# The binary (pkg/cli.Version) and the image tag both use it.
ifeq ($(origin VERSION),undefined)
# A change is a modified or an untracked file, which Go compiles too.
VERSION := $(shell v=$$(cat VERSION); \
  if ! c=$$(git rev-parse --short=12 HEAD 2>/dev/null); then echo "$$v-dev"; \
  elif [ -n "$$(git status --porcelain 2>/dev/null)" ]; then echo "$$v-$$c-dirty"; \
  elif git describe --exact-match --tags --match "v$$v" >/dev/null 2>&1; then echo "$$v"; \
  else echo "$$v-$$c"; fi)
endif
# The commit and its time, the only time in the image (reproducible builds:
# same commit, same digest).
ifeq ($(origin REVISION),undefined)
REVISION := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
endif
ifeq ($(origin SOURCE_DATE_EPOCH),undefined)
SOURCE_DATE_EPOCH := $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
endif
LDFLAGS := -s -w -X github.com/regcred/regcred/pkg/cli.Version=$(VERSION)
# A static binary with nothing of the machine in it: the same commit and Go
# version give the same bytes. The Dockerfile builds with the same flags.
GOBUILD := CGO_ENABLED=0 GOAMD64=v1 GOARM64=v8.0 go build -trimpath -buildvcs=false -ldflags "$(LDFLAGS)"
IMAGE ?= ghcr.io/regcred/regcred:$(VERSION)
# make image: the platforms built (one image each, in one index), and the
# OCI layout written. make push: PLAIN_HTTP=1 for a plain-HTTP test
# registry, CA_FILE=ca.pem for a registry with a private CA.
PLATFORMS ?= linux/amd64 linux/arm64
IMAGE_LAYOUT := dist/image
SOURCE_URL := https://github.com/regcred/regcred
PUSH_FLAGS := $(if $(filter 1 true yes,$(PLAIN_HTTP)),--plain-http) $(if $(CA_FILE),--ca-file $(CA_FILE))
GOLANGCI_LINT_VERSION ?= v2.15.0
TOOLS := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/regcred/tools
GOLANGCI_LINT := $(TOOLS)/golangci-lint-$(GOLANGCI_LINT_VERSION)/golangci-lint
HELM_DOCS_VERSION := v1.14.2
HELM_DOCS := $(TOOLS)/helm-docs-$(HELM_DOCS_VERSION)/helm-docs
FUZZTIME ?= 10s

# A real node (kubelet, containerd, runc) needs root: as root, make test
# and make demo build its components too (and install runc and the CNI
# plugins with apt-get); elsewhere test/node skips, saying why, and the
# demo runs regcred in its own process.
NODE := $(if $(filter 0,$(shell id -u)),node)
# The test bed's binaries: built once from the Go module proxy, cached by
# version; build.sh prints their directory last.
TESTBED := bin_dir=$$(test/testbed/build.sh etcd kube registry helm kubelet-judge $(NODE) | tail -n 1); export REGCRED_TESTBED_BIN=$$bin_dir
# The end-to-end packages but test/node, which make test runs on its own
# (and make node-test alone).
E2E_PKGS := $$(go list ./test/... | grep -v '/test/node$$')

##@ Use

.PHONY: demo
demo: ## Run regcred's main job on a local cluster and private registry (as root: on a real node, from its own image, installed by helm)
	@$(TESTBED); go run ./test/demo

.PHONY: test
test: verify ## Check the code as reviewers would, then run unit, integration and end-to-end tests, on a real node as root (builds the test bed on first use)
	@$(TESTBED); echo "test bed: $$REGCRED_TESTBED_BIN"; \
	go test -race -count=1 ./pkg/... ./cmd/... ./certs/...; \
	echo "end-to-end, one package at a time (each runs its own control plane; the ECR tests time tokens in seconds)"; \
	pkgs=$(E2E_PKGS); go test -race -count=1 -p 1 $$pkgs; \
	echo "a real node: kubelet, containerd, runc; regcred from its own image, installed by helm (about 3 minutes; skipped, saying why, where a node cannot run)"; \
	go test -race -count=1 -v ./test/node/

##@ Develop

.PHONY: build
build: ## Build bin/regcred
	$(GOBUILD) -o bin/regcred ./cmd/regcred

.PHONY: unit
unit: ## Run the unit tests only (no test bed)
	go test -race -count=1 ./pkg/... ./cmd/...

.PHONY: e2e
e2e: ## Run the end-to-end tests only
	@$(TESTBED); go test -count=1 -v $(E2E_PKGS)

.PHONY: node-test
node-test: ## Run the real node's tests only (kubelet, containerd, runc; needs root): imagePullSecrets, regcred installed by helm, recovery, node trust
	@bin_dir=$$(test/testbed/build.sh etcd kube registry helm node | tail -n 1); export REGCRED_TESTBED_BIN=$$bin_dir; \
	echo "test bed: $$REGCRED_TESTBED_BIN"; go test -count=1 -v ./test/node/

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 10s)
	@for target in $$(grep -rhoE '^func Fuzz[A-Za-z0-9_]+' --include='*_test.go' pkg | sed 's/func //'); do \
	  pkg=$$(dirname $$(grep -rlE "^func $$target\(" --include='*_test.go' pkg)); \
	  echo "fuzz $$pkg $$target"; \
	  go test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) ./$$pkg; \
	done

.PHONY: bench
bench: ## Run the benchmarks
	go test -run '^$$' -bench . -benchmem ./pkg/...

# The benchmarks need only etcd and kube-apiserver: an exported
# REGCRED_TESTBED_BIN is used as it is.
BENCH_TESTBED := export REGCRED_TESTBED_BIN=$${REGCRED_TESTBED_BIN:-$$(test/testbed/build.sh etcd kube | tail -n 1)}
BENCH_ARGS ?=

.PHONY: bench-admission
bench-admission: ## Measure regcred against a minimal net/http webhook and controller-runtime's doing nothing, side by side: direct, then through the test bed's API server (BENCH_ARGS for more flags)
	@$(BENCH_TESTBED); mkdir -p bin; \
	echo "go build bin/regcred bin/floor bin/crwebhook"; $(GOBUILD) -o bin/regcred ./cmd/regcred; $(GOBUILD) -o bin/floor ./test/bench/floor; $(GOBUILD) -o bin/crwebhook ./test/bench/crwebhook; \
	go run ./test/bench/admission --regcred bin/regcred --floor bin/floor --controller-runtime bin/crwebhook $(BENCH_ARGS)

.PHONY: bench-scale
bench-scale: ## Measure regcred in a cluster of 10,000 namespaces: memory, start-up, first admission, fan-out times (BENCH_ARGS for more flags)
	@$(BENCH_TESTBED); mkdir -p bin; \
	echo "go build bin/regcred"; $(GOBUILD) -o bin/regcred ./cmd/regcred; \
	go run ./test/bench/scale --regcred bin/regcred $(BENCH_ARGS)

.PHONY: bench-recovery
bench-recovery: ## Measure recovery's Pod cache with 10,000 Pods on a real API server against whole Pods (REGCRED_SCALE_PODS=n)
	@$(TESTBED); go test -count=1 -run '^$$' -bench RecoveryCache -benchtime 1x -v ./test/scale

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run golangci-lint
	$(GOLANGCI_LINT) run --allow-parallel-runners ./...

$(GOLANGCI_LINT):
	@echo "installing golangci-lint $(GOLANGCI_LINT_VERSION) from the Go module proxy (first time only, a few minutes)"
	GOBIN=$(dir $@) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

$(HELM_DOCS):
	@echo "installing helm-docs $(HELM_DOCS_VERSION) from the Go module proxy (first time only)"
	GOBIN=$(dir $@) go install github.com/norwoodj/helm-docs/cmd/helm-docs@$(HELM_DOCS_VERSION)

.PHONY: chart-docs
chart-docs: $(HELM_DOCS) ## Generate charts/regcred/README.md from values.yaml (helm-docs)
	$(HELM_DOCS) --chart-search-root charts --template-files README.md.gotmpl --log-level warning

.PHONY: verify
verify: $(GOLANGCI_LINT) $(HELM_DOCS) ## Fail on what a reviewer would: gofmt, go vet, golangci-lint, helm lint --strict, manifests out of sync
	@echo "verify: gofmt"; out=$$(gofmt -l cmd pkg test certs); \
	  if [ -n "$$out" ]; then echo "not gofmt'ed (run make fmt):"; echo "$$out"; exit 1; fi
	@echo "verify: go vet"; go vet ./...
	@echo "verify: golangci-lint $(GOLANGCI_LINT_VERSION)"; $(GOLANGCI_LINT) run --allow-parallel-runners ./...
	@helm=$$(test/testbed/build.sh helm | tail -n 1)/helm; \
	  echo "verify: helm lint --strict"; "$$helm" lint --strict charts/regcred >/dev/null || "$$helm" lint --strict charts/regcred; \
	  echo "verify: manifests/regcred.yaml is the chart rendered (make manifests)"; \
	  tmp=$$(mktemp); trap 'rm -f "$$tmp"' EXIT; \
	  { sed -n '1,$(MANIFESTS_HEADER)p' manifests/regcred.yaml; "$$helm" $(MANIFESTS_TEMPLATE); } > "$$tmp"; \
	  diff -u manifests/regcred.yaml "$$tmp" >/dev/null || { diff -u manifests/regcred.yaml "$$tmp" | head -40 || true; echo "manifests/regcred.yaml is out of sync with the chart: run make manifests"; exit 1; }
	@echo "verify: charts/regcred/README.md is generated from values.yaml (make chart-docs)"; \
	  tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; cp -r charts/regcred "$$tmp/regcred"; \
	  $(HELM_DOCS) --chart-search-root "$$tmp" --template-files README.md.gotmpl --log-level warning; \
	  diff -u charts/regcred/README.md "$$tmp/regcred/README.md" || { echo "charts/regcred/README.md is out of date: run make chart-docs"; exit 1; }

.PHONY: fmt
fmt: ## Format the code
	gofmt -w cmd pkg test certs

.PHONY: testbed
testbed: ## Build the test bed (etcd, kube-apiserver, kube-controller-manager, registry, helm, kubelet-judge; as root a node's too)
	test/testbed/build.sh etcd kube registry helm kubelet-judge $(NODE)

##@ Ship

# The plain manifests: the chart rendered for namespace regcred, with
# regcred's own webhook certificate, and without the registry config (the
# admin's ConfigMap regcred-config), so that applying them again to upgrade
# keeps it. test/chart runs the command in the header again and checks the
# file is in sync; MANIFESTS_HEADER is the header's length.
MANIFESTS_TEMPLATE := template regcred charts/regcred --kube-version 1.30.0 --namespace regcred --set createNamespace=true --set config.existingConfigMap=regcred-config
MANIFESTS_HEADER := 6

.PHONY: manifests
manifests: ## Render manifests/regcred.yaml from the chart (plain YAML for kubectl apply)
	@helm=$$(test/testbed/build.sh helm | tail -n 1)/helm; mkdir -p manifests; \
	{ echo "# regcred, for kubectl apply: generated by make manifests, do not edit."; \
	  echo "# Needs nothing else to run: regcred makes its own webhook CA and certificate"; \
	  echo "# (in the Secret regcred-tls) and sets the webhook configurations' caBundle."; \
	  echo "# The registry config is yours: the ConfigMap regcred-config (key config.yaml),"; \
	  echo "# not in this file, so that applying it again to upgrade keeps your config."; \
	  echo "# Rendered with: helm $(MANIFESTS_TEMPLATE)"; \
	  "$$helm" $(MANIFESTS_TEMPLATE); } > manifests/regcred.yaml
	@echo "wrote manifests/regcred.yaml"

.PHONY: diagram
diagram: ## Render docs/flow.svg from docs/flow.dot (needs graphviz: apt-get install graphviz)
	@command -v dot >/dev/null || { echo "diagram: needs graphviz's dot (apt-get install graphviz)"; exit 1; }
	dot -Tsvg docs/flow.dot -o docs/flow.svg

.PHONY: chart-lint
chart-lint: ## Lint the Helm chart (helm lint --strict)
	@helm=$$(test/testbed/build.sh helm | tail -n 1)/helm; "$$helm" lint --strict charts/regcred

.PHONY: chart-test
chart-test: ## Run the chart's tests (render, schema, install into a real API server)
	@$(TESTBED); go test -count=1 ./test/chart/ ./certs/

# The reference build of the image, Go alone (no Docker, no base image
# pulled): per platform a static binary, then cmd/regcred-image puts each
# with the CA bundle into a one-layer image, runs it as 65532:65532 and
# writes their index to $(IMAGE_LAYOUT). The last line is its digest.
.PHONY: image
image: ## Build the image without Docker into dist/image (OCI layout, PLATFORMS); prints its digest
	@rm -rf dist/bin; bins=(); \
	for p in $(PLATFORMS); do \
	  out=dist/bin/$${p/\//_}/regcred; echo "go build $$out ($(VERSION))"; \
	  GOOS=$${p%/*} GOARCH=$${p#*/} $(GOBUILD) -o $$out ./cmd/regcred; \
	  bins+=(--binary "$$p=$$out"); \
	done; \
	go run ./cmd/regcred-image build --out $(IMAGE_LAYOUT) --version '$(VERSION)' --revision '$(REVISION)' \
	  --source '$(SOURCE_URL)' --source-date-epoch '$(SOURCE_DATE_EPOCH)' "$${bins[@]}"

# The same image with Docker, from the Dockerfile (make image is the
# reference; this one's digest is Docker's own).
.PHONY: docker-image
docker-image: ## Build the image with Docker instead (needs a Docker engine), tagged IMAGE
	created=$$(date -u -d @$(SOURCE_DATE_EPOCH) +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -r $(SOURCE_DATE_EPOCH) +%Y-%m-%dT%H:%M:%SZ); \
	docker build --build-arg VERSION='$(VERSION)' --build-arg REVISION='$(REVISION)' \
	  --build-arg SOURCE_DATE_EPOCH='$(SOURCE_DATE_EPOCH)' --build-arg CREATED="$$created" -t '$(IMAGE)' .

.PHONY: push
push: image ## Push the image to IMAGE (registry/repo:tag) with the Docker config's credentials; PLAIN_HTTP=1, CA_FILE=ca.pem
	go run ./cmd/regcred-image push --layout $(IMAGE_LAYOUT) $(PUSH_FLAGS) '$(IMAGE)'

.PHONY: clean
clean: ## Remove built files
	rm -rf bin dist

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)
