# regcred — `make help` lists the targets.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/regcred/regcred/pkg/cli.Version=$(VERSION)
IMAGE ?= ghcr.io/regcred/regcred:$(VERSION)
GOLANGCI_LINT_VERSION ?= v2.15.0
TOOLS := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/regcred/tools
GOLANGCI_LINT := $(TOOLS)/golangci-lint-$(GOLANGCI_LINT_VERSION)/golangci-lint
FUZZTIME ?= 10s

# The test bed's binaries: built once from the Go module proxy, cached by
# version; build.sh prints their directory last.
TESTBED := bin_dir=$$(test/testbed/build.sh | tail -n 1); export REGCRED_TESTBED_BIN=$$bin_dir

##@ Use

.PHONY: demo
demo: ## Run regcred's main job on a local control plane and registry, and prove the injected credentials pull
	@$(TESTBED); go run ./test/demo

.PHONY: test
test: ## Run unit, integration and end-to-end tests (builds the test bed on first use)
	@$(TESTBED); echo "test bed: $$REGCRED_TESTBED_BIN"; \
	go test -race -count=1 ./...

##@ Develop

.PHONY: build
build: ## Build bin/regcred
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o bin/regcred ./cmd/regcred

.PHONY: unit
unit: ## Run the unit tests only (no test bed)
	go test -race -count=1 ./pkg/... ./cmd/...

.PHONY: e2e
e2e: ## Run the end-to-end tests only
	@$(TESTBED); go test -count=1 -v ./test/...

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

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run golangci-lint
	$(GOLANGCI_LINT) run ./...

$(GOLANGCI_LINT):
	GOBIN=$(dir $@) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

.PHONY: fmt
fmt: ## Format the code
	gofmt -w cmd pkg test

.PHONY: testbed
testbed: ## Build the test bed (etcd, kube-apiserver, kube-controller-manager, registry, helm)
	test/testbed/build.sh etcd kube registry helm

##@ Ship

.PHONY: image
image: ## Build the container image (needs a Docker engine)
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE) .

.PHONY: clean
clean: ## Remove built files
	rm -rf bin dist

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*##/ { printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)
