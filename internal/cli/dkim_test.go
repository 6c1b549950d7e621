package cli

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"easymail/internal/api"
	"easymail/internal/apiserver"
	"easymail/internal/authz"
	"easymail/internal/config"
	"easymail/internal/dkimsign"
	"easymail/internal/readiness"
	"easymail/internal/resolver"
	"easymail/internal/store"
	"easymail/internal/testkit"
)

// newDKIMCLIEnv is newCLIEnv with DKIM signing enabled over a fake DNS.
func newDKIMCLIEnv(t *testing.T) (*cliEnv, *testkit.DNS) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	d := testkit.NewDNS(t)
	res, err := resolver.New([]string{d.Addr()}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Hostname = "relay.example.net"
	cfg.DataDir = t.TempDir()
	mk, err := dkimsign.ParseMasterKey("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "test")
	if err != nil {
		t.Fatal(err)
	}
	m, err := dkimsign.New(dkimsign.Options{DB: db, Resolver: res, MasterKey: mk, RSABits: 1024})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := readiness.New(readiness.Options{DB: db, Resolver: res, Keys: m, SPFDomain: cfg.SPFDomain(), Pools: cfg.Pools})
	if err != nil {
		t.Fatal(err)
	}
	e := &cliEnv{db: db, queue: &fakeQueue{db: db}, cfg: &cfg}
	h, err := apiserver.New(apiserver.Options{DB: db, Config: &cfg, Queue: e.queue, DKIM: m, Readiness: rc})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e.url = srv.URL
	if e.token, _, err = authz.Create(ctx, db, authz.RoleOperator, "", "cli test"); err != nil {
		t.Fatal(err)
	}
	return e, d
}

func TestDKIMCommands(t *testing.T) {
	e, d := newDKIMCLIEnv(t)
	var c api.Customer
	if err := json.Unmarshal([]byte(e.ok(t, "customer", "add", "--name", "Acme", "--contact", "it@acme.example", "--json")), &c); err != nil {
		t.Fatal(err)
	}
	out := e.ok(t, "customer", "domain", "add", c.ID, "acme.example")
	rec := regexp.MustCompile(`(em\d{6})\._domainkey\.acme\.example TXT (v=DKIM1; k=rsa; p=\S+)`).FindStringSubmatch(field(t, out, "dkim"))
	if rec == nil {
		t.Fatalf("domain add shows no DKIM record:\n%s", out)
	}
	out = e.ok(t, "customer", "domain", "dkim", c.ID, "acme.example")
	mustContain(t, out, rec[1], "active", "Records to publish", rec[1]+"._domainkey.acme.example TXT \""+rec[2]+"\"")
	// The zone file form: an absolute name, the value in strings of at most 255 bytes that join to it.
	zone := regexp.MustCompile(`(?m)^` + rec[1] + `\._domainkey\.acme\.example\. IN TXT (\( .* \)|"[^"]*")$`).FindStringSubmatch(out)
	if zone == nil {
		t.Fatalf("no zone file record:\n%s", out)
	}
	var joined string
	for _, q := range regexp.MustCompile(`"([^"]*)"`).FindAllStringSubmatch(zone[1], -1) {
		if len(q[1]) > 255 {
			t.Fatalf("a string of %d bytes in %s", len(q[1]), zone[0])
		}
		joined += q[1]
	}
	if joined != rec[2] {
		t.Fatalf("the zone file strings join to %q, not the record %q", joined, rec[2])
	}
	if js := e.ok(t, "customer", "domain", "dkim", c.ID, "acme.example", "--json"); !strings.Contains(js, `"zone": "`+rec[1]+`._domainkey.acme.example. IN TXT `) {
		t.Fatalf("the JSON lacks the zone form:\n%s", js)
	}

	d.AddTXT(rec[1]+"._domainkey.acme.example", rec[2])
	out = e.ok(t, "customer", "domain", "rotate-dkim", c.ID, "acme.example")
	mustContain(t, out, rec[1]+"-2", "pending")
	code, _, errs := e.run(t, "customer", "domain", "rotate-dkim", c.ID, "acme.example")
	if code != 1 || !strings.Contains(errs, "already in progress") || !strings.Contains(errs, "HTTP 409") {
		t.Fatalf("second rotation: exit %d, %s", code, errs)
	}
	out = e.ok(t, "customer", "domain", "add-ed25519", c.ID, "acme.example")
	mustContain(t, out, rec[1]+"e", "ed25519")
	out = e.ok(t, "customer", "domain", "check-dkim", c.ID, "acme.example")
	mustContain(t, out, "pending")

	d.AddTXT("acme.example", "v=spf1 include:_spf.example.net ~all")
	d.AddTXT("_spf.example.net", "v=spf1 ip4:127.0.0.0/8 -all")
	d.AddTXT("_dmarc.acme.example", "v=DMARC1; p=none")
	out = e.ok(t, "customer", "domain", "readiness", c.ID, "acme.example")
	if field(t, out, "ready") != "true" || field(t, out, "dmarc_strength") != "monitoring" {
		t.Fatalf("readiness:\n%s", out)
	}
	mustContain(t, out, "SPF", "pass", "DMARC", "warn", "127.0.0.1", "unknown")
	var rep api.Readiness
	if err := json.Unmarshal([]byte(e.ok(t, "customer", "domain", "readiness", c.ID, "acme.example", "--json")), &rep); err != nil || !rep.Ready {
		t.Fatalf("readiness --json: %+v (%v)", rep, err)
	}
	if code, _, errs := e.run(t, "customer", "domain", "readiness", c.ID, "other.example"); code != 1 || !strings.Contains(errs, "404") {
		t.Fatalf("unknown domain: exit %d, %s", code, errs)
	}
	if code, _, _ := e.run(t, "customer", "domain", "dkim", c.ID); code != 2 {
		t.Fatalf("missing argument: exit %d, want 2", code)
	}
}
