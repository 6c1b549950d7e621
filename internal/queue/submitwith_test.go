package queue

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"easymail/internal/spool"
	"easymail/internal/store"
)

// TestSubmitWithIsAtomic: the caller's statement commits with the message, and when it fails nothing is
// queued and the spooled content is removed.
func TestSubmitWithIsAtomic(t *testing.T) {
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
	q := New(Options{DB: db, Spool: sp, NodeID: "n1", Hostname: "relay.test", Retry: []time.Duration{time.Minute}, MaxLifetime: time.Hour})
	if err := db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`CREATE TABLE notes (k TEXT PRIMARY KEY, queue_id TEXT)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	note := func(tx *sql.Tx, id string) error {
		_, err := tx.Exec(`INSERT INTO notes (k, queue_id) VALUES ('once', ?)`, id)
		return err
	}
	id, err := q.SubmitWith(ctx, "postmaster@relay.test", "it@acme.example", "notice", "text", note)
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if err := db.R.QueryRow(`SELECT queue_id FROM notes WHERE k = 'once'`).Scan(&got); err != nil || got != id {
		t.Fatalf("note %q %v, want %q", got, err, id)
	}
	// The same note again: a unique violation, and no second message.
	_, err = q.SubmitWith(ctx, "postmaster@relay.test", "it@acme.example", "notice", "text", note)
	if !store.IsUniqueViolation(err) {
		t.Fatalf("second submit: %v", err)
	}
	boom := errors.New("boom")
	if _, err := q.SubmitWith(ctx, "postmaster@relay.test", "it@acme.example", "notice", "text",
		func(*sql.Tx, string) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("failing also: %v", err)
	}
	var n int
	if err := db.R.QueryRow(`SELECT COUNT(*) FROM messages`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d messages queued, want 1 (%v)", n, err)
	}
	entries, err := os.ReadDir(sp.Dir())
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		if !e.IsDir() {
			files = append(files, e.Name())
		}
	}
	if len(files) != 1 || files[0] != id {
		t.Fatalf("spool holds %v, want only %s", files, id)
	}
}
