package readiness

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"easymail/internal/config"
	"easymail/internal/dkimsign"
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

// fixture is a database with customers, a fake DNS, a DKIM manager and a Checker over them. The operator's
// pool is 192.0.2.10 (out1.example.net) and 192.0.2.11 (out2.example.net), its SPF domain _spf.example.net.
type fixture struct {
	db        *store.DB
	dns       *testkit.DNS
	res       *resolver.DNS
	clock     *clock
	dk        *dkimsign.Manager
	c         *Checker
	customers int
}

// testMasterKeyText is a fixed master key, so that no test depends on chance.
const testMasterKeyText = "3q2+7wABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhs="

func newFixture(t testing.TB) *fixture {
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
	mk, err := dkimsign.ParseMasterKey(testMasterKeyText, "test")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: db, dns: d, res: res, clock: &clock{now: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)}}
	// RSA keys are 1024 bits, to keep the tests fast.
	if f.dk, err = dkimsign.New(dkimsign.Options{DB: db, Resolver: res, MasterKey: mk, RSABits: 1024, Now: f.clock.Now}); err != nil {
		t.Fatal(err)
	}
	f.c, err = New(Options{DB: db, Resolver: res, Keys: f.dk, SPFDomain: "_spf.example.net", Now: f.clock.Now,
		Pools: []config.Pool{{Name: "default", IPs: []config.PoolAddr{
			{Address: "192.0.2.10", HELO: "out1.example.net"}, {Address: "192.0.2.11", HELO: "out2.example.net"}}}}})
	if err != nil {
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
		store, err := f.dk.Prepare(d)
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
	}
	return id
}

// key returns the domain's key in state, failing when there is not exactly one.
func (f *fixture) key(t testing.TB, domain, state, algorithm string) dkimsign.Key {
	t.Helper()
	d, err := f.dk.DomainKeys(context.Background(), domain)
	if err != nil {
		t.Fatal(err)
	}
	var out []dkimsign.Key
	for _, k := range d.Keys {
		if k.State == state && k.Algorithm == algorithm {
			out = append(out, k)
		}
	}
	if len(out) != 1 {
		t.Fatalf("%s: %d %s %s keys, want 1: %+v", domain, len(out), state, algorithm, d.Keys)
	}
	return out[0]
}

// publish puts a key's record in the fake DNS.
func (f *fixture) publish(k dkimsign.Key) {
	f.dns.Remove(k.Record.Name, 16)
	f.dns.AddTXT(k.Record.Name, k.Record.Value)
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
