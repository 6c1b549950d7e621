# Makefile: the developer's and CI's entry points. `make test` is the full test command.

GO          ?= go
STATICCHECK ?= $(shell command -v staticcheck 2>/dev/null || echo $(HOME)/go/bin/staticcheck)
BIN         ?= easymail
# ARGS go to "easymail serve", e.g. make run ARGS="--config easymail.yaml".
ARGS        ?=

# Go lives at /usr/local/go on the project's machines; a Go already on PATH comes first.
export PATH := $(PATH):/usr/local/go/bin

.PHONY: build run test bench bench-scan bench-flood bench-msglog check

build:
	$(GO) build -o $(BIN) ./cmd/easymail

run: build
	./$(BIN) serve $(ARGS)

# The race detector is always on. The timeout is above the slowest package (e2e), below CI's limit.
test:
	$(GO) test -race -count=1 -timeout 20m ./...

# With clamd and rspamd installed (and root), make bench also measures Easymail scanning every message
# ("easymail-scan", BENCH_SCAN=auto); bench-scan measures only Easymail with and without scanning.
bench:
	bash bench/run.sh

bench-scan:
	BENCH_SCAN=1 BENCH_ONLY=easymail bash bench/run.sh

# A registered customer's throughput while unregistered and slowloris clients flood the listener.
bench-flood:
	bash bench/flood.sh

# The message log's searches, trace and statistics on a generated log (2 million messages: 8.3 million rows,
# in a temporary SQLite database; about two minutes). BENCH_MSGLOG_ARGS="-messages 5000000" for 20 million rows.
bench-msglog:
	$(GO) run ./bench/msglog $(BENCH_MSGLOG_ARGS)

check:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then \
		echo "gofmt -l reports unformatted files:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
