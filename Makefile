# The two commands a new user needs (see README.md):
#   make demo   build dbprobe and run the switchover lab end to end
#   make test   the whole test suite, exactly as CI runs it
GO       ?= go
BIN      := bin/dbprobe
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GOBIN    := $(shell $(GO) env GOPATH)/bin
IMAGE    ?= dbprobe:$(VERSION)
DOCKER   ?= docker
GORELEASER ?= $(shell command -v goreleaser 2>/dev/null || echo $(GO) run github.com/goreleaser/goreleaser/v2@v2.15.1)
export PATH := $(PATH):/usr/sbin:$(GOBIN)

.PHONY: all build deps deps-test demo test lint unit bench clean image image-scratch release-check release-snapshot

all: build

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/dbprobe

deps:
	./scripts/install-deps.sh

deps-test:
	./scripts/install-deps.sh --test

demo: deps build
	./$(BIN) lab

# test = everything CI checks: formatting, vet, staticcheck, and every test
# with the race detector (MariaDB, promtool and Prometheus are real).
test: deps-test lint unit

lint:
	@unformatted="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	staticcheck ./...
	cd deploy/helm && GOFLAGS="$$GOFLAGS -mod=mod" $(GO) vet ./... && GOFLAGS="$$GOFLAGS -mod=mod" staticcheck ./...

# deploy/helm is a module of its own (the chart's tests need Helm and the
# Kubernetes API types, dbprobe does not); no -race there: the tests are
# sequential, and instrumenting Kubernetes' packages would double their build.
# -mod=mod: it uses dbprobe's config package from ../.., so dbprobe's own
# new or upgraded requirements must not fail it.
unit:
	$(GO) test -race -count=1 -timeout 15m ./...
	cd deploy/helm && GOFLAGS="$$GOFLAGS -mod=mod" $(GO) test -count=1 -timeout 10m ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# The container image (docs/deploy.md). image: the Dockerfile, for machines
# that can pull golang and distroless; image-scratch: the same image FROM
# scratch out of a static binary, pulling nothing.
image:
	$(DOCKER) build --build-arg VERSION=$(VERSION) -t $(IMAGE) .

image-scratch:
	deploy/container/build-scratch.sh $(IMAGE) $(VERSION)

# Release archives for Linux and macOS (amd64, arm64) and checksums.txt in
# dist/, from .goreleaser.yaml, publishing nothing. Without goreleaser on
# PATH, go run builds it first (minutes, once).
release-snapshot:
	$(GORELEASER) release --snapshot --clean

# Every target of .goreleaser.yaml cross-compiled and checked (make test
# builds the host's and darwin/arm64 only).
release-check:
	$(GO) test -count=1 ./deploy/release -release.all

clean:
	rm -rf bin dist
