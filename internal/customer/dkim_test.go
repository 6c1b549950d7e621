package customer

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"easymail/internal/dkimsign"
)

// fakeDKIM records the domains it made keys for; a domain in failSave makes the key's save fail.
type fakeDKIM struct {
	prepared []string
	failSave string
}

func (f *fakeDKIM) Prepare(domain string) (func(context.Context, *sql.Tx) error, error) {
	f.prepared = append(f.prepared, domain)
	return func(ctx context.Context, tx *sql.Tx) error {
		if domain == f.failSave {
			return errors.New("key store broken")
		}
		return nil
	}, nil
}

func (f *fakeDKIM) Keys(ctx context.Context, domains []string) (map[string][]dkimsign.Key, error) {
	out := map[string][]dkimsign.Key{}
	for _, d := range domains {
		out[d] = []dkimsign.Key{
			{Selector: "next", State: dkimsign.StatePending, Record: dkimsign.Record{Selector: "next", Name: "next._domainkey." + d}},
			{Selector: "cur", State: dkimsign.StateActive, Record: dkimsign.Record{Selector: "cur", Name: "cur._domainkey." + d}},
		}
	}
	return out, nil
}

func TestDomainsGetDKIMKeys(t *testing.T) {
	ctx := context.Background()
	s := newService(t, true)
	fk := &fakeDKIM{failSave: "broken.example"}
	s.DKIM = fk
	c, err := s.Create(ctx, Create{Name: "Acme", ContactEmail: "it@acme.example"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.AddDomain(ctx, c.ID, "acme.example")
	if err != nil {
		t.Fatal(err)
	}
	if d.DKIM == nil || d.DKIM.Selector != "cur" || len(d.DKIMKeys) != 2 {
		t.Fatalf("domain %+v", d)
	}
	// The key is saved in the domain's transaction: when it fails, the domain is not added.
	if _, err := s.AddDomain(ctx, c.ID, "broken.example"); err == nil {
		t.Fatal("domain added although its key could not be saved")
	}
	got, err := s.Get(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Domains) != 1 || got.Domains[0].DKIM == nil || got.Domains[0].DKIM.Name != "cur._domainkey.acme.example" {
		t.Fatalf("customer domains %+v", got.Domains)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 1 || list[0].Domains[0].DKIM == nil {
		t.Fatalf("list %+v (%v)", list, err)
	}
	if len(fk.prepared) != 2 {
		t.Fatalf("keys prepared for %v", fk.prepared)
	}
}
