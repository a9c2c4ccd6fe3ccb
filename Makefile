# pdp: policy decision point for the MetalSoft / MetalCloud authorization model.
GO        ?= go
BIN       ?= bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
OPA       := github.com/open-policy-agent/opa@v1.22.3
TEST_PKGS ?= ./...
# Debian packages of the servers the tests start.
TEST_SERVERS := redis-server:redis-server nginx:nginx caddy:caddy promtool:prometheus

.PHONY: help build run test test-deps vet fmt-check policy-check bench fuzz soak chart-test clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build bin/pdp and bin/pdpctl
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

run: build ## serve the example state (examples/metalcloud.yaml) on :8181, admin on :9181; no Redis needed
	$(BIN)/pdp --state examples/metalcloud.yaml

test: test-deps vet fmt-check policy-check ## install missing test servers, then run every test
	$(GO) test -race -timeout 15m $(TEST_PKGS)

test-deps: ## install the servers the tests start, when missing (Debian, as root)
	@missing=""; for pair in $(TEST_SERVERS); do \
		cmd=$${pair%%:*}; pkg=$${pair##*:}; \
		command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "run as root or: sudo apt-get install -y$$missing" >&2; exit 1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

vet: ## go vet
	$(GO) vet ./...

fmt-check: ## fail when gofmt would change a file
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

policy-check: ## opa check --strict and opa fmt on policy/
	$(GO) run $(OPA) check --strict --v1-compatible policy/
	@out=$$($(GO) run $(OPA) fmt --list --v1-compatible policy/); \
	if [ -n "$$out" ]; then echo "opa fmt needed:"; echo "$$out"; exit 1; fi

clean: ## remove build output
	rm -rf $(BIN)
