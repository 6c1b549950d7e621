package customer

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"easymail/internal/fielderr"
	"easymail/internal/store"
)

func newService(t *testing.T, allowPrivate bool) *Service {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &Service{DB: db, Pools: []string{"default", "premium"}, AllowPrivate: allowPrivate}
}

func mustCreate(t *testing.T, s *Service, name string) *Customer {
	t.Helper()
	c, err := s.Create(context.Background(), Create{Name: name, ContactEmail: "it@" + name + ".example"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func wantField(t *testing.T, err error, field string) {
	t.Helper()
	var fe *fielderr.Error
	if !errors.As(err, &fe) || fe.Field != field || fe.Conflict {
		t.Fatalf("err = %v, want an invalid-input error on %q", err, field)
	}
}

func wantConflict(t *testing.T, err error, field string) {
	t.Helper()
	var ce *fielderr.Error
	if !errors.As(err, &ce) || ce.Field != field || !ce.Conflict {
		t.Fatalf("err = %v, want a conflict on %q", err, field)
	}
}

func TestCreateGetUpdateDelete(t *testing.T) {
	ctx := context.Background()
	s := newService(t, true)
	off := false
	c, err := s.Create(ctx, Create{Name: " Acme ", ContactEmail: "Jane <jane@acme.example>", AntiSpoofing: &off})
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "Acme" || c.ContactEmail != "jane@acme.example" || c.Pool != "default" || c.Status != StatusPending ||
		!c.TopologyHiding || c.AntiSpoofing || c.ID == "" {
		t.Fatalf("created %+v", c)
	}
	got, err := s.Get(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Acme" || got.AntiSpoofing || !got.TopologyHiding || !got.CreatedAt.Equal(c.CreatedAt) {
		t.Fatalf("got %+v, want %+v", got, c)
	}

	name, status, pool, on := "Acme SA", StatusActive, "premium", true
	up, err := s.Update(ctx, c.ID, Update{Name: &name, Status: &status, Pool: &pool, AntiSpoofing: &on})
	if err != nil {
		t.Fatal(err)
	}
	if up.Name != name || up.Status != StatusActive || up.Pool != "premium" || !up.AntiSpoofing || up.ContactEmail != "jane@acme.example" {
		t.Fatalf("updated %+v", up)
	}
	if _, err := s.Update(ctx, "nope", Update{Name: &name}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update of unknown: %v", err)
	}

	if _, err := s.AddDomain(ctx, c.ID, "acme.example"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddRelayHost(ctx, c.ID, "mx.acme.example"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddSourceIP(ctx, c.ID, "192.0.2.0/28"); err != nil {
		t.Fatal(err)
	}
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO api_tokens (id, hash, role, customer_id, name, created_at) VALUES ('t1', 'h1', 'customer', ?, 'x', 0)`, c.ID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	other := mustCreate(t, s, "other")
	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != c.ID || len(list[0].Domains) != 1 || len(list[0].RelayHosts) != 1 ||
		len(list[0].SourceIPs) != 1 || len(list[1].Domains) != 0 || list[1].Domains == nil {
		t.Fatalf("list %+v", list)
	}

	if err := s.Delete(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, c.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	if err := s.Delete(ctx, c.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	for _, q := range []string{`SELECT COUNT(*) FROM customer_domains`, `SELECT COUNT(*) FROM relay_hosts`,
		`SELECT COUNT(*) FROM source_ips`, `SELECT COUNT(*) FROM api_tokens WHERE revoked_at IS NULL`} {
		var n int
		if err := s.DB.R.QueryRowContext(ctx, q).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s = %d, %v after delete", q, n, err)
		}
	}
	// The freed domain and prefix can go to another customer.
	if _, err := s.AddDomain(ctx, other.ID, "acme.example"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddSourceIP(ctx, other.ID, "192.0.2.0/24"); err != nil {
		t.Fatal(err)
	}
}

func TestCreateValidation(t *testing.T) {
	s := newService(t, true)
	ctx := context.Background()
	for _, c := range []struct {
		in    Create
		field string
	}{
		{Create{ContactEmail: "a@b.example"}, "name"},
		{Create{Name: "  ", ContactEmail: "a@b.example"}, "name"},
		{Create{Name: "a\x00b", ContactEmail: "a@b.example"}, "name"},
		{Create{Name: "A"}, "contact_email"},
		{Create{Name: "A", ContactEmail: "not an address"}, "contact_email"},
		{Create{Name: "A", ContactEmail: "a@b..example"}, "contact_email"},
		{Create{Name: "A", ContactEmail: "a@b.example", Pool: "nope"}, "pool"},
	} {
		_, err := s.Create(ctx, c.in)
		wantField(t, err, c.field)
	}
	bad := StatusDeactivated
	c := mustCreate(t, s, "acme")
	_, err := s.Update(ctx, c.ID, Update{Status: &bad})
	wantField(t, err, "status")
	empty := ""
	_, err = s.Update(ctx, c.ID, Update{Pool: &empty})
	wantField(t, err, "pool")
}

func TestDomainRules(t *testing.T) {
	s := newService(t, true)
	ctx := context.Background()
	a, b := mustCreate(t, s, "a"), mustCreate(t, s, "b")
	d, err := s.AddDomainWith(ctx, a.ID, DomainRequest{Domain: "Bücher.Example.", IncludeSubdomains: true})
	if err != nil {
		t.Fatal(err)
	}
	if d.Domain != "xn--bcher-kva.example" || d.CustomerID != a.ID || d.DKIM != nil || !d.IncludeSubdomains {
		t.Fatalf("domain %+v", d)
	}
	_, err = s.AddDomain(ctx, a.ID, "xn--bcher-kva.example")
	wantConflict(t, err, "domain")
	_, err = s.AddDomain(ctx, b.ID, "bücher.example")
	wantConflict(t, err, "domain")
	_, err = s.AddDomain(ctx, b.ID, "mail.bücher.example") // under a's domain, which includes its subdomains
	wantConflict(t, err, "domain")
	if _, err := s.AddDomain(ctx, a.ID, "news.bücher.example"); err != nil { // own subdomain: fine
		t.Fatal(err)
	}
	if _, err := s.AddDomain(ctx, b.ID, "shop.example"); err != nil {
		t.Fatal(err)
	}
	_, err = s.AddDomain(ctx, a.ID, "example") // single label
	wantField(t, err, "domain")
	// Under another customer's domain: never, whether or not either side includes its subdomains (DMARC's
	// relaxed alignment would let one customer pass as the other).
	_, err = s.AddDomainWith(ctx, a.ID, DomainRequest{Domain: "x.shop.example", IncludeSubdomains: true})
	wantConflict(t, err, "domain")
	_, err = s.AddDomain(ctx, a.ID, "x.shop.example")
	wantConflict(t, err, "domain")
	if _, err := s.AddDomain(ctx, "nope", "new.example"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown customer: %v", err)
	}
	// A parent of another customer's domain: likewise.
	if _, err := s.AddDomainWith(ctx, a.ID, DomainRequest{Domain: "big.example", IncludeSubdomains: true}); err != nil {
		t.Fatal(err)
	}
	_, err = s.AddDomain(ctx, b.ID, "sub.big.example")
	wantConflict(t, err, "domain")
	_, err = s.AddDomainWith(ctx, b.ID, DomainRequest{Domain: "example.example", IncludeSubdomains: false})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.AddDomain(ctx, a.ID, "deep.sub.example.example")
	wantConflict(t, err, "domain")

	if err := s.RemoveDomain(ctx, b.ID, "bücher.example"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removing another customer's domain: %v", err)
	}
	if err := s.RemoveDomain(ctx, a.ID, "BÜCHER.example"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveDomain(ctx, a.ID, "bücher.example"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second removal: %v", err)
	}
}

// TestPublicSuffixRefused: a public suffix, ICANN's or of the private section, is never a customer's
// domain; a name under one is.
func TestPublicSuffixRefused(t *testing.T) {
	s := newService(t, true)
	ctx := context.Background()
	a := mustCreate(t, s, "a")
	for _, d := range []string{"co.uk", "CO.UK.", "com", "lu", "github.io", "pvt.k12.ma.us", "xn--p1ai", "рф"} {
		_, err := s.AddDomainWith(ctx, a.ID, DomainRequest{Domain: d, IncludeSubdomains: true})
		wantField(t, err, "domain")
		var fe *fielderr.Error
		if errors.As(err, &fe) && d != "xn--p1ai" && d != "рф" && !strings.Contains(fe.Msg, "public suffix") {
			t.Errorf("%s: %v", d, err)
		}
	}
	for _, d := range []string{"acme.co.uk", "acme.lu", "acme.github.io", "acme.test"} {
		if _, err := s.AddDomain(ctx, a.ID, d); err != nil {
			t.Errorf("%s: %v", d, err)
		}
	}
}

// TestUpdateDomain: include_subdomains is switched per domain; another customer's domains never nest with
// it (registered before nesting was refused, in an older release, they keep include_subdomains off).
func TestUpdateDomain(t *testing.T) {
	s := newService(t, true)
	ctx := context.Background()
	a, b := mustCreate(t, s, "a"), mustCreate(t, s, "b")
	for _, x := range []struct {
		c *Customer
		d string
	}{{a, "a.example"}, {a, "solo.example"}, {b, "top.b.example"}} {
		if _, err := s.AddDomain(ctx, x.c.ID, x.d); err != nil {
			t.Fatal(err)
		}
	}
	// Nested domains of two customers, as an older release allowed them.
	if err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO customer_domains (domain, customer_id, created_at, include_subdomains) VALUES (?, ?, ?, 0)`,
			"mail.a.example", b.ID, store.Now())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	_, err := s.AddDomain(ctx, b.ID, "x.a.example")
	wantConflict(t, err, "domain")
	on, off := true, false
	_, err = s.UpdateDomain(ctx, a.ID, "a.example", DomainUpdate{IncludeSubdomains: &on}) // would cover b's
	wantConflict(t, err, "include_subdomains")
	_, err = s.UpdateDomain(ctx, b.ID, "mail.a.example", DomainUpdate{IncludeSubdomains: &on}) // under a's
	wantConflict(t, err, "include_subdomains")
	d, err := s.UpdateDomain(ctx, a.ID, "SOLO.example.", DomainUpdate{IncludeSubdomains: &on})
	if err != nil || !d.IncludeSubdomains || d.Domain != "solo.example" || d.CustomerID != a.ID {
		t.Fatalf("update: %+v %v", d, err)
	}
	got, err := s.Get(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, gd := range got.Domains {
		if gd.IncludeSubdomains != (gd.Domain == "solo.example") {
			t.Errorf("stored %+v", gd)
		}
	}
	if _, err := s.UpdateDomain(ctx, b.ID, "solo.example", DomainUpdate{IncludeSubdomains: &off}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another customer's domain: %v", err)
	}
	if _, err := s.UpdateDomain(ctx, a.ID, "nope.example", DomainUpdate{IncludeSubdomains: &off}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown domain: %v", err)
	}
	// Nobody else may register under solo.example, with or without its subdomains included.
	_, err = s.AddDomain(ctx, b.ID, "x.solo.example")
	wantConflict(t, err, "domain")
	if d, err := s.UpdateDomain(ctx, a.ID, "solo.example", DomainUpdate{IncludeSubdomains: &off}); err != nil || d.IncludeSubdomains {
		t.Fatalf("off: %+v %v", d, err)
	}
	_, err = s.AddDomain(ctx, b.ID, "x.solo.example")
	wantConflict(t, err, "domain")
}

func TestSourceIPAndRelayHostRules(t *testing.T) {
	ctx := context.Background()
	s := newService(t, false)
	a, b := mustCreate(t, s, "a"), mustCreate(t, s, "b")

	ip, err := s.AddSourceIP(ctx, a.ID, "198.51.100.77/24")
	if err != nil {
		t.Fatal(err)
	}
	if ip.CIDR != "198.51.100.0/24" || ip.ID == "" {
		t.Fatalf("source ip %+v", ip)
	}
	_, err = s.AddSourceIP(ctx, a.ID, "198.51.100.0/24")
	wantConflict(t, err, "cidr")
	_, err = s.AddSourceIP(ctx, b.ID, "198.51.100.128/25")
	wantConflict(t, err, "cidr")
	_, err = s.AddSourceIP(ctx, b.ID, "198.51.0.0/16")
	wantConflict(t, err, "cidr")
	if _, err := s.AddSourceIP(ctx, a.ID, "198.51.100.10"); err != nil { // inside its own prefix: fine
		t.Fatal(err)
	}
	_, err = s.AddSourceIP(ctx, b.ID, "10.0.0.1")
	wantField(t, err, "cidr")
	_, err = s.AddSourceIP(ctx, b.ID, "banana")
	wantField(t, err, "cidr")
	_, err = s.AddRelayHost(ctx, b.ID, "127.0.0.1")
	wantField(t, err, "host")

	h, err := s.AddRelayHost(ctx, b.ID, "203.0.113.5")
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.AddRelayHost(ctx, b.ID, "203.0.113.5")
	wantConflict(t, err, "host")
	_, err = s.AddRelayHost(ctx, a.ID, "203.0.113.5")
	wantConflict(t, err, "host")
	_, err = s.AddSourceIP(ctx, a.ID, "203.0.113.0/24") // contains b's relay host
	wantConflict(t, err, "cidr")
	_, err = s.AddRelayHost(ctx, b.ID, "198.51.100.9") // inside a's source prefix
	wantConflict(t, err, "host")
	if _, err := s.AddRelayHost(ctx, a.ID, "mta.a.example"); err != nil {
		t.Fatal(err)
	}
	_, err = s.AddRelayHost(ctx, b.ID, "MTA.a.example.")
	wantConflict(t, err, "host")
	_, err = s.AddRelayHost(ctx, b.ID, "not a host")
	wantField(t, err, "host")

	if err := s.RemoveRelayHost(ctx, a.ID, h.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removing another customer's relay host: %v", err)
	}
	if err := s.RemoveRelayHost(ctx, b.ID, h.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveSourceIP(ctx, b.ID, ip.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removing another customer's source IP: %v", err)
	}
	if err := s.RemoveSourceIP(ctx, a.ID, ip.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddSourceIP(ctx, b.ID, "198.51.100.0/25"); err == nil {
		t.Fatal("overlap with a's remaining /32 accepted")
	}
	if _, err := s.AddSourceIP(ctx, b.ID, "198.51.100.128/26"); err != nil {
		t.Fatal(err)
	}

	priv := newService(t, true)
	c := mustCreate(t, priv, "c")
	if _, err := priv.AddSourceIP(ctx, c.ID, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if _, err := priv.AddSourceIP(ctx, c.ID, "224.0.0.1"); err == nil {
		t.Fatal("multicast accepted")
	}
}

func TestClock(t *testing.T) {
	s := newService(t, true)
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	s.Now = func() time.Time { return at }
	c := mustCreate(t, s, "a")
	got, err := s.Get(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.CreatedAt.Equal(at) {
		t.Fatalf("created %v, want %v", got.CreatedAt, at)
	}
}

// TestTLSPolicy sets, shows and clears a customer's TLS policy, and refuses an unknown one naming the field.
func TestTLSPolicy(t *testing.T) {
	s := newService(t, true)
	ctx := context.Background()
	c := mustCreate(t, s, "acme")
	if c.TLSPolicy != "" {
		t.Fatalf("new customer's TLS policy = %q, want the configured default", c.TLSPolicy)
	}
	verify := "verify"
	if up, err := s.Update(ctx, c.ID, Update{TLSPolicy: &verify}); err != nil || up.TLSPolicy != "verify" {
		t.Fatalf("Update: %+v, %v", up, err)
	}
	if got, _ := s.Get(ctx, c.ID); got.TLSPolicy != "verify" {
		t.Fatalf("Get: TLS policy %q", got.TLSPolicy)
	}
	bad := "always"
	_, err := s.Update(ctx, c.ID, Update{TLSPolicy: &bad})
	wantField(t, err, "tls_policy")
	none := ""
	if up, err := s.Update(ctx, c.ID, Update{TLSPolicy: &none}); err != nil || up.TLSPolicy != "" {
		t.Fatalf("clearing: %+v, %v", up, err)
	}
}

func TestPortalEnabled(t *testing.T) {
	ctx := context.Background()
	s := newService(t, false)
	c := mustCreate(t, s, "Acme")
	if c.PortalEnabled {
		t.Fatal("a new customer's portal is enabled")
	}
	on := true
	got, err := s.Update(ctx, c.ID, Update{PortalEnabled: &on})
	if err != nil || !got.PortalEnabled {
		t.Fatalf("enable: %+v %v", got, err)
	}
	list, _ := s.List(ctx)
	if len(list) != 1 || !list[0].PortalEnabled {
		t.Fatalf("list: %+v", list)
	}
	off := false
	if got, err := s.Update(ctx, c.ID, Update{PortalEnabled: &off}); err != nil || got.PortalEnabled {
		t.Fatalf("disable: %+v %v", got, err)
	}
}
