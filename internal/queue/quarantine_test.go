package queue

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"
)

// TestQuarantineRowChangesWithTheMessage: the quarantine row of a message is written with it and removed
// when it is released or deleted, in the same transaction; a quarantined message whose row is missing is
// neither released nor deleted (ErrNotFound, nothing changed).
func TestQuarantineRowChangesWithTheMessage(t *testing.T) {
	ctx := context.Background()
	q, db, sp := openTestQueue(t, t.TempDir())
	now := time.Now().Truncate(time.Millisecond)
	put := func(id string) {
		t.Helper()
		spoolMessage(t, sp, id)
		env := Envelope{ID: id, CustomerID: "C1", Sender: "a@acme.test", Recipients: []Recipient{{Address: "b@dest.test"}}, Received: now}
		if err := q.EnqueueQuarantined(ctx, env, QuarantineRecord{Reason: "Spam message", Verdict: "spam", Header: "Subject: x\n",
			Preview: "body", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	row := func(id string) bool {
		t.Helper()
		var customer, reason, verdict, header, preview string
		var created, expires int64
		err := db.R.QueryRow(`SELECT customer_id, reason, verdict, header, preview, created_at, expires_at FROM quarantine WHERE id = ?`, id).
			Scan(&customer, &reason, &verdict, &header, &preview, &created, &expires)
		if errors.Is(err, sql.ErrNoRows) {
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		if customer != "C1" || reason != "Spam message" || verdict != "spam" || header != "Subject: x\n" || preview != "body" ||
			created != now.UnixMilli() || expires != now.Add(time.Hour).UnixMilli() {
			t.Errorf("%s: row %q %q %q %q %q %d %d", id, customer, reason, verdict, header, preview, created, expires)
		}
		return true
	}
	status := func(id string) string {
		t.Helper()
		var s string
		if err := db.R.QueryRow(`SELECT status FROM recipients WHERE message_id = ?`, id).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}

	put("REL")
	if !row("REL") || status("REL") != StatusQuarantined {
		t.Fatalf("after EnqueueQuarantined: row %v, status %s", row("REL"), status("REL"))
	}
	if err := q.ReleaseQuarantined(ctx, "REL"); err != nil {
		t.Fatal(err)
	}
	if row("REL") || status("REL") != StatusQueued {
		t.Errorf("after ReleaseQuarantined: row %v, status %s", row("REL"), status("REL"))
	}
	if err := q.ReleaseQuarantined(ctx, "REL"); !errors.Is(err, ErrNotQueued) {
		t.Errorf("second release: %v, want ErrNotQueued", err)
	}

	put("DEL")
	if err := q.DeleteQuarantined(ctx, "DEL", "Deleted"); err != nil {
		t.Fatal(err)
	}
	if row("DEL") || status("DEL") != StatusRejected {
		t.Errorf("after DeleteQuarantined: row %v, status %s", row("DEL"), status("DEL"))
	}

	put("NOROW")
	if err := db.Tx(ctx, func(tx *sql.Tx) error { _, err := tx.Exec(`DELETE FROM quarantine WHERE id = 'NOROW'`); return err }); err != nil {
		t.Fatal(err)
	}
	if err := q.ReleaseQuarantined(ctx, "NOROW"); !errors.Is(err, ErrNotFound) {
		t.Errorf("release without a row: %v, want ErrNotFound", err)
	}
	if err := q.DeleteQuarantined(ctx, "NOROW", "Deleted"); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete without a row: %v, want ErrNotFound", err)
	}
	if s := status("NOROW"); s != StatusQuarantined {
		t.Errorf("without a row: status %s, want still quarantined", s)
	}
	if err := q.ReleaseQuarantined(ctx, "NONE"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown id: %v, want ErrNotFound", err)
	}
}
