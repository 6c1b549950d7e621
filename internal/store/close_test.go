package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"
)

// TestBatchAfterCloseFails: a Batch (or BatchLazy) submitted after Close returns an error at once. It used to
// hang for ever about half the time: the submit's select chose at random between the closed done channel and
// a send into the batch buffer, which no batcher read any more.
func TestBatchAfterCloseFails(t *testing.T) {
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		submit := db.Batch
		if i%2 == 1 {
			submit = db.BatchLazy
		}
		done := make(chan error, 1)
		go func() { done <- submit(context.Background(), func(*sql.Tx) error { return nil }) }()
		select {
		case err := <-done:
			if err == nil {
				t.Fatalf("submit %d after Close succeeded", i)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("submit %d after Close still waiting after 10s", i)
		}
	}
}
