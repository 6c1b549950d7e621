package queue

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"easymail/internal/spool"
	"easymail/internal/store"
)

// openTestQueue opens a database and a spool in dir and a queue of node "n1" on them.
func openTestQueue(t *testing.T, dir string) (*Queue, *store.DB, *spool.Spool) {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(dir, "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sp, err := spool.Open(filepath.Join(dir, "spool"))
	if err != nil {
		t.Fatal(err)
	}
	return New(Options{DB: db, Spool: sp, NodeID: "n1", Hostname: "relay.test", Retry: []time.Duration{time.Hour},
		MaxLifetime: 2 * time.Hour}), db, sp
}

// spoolMessage commits content for id to the spool.
func spoolMessage(t *testing.T, sp *spool.Spool, id string) {
	t.Helper()
	w, err := sp.Create(id)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("Subject: x\r\n\r\nbody\r\n"))
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestRecoverKeepsEveryWaitingMessagesContent: the sweep at start keeps the content of every message the
// database still waits for, queued or quarantined, whatever node its row names (it removed the files of
// every message not of this node id), and removes only files no waiting message refers to.
func TestRecoverKeepsEveryWaitingMessagesContent(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	q, _, sp := openTestQueue(t, dir)
	other := New(Options{DB: q.o.DB, Spool: sp, NodeID: "old-name", Hostname: "relay.test", Retry: []time.Duration{time.Hour},
		MaxLifetime: 2 * time.Hour})
	env := func(id string) Envelope {
		return Envelope{ID: id, Sender: "a@acme.test", Recipients: []Recipient{{Address: "b@dest.test"}}, Received: time.Now()}
	}
	for _, id := range []string{"QUEUED", "QUARANTINED", "ORPHAN", "FINISHED"} {
		spoolMessage(t, sp, id)
	}
	if err := other.Enqueue(ctx, env("QUEUED")); err != nil {
		t.Fatal(err)
	}
	if err := other.EnqueueQuarantined(ctx, env("QUARANTINED"), QuarantineRecord{Reason: "review"}); err != nil {
		t.Fatal(err)
	}
	if err := other.Enqueue(ctx, env("FINISHED")); err != nil {
		t.Fatal(err)
	}
	if err := other.Delete(ctx, "FINISHED"); err != nil {
		t.Fatal(err)
	}
	spoolMessage(t, sp, "FINISHED") // a removal that did not happen
	if err := q.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"QUEUED": true, "QUARANTINED": true, "ORPHAN": false, "FINISHED": false} {
		_, err := os.Stat(filepath.Join(sp.Dir(), id))
		if got := err == nil; got != want {
			t.Errorf("%s: kept %v, want %v (%v)", id, got, want, err)
		}
	}
}

// TestRecoverReleasesClaimsOfADeadProcess: recipients claimed by an earlier process of this node (killed in
// the middle of a delivery) are due at once after the start; a claim of this process, and the claims of
// another node, keep their retry time.
func TestRecoverReleasesClaimsOfADeadProcess(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	q, db, sp := openTestQueue(t, dir)
	for _, id := range []string{"DEAD", "MINE", "OTHERNODE"} {
		spoolMessage(t, sp, id)
		if err := q.Enqueue(ctx, Envelope{ID: id, Sender: "a@acme.test", Recipients: []Recipient{{Address: "b@dest.test"}},
			Received: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	later := store.Millis(time.Now().Add(10 * time.Minute))
	exec := func(query string, args ...any) {
		t.Helper()
		if err := db.Tx(ctx, func(tx *sql.Tx) error { _, err := tx.Exec(query, args...); return err }); err != nil {
			t.Fatal(err)
		}
	}
	exec(`UPDATE recipients SET attempts = 1, next_attempt_at = ?, claimed_by = 'dead-process'`, later)
	exec(`UPDATE recipients SET claimed_by = ? WHERE message_id = 'MINE'`, q.instance)
	exec(`UPDATE messages SET node_id = 'n2' WHERE id = 'OTHERNODE'`)
	if err := q.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	now := store.Now()
	for id, due := range map[string]bool{"DEAD": true, "MINE": false, "OTHERNODE": false} {
		var next int64
		var claim string
		if err := db.R.QueryRow(`SELECT next_attempt_at, claimed_by FROM recipients WHERE message_id = ?`, id).Scan(&next, &claim); err != nil {
			t.Fatal(err)
		}
		if got := next <= now; got != due {
			t.Errorf("%s: due %v (next attempt in %v, claim %q), want %v", id, got, store.Time(next).Sub(store.Time(now)), claim, due)
		}
	}
}
