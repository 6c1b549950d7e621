package bounce

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"easymail/internal/fielderr"
	"easymail/internal/store"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openDB(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	err = db.Tx(context.Background(), func(tx *sql.Tx) error {
		for _, id := range []string{"A", "B"} {
			if _, err := tx.Exec(`INSERT INTO customers (id, name, contact_email, pool, status, created_at, updated_at)
				VALUES (?, ?, 'x@example.com', 'default', 'active', 0, 0)`, id, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func suppress(t *testing.T, db *store.DB, customer, addr string, at time.Time) {
	t.Helper()
	err := db.Tx(context.Background(), func(tx *sql.Tx) error {
		return Suppress(tx, customer, addr, "Q1", "remote host mx.dest.example said: 550 5.1.1 no such user", at)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSuppressFromBounceAndExpiry(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	clk := &clock{t: time.Date(2030, 3, 1, 10, 0, 0, 0, time.UTC)}
	l := NewList(ListOptions{DB: db, TTL: 720 * time.Hour, Now: clk.now})

	suppress(t, db, "A", "Bob@Dest.Example", clk.now())
	reason, ok := l.Suppressed(ctx, "A", "bob@dest.example")
	if !ok {
		t.Fatal("bounced address not suppressed")
	}
	want := "Recipient suppressed after a hard bounce on 2030-03-01: remote host mx.dest.example said: 550 5.1.1 no such user"
	if reason != want {
		t.Fatalf("reason %q, want %q", reason, want)
	}
	if _, ok := l.Suppressed(ctx, "A", "BOB@DEST.EXAMPLE"); !ok {
		t.Fatal("lookup is case-sensitive")
	}
	if _, ok := l.Suppressed(ctx, "B", "bob@dest.example"); ok {
		t.Fatal("another customer's list applied")
	}
	if _, ok := l.Suppressed(ctx, "A", "carol@dest.example"); ok {
		t.Fatal("unrelated address suppressed")
	}

	list, err := l.List(ctx, "A")
	if err != nil || len(list) != 1 || list[0].Address != "bob@dest.example" || list[0].Source != SourceBounce ||
		list[0].QueueID != "Q1" || !list[0].ExpiresAt.Equal(clk.now().Add(720*time.Hour)) {
		t.Fatalf("list %+v %v", list, err)
	}

	clk.add(720*time.Hour - time.Second)
	if _, ok := l.Suppressed(ctx, "A", "bob@dest.example"); !ok {
		t.Fatal("expired a second early")
	}
	clk.add(time.Second)
	if _, ok := l.Suppressed(ctx, "A", "bob@dest.example"); ok {
		t.Fatal("still suppressed after the TTL")
	}
	if list, _ := l.List(ctx, "A"); len(list) != 0 {
		t.Fatalf("expired entry listed: %+v", list)
	}
	// A longer TTL applies to the entries already there.
	longer := NewList(ListOptions{DB: db, TTL: 1000 * time.Hour, Now: clk.now})
	if _, ok := longer.Suppressed(ctx, "A", "bob@dest.example"); !ok {
		t.Fatal("a longer TTL did not apply to an existing entry")
	}
	n, err := l.Purge(ctx)
	if err != nil || n != 1 {
		t.Fatalf("purge: %d %v", n, err)
	}
	if _, ok := longer.Suppressed(ctx, "A", "bob@dest.example"); ok {
		t.Fatal("purged entry still there")
	}
}

func TestSuppressRenewsAndSkipsUnknownCustomer(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	clk := &clock{t: time.Date(2030, 3, 1, 10, 0, 0, 0, time.UTC)}
	l := NewList(ListOptions{DB: db, TTL: time.Hour, Now: clk.now})
	suppress(t, db, "A", "bob@dest.example", clk.now())
	clk.add(50 * time.Minute)
	suppress(t, db, "A", "bob@dest.example", clk.now())
	clk.add(50 * time.Minute)
	if _, ok := l.Suppressed(ctx, "A", "bob@dest.example"); !ok {
		t.Fatal("a second bounce did not renew the entry")
	}
	// Operator mail and deleted customers: no entry, no error.
	suppress(t, db, "", "x@dest.example", clk.now())
	suppress(t, db, "GONE", "x@dest.example", clk.now())
	var n int
	db.R.QueryRow(`SELECT COUNT(*) FROM suppressions`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d entries, want 1", n)
	}
}

func TestOperatorEntries(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	clk := &clock{t: time.Date(2030, 3, 1, 10, 0, 0, 0, time.UTC)}
	l := NewList(ListOptions{DB: db, TTL: 24 * time.Hour, Now: clk.now})

	s, err := l.Add(ctx, "A", "Carol@Dest.Example", "asked to stop", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Address != "carol@dest.example" || s.Source != SourceOperator || !s.ExpiresAt.Equal(clk.now().Add(24*time.Hour)) {
		t.Fatalf("entry %+v", s)
	}
	reason, ok := l.Suppressed(ctx, "A", "carol@dest.example")
	if !ok || reason != "Recipient suppressed by the operator on 2030-03-01: asked to stop" {
		t.Fatalf("suppressed %v %q", ok, reason)
	}
	until := clk.now().Add(24 * 365 * time.Hour)
	if s, err = l.Add(ctx, "A", "carol@dest.example", "", until); err != nil || !s.ExpiresAt.Equal(until) {
		t.Fatalf("renew with expiry: %+v %v", s, err)
	}
	clk.add(48 * time.Hour)
	if _, ok := l.Suppressed(ctx, "A", "carol@dest.example"); !ok {
		t.Fatal("an explicit expiry did not override the TTL")
	}
	if n, _ := l.Purge(ctx); n != 0 {
		t.Fatalf("purge removed %d entries in force", n)
	}

	for _, c := range []struct {
		addr, reason string
		expires      time.Time
		field        string
	}{
		{"", "", time.Time{}, "address"},
		{"no-at-sign", "", time.Time{}, "address"},
		{"a b@example.com", "", time.Time{}, "address"},
		{"@example.com", "", time.Time{}, "address"},
		{"a@", "", time.Time{}, "address"},
		{strings.Repeat("a", 250) + "@example.com", "", time.Time{}, "address"},
		{"a@example.com", "line\r\nbreak", time.Time{}, "reason"},
		{"a@example.com", "", clk.now().Add(-time.Hour), "expires_at"},
	} {
		_, err := l.Add(ctx, "A", c.addr, c.reason, c.expires)
		var ie *fielderr.Error
		if !errors.As(err, &ie) || ie.Field != c.field {
			t.Errorf("Add(%q, %q): %v, want an error on %s", c.addr, c.reason, err, c.field)
		}
	}
	if _, err := l.Add(ctx, "NOPE", "a@example.com", "", time.Time{}); err == nil {
		t.Fatal("entry for an unknown customer")
	}

	if err := l.Remove(ctx, "A", "CAROL@dest.example"); err != nil {
		t.Fatal(err)
	}
	if err := l.Remove(ctx, "A", "carol@dest.example"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second remove: %v", err)
	}
	if _, ok := l.Suppressed(ctx, "A", "carol@dest.example"); ok {
		t.Fatal("removed entry still applies")
	}
}

func TestRefusalText(t *testing.T) {
	r := row{source: SourceBounce, reason: "bad\r\nreply \u00e9" + strings.Repeat("x", 600)}
	s := refusal(r)
	if strings.ContainsAny(s, "\r\n\u00e9") || len(s) > 400 {
		t.Fatalf("refusal not one clean line: %q", s)
	}
}

func TestCustomerDeleteCascades(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	l := NewList(ListOptions{DB: db, TTL: time.Hour})
	suppress(t, db, "B", "x@dest.example", time.Now())
	if err := db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`DELETE FROM customers WHERE id = 'B'`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if list, err := l.List(ctx, "B"); err != nil || len(list) != 0 {
		t.Fatalf("entries of a deleted customer: %+v %v", list, err)
	}
}

func TestDeleteAddress(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	at := time.Date(2030, 3, 1, 10, 0, 0, 0, time.UTC)
	suppress(t, db, "A", "dave@dest.example", at)
	suppress(t, db, "B", "dave@dest.example", at)
	suppress(t, db, "A", "erin@dest.example", at)
	var n int64
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		n, err = DeleteAddress(tx, "Dave@Dest.Example")
		return err
	})
	if err != nil || n != 2 {
		t.Fatalf("DeleteAddress = %d, %v; want 2 entries", n, err)
	}
	l := NewList(ListOptions{DB: db, TTL: time.Hour, Now: func() time.Time { return at }})
	if _, ok := l.Suppressed(ctx, "B", "dave@dest.example"); ok {
		t.Fatal("dave is still suppressed for B")
	}
	if _, ok := l.Suppressed(ctx, "A", "erin@dest.example"); !ok {
		t.Fatal("erin's entry was deleted too")
	}
}
