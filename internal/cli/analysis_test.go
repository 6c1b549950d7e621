package cli

import (
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"easymail/internal/api"
	"easymail/internal/store"
)

// addLog inserts two messages of customer: one delivered to a gmail.example recipient, one bounced
// (bad-mailbox) at other.example.
func (e *cliEnv) addLog(t *testing.T, customer string, at time.Time) {
	t.Helper()
	err := e.db.Tx(context.Background(), func(tx *sql.Tx) error {
		for _, m := range []struct{ id, status, rcpt, class string }{
			{"M1", "delivered", "bob@gmail.example", ""},
			{"M2", "bounced", "gone@other.example", "bad-mailbox"},
		} {
			if _, err := tx.Exec(`INSERT INTO messages (id, node_id, customer_id, sender, header_from, message_id, subject, status,
				received_at, expires_at, done_at) VALUES (?, 'n1', ?, 'alice@acme.example', 'alice@acme.example', ?, 'hi', ?, ?, 0, ?)`,
				m.id, customer, "<"+m.id+"@acme.example>", m.status, store.Millis(at), store.Millis(at.Add(time.Minute))); err != nil {
				return err
			}
			if _, err := tx.Exec(`INSERT INTO recipients (message_id, idx, address, domain, status, attempts, next_attempt_at, last_code,
				last_reply, bounce_class, remote_mx, outbound_ip, updated_at) VALUES (?, 0, ?, ?, ?, 1, 0, 550, 'no such user', ?, 'mx.x', '127.0.0.1', ?)`,
				m.id, m.rcpt, m.rcpt[strings.IndexByte(m.rcpt, '@')+1:], m.status, m.class, store.Millis(at.Add(30*time.Second))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestAnalysisCommands(t *testing.T) {
	e := newCLIEnv(t)
	var c api.Customer
	if err := json.Unmarshal([]byte(e.ok(t, "customer", "add", "--name", "Acme", "--contact", "it@acme.example", "--json")), &c); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Hour).Truncate(time.Minute)
	e.addLog(t, c.ID, at)

	// Search with the new filters. Rows are found by their first cell: the output also holds the customer's
	// random id, which may contain "M1" or "M2".
	out := e.ok(t, "messages", "search", "--bounce-class", "bad-mailbox", "--domain", "other.example")
	if rowIndex(out, "M2") < 0 || rowIndex(out, "M1") >= 0 {
		t.Fatalf("search:\n%s", out)
	}
	out = e.ok(t, "messages", "search", "--queue-id", "M1", "--outbound-ip", "127.0.0.1", "--remote-mx", "mx.x")
	if rowIndex(out, "M1") < 0 || rowIndex(out, "M2") >= 0 {
		t.Fatalf("search by queue id:\n%s", out)
	}
	if code, _, errs := e.run(t, "messages", "search", "--bounce-class", "weird"); code != 1 || !strings.Contains(errs, "--bounce-class: ") || strings.Contains(errs, "bounce_class") {
		t.Fatalf("bad class: %d %s", code, errs)
	}
	out = e.ok(t, "trace", "M2")
	if !strings.Contains(out, "CLASS") || !strings.Contains(out, "bad-mailbox") {
		t.Fatalf("trace without the class:\n%s", out)
	}

	// CSV export.
	out = e.ok(t, "messages", "export", "--csv", "--customer", c.ID)
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(recs) != 3 || recs[0][0] != "queue_id" {
		t.Fatalf("export %v:\n%s", err, out)
	}
	if code, _, errs := e.run(t, "messages", "export", "--json"); code != 2 || !strings.Contains(errs, "CSV") {
		t.Fatalf("export --json: %d %s", code, errs)
	}

	// Statistics.
	out = e.ok(t, "stats", "--since", "3h")
	if !strings.Contains(out, "total") || !strings.Contains(out, "bad-mailbox=1") {
		t.Fatalf("stats:\n%s", out)
	}
	out = e.ok(t, "stats", "--group", "destination", "--bucket", "day", "--json")
	var s api.Stats
	if err := json.Unmarshal([]byte(out), &s); err != nil || s.Group != "destination" || len(s.Series) != 2 {
		t.Fatalf("stats json %v:\n%s", err, out)
	}
	if code, _, errs := e.run(t, "stats", "--bucket", "week"); code != 1 || !strings.Contains(errs, "bucket") {
		t.Fatalf("bad bucket: %d %s", code, errs)
	}

	// Suppressions.
	out = e.ok(t, "suppression", "add", c.ID, "Gone@Other.example", "--reason", "asked us", "--expires", "48h")
	if !strings.Contains(out, "gone@other.example suppressed for "+c.ID) {
		t.Fatalf("add: %s", out)
	}
	out = e.ok(t, "suppression", "list", c.ID)
	if !strings.Contains(out, "gone@other.example") || !strings.Contains(out, "operator") || !strings.Contains(out, "asked us") {
		t.Fatalf("list:\n%s", out)
	}
	if code, _, errs := e.run(t, "suppression", "add", c.ID, "x@y.example", "--expires", "someday"); code != 2 || !strings.Contains(errs, "--expires") {
		t.Fatalf("bad expiry: %d %s", code, errs)
	}
	if code, _, errs := e.run(t, "suppression", "add", c.ID, "not-an-address"); code != 1 || !strings.Contains(errs, "address") {
		t.Fatalf("bad address: %d %s", code, errs)
	}
	e.ok(t, "suppression", "remove", c.ID, "gone@other.example")
	if code, _, errs := e.run(t, "suppression", "remove", c.ID, "gone@other.example"); code != 1 || !strings.Contains(errs, "HTTP 404") {
		t.Fatalf("second remove: %d %s", code, errs)
	}
	if code, _, _ := e.run(t, "suppression", "list"); code != 2 {
		t.Fatal("list without a customer accepted")
	}

	// Data subjects.
	out = e.ok(t, "data-subject", "export", "bob@gmail.example")
	var d api.DataSubject
	if err := json.Unmarshal([]byte(out), &d); err != nil || len(d.Messages) != 1 || d.Messages[0].ID != "M1" {
		t.Fatalf("export %v:\n%s", err, out)
	}
	if code, _, errs := e.run(t, "data-subject", "erase", "bob@gmail.example"); code != 2 || !strings.Contains(errs, "--yes") {
		t.Fatalf("erase without --yes: %d %s", code, errs)
	}
	out = e.ok(t, "data-subject", "erase", "bob@gmail.example", "--yes")
	if !strings.Contains(out, "messages deleted:") || !strings.Contains(out, "1") {
		t.Fatalf("erase:\n%s", out)
	}
	if out = e.ok(t, "messages", "search", "--recipient", "bob@gmail.example"); rowIndex(out, "M1") >= 0 {
		t.Fatalf("erased message still found:\n%s", out)
	}
}
