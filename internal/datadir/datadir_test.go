package datadir

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"easymail/internal/queue"
	"easymail/internal/spool"
	"easymail/internal/store"
)

// TestLockIsExclusive: a second lock of a locked data directory fails at once, naming the directory and the
// holder's pid; once released the directory can be locked again.
func TestLockIsExclusive(t *testing.T) {
	dir := t.TempDir()
	l, err := Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Lock(dir)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("second lock: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = Lock(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	l.Close()
}

// TestNodeIDOfAnOlderDataDir: a data directory from before node-id existed is refused under another id when
// its database still waits for mail of the old one; RenameNode then moves the queue and writes the file.
func TestNodeIDOfAnOlderDataDir(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, filepath.Join(dir, "easymail.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sp, err := spool.Open(filepath.Join(dir, "spool"))
	if err != nil {
		t.Fatal(err)
	}
	old := queue.New(queue.Options{DB: db, Spool: sp, NodeID: "vm-old", Hostname: "relay.test", Retry: []time.Duration{time.Hour},
		MaxLifetime: time.Hour})
	if err := old.Enqueue(ctx, queue.Envelope{ID: "M1", Sender: "a@acme.test", Recipients: []queue.Recipient{{Address: "b@dest.test"}}}); err != nil {
		t.Fatal(err)
	}
	if err := CheckNodeID(ctx, dir, db, "vm-new"); !errors.Is(err, ErrNodeIDChanged) || !strings.Contains(err.Error(), `"vm-old"`) {
		t.Fatalf("older data dir under another id: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, NodeIDFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused start wrote node-id: %v", err)
	}
	from, moved, err := RenameNode(ctx, dir, db, "vm-new")
	if err != nil || moved != 1 || len(from) != 1 || from[0] != "vm-old" {
		t.Fatalf("rename: %v moved %d from %v", err, moved, from)
	}
	if err := CheckNodeID(ctx, dir, db, "vm-new"); err != nil {
		t.Fatalf("after the rename: %v", err)
	}
	var node string
	if err := db.R.QueryRow(`SELECT node_id FROM messages WHERE id = 'M1'`).Scan(&node); err != nil || node != "vm-new" {
		t.Fatalf("message row of node %q (%v)", node, err)
	}
}
