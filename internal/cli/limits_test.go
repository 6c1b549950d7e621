package cli

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"easymail/internal/store"
)

func TestLimitAndHoldCommands(t *testing.T) {
	e := newCLIEnv(t)
	id := field(t, e.ok(t, "customer", "add", "--name", "Acme", "--contact", "it@acme.example"), "id")

	out := e.ok(t, "customer", "limits", id)
	if field(t, out, "messages_per_minute") != "default" || field(t, out, "held") != "no" {
		t.Fatalf("limits:\n%s", out)
	}
	out = e.ok(t, "customer", "limits", id, "--messages-per-minute", "100", "--burst", "20", "--recipients-per-hour", "0")
	if field(t, out, "messages_per_minute") != "100" || field(t, out, "burst") != "20" ||
		field(t, out, "recipients_per_hour") != "unlimited" || field(t, out, "messages_per_hour") != "default" {
		t.Fatalf("limits after set:\n%s", out)
	}
	// Limits not given keep their value; "default" returns one to the configuration's.
	out = e.ok(t, "customer", "limits", id, "--messages-per-hour", "3000", "--burst", "default")
	if field(t, out, "messages_per_minute") != "100" || field(t, out, "messages_per_hour") != "3000" || field(t, out, "burst") != "default" {
		t.Fatalf("limits after merge:\n%s", out)
	}
	out = e.ok(t, "customer", "limits", id, "--defaults")
	if field(t, out, "messages_per_minute") != "default" || field(t, out, "messages_per_hour") != "default" {
		t.Fatalf("limits after --defaults:\n%s", out)
	}
	if code, _, errs := e.run(t, "customer", "limits", id, "--burst", "-3"); code != 2 || !strings.Contains(errs, "not a count") {
		t.Fatalf("negative burst: exit %d, %s", code, errs)
	}

	out = e.ok(t, "customer", "hold", id)
	if !strings.HasPrefix(field(t, out, "held"), "yes: ") {
		t.Fatalf("hold:\n%s", out)
	}
	// Two held messages of the customer, one of another.
	err := e.db.Tx(context.Background(), func(tx *sql.Tx) error {
		for _, m := range [][2]string{{"H1", id}, {"H2", id}, {"H3", "other"}} {
			if _, err := tx.Exec(`INSERT INTO messages (id, node_id, customer_id, sender, status, held, received_at, expires_at)
				VALUES (?, 'n1', ?, 'a@acme.example', 'held', 1, ?, ?)`, m[0], m[1], store.Now(), store.Now()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	out = e.ok(t, "customer", "release-held", id)
	mustContain(t, out, "hold lifted, 2 held message(s) released")
	if field(t, e.ok(t, "customer", "show", id), "held") != "no" {
		t.Fatal("still held after release-held")
	}
	e.ok(t, "customer", "hold", id)
	out = e.ok(t, "customer", "purge-held", id, "--json")
	mustContain(t, out, `"action": "purged"`, `"messages": 0`)
	e.queue.mu.Lock()
	calls := strings.Join(e.queue.calls, ",")
	e.queue.mu.Unlock()
	if calls != "release H1,release H2" {
		t.Fatalf("queue operations %s", calls)
	}
	if code, _, _ := e.run(t, "customer", "release-held", "NOSUCH"); code != 1 {
		t.Fatalf("release-held of an unknown customer: exit %d", code)
	}
}
