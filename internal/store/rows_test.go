package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
)

// TestEachAndStrings: Each visits the rows in order and stops at the callback's first error; Strings reads a
// text column; a bad query's error comes back.
func TestEachAndStrings(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	if err := db.Tx(ctx, func(tx *sql.Tx) error {
		for _, id := range []string{"C1", "C2", "C3"} {
			if _, err := tx.Exec(`INSERT INTO customers (id, name, contact_email, pool, status, created_at, updated_at)
				VALUES (?, 'n', 'e@x.test', 'default', 'active', 0, 0)`, id); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ids, err := Strings(ctx, db.R, `SELECT id FROM customers WHERE id >= ? ORDER BY id`, "C2")
	if err != nil || strings.Join(ids, ",") != "C2,C3" {
		t.Fatalf("Strings: %v %v", ids, err)
	}
	stop := errors.New("stop")
	var seen []string
	err = Each(ctx, db.R, `SELECT id FROM customers ORDER BY id`, nil, func(rows *sql.Rows) error {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		seen = append(seen, id)
		if id == "C2" {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || strings.Join(seen, ",") != "C1,C2" {
		t.Fatalf("Each: %v %v", seen, err)
	}
	if _, err := Strings(ctx, db.R, `SELECT id FROM no_such_table`); err == nil {
		t.Fatal("a bad query gave no error")
	}
}
