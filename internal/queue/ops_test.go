package queue

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"easymail/internal/spool"
	"easymail/internal/store"
)

// TestQueueVerbsSayWhatHappened: retry, hold and release succeed only when they act; otherwise they return a
// StateError naming the message's state (a retry of a held message once "succeeded" and did nothing).
func TestQueueVerbsSayWhatHappened(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, filepath.Join(dir, "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sp, err := spool.Open(filepath.Join(dir, "spool"))
	if err != nil {
		t.Fatal(err)
	}
	q := New(Options{DB: db, Spool: sp, NodeID: "n1", Hostname: "relay.test", Retry: []time.Duration{time.Hour}, MaxLifetime: 2 * time.Hour})
	id, err := q.Submit(ctx, "postmaster@relay.test", "noc@ops.example", "subject", "body\n")
	if err != nil {
		t.Fatal(err)
	}
	exec := func(query string, args ...any) {
		t.Helper()
		if err := db.Tx(ctx, func(tx *sql.Tx) error { _, err := tx.Exec(query, args...); return err }); err != nil {
			t.Fatal(err)
		}
	}
	far := store.Millis(time.Now().Add(time.Hour))
	exec(`UPDATE recipients SET status = 'deferred', next_attempt_at = ? WHERE message_id = ?`, far, id)
	exec(`UPDATE messages SET status = 'deferred' WHERE id = ?`, id)
	next := func() int64 {
		t.Helper()
		var n int64
		if err := db.R.QueryRow(`SELECT next_attempt_at FROM recipients WHERE message_id = ?`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	wantState := func(err error, cause error, status, text string) {
		t.Helper()
		var se *StateError
		if !errors.As(err, &se) || !errors.Is(err, cause) || se.Status != status || !strings.Contains(err.Error(), text) {
			t.Fatalf("got %v, want a StateError (%v, status %s) saying %q", err, cause, status, text)
		}
	}

	if err := q.Release(ctx, id); err != nil {
		wantState(err, ErrNotHeld, StatusDeferred, "queue retry "+id)
	} else {
		t.Fatal("release of a message that is not held succeeded")
	}
	if next() != far {
		t.Fatal("a refused release made the message due")
	}
	if err := q.Hold(ctx, id); err != nil {
		t.Fatal(err)
	}
	wantState(q.Hold(ctx, id), ErrHeld, StatusHeld, "already held")
	wantState(q.Retry(ctx, id), ErrHeld, StatusHeld, "queue release "+id)
	if next() != far {
		t.Fatal("a refused retry made the held message due")
	}
	if err := q.Release(ctx, id); err != nil {
		t.Fatal(err)
	}
	if next() == far {
		t.Fatal("release did not make the message due")
	}
	if err := q.Retry(ctx, id); err != nil {
		t.Fatal(err)
	}

	// Nothing left to deliver.
	exec(`UPDATE recipients SET status = 'delivered' WHERE message_id = ?`, id)
	exec(`UPDATE messages SET status = 'delivered' WHERE id = ?`, id)
	for name, op := range map[string]func(context.Context, string) error{"retry": q.Retry, "hold": q.Hold, "release": q.Release} {
		err := op(ctx, id)
		wantState(err, ErrNotQueued, StatusDelivered, "message is delivered: nothing left to deliver")
		if se := new(StateError); errors.As(err, &se) && se.Op != name {
			t.Errorf("%s: op %q", name, se.Op)
		}
		if !errors.Is(op(ctx, "NOSUCHID"), ErrNotFound) {
			t.Errorf("%s of an unknown id: not ErrNotFound", name)
		}
	}
	exec(`UPDATE messages SET status = 'quarantined' WHERE id = ?`, id)
	wantState(q.Retry(ctx, id), ErrNotQueued, StatusQuarantined, "quarantine release "+id)
}
