# Makefile: the developer's and CI's entry points. `make test` is the full test command.

GO          ?= go
STATICCHECK ?= $(shell command -v staticcheck 2>/dev/null || echo $(HOME)/go/bin/staticcheck)
BIN         ?= easymail
# ARGS go to "easymail serve", e.g. make run ARGS="--config easymail.yaml".
ARGS        ?=
# The package's version (Debian form: starts with a digit) and architecture (as GOARCH), and where make deb
# and make man write.
VERSION     ?= $(shell v=$$(git describe --tags --match 'v[0-9]*' 2>/dev/null | sed 's/^v//'); \
	[ -n "$$v" ] || v=0.0.0~git$$(git log -1 --format=%cd.%h --date=format:%Y%m%d 2>/dev/null || echo 0); echo $$v)
ARCH        ?= $(shell $(GO) env GOARCH)
DIST        ?= dist
LDFLAGS     := -X easymail/internal/cli.version=$(VERSION)

# Go lives at /usr/local/go on the project's machines; a Go already on PATH comes first.
export PATH := $(PATH):/usr/local/go/bin

.PHONY: build run test bench bench-quick bench-scan bench-deps bench-flood bench-msglog check man deb

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/easymail

# The manual page, generated from the command table: $(DIST)/easymail.1 (man -l dist/easymail.1).
man:
	mkdir -p $(DIST)
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/easymail man > $(DIST)/easymail.1

# The Debian package $(DIST)/easymail_$(VERSION)_$(ARCH).deb (nfpm as a Go library, packaging/mkdeb): the
# binary, the systemd unit, /etc/easymail/easymail.yaml, the man page and the shell completions.
deb:
	mkdir -p $(DIST)
	CGO_ENABLED=0 GOOS=linux GOARCH=$(ARCH) $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(DIST)/easymail-linux-$(ARCH) ./cmd/easymail
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/easymail man | gzip -9n > $(DIST)/easymail.1.gz
	for sh in bash zsh fish; do $(GO) run ./cmd/easymail completion $$sh > $(DIST)/completion.$$sh || exit 1; done
	$(GO) run ./packaging/mkdeb -version $(VERSION) -arch $(ARCH) -binary $(DIST)/easymail-linux-$(ARCH) -dist $(DIST)

run: build
	./$(BIN) serve $(ARGS)

# The race detector is always on. The timeout is above the slowest package (e2e), below CI's limit.
test:
	$(GO) test -race -count=1 -timeout 20m ./...

# Easymail against Postfix, as root, in one run: plain (no signing) vs a plain Postfix, signing vs Postfix +
# OpenDKIM, scanning and signing vs Postfix + clamav-milter + rspamd's milter + OpenDKIM (the modes whose
# programs are installed: make bench-deps); then the TLS policies' cost over STARTTLS (tls, tls1: MTA-STS
# enforce and tls_policy verify vs may). 3 rounds, about 6 minutes; bench-quick: one size, one round.
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

# The message log's searches, trace and statistics, then the portal's pages (operator and customer sessions,
# p50/p99 server time), on a generated log of 5 million messages (20.7 million rows with their recipients and
# attempts, 5.9 GB in a temporary SQLite database; about 3 minutes to generate, then the timings).
# BENCH_MSGLOG_ARGS="-messages 2000000" for a smaller log, "-portal-samples 0" to leave the portal out.
bench-msglog:
	$(GO) run ./bench/msglog $(BENCH_MSGLOG_ARGS)

check:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then \
		echo "gofmt -l reports unformatted files:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
