package store

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTxScrub: a value replaced in a scrubbing transaction is in neither the database file nor the WAL
// afterwards, while an ordinary transaction leaves it behind (so the test can fail).
func TestTxScrub(t *testing.T) {
	ctx := context.Background()
	for _, scrub := range []bool{false, true} {
		dir := t.TempDir()
		path := filepath.Join(dir, "t.db")
		db, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		secret := "SECRET-" + strings.Repeat("0123456789", 20)
		exec := func(write func(context.Context, func(*sql.Tx) error) error, q string, args ...any) {
			t.Helper()
			if err := write(ctx, func(tx *sql.Tx) error { _, err := tx.Exec(q, args...); return err }); err != nil {
				t.Fatal(err)
			}
		}
		exec(db.Tx, `CREATE TABLE s (id INTEGER PRIMARY KEY, v TEXT NOT NULL)`)
		exec(db.Tx, `INSERT INTO s (id, v) VALUES (1, ?)`, secret)
		write := db.Tx
		if scrub {
			write = db.TxScrub
		}
		exec(write, `UPDATE s SET v = ? WHERE id = 1`, "sealed")
		found := false
		for _, f := range []string{path, path + "-wal"} {
			b, _ := os.ReadFile(f)
			found = found || bytes.Contains(b, []byte("SECRET-"))
		}
		db.Close()
		if found == scrub {
			t.Fatalf("scrub %v: old value found in the files: %v", scrub, found)
		}
	}
}
