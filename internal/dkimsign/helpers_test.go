package dkimsign

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-msgauth/dkim"
	"golang.org/x/net/idna"

	"easymail/internal/resolver"
	"easymail/internal/store"
	"easymail/internal/testkit"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fixture is a database with customers, a fake DNS and a Manager over both.
type fixture struct {
	db        *store.DB
	dns       *testkit.DNS
	res       *resolver.DNS
	clock     *clock
	m         *Manager
	customers int
}

// newFixture opens a database and a fake DNS; configure may change the Options before the Manager is
// built. RSA keys are 1024 bits, to keep the tests fast.
func newFixture(t testing.TB, configure func(*Options)) *fixture {
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
	f := &fixture{db: db, dns: d, res: res, clock: &clock{now: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)}}
	o := Options{
		DB: db, Resolver: res, MasterKey: testMasterKey(t), RSABits: 1024, RetireAfter: 48 * time.Hour, CheckInterval: time.Hour,
		Now: f.clock.Now,
	}
	if configure != nil {
		configure(&o)
	}
	if f.m, err = New(o); err != nil {
		t.Fatal(err)
	}
	return f
}

// customer registers a customer with domains, each with its first DKIM key as provisioning makes it
// (Prepare before the domain's transaction, the key stored inside it), and returns its id.
func (f *fixture) customer(t testing.TB, name string, domains ...string) string {
	t.Helper()
	ctx := context.Background()
	f.customers++
	id := fmt.Sprintf("cus_%d", f.customers)
	now := f.clock.Now().UnixMilli()
	f.exec(t, `INSERT INTO customers (id, name, contact_email, pool, status, created_at, updated_at)
		VALUES (?, ?, ?, 'default', 'active', ?, ?)`, id, name, "it@"+domains[0], now, now)
	for _, d := range domains {
		d, err := idna.Lookup.ToASCII(d) // as provisioning stores it
		if err != nil {
			t.Fatal(err)
		}
		store, err := f.m.Prepare(d)
		if err != nil {
			t.Fatal(err)
		}
		err = f.db.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO customer_domains (domain, customer_id, created_at) VALUES (?, ?, ?)`, d, id, now); err != nil {
				return err
			}
			return store(ctx, tx)
		})
		if err != nil {
			t.Fatal(err)
		}
		if keys, err := f.m.Keys(ctx, []string{d}); err != nil || len(keys[d]) != 1 {
			t.Fatalf("domain %s has keys %+v (%v), want one", d, keys[d], err)
		}
	}
	if err := f.m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	return id
}

// keys returns the domain's keys.
func (f *fixture) keys(t testing.TB, domain string) []Key {
	t.Helper()
	d, err := f.m.DomainKeys(context.Background(), domain)
	if err != nil {
		t.Fatal(err)
	}
	return d.Keys
}

// key returns the domain's key in state, failing when there is not exactly one.
func (f *fixture) key(t testing.TB, domain, state, algorithm string) Key {
	t.Helper()
	var out []Key
	for _, k := range f.keys(t, domain) {
		if k.State == state && k.Algorithm == algorithm {
			out = append(out, k)
		}
	}
	if len(out) != 1 {
		t.Fatalf("%s: %d %s %s keys, want 1: %+v", domain, len(out), state, algorithm, f.keys(t, domain))
	}
	return out[0]
}

// publish puts a key's record in the fake DNS.
func (f *fixture) publish(k Key) {
	f.dns.Remove(k.Record.Name, 16)
	f.dns.AddTXT(k.Record.Name, k.Record.Value)
}

// sign runs a message through Begin, Writer and Finish as smtpin does, and returns the signed message
// (DKIM-Signature fields, then the message) and the signing.
func (f *fixture) sign(t testing.TB, customerID, sender, msg string) (string, *Signing) {
	t.Helper()
	br := bufio.NewReader(strings.NewReader(msg))
	h, err := textproto.ReadHeader(br)
	if err != nil {
		t.Fatal(err)
	}
	s := f.m.Begin(customerID, sender, h)
	var spooled bytes.Buffer
	w := s.Writer(&spooled)
	if err := textproto.WriteHeader(w, h); err != nil {
		t.Fatal(err)
	}
	if _, err := br.WriteTo(w); err != nil {
		t.Fatal(err)
	}
	fields, err := s.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return fields + spooled.String(), s
}

// verify checks every DKIM signature of msg against the fake DNS and returns the verifications.
func (f *fixture) verify(t testing.TB, msg string) []*dkim.Verification {
	t.Helper()
	return verifyWith(t, f.res, msg)
}

func verifyWith(t testing.TB, res resolver.Resolver, msg string) []*dkim.Verification {
	t.Helper()
	vs, err := dkim.VerifyWithOptions(strings.NewReader(msg), &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			txts, err := res.LookupTXT(context.Background(), name)
			if errors.Is(err, resolver.ErrNotFound) {
				return nil, errors.New("no such record")
			}
			return txts, err
		},
	})
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, msg)
	}
	return vs
}

// exec runs a write statement.
func (f *fixture) exec(t testing.TB, q string, args ...any) {
	t.Helper()
	err := f.db.Tx(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(q, args...)
		return err
	})
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// testMasterKeyText is a fixed master key, so that no test depends on chance.
const testMasterKeyText = "3q2+7wABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhs="

func testMasterKey(t testing.TB) *MasterKey {
	t.Helper()
	mk, err := ParseMasterKey(testMasterKeyText, "test")
	if err != nil {
		t.Fatal(err)
	}
	return mk
}
