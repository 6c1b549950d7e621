package cli

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"easymail/internal/api"
	"easymail/internal/apiserver"
	"easymail/internal/authz"
	"easymail/internal/config"
	"easymail/internal/queue"
	"easymail/internal/store"
)

// fakeQueue records the operations and applies hold and release to the messages table.
type fakeQueue struct {
	db    *store.DB
	mu    sync.Mutex
	calls []string
}

func (q *fakeQueue) do(ctx context.Context, op, id, update string) error {
	q.mu.Lock()
	q.calls = append(q.calls, op+" "+id)
	q.mu.Unlock()
	return q.db.Tx(ctx, func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM messages WHERE id = ?`, id).Scan(&one); err == sql.ErrNoRows {
			return fmt.Errorf("%s: %w", id, queue.ErrNotFound)
		}
		if update == "" {
			return nil
		}
		_, err := tx.ExecContext(ctx, update, id)
		return err
	})
}

func (q *fakeQueue) Retry(ctx context.Context, id string) error { return q.do(ctx, "retry", id, "") }
func (q *fakeQueue) Hold(ctx context.Context, id string) error {
	return q.do(ctx, "hold", id, `UPDATE messages SET held = 1 WHERE id = ?`)
}
func (q *fakeQueue) Release(ctx context.Context, id string) error {
	return q.do(ctx, "release", id, `UPDATE messages SET held = 0 WHERE id = ?`)
}
func (q *fakeQueue) Delete(ctx context.Context, id string) error { return q.do(ctx, "delete", id, "") }

type cliEnv struct {
	db    *store.DB
	url   string
	token string
	queue *fakeQueue
	cfg   *config.Config
}

func newCLIEnv(t *testing.T) *cliEnv {
	t.Helper()
	db := openDB(t, t.TempDir())
	q := &fakeQueue{db: db}
	e := serveCLI(t, apiserver.Options{DB: db, Queue: q})
	e.queue = q
	return e
}

// openDB opens a fresh database in dir, closed at the test's end.
func openDB(t *testing.T, dir string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(dir, "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// serveCLI serves the API with o (its Config made here) on a test server, bootstraps the admin token, and
// returns the environment to run the CLI against it.
func serveCLI(t *testing.T, o apiserver.Options) *cliEnv {
	t.Helper()
	cfg := config.Default()
	cfg.Hostname = "relay.example.net"
	cfg.DataDir = t.TempDir()
	o.Config = &cfg
	e := &cliEnv{db: o.DB, cfg: &cfg}
	h, err := apiserver.New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg.API.PublicURL = srv.URL
	e.url = srv.URL
	if err := authz.Bootstrap(context.Background(), o.DB, cfg.DataDir, "", nil); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(cfg.DataDir, authz.AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	e.token = strings.TrimSpace(string(b))
	return e
}

// run runs the CLI with the server's --api and --token appended and returns exit code, stdout, stderr.
func (e *cliEnv) run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runRaw(append(args, "--api", e.url, "--token", e.token)...)
}

func runRaw(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// ok runs the CLI and fails the test unless it exits 0.
func (e *cliEnv) ok(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errs := e.run(t, args...)
	if code != 0 {
		t.Fatalf("easymail %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// field returns the value of "key: value" in a key-value block.
func field(t *testing.T, out, key string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(key) + `:\s+(.*)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %q in:\n%s", key, out)
	}
	return strings.TrimSpace(m[1])
}

// rowIndex returns the offset of the table row whose first cell is id, or -1.
func rowIndex(out, id string) int {
	loc := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(id) + `\s`).FindStringIndex(out)
	if loc == nil {
		return -1
	}
	return loc[0]
}

func mustContain(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Fatalf("output lacks %q:\n%s", w, out)
		}
	}
}

func TestCustomerCommands(t *testing.T) {
	e := newCLIEnv(t)
	out := e.ok(t, "customer", "add", "--name", "Acme SA", "--contact", "it@acme.example", "--anti-spoofing=false")
	id := field(t, out, "id")
	if field(t, out, "status") != "pending" || field(t, out, "anti_spoofing") != "false" ||
		!strings.HasPrefix(field(t, out, "onboarding_url"), e.url+"/onboard/") {
		t.Fatalf("customer add output:\n%s", out)
	}

	// Global flags before the command work too.
	out = e.ok(t, "customer", "domain", "add", id, "Acme.Example")
	if field(t, out, "domain") != "acme.example" || field(t, out, "dkim") != "none yet" {
		t.Fatalf("domain add:\n%s", out)
	}
	code, out, errs := runRaw("--api", e.url, "--token="+e.token, "customer", "relay-host", "add", id, "mta.acme.example")
	if code != 0 {
		t.Fatalf("relay-host add with leading globals: %d %s", code, errs)
	}
	hostID := field(t, out, "id")
	out = e.ok(t, "customer", "source-ip", "add", id, "127.0.0.1")
	ipID := field(t, out, "id")
	if field(t, out, "cidr") != "127.0.0.1/32" {
		t.Fatalf("source-ip add:\n%s", out)
	}

	out = e.ok(t, "customer", "list")
	mustContain(t, out, "ID", "NAME", id, "Acme SA", "pending", "acme.example")
	out = e.ok(t, "customer", "show", id)
	mustContain(t, out, "Domains:", "acme.example", "Relay hosts:", hostID, "mta.acme.example", "Source IPs:", ipID, "127.0.0.1/32")

	out = e.ok(t, "customer", "update", id, "--status", "active", "--name", "Acme", "--topology-hiding=false")
	if field(t, out, "status") != "active" || field(t, out, "name") != "Acme" || field(t, out, "topology_hiding") != "false" {
		t.Fatalf("update:\n%s", out)
	}
	out = e.ok(t, "customer", "onboarding", id)
	if !strings.HasPrefix(field(t, out, "onboarding_url"), e.url+"/onboard/") {
		t.Fatalf("onboarding:\n%s", out)
	}

	// --json prints the API's JSON.
	out = e.ok(t, "customer", "show", id, "--json")
	var c api.Customer
	if err := json.Unmarshal([]byte(out), &c); err != nil || c.ID != id || len(c.Domains) != 1 || c.Status != "active" {
		t.Fatalf("customer show --json: %v\n%s", err, out)
	}

	e.ok(t, "customer", "relay-host", "remove", id, hostID)
	e.ok(t, "customer", "source-ip", "remove", id, ipID)
	mustContain(t, e.ok(t, "customer", "domain", "remove", id, "acme.example"), "removed")
	out = e.ok(t, "customer", "show", id, "--json")
	c = api.Customer{}
	json.Unmarshal([]byte(out), &c)
	if len(c.Domains)+len(c.RelayHosts)+len(c.SourceIPs) != 0 {
		t.Fatalf("after removals: %s", out)
	}

	// API errors: exit 1, message on stderr naming the field.
	code, _, errs = e.run(t, "customer", "domain", "add", id, "bad..example")
	if code != 1 || !strings.Contains(errs, "domain") || !strings.Contains(errs, "422") {
		t.Fatalf("bad domain: %d %q", code, errs)
	}
	code, _, errs = e.run(t, "customer", "show", "nope")
	if code != 1 || !strings.Contains(errs, "404") {
		t.Fatalf("unknown customer: %d %q", code, errs)
	}

	// Without --yes nothing is deleted.
	if code, _, errs := e.run(t, "customer", "delete", id); code != 2 || !strings.Contains(errs, "add --yes to confirm") {
		t.Fatalf("customer delete without --yes: exit %d, %s", code, errs)
	}
	e.ok(t, "customer", "show", id)
	mustContain(t, e.ok(t, "customer", "delete", id, "--yes"), "deleted")
	if code, _, _ := e.run(t, "customer", "show", id); code != 1 {
		t.Fatalf("show after delete: %d", code)
	}
}

func TestQueueAndMessageCommands(t *testing.T) {
	e := newCLIEnv(t)
	id := field(t, e.ok(t, "customer", "add", "--name", "Acme", "--contact", "it@acme.example"), "id")
	at := time.Date(2030, 3, 1, 10, 0, 0, 0, time.UTC)
	err := e.db.Tx(context.Background(), func(tx *sql.Tx) error {
		for i, m := range []struct{ id, status, subject string }{
			{"M1", "deferred", "Invoice \x1b[31mred"}, {"M2", "delivered", "Report"},
		} {
			ts := store.Millis(at.Add(time.Duration(i) * time.Minute))
			if _, err := tx.Exec(`INSERT INTO messages (id, node_id, customer_id, sender, message_id, subject, size, status,
				received_at, expires_at) VALUES (?, 'n', ?, 'alice@acme.example', ?, ?, 10, ?, ?, ?)`,
				m.id, id, "<"+m.id+"@acme.example>", m.subject, m.status, ts, ts+1000); err != nil {
				return err
			}
			if _, err := tx.Exec(`INSERT INTO recipients (message_id, idx, address, domain, status, next_attempt_at, updated_at,
				last_code, last_reply, remote_mx) VALUES (?, 0, 'bob@dest.example', 'dest.example', ?, ?, ?, 451, 'greylisted', 'mx.dest.example')`,
				m.id, m.status, ts, ts); err != nil {
				return err
			}
			if _, err := tx.Exec(`INSERT INTO attempts (message_id, rcpt_idx, attempt, started_at, outcome, remote_mx, code, reply)
				VALUES (?, 0, 1, ?, 'deferred', 'mx.dest.example', 451, 'greylisted')`, m.id, ts); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	out := e.ok(t, "queue", "list")
	mustContain(t, out, "M1", "deferred", "alice@acme.example", "bob@dest.example")
	if rowIndex(out, "M2") >= 0 || rowIndex(out, "M1") < 0 {
		t.Fatalf("queue list shows the wrong messages:\n%s", out)
	}
	out = e.ok(t, "trace", "M1")
	mustContain(t, out, "Recipients:", "Attempts:", "mx.dest.example", "451 greylisted")
	if strings.Contains(out, "\x1b") {
		t.Fatal("a terminal escape from the subject reached the output")
	}
	if field(t, out, "id") != "M1" || field(t, out, "status") != "deferred" {
		t.Fatalf("trace:\n%s", out)
	}
	mustContain(t, e.ok(t, "queue", "show", "M1"), "Attempts:")

	mustContain(t, e.ok(t, "queue", "hold", "M1"), "held")
	if field(t, e.ok(t, "trace", "M1"), "status") != "held" {
		t.Fatal("not held")
	}
	mustContain(t, e.ok(t, "queue", "release", "M1"), "released")
	e.ok(t, "queue", "retry", "M1")
	e.ok(t, "queue", "delete", "M1")
	if got := strings.Join(e.queue.calls, ","); got != "hold M1,release M1,retry M1,delete M1" {
		t.Fatalf("queue calls %s", got)
	}
	if code, _, errs := e.run(t, "queue", "retry", "nope"); code != 1 || !strings.Contains(errs, "404") {
		t.Fatalf("retry unknown: %d %s", code, errs)
	}

	out = e.ok(t, "messages", "search", "--sender", "alice@acme.example")
	if m1, m2 := rowIndex(out, "M1"), rowIndex(out, "M2"); m1 < 0 || m2 < 0 || m2 > m1 {
		t.Fatalf("search not newest first:\n%s", out)
	}
	out = e.ok(t, "messages", "search", "--status", "delivered", "--json")
	var list []api.MessageSummary
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 || list[0].ID != "M2" {
		t.Fatalf("search --json: %v %s", err, out)
	}
	out = e.ok(t, "messages", "search", "--since", "2030-03-01T10:00:30Z", "--until", "2030-03-02", "--json")
	list = nil
	json.Unmarshal([]byte(out), &list)
	if len(list) != 1 || list[0].ID != "M2" {
		t.Fatalf("search by time: %s", out)
	}
	out = e.ok(t, "messages", "search", "--message-id", "M1@acme.example", "--recipient", "bob@dest.example", "--customer", id)
	if rowIndex(out, "M1") < 0 || rowIndex(out, "M2") >= 0 {
		t.Fatalf("search by message-id, recipient and customer:\n%s", out)
	}
	if code, _, errs := e.run(t, "messages", "search", "--status", "vanished"); code != 1 || !strings.Contains(errs, "status") {
		t.Fatalf("bad status: %d %s", code, errs)
	}
	if code, _, _ := e.run(t, "messages", "search", "--since", "last tuesday"); code != 2 {
		t.Fatalf("bad --since: exit %d", code)
	}
}

func TestTokenCommands(t *testing.T) {
	e := newCLIEnv(t)
	cust := field(t, e.ok(t, "customer", "add", "--name", "Acme", "--contact", "it@acme.example"), "id")
	out := e.ok(t, "token", "create", "--role", "customer", "--customer", cust, "--name", "portal")
	secret, tokID := field(t, out, "token"), field(t, out, "id")
	if !strings.HasPrefix(secret, "em_") {
		t.Fatalf("token create:\n%s", out)
	}
	// The customer token reads its own customer and may not change anything.
	code, out, _ := runRaw("customer", "list", "--api", e.url, "--token", secret)
	if code != 0 || !strings.Contains(out, cust) {
		t.Fatalf("customer token list: %d %s", code, out)
	}
	code, _, errs := runRaw("customer", "add", "--name", "X", "--contact", "x@x.example", "--api", e.url, "--token", secret)
	if code != 1 || !strings.Contains(errs, "403") {
		t.Fatalf("customer token writes: %d %s", code, errs)
	}
	out = e.ok(t, "token", "list")
	mustContain(t, out, "ROLE", "operator", "admin", "customer", "portal", tokID)
	e.ok(t, "token", "revoke", tokID)
	if code, _, errs := runRaw("customer", "list", "--api", e.url, "--token", secret); code != 1 || !strings.Contains(errs, "401") {
		t.Fatalf("revoked token: %d %s", code, errs)
	}
	if code, _, errs := e.run(t, "token", "create", "--role", "god"); code != 1 || !strings.Contains(errs, "role") {
		t.Fatalf("bad role: %d %s", code, errs)
	}
}

func TestClientResolution(t *testing.T) {
	e := newCLIEnv(t)
	// From the environment.
	t.Setenv("EASYMAIL_API", e.url)
	t.Setenv("EASYMAIL_TOKEN", e.token)
	if code, _, errs := runRaw("customer", "list"); code != 0 {
		t.Fatalf("from the environment: %d %s", code, errs)
	}
	t.Setenv("EASYMAIL_TOKEN", "em_wrong")
	if code, _, _ := runRaw("customer", "list"); code != 1 {
		t.Fatal("a wrong EASYMAIL_TOKEN was not used")
	}
	// From the configuration: api.listen and <data_dir>/admin.token.
	t.Setenv("EASYMAIL_API", "")
	t.Setenv("EASYMAIL_TOKEN", "")
	conf := filepath.Join(t.TempDir(), "easymail.yaml")
	listen := strings.TrimPrefix(e.url, "http://")
	yaml := fmt.Sprintf("hostname: relay.example.net\ndata_dir: %s\napi:\n  listen: %q\n", e.cfg.DataDir, listen)
	if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := runRaw("customer", "list", "--config", conf); code != 0 {
		t.Fatalf("from the configuration: %d %s", code, errs)
	}
	// No token anywhere.
	empty := filepath.Join(t.TempDir(), "empty.yaml")
	os.WriteFile(empty, []byte(fmt.Sprintf("data_dir: %s\n", t.TempDir())), 0o600)
	if code, _, errs := runRaw("customer", "list", "--config", empty); code != 1 || !strings.Contains(errs, "no API token") {
		t.Fatalf("without a token: %d %s", code, errs)
	}
	if code, _, errs := runRaw("customer", "list", "--config", "/nonexistent.yaml"); code != 1 || !strings.Contains(errs, "configuration") {
		t.Fatalf("missing config: %d %s", code, errs)
	}
}

func TestUsage(t *testing.T) {
	for _, c := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{nil, 2, "", "usage: easymail"},
		{[]string{"help"}, 0, "customer domain add", ""},
		{[]string{"--help"}, 0, "queue retry", ""},
		{[]string{"help", "customer", "add"}, 0, "--contact", ""},
		{[]string{"help", "customer"}, 0, "customer relay-host add", ""},
		{[]string{"help", "serve"}, 0, "--config", ""},
		{[]string{"help", "frobnicate"}, 2, "", "unknown command"},
		{[]string{"customer", "add", "-h"}, 0, "--contact", ""},
		{[]string{"queue", "list", "--help"}, 0, "--customer", ""},
		{[]string{"frobnicate"}, 2, "", "unknown command"},
		{[]string{"customer"}, 2, "", "customer add"},
		{[]string{"customer", "domain"}, 2, "", "customer domain remove"},
		{[]string{"customer", "frob"}, 2, "", "subcommand"},
		{[]string{"customer", "show"}, 2, "", "needs 1 argument"},
		{[]string{"customer", "show", "a", "b"}, 2, "", "needs 1 argument"},
		{[]string{"customer", "list", "extra"}, 2, "", "takes no arguments"},
		{[]string{"customer", "list", "--bogus"}, 2, "", "bogus"},
		{[]string{"customer", "add", "--name", "x"}, 2, "", "--contact are required"},
		{[]string{"customer", "update", "C1"}, 2, "", "nothing to change"},
		{[]string{"customer", "add", "--name", "x", "--contact", "a@b.c", "--anti-spoofing=maybe"}, 2, "", "boolean"},
		{[]string{"queue", "list", "--limit", "ten"}, 2, "", "limit"},
		{[]string{"token", "create"}, 2, "", "--role is required"},
		{[]string{"version"}, 0, "easymail ", ""},
	} {
		code, out, errs := runRaw(append(c.args, "--api", "http://127.0.0.1:1", "--token", "t")...)
		if len(c.args) == 0 {
			code, out, errs = runRaw()
		}
		if code != c.code || !strings.Contains(out, c.stdout) || !strings.Contains(errs, c.stderr) {
			t.Errorf("easymail %s: exit %d\nstdout: %s\nstderr: %s\nwant exit %d, stdout ~ %q, stderr ~ %q",
				strings.Join(c.args, " "), code, out, errs, c.code, c.stdout, c.stderr)
		}
	}
}

func TestParseInterspersed(t *testing.T) {
	e := newCLIEnv(t)
	// Flags after and between positionals; "--" ends flags.
	id := field(t, e.ok(t, "customer", "add", "--name", "Acme", "--contact", "it@acme.example"), "id")
	out := e.ok(t, "customer", "domain", "add", "--json", id, "acme.example")
	var d api.Domain
	if err := json.Unmarshal([]byte(out), &d); err != nil || d.Domain != "acme.example" {
		t.Fatalf("interspersed --json: %v %s", err, out)
	}
	code, _, errs := runRaw("customer", "show", "--api", e.url, "--token", e.token, "--", "--json")
	if code != 1 || !strings.Contains(errs, "404") {
		t.Fatalf("after --: %d %s", code, errs)
	}
}

func TestParseTimeArg(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2030-01-01T00:00:00Z": time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
		"2029-12-31":           time.Date(2029, 12, 31, 0, 0, 0, 0, time.UTC),
		"24h":                  now.Add(-24 * time.Hour),
	} {
		got, err := parseTimeArg(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseTimeArg(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1h", "tomorrow"} {
		if _, err := parseTimeArg(in, now); err == nil {
			t.Errorf("parseTimeArg(%q) accepted", in)
		}
	}
}

func TestDialable(t *testing.T) {
	for in, want := range map[string]string{
		"0.0.0.0:8025":   "127.0.0.1:8025",
		"[::]:8025":      "[::1]:8025",
		":8025":          "127.0.0.1:8025",
		"10.0.0.1:8025":  "10.0.0.1:8025",
		"localhost:8025": "localhost:8025",
	} {
		if got := dialable(in); got != want {
			t.Errorf("dialable(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSourceIPWithHostBitsWarns: a CIDR with host bits set is stored as its network, and both the API's
// answer (warning) and the CLI (on standard error) say so and show what was stored; an exact one gets none.
func TestSourceIPWithHostBitsWarns(t *testing.T) {
	e := newCLIEnv(t)
	id := field(t, e.ok(t, "customer", "add", "--name", "Acme", "--contact", "it@acme.example"), "id")
	code, out, errs := e.run(t, "customer", "source-ip", "add", id, "192.0.2.77/28")
	if code != 0 || field(t, out, "cidr") != "192.0.2.64/28" ||
		!strings.Contains(errs, "warning: 192.0.2.77/28 has host bits set: stored as the network 192.0.2.64/28, which admits 192.0.2.64 to 192.0.2.79") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errs)
	}
	var ip api.SourceIP
	if err := json.Unmarshal([]byte(e.ok(t, "customer", "source-ip", "add", id, "2001:db8::1:5/112", "--json")), &ip); err != nil ||
		ip.CIDR != "2001:db8::1:0/112" || !strings.Contains(ip.Warning, "2001:db8::1:0 to 2001:db8::1:ffff") {
		t.Fatalf("json: %v %+v", err, ip)
	}
	code, _, errs = e.run(t, "customer", "source-ip", "add", id, "198.51.100.0/24")
	if code != 0 || errs != "" {
		t.Fatalf("exact prefix: exit %d, stderr %q", code, errs)
	}
}
