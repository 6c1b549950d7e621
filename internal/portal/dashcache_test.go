package portal

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"easymail/internal/store"
	"easymail/internal/testkit"
)

// TestDashboardSnapshot: the all-customer figures are computed at the first view, served from the snapshot
// while it is younger than snapshotMaxAge, and refreshed in the background by the first view after that (that
// view still gets the old figures, the next one the new); a customer's figures are always computed.
func TestDashboardSnapshot(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clock := testkit.NewClock(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC))
	s := &server{o: Options{DB: db, Now: clock.Now}, log: slog.New(slog.DiscardHandler)}
	n := 0
	receive := func(customer string) {
		t.Helper()
		n++
		at := clock.Now().Add(-time.Minute)
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			_, err := tx.Exec(`INSERT INTO messages (id, node_id, customer_id, sender, message_id, subject, size, status,
				held, received_at, expires_at) VALUES (?, 'n1', ?, 'a@acme.test', ?, 's', 100, 'delivered', 0, ?, ?)`,
				fmt.Sprintf("m%d", n), customer, fmt.Sprintf("<%d@acme.test>", n), store.Millis(at), store.Millis(at.Add(time.Hour)))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	received := func(customer string) int64 {
		t.Helper()
		f, err := s.figuresFor(ctx, customer)
		if err != nil {
			t.Fatal(err)
		}
		var sum int64
		for _, ser := range f.week.Series {
			sum += ser.Total.Received
		}
		return sum
	}
	waitRefreshed := func() {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			s.snapshot.mu.Lock()
			busy := s.snapshot.refreshing
			s.snapshot.mu.Unlock()
			if !busy {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("the snapshot's refresh did not end")
			}
		}
	}

	receive("c1")
	if got := received(""); got != 1 {
		t.Fatalf("first view: %d received, want 1", got)
	}
	receive("c1")
	clock.Add(snapshotMaxAge - time.Second)
	if got := received(""); got != 1 {
		t.Fatalf("within %v: %d received, want the snapshot's 1", snapshotMaxAge, got)
	}
	if got := received("c1"); got != 2 {
		t.Fatalf("a customer's view: %d received, want 2 (computed)", got)
	}
	clock.Add(time.Second)
	if got := received(""); got != 1 {
		t.Fatalf("the view that starts the refresh: %d, want the old 1", got)
	}
	waitRefreshed()
	if got := received(""); got != 2 {
		t.Fatalf("after the refresh: %d received, want 2", got)
	}
}
