package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

func openTest(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestBatchIsolatesFailures(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			submit := db.Batch
			if i%3 == 0 {
				submit = db.BatchLazy
			}
			errs[i] = submit(ctx, func(tx *sql.Tx) error {
				if _, err := tx.Exec(`INSERT INTO customers (id, name, contact_email, pool, status, created_at, updated_at)
					VALUES (?, 'n', 'e@x.test', 'default', 'active', 0, 0)`, fmt.Sprint("C", i)); err != nil {
					return err
				}
				if i%5 == 0 {
					return errors.New("refused")
				}
				return nil
			})
		}()
	}
	wg.Wait()
	var n int
	if err := db.R.QueryRow(`SELECT COUNT(*) FROM customers`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 40 {
		t.Fatalf("%d rows, want 40 (the 10 failed callers' changes rolled back)", n)
	}
	for i, err := range errs {
		if (i%5 == 0) != (err != nil) {
			t.Errorf("caller %d: %v", i, err)
		}
	}
	// A durable transaction after lazy ones runs at synchronous=FULL.
	if err := db.Tx(ctx, func(*sql.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	var mode int
	if err := db.w.QueryRow(`PRAGMA synchronous`).Scan(&mode); err != nil || mode != 2 {
		t.Fatalf("synchronous = %d (%v), want 2 (FULL)", mode, err)
	}
}

func TestMigrationsAreRecorded(t *testing.T) {
	dir := t.TempDir()
	for range 2 {
		db, err := Open(context.Background(), filepath.Join(dir, "m.db"))
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.R.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n < 2 {
			t.Fatalf("%d migrations recorded (%v)", n, err)
		}
		db.Close()
	}
}
