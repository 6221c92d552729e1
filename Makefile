# kudod — make test is the one test command (README). Binaries the tests run (etcd,
# kube-apiserver, ...) are built from the Go module proxy into $(KUDOD_CACHE), keyed by
# version, so a rebuild is rare.
SHELL := /bin/bash
export GOTOOLCHAIN := local
export GOFLAGS := -buildvcs=false
KUDOD_CACHE ?= $(HOME)/.cache/kudod
export KUDOD_CACHE
TOOLS := $(KUDOD_CACHE)/tools
CONTROLLER_GEN := $(TOOLS)/controller-gen-v0.23.0
STATICCHECK := $(TOOLS)/staticcheck-v0.8.2
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/kudod-dev/kudod/cmd/kudod/app.version=$(VERSION)
GO_TEST_FLAGS ?=
# The public KUDO packages (<name>/<version>/ directories) that the TestCatalog... tests read;
# unset, those tests are skipped and the run says so (hack/catalog-tests.sh). Made absolute:
# each Go package's tests run in that package's directory.
ifneq ($(KUDOD_OPERATORS_DIR),)
export KUDOD_OPERATORS_DIR := $(abspath $(KUDOD_OPERATORS_DIR))
endif

.PHONY: all build image test unit lint control-plane cluster gitea test-deps generate bench bench-scale bench-profile demo demo-down screenshots

all: build

## build: the kudod binary, built exactly as the image builds it (static, no cgo).
build:
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o bin/kudod ./cmd/kudod

IMG ?= ghcr.io/kudod-dev/kudod:$(VERSION)

## image: the container image (docker with BuildKit); the binary in it is built exactly as `make build` builds bin/kudod.
image:
	docker build --build-arg VERSION=$(VERSION) -t $(IMG) .

## control-plane: etcd + kube-apiserver for envtest; prints the directory.
control-plane:
	@hack/build-binaries.sh control-plane

## cluster: + kube-controller-manager, kube-scheduler, kwok, kubectl (the simulated cluster).
cluster:
	@hack/build-binaries.sh cluster

## gitea: a real Gitea for commit statuses, pull requests and webhooks.
gitea:
	@hack/build-binaries.sh gitea

## test-deps: everything the tests need that is not Go code.
test-deps:
	@hack/test-deps.sh

## test: vet, staticcheck, and every test against real binaries; the TestCatalog... tests
## also read the public KUDO packages in $$KUDOD_OPERATORS_DIR when it is set.
test: test-deps lint build
	KUBEBUILDER_ASSETS=$$(hack/build-binaries.sh cluster) \
	KUDOD_GITEA_BIN=$$(hack/build-binaries.sh gitea) \
	KUDOD_BIN=$(CURDIR)/bin/kudod \
	go test -count=1 -timeout 40m $(GO_TEST_FLAGS) ./...; \
	status=$$?; hack/catalog-tests.sh test; exit $$status

## unit: the tests that need no binaries (fast feedback while developing).
unit:
	go test -short ./...; status=$$?; hack/catalog-tests.sh unit; exit $$status

lint: $(STATICCHECK)
	go vet ./...
	$(STATICCHECK) ./...

$(STATICCHECK):
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS)/staticcheck-bin go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
	mv $(TOOLS)/staticcheck-bin/staticcheck $@

$(CONTROLLER_GEN):
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS)/controller-gen-bin go install sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0
	mv $(TOOLS)/controller-gen-bin/controller-gen $@

## generate: deepcopy functions and the CRD YAML from api/.
generate: $(CONTROLLER_GEN)
	$(CONTROLLER_GEN) object paths=./api/...
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=deploy/crd

## demo: a simulated cluster, a git repository from examples/ and kudod reconciling it.
demo: build cluster
	hack/demo.sh up

## demo-down: stop the demo.
demo-down:
	hack/demo.sh down

## bench: the four headline figures on envtest's API server (README "Performance"): a table on
## stdout and JSON in $(BENCH_OUT). Not part of `make test`, which runs its N=10 smoke mode.
## KUDOD_BENCH_SCALE=1000,3000,10000 adds the scale series, the noisy cluster and the sharded
## run (docs/scaling.md), their keys in the same JSON.
BENCH_OUT ?= bench-results.json
BENCH_TIMEOUT ?= $(if $(KUDOD_BENCH_SCALE),4h,15m)
bench: build
	KUBEBUILDER_ASSETS=$$(hack/build-binaries.sh control-plane) \
	KUDOD_BIN=$(CURDIR)/bin/kudod BENCH_OUT=$(BENCH_OUT) \
	go test -count=1 -run '^$$' -bench '^BenchmarkDaemon$$' -benchtime 1x -timeout $(BENCH_TIMEOUT) ./test/bench
	@echo "push → success commit status through a Gitea webhook (ns/op = latency per push):"
	KUBEBUILDER_ASSETS=$$(hack/build-binaries.sh cluster) KUDOD_BIN=$(CURDIR)/bin/kudod \
	go test -count=1 -run '^$$' -bench '^BenchmarkGiteaWebhookLatency$$' -benchtime 10x -timeout 10m ./test/e2e
	@echo "kudod ui: the Instances page with 1,000 instances in Chromium (ms/render: navigation → whole table; goal < 2000):"
	KUBEBUILDER_ASSETS=$$(hack/build-binaries.sh cluster) KUDOD_BIN=$(CURDIR)/bin/kudod \
	go test -count=1 -run '^$$' -bench '^BenchmarkUIInstances1000$$' -benchtime 5x -timeout 10m ./test/e2e

## screenshots: the README's pictures of kudod ui (docs/images/), taken by its browser test.
screenshots: test-deps build
	KUBEBUILDER_ASSETS=$$(hack/build-binaries.sh cluster) KUDOD_GITEA_BIN=$$(hack/build-binaries.sh gitea) \
	KUDOD_BIN=$(CURDIR)/bin/kudod KUDOD_UI_SCREENSHOTS=$(CURDIR)/docs/images \
	go test -count=1 -run '^TestUI$$' -timeout 10m ./test/e2e

## bench-scale: only the scale runs of `make bench` (KUDOD_BENCH_SCALE, KUDOD_BENCH_NOISY,
## KUDOD_BENCH_SHARD; docs/scaling.md), tables on stdout and JSON in $(BENCH_SCALE_OUT).
BENCH_SCALE_OUT ?= bench-scale-results.json
BENCH_SCALE_TIMEOUT ?= 4h
bench-scale: build
	KUBEBUILDER_ASSETS=$$(hack/build-binaries.sh control-plane) \
	KUDOD_BIN=$(CURDIR)/bin/kudod BENCH_OUT=$(BENCH_SCALE_OUT) \
	go test -count=1 -run '^$$' -bench '^BenchmarkScale$$' -benchtime 1x -timeout $(BENCH_SCALE_TIMEOUT) ./test/bench

## bench-profile: CPU and heap profiles of kudod (in process) during P1 and P3 idle, and
## kube-apiserver's CPU during P1, at KUDOD_BENCH_INSTANCES (1000); top functions printed; then
## kube-apiserver's CPU per kind of request a cold start sends.
BENCH_PROFILE_TIMEOUT ?= 1h
bench-profile:
	KUBEBUILDER_ASSETS=$$(hack/build-binaries.sh control-plane) \
	go test -count=1 -run '^$$' -bench '^(BenchmarkColdStartProfile|BenchmarkAPIServerRequestCost)$$' -benchtime 1x -timeout $(BENCH_PROFILE_TIMEOUT) ./test/bench
