# pdp: policy decision point for the MetalSoft / MetalCloud authorization model.
GO        ?= go
BIN       ?= bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
OPA       := github.com/open-policy-agent/opa@v1.22.3
OAUTH2_PROXY := github.com/oauth2-proxy/oauth2-proxy/v7@v7.8.1
# Every package but the chart, whose tests chart-test runs.
TEST_PKGS ?= $(shell $(GO) list ./... | grep -v /charts$$)
# Debian packages of the servers the tests start.
TEST_SERVERS := redis-server:redis-server nginx:nginx caddy:caddy promtool:prometheus prometheus:prometheus umoci:umoci runc:runc curl:curl python3:python3

.PHONY: help build image run test test-deps vet fmt-check policy-check diff bench install-wrk fuzz soak chart-test clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build bin/pdp and bin/pdpctl
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

# The image: internal/image/image.sh assembles the static binaries (the Dockerfile's
# go build) into an OCI layout with umoci, no container daemon needed.
image: ## build the OCI image: $(BIN)/oci (tag VERSION) and $(BIN)/pdp-image.tar (needs umoci)
	internal/image/image.sh $(BIN) $(VERSION)

run: build ## serve the example state (examples/metalcloud.yaml) on :8181, admin on :9181; no Redis needed
	$(BIN)/pdp --state examples/metalcloud.yaml

test: test-deps vet fmt-check policy-check chart-test ## install missing test servers, then run every test
	$(GO) test -race -count=1 -timeout 15m $(TEST_PKGS)

test-deps: ## install the servers the tests start, when missing (Debian, as root), and the npm OPA client
	@missing=""; for pair in $(TEST_SERVERS); do \
		cmd=$${pair%%:*}; pkg=$${pair##*:}; \
		command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "run as root or: sudo apt-get install -y$$missing" >&2; exit 1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@# Styra's OPA SDK, pinned by e2e/opaclient/package-lock.json (TestStyraOPAClient).
	@command -v npm >/dev/null 2>&1 || { echo "npm is missing: apt-get install -y nodejs npm" >&2; exit 1; }
	@test -f e2e/opaclient/node_modules/@styra/opa/package.json || npm ci --prefix e2e/opaclient --no-audit --no-fund
	@# oauth2-proxy for TestIdentityProxyEndToEnd (the version of oauth2ProxyModule in
	@# e2e/identityproxy_test.go): built once here so that the build cache
	@# spares the test the long first compile.
	@d=$$(mktemp -d) && GOBIN=$$d GOFLAGS= $(GO) install $(OAUTH2_PROXY) && rm -rf "$$d"

vet: ## go vet
	$(GO) vet ./...

fmt-check: ## fail when gofmt would change a file
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# The policy calls Go built-ins (policy/conditions); opa check learns them from
# a capabilities file generated from the same Go declarations on every run.
policy-check: ## opa check --strict (with the custom built-ins), opa fmt and opa test on policy/
	@caps=$$(mktemp) && trap 'rm -f "$$caps"' EXIT && \
	$(GO) run ./policy/internal/opacaps > "$$caps" && \
	$(GO) run $(OPA) check --strict --v1-compatible --capabilities "$$caps" policy/*.rego
	@out=$$($(GO) run $(OPA) fmt --list --v1-compatible policy/*.rego); \
	if [ -n "$$out" ]; then echo "opa fmt needed:"; echo "$$out"; exit 1; fi
	$(GO) test -count=1 -run 'TestRego|TestCompileStrict|TestFormatted' ./policy

# helm runs through `go run` at a fixed version, outside the project's go.mod.
HELM         ?= $(GO) run helm.sh/helm/v3/cmd/helm@v3.22.0
CHART        := charts/pdp
CHART_VALUES := $(CHART)/values.yaml $(CHART)/values-sidecar.yaml $(wildcard $(CHART)/ci/*-values.yaml)
# The Kubernetes version the chart is checked against (a helm built by go run
# would otherwise assume 1.20).
CHART_KUBE   := 1.31.0

chart-test: ## helm lint and helm template charts/pdp with every values file, then check the manifests (go test ./charts/...)
	@for f in $(CHART_VALUES); do \
		echo "helm lint and template -f $$f"; \
		$(HELM) lint --strict --quiet --kube-version $(CHART_KUBE) $(CHART) -f $$f || exit 1; \
		$(HELM) template pdp $(CHART) --kube-version $(CHART_KUBE) -f $$f >/dev/null || exit 1; \
	done
	$(GO) test -count=1 -timeout 20m ./charts/...

# make test decides 20,000 random requests through both evaluators.
DIFF_N    ?= 1000000
DIFF_SEED ?= 1

diff: ## differential test: DIFF_N (default a million) random requests decided by the native evaluator and the Rego
	DIFF_N=$(DIFF_N) DIFF_SEED=$(DIFF_SEED) $(GO) test -count=1 -timeout 0 -v -run '^TestNativeDifferential$$' ./pdp/

bench: ## load harness: bare fasthttp vs pdp vs stock OPA (wrk); Go micro-benchmarks; writes bench/results/
	@command -v wrk >/dev/null 2>&1 || $(MAKE) --no-print-directory install-wrk
	@mkdir -p bench/results
	$(GO) test -p 1 -run '^$$' -bench . -benchmem -count 1 ./pdp/ ./policy/... ./pdp/forwardauth/ ./pdp/httpapi/ ./pdp/metrics/ ./pdp/decisionlog/ | tee bench/results/go-bench.txt
	$(GO) test -p 1 -run '^$$' -bench RevocationLatency -benchtime 2000x -count 1 ./sync/redisstate/ | tee -a bench/results/go-bench.txt
	$(GO) run ./bench -out bench/results

# Each fuzz target runs alone (go test takes one -fuzz pattern at a time);
# plain go test (make test) runs every target's seed corpus.
FUZZTIME      ?= 30s
# Minimizing a new corpus entry may otherwise take up to a minute of FUZZTIME.
FUZZMINIMIZE  ?= 5s
SOAK_DURATION ?= 3m

fuzz: ## run every fuzz target (func Fuzz* in *_test.go) for FUZZTIME each, default 30s
	@set -e; for dir in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
		for target in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go | cut -c6- | sort); do \
			echo "== $$dir $$target ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) $$dir; \
		done; \
	done

soak: ## soak test (bench/soak): real pdp --redis under load for SOAK_DURATION (default 3m) while Redis restarts
	SOAK_DURATION=$(SOAK_DURATION) $(GO) test -tags soak -count=1 -v -timeout 60m -run '^TestSoak$$' ./bench/soak/

install-wrk:
	@if [ "$$(id -u)" != 0 ]; then echo "run as root or: sudo apt-get install -y wrk" >&2; exit 1; fi
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null

clean: ## remove build output
	rm -rf $(BIN)
