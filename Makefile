# Makefile: the developer's and CI's entry points. `make test` is the full test command.

GO          ?= go
STATICCHECK ?= $(shell command -v staticcheck 2>/dev/null || echo $(HOME)/go/bin/staticcheck)
BIN         ?= easymail
# ARGS go to "easymail serve", e.g. make run ARGS="--config easymail.yaml".
ARGS        ?=

# Go lives at /usr/local/go on the project's machines; a Go already on PATH comes first.
export PATH := $(PATH):/usr/local/go/bin

.PHONY: build run test bench check

build:
	$(GO) build -o $(BIN) ./cmd/easymail

run: build
	./$(BIN) serve $(ARGS)

# The race detector is always on. The timeout is above the slowest package (e2e), below CI's limit.
test:
	$(GO) test -race -count=1 -timeout 20m ./...

bench:
	bash bench/run.sh

check:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then \
		echo "gofmt -l reports unformatted files:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
