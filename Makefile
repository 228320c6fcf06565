# The two commands a new user needs (see README.md):
#   make demo   build dbprobe and run the switchover lab end to end
#   make test   the whole test suite, exactly as CI runs it
GO       ?= go
BIN      := bin/dbprobe
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GOBIN    := $(shell $(GO) env GOPATH)/bin
export PATH := $(PATH):/usr/sbin:$(GOBIN)

.PHONY: all build deps demo test lint unit bench clean

all: build

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/dbprobe

deps:
	./scripts/install-deps.sh

demo: deps build
	./$(BIN) lab

# test = everything CI checks: formatting, vet, staticcheck, and every test
# with the race detector (MariaDB, promtool and Prometheus are real).
test: deps lint unit

lint:
	@unformatted="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	staticcheck ./...

unit:
	$(GO) test -race -count=1 -timeout 15m ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin
