package dkimsign

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// signedWith returns the selectors the domain's messages are signed with now.
func (f *fixture) signedWith(t *testing.T, customerID string) []string {
	t.Helper()
	signed, s := f.sign(t, customerID, "alice@acme.test", testMsg)
	for i, v := range f.verify(t, signed) {
		if v.Err != nil {
			t.Fatalf("signature %d does not verify: %v", i, v.Err)
		}
	}
	return s.Result.Selectors
}

func TestRotation(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	id := f.customer(t, "Acme", "acme.test")
	old := f.key(t, "acme.test", StateActive, RSA)
	f.publish(old)

	if err := f.m.Rotate(ctx, "acme.test"); err != nil {
		t.Fatal(err)
	}
	next := f.key(t, "acme.test", StatePending, RSA)
	if next.Selector != old.Selector+"-2" {
		t.Fatalf("new selector %q, want %q (same month)", next.Selector, old.Selector+"-2")
	}
	if err := f.m.Rotate(ctx, "acme.test"); !errors.Is(err, ErrRotationInProgress) {
		t.Fatalf("second rotation: %v, want ErrRotationInProgress", err)
	}

	// The new record is missing while the old one verifies: signing stays on the old key, round after round.
	for range 2 {
		f.clock.Add(time.Hour)
		f.m.Tick(ctx)
		if got := f.signedWith(t, id); len(got) != 1 || got[0] != old.Selector {
			t.Fatalf("signed with %v before the new record is published, want %s", got, old.Selector)
		}
	}
	// A record holding another key does not count as published.
	f.dns.AddTXT(next.Record.Name, old.Record.Value)
	f.m.Tick(ctx)
	f.key(t, "acme.test", StatePending, RSA)
	// Nor does a failing lookup.
	f.dns.Remove(next.Record.Name, dns.TypeTXT)
	f.publish(next)
	f.dns.Fail(next.Record.Name, dns.RcodeServerFailure)
	f.m.Tick(ctx)
	f.key(t, "acme.test", StatePending, RSA)
	f.dns.Unfail(next.Record.Name)

	// Published: the switch happens, the old key retires after RetireAfter.
	f.m.Tick(ctx)
	active := f.key(t, "acme.test", StateActive, RSA)
	if active.Selector != next.Selector || active.VerifiedAt == nil {
		t.Fatalf("active key %+v, want %s verified", active, next.Selector)
	}
	retiring := f.key(t, "acme.test", StateRetiring, RSA)
	if retiring.Selector != old.Selector || !retiring.RetireAt.Equal(f.clock.Now().Add(48*time.Hour)) {
		t.Fatalf("retiring key %+v", retiring)
	}
	if got := f.signedWith(t, id); len(got) != 1 || got[0] != next.Selector {
		t.Fatalf("signed with %v after the switch, want %s", got, next.Selector)
	}
	f.clock.Add(47 * time.Hour)
	f.m.Tick(ctx)
	f.key(t, "acme.test", StateRetiring, RSA)
	f.clock.Add(time.Hour)
	f.m.Tick(ctx)
	retired := f.key(t, "acme.test", StateRetired, RSA)
	if retired.Selector != old.Selector || retired.RetiredAt == nil {
		t.Fatalf("retired key %+v", retired)
	}
	var priv string
	if err := f.db.R.QueryRow(`SELECT private_key FROM dkim_keys WHERE selector = ?`, old.Selector).Scan(&priv); err != nil || priv != "" {
		t.Fatalf("retired key's private key %q (%v), want erased", priv, err)
	}
	// The records to keep, as the customer is shown them, leave the retired one out.
	keys, err := f.m.Keys(ctx, []string{"acme.test"})
	if err != nil {
		t.Fatal(err)
	}
	if ks := keys["acme.test"]; len(ks) != 1 || ks[0].Selector != next.Selector || ks[0].Record.Selector != next.Selector {
		t.Fatalf("the domain's records to publish are %+v", ks)
	}
}

func TestRotationWithNothingPublished(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	id := f.customer(t, "Acme", "acme.test")
	old := f.key(t, "acme.test", StateActive, RSA)
	// Neither record is published: no valid signature can be lost, the switch happens at once.
	if err := f.m.Rotate(ctx, "acme.test"); err != nil {
		t.Fatal(err)
	}
	next := f.key(t, "acme.test", StateActive, RSA)
	if next.Selector == old.Selector || next.VerifiedAt != nil {
		t.Fatalf("active key %+v", next)
	}
	f.publish(next)
	if got := f.signedWith(t, id); len(got) != 1 || got[0] != next.Selector {
		t.Fatalf("signed with %v, want %s", got, next.Selector)
	}
	// But a failing lookup of the old record is not a missing record.
	f.publish(f.key(t, "acme.test", StateActive, RSA))
	if err := f.m.Rotate(ctx, "acme.test"); err != nil {
		t.Fatal(err)
	}
	third := f.key(t, "acme.test", StatePending, RSA)
	f.dns.Fail(next.Record.Name, dns.RcodeServerFailure)
	f.m.Tick(ctx)
	f.key(t, "acme.test", StatePending, RSA)
	if third.Selector != old.Selector+"-3" {
		t.Fatalf("third selector %q", third.Selector)
	}
}

func TestScheduledRotationAndBackfill(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(o *Options) { o.RotateEvery = 90 * 24 * time.Hour })
	f.customer(t, "Acme", "acme.test")
	first := f.key(t, "acme.test", StateActive, RSA)
	f.publish(first)

	// A domain that got no key (added before DKIM existed) gets one at the next round.
	f.exec(t, `INSERT INTO customer_domains (domain, customer_id, created_at) SELECT 'old.test', customer_id, 0
		FROM customer_domains WHERE domain = 'acme.test'`)
	f.m.Tick(ctx)
	f.key(t, "old.test", StateActive, RSA)
	if len(f.keys(t, "acme.test")) != 1 {
		t.Fatalf("a young key was rotated: %+v", f.keys(t, "acme.test"))
	}

	f.clock.Add(91 * 24 * time.Hour)
	f.m.Tick(ctx)
	next := f.key(t, "acme.test", StatePending, RSA)
	if want := "em202702"; next.Selector != want {
		t.Fatalf("scheduled rotation made selector %q, want %q", next.Selector, want)
	}
	f.publish(next)
	f.m.Tick(ctx)
	if k := f.key(t, "acme.test", StateActive, RSA); k.Selector != next.Selector {
		t.Fatalf("active %+v", k)
	}
}

func TestRotateErrors(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	if err := f.m.Rotate(ctx, "nosuch.test"); !errors.Is(err, ErrUnknownDomain) {
		t.Fatalf("unknown domain: %v", err)
	}
	if err := f.m.AddEd25519(ctx, "nosuch.test"); !errors.Is(err, ErrUnknownDomain) {
		t.Fatalf("unknown domain: %v", err)
	}
	f.customer(t, "Acme", "acme.test")
	f.exec(t, `DELETE FROM dkim_keys`)
	if err := f.m.Rotate(ctx, "acme.test"); !errors.Is(err, ErrNoActiveKey) {
		t.Fatalf("no active key: %v", err)
	}
	// Removing a domain removes its keys.
	f.m.Tick(ctx)
	f.exec(t, `DELETE FROM customer_domains WHERE domain = 'acme.test'`)
	var n int
	if err := f.db.R.QueryRow(`SELECT COUNT(*) FROM dkim_keys`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d keys left after the domain's removal (%v)", n, err)
	}
}
