package cli

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"easymail/internal/api"
	"easymail/internal/apiserver"
	"easymail/internal/authz"
	"easymail/internal/config"
	"easymail/internal/ippool"
	"easymail/internal/store"
)

// newPoolCLIEnv is newCLIEnv with two outbound IP pools behind the API.
func newPoolCLIEnv(t *testing.T) *cliEnv {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Pools = []config.Pool{
		{Name: "default", IPs: []config.PoolAddr{{Address: "192.0.2.1", HELO: "out1.relay.example", Weight: 1}}},
		{Name: "backup", IPs: []config.PoolAddr{{Address: "192.0.2.9", HELO: "out9.relay.example", Weight: 1}}},
	}
	pools, err := ippool.New(ctx, ippool.Options{Pools: cfg.Pools, IPPool: cfg.IPPool, Hold: time.Hour, Store: ippool.DBStore{DB: db}})
	if err != nil {
		t.Fatal(err)
	}
	e := &cliEnv{db: db, queue: &fakeQueue{db: db}, cfg: &cfg}
	h, err := apiserver.New(apiserver.Options{DB: db, Config: &cfg, Queue: e.queue, Pools: pools})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e.url = srv.URL
	if err := authz.Bootstrap(ctx, db, cfg.DataDir, "", nil); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(cfg.DataDir, authz.AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	e.token = strings.TrimSpace(string(b))
	return e
}

func TestPoolCommands(t *testing.T) {
	e := newPoolCLIEnv(t)
	out := e.ok(t, "pool", "list")
	mustContain(t, out, "POOL", "default", "backup", "192.0.2.9", "active=1")

	out = e.ok(t, "ip", "add", "default", "192.0.2.2", "--helo", "out2.relay.example", "--weight", "2", "--warmup", "none")
	if field(t, out, "state") != "active" || field(t, out, "weight") != "2" || field(t, out, "origin") != "api" {
		t.Fatalf("ip add:\n%s", out)
	}
	out = e.ok(t, "ip", "add", "default", "192.0.2.3", "--helo", "out3.relay.example", "--warmup", "20,40")
	if field(t, out, "state") != "warming" || !strings.Contains(field(t, out, "warmup"), "day 1 of 2, 0 of 20") {
		t.Fatalf("ip add with warm-up:\n%s", out)
	}
	out = e.ok(t, "ip", "list", "--pool", "default")
	if rowIndex(out, "192.0.2.1") < 0 || rowIndex(out, "192.0.2.2") < 0 || rowIndex(out, "192.0.2.9") >= 0 {
		t.Fatalf("ip list --pool:\n%s", out)
	}
	out = e.ok(t, "ip", "drain", "192.0.2.2", "--reason", "moving racks")
	if field(t, out, "state") != "draining" || field(t, out, "reason") != "moving racks" {
		t.Fatalf("ip drain:\n%s", out)
	}
	if out = e.ok(t, "ip", "pause", "192.0.2.2"); field(t, out, "state") != "paused" {
		t.Fatalf("ip pause:\n%s", out)
	}
	if out = e.ok(t, "ip", "resume", "192.0.2.2"); field(t, out, "state") != "active" {
		t.Fatalf("ip resume:\n%s", out)
	}
	out = e.ok(t, "ip", "show", "192.0.2.1", "--json")
	var ip api.IP
	if err := json.Unmarshal([]byte(out), &ip); err != nil || ip.Address != "192.0.2.1" || ip.FCrDNS.Status != "unchecked" {
		t.Fatalf("ip show --json: %v\n%s", err, out)
	}
	mustContain(t, e.ok(t, "ip", "remove", "default", "192.0.2.2"), "removed")

	// The relay behind this API runs no DNSBL checks.
	if code, _, errs := e.run(t, "ip", "check", "192.0.2.1"); code != 1 || !strings.Contains(errs, "HTTP 404") {
		t.Fatalf("ip check without checker: %d %s", code, errs)
	}
	if code, _, errs := e.run(t, "ip", "add", "default", "nope", "--helo", "x.relay.example"); code != 1 || !strings.Contains(errs, "address:") {
		t.Fatalf("bad address: %d %s", code, errs)
	}
	if code, _, errs := e.run(t, "ip", "add", "default", "192.0.2.9", "--helo", "x.relay.example"); code != 1 || !strings.Contains(errs, "HTTP 409") {
		t.Fatalf("duplicate: %d %s", code, errs)
	}
	for _, args := range [][]string{
		{"ip", "add", "default", "192.0.2.5"},
		{"ip", "add", "default", "192.0.2.5", "--helo", "x.relay.example", "--warmup", "fast"},
		{"ip", "remove", "default"},
		{"ip", "resume", "192.0.2.1", "--reason", "x"},
	} {
		if code, _, errs := e.run(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want a usage error: %s", args, code, errs)
		}
	}

	out = e.ok(t, "customer", "add", "--name", "Acme", "--contact", "it@acme.example", "--fallback-pool", "backup")
	if field(t, out, "pool") != "default" || field(t, out, "fallback_pool") != "backup" {
		t.Fatalf("customer add --fallback-pool:\n%s", out)
	}
	id := field(t, out, "id")
	if code, _, errs := e.run(t, "customer", "update", id, "--fallback-pool", "default"); code != 1 || !strings.Contains(errs, "--fallback-pool: ") || strings.Contains(errs, "fallback_pool") {
		t.Fatalf("fallback = pool: %d %s", code, errs)
	}
}
