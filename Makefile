# Makefile: the developer's and CI's entry points. `make test` is the full test command.

GO          ?= go
STATICCHECK ?= $(shell command -v staticcheck 2>/dev/null || echo $(HOME)/go/bin/staticcheck)
BIN         ?= easymail
# ARGS go to "easymail serve", e.g. make run ARGS="--config easymail.yaml".
ARGS        ?=

# Go lives at /usr/local/go on the project's machines; a Go already on PATH comes first.
export PATH := $(PATH):/usr/local/go/bin

.PHONY: build run test bench bench-quick bench-scan bench-deps bench-flood bench-msglog check

build:
	$(GO) build -o $(BIN) ./cmd/easymail

run: build
	./$(BIN) serve $(ARGS)

# The race detector is always on. The timeout is above the slowest package (e2e), below CI's limit.
test:
	$(GO) test -race -count=1 -timeout 20m ./...

# Easymail against Postfix, as root, in one run: plain (no signing) vs a plain Postfix, signing vs Postfix +
# OpenDKIM, scanning and signing vs Postfix + clamav-milter + rspamd's milter + OpenDKIM (the modes whose
# programs are installed: make bench-deps). 3 rounds, about 5 minutes; bench-quick: one size, one round.
# Knobs: the header of bench/run.sh.
bench:
	bash bench/run.sh

bench-quick:
	BENCH_QUICK=1 bash bench/run.sh

# The scanning mode only: Easymail scanning and signing against Postfix with the same scanners as milters.
bench-scan:
	BENCH_MODES=scan bash bench/run.sh

# Installs Postfix, OpenDKIM, clamd, clamav-milter and rspamd with apt-get (Debian 12, root), no service started.
bench-deps:
	bash bench/deps.sh

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
