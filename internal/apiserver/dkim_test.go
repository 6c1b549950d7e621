package apiserver

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"easymail/internal/api"
	"easymail/internal/authz"
	"easymail/internal/config"
	"easymail/internal/dkimsign"
	"easymail/internal/readiness"
	"easymail/internal/resolver"
	"easymail/internal/store"
	"easymail/internal/testkit"
)

// dkimEnv is an API server with a real DKIM manager over a fake DNS, and clients per role.
type dkimEnv struct {
	dns                *testkit.DNS
	srv                *httptest.Server
	op, expert, ca, cb *api.Client
	a, b               *api.Customer
}

func newDKIMEnv(t *testing.T) *dkimEnv {
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
	h, err := New(Options{DB: db, Config: &cfg, Queue: &fakeQueue{db: db}, DKIM: m, Readiness: rc})
	if err != nil {
		t.Fatal(err)
	}
	e := &dkimEnv{dns: d, srv: httptest.NewServer(h)}
	t.Cleanup(e.srv.Close)
	client := func(role, cust string) *api.Client {
		secret, _, err := authz.Create(ctx, db, role, cust, role)
		if err != nil {
			t.Fatal(err)
		}
		return &api.Client{BaseURL: e.srv.URL, Token: secret, HTTP: e.srv.Client()}
	}
	e.op, e.expert = client(authz.RoleOperator, ""), client(authz.RoleExpert, "")
	for _, c := range []**api.Customer{&e.a, &e.b} {
		if *c, err = e.op.CreateCustomer(ctx, api.CustomerCreate{Name: "C", ContactEmail: "it@c.example"}); err != nil {
			t.Fatal(err)
		}
	}
	e.ca, e.cb = client(authz.RoleCustomer, e.a.ID), client(authz.RoleCustomer, e.b.ID)
	return e
}

func wantStatus(t *testing.T, err error, status int) {
	t.Helper()
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != status {
		t.Fatalf("got %v, want HTTP %d", err, status)
	}
}

func TestDKIMEndpoints(t *testing.T) {
	ctx := context.Background()
	e := newDKIMEnv(t)
	d, err := e.op.AddDomain(ctx, e.a.ID, "Acme.Example")
	if err != nil {
		t.Fatal(err)
	}
	if d.DKIM == nil || d.DKIM.Type != "TXT" || !strings.HasSuffix(d.DKIM.Name, "._domainkey.acme.example") ||
		!strings.HasPrefix(d.DKIM.Value, "v=DKIM1; k=rsa; p=") || len(d.DKIMKeys) != 1 || d.DKIMKeys[0].State != "active" {
		t.Fatalf("added domain %+v", d)
	}
	if _, err := e.op.AddDomain(ctx, e.b.ID, "bolt.example"); err != nil {
		t.Fatal(err)
	}
	// The customer sees its record; never a private key.
	c, err := e.ca.GetCustomer(ctx, e.a.ID)
	if err != nil || c.Domains[0].DKIM == nil || *c.Domains[0].DKIM != *d.DKIM {
		t.Fatalf("customer view %+v (%v)", c, err)
	}
	list, err := e.op.ListCustomers(ctx)
	if err != nil || len(list) != 2 || list[0].Domains[0].DKIM == nil || list[1].Domains[0].DKIM == nil {
		t.Fatalf("customer list %+v (%v)", list, err)
	}

	keys, err := e.ca.DomainDKIM(ctx, e.a.ID, "acme.example")
	if err != nil || len(keys.Keys) != 1 || keys.Keys[0].Record != *d.DKIM {
		t.Fatalf("keys %+v (%v)", keys, err)
	}
	if _, err := e.expert.DomainDKIM(ctx, e.a.ID, "ACME.example"); err != nil {
		t.Fatal(err)
	}
	// Another customer's domain, or a domain under the wrong customer: 404.
	_, err = e.cb.DomainDKIM(ctx, e.a.ID, "acme.example")
	wantStatus(t, err, http.StatusNotFound)
	_, err = e.op.DomainDKIM(ctx, e.a.ID, "bolt.example")
	wantStatus(t, err, http.StatusNotFound)
	_, err = e.op.DomainDKIM(ctx, e.a.ID, "not a domain")
	wantStatus(t, err, http.StatusNotFound)

	// Changes are the operator's.
	_, err = e.expert.RotateDKIM(ctx, e.a.ID, "acme.example")
	wantStatus(t, err, http.StatusForbidden)
	_, err = e.ca.RotateDKIM(ctx, e.a.ID, "acme.example")
	wantStatus(t, err, http.StatusForbidden)
	e.dns.AddTXT(d.DKIM.Name, d.DKIM.Value)
	keys, err = e.op.RotateDKIM(ctx, e.a.ID, "acme.example")
	if err != nil || len(keys.Keys) != 2 || keys.Keys[0].State != "active" || keys.Keys[1].State != "pending" {
		t.Fatalf("after rotate %+v (%v)", keys, err)
	}
	_, err = e.op.RotateDKIM(ctx, e.a.ID, "acme.example")
	wantStatus(t, err, http.StatusConflict)
	// Publishing the pending record and checking switches.
	e.dns.AddTXT(keys.Keys[1].Record.Name, keys.Keys[1].Record.Value)
	keys, err = e.op.CheckDKIM(ctx, e.a.ID, "acme.example")
	if err != nil || keys.Keys[0].State != "active" || keys.Keys[1].State != "retiring" || keys.Keys[0].VerifiedAt == nil {
		t.Fatalf("after check %+v (%v)", keys, err)
	}

	keys, err = e.op.AddEd25519(ctx, e.a.ID, "acme.example")
	if err != nil || keys.Keys[1].Algorithm != "ed25519" || keys.Keys[1].State != "pending" {
		t.Fatalf("after add-ed25519 %+v (%v)", keys, err)
	}
	_, err = e.op.AddEd25519(ctx, e.a.ID, "acme.example")
	wantStatus(t, err, http.StatusConflict)

	rep, err := e.ca.Readiness(ctx, e.a.ID, "acme.example")
	if err != nil || rep.Domain != "acme.example" || rep.Ready || rep.SPF.Status != "fail" || rep.DKIM.Status != "warn" ||
		rep.DMARC.Status != "fail" || rep.SPF.Include != "include:_spf.example.net" {
		t.Fatalf("readiness %+v (%v)", rep, err)
	}
	_, err = e.cb.Readiness(ctx, e.a.ID, "acme.example")
	wantStatus(t, err, http.StatusNotFound)
}

func TestDKIMEndpointsWithoutDKIM(t *testing.T) {
	e := newEnv(t)
	if _, err := e.op.AddDomain(context.Background(), e.custA.ID, "acme.example"); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/dkim", "/readiness"} {
		status, ae, _ := e.call(t, "operator", "GET", "/api/v1/customers/"+e.custA.ID+"/domains/acme.example"+path, "")
		if status != http.StatusNotFound || !strings.Contains(ae.Message, "not enabled") {
			t.Fatalf("%s: %d %+v", path, status, ae)
		}
	}
	status, _, _ := e.call(t, "operator", "POST", "/api/v1/customers/"+e.custA.ID+"/domains/acme.example/dkim/rotate", "")
	if status != http.StatusNotFound {
		t.Fatalf("rotate: %d", status)
	}
}
