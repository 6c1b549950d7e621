package cli

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"easymail/internal/api"
	"easymail/internal/store"
)

// TestWebhookCommands: add prints the secret, list shows the webhook without it, dead shows a dead
// delivery, redeliver takes it off the dead list, delete removes the webhook.
func TestWebhookCommands(t *testing.T) {
	e := newCLIEnv(t)
	var c api.Customer
	if err := json.Unmarshal([]byte(e.ok(t, "customer", "add", "--name", "Acme", "--contact", "it@acme.example", "--json")), &c); err != nil {
		t.Fatal(err)
	}
	var h api.Webhook
	if err := json.Unmarshal([]byte(e.ok(t, "webhook", "add", c.ID, "https://hooks.acme.example/in", "--events", "delivered,bounced",
		"--json")), &h); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h.Secret, "whsec_") || strings.Join(h.Events, ",") != "delivered,bounced" {
		t.Fatalf("added %+v", h)
	}
	out := e.ok(t, "webhook", "list", c.ID)
	if rowIndex(out, h.ID) < 0 || strings.Contains(out, h.Secret) || !strings.Contains(out, "delivered,bounced") {
		t.Fatalf("list:\n%s", out)
	}
	if code, _, errs := e.run(t, "webhook", "add", c.ID, "https://x.example/", "--events", "opened"); code == 0 || !strings.Contains(errs, "events") {
		t.Fatalf("bad event: %d %s", code, errs)
	}
	err := e.db.Tx(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO event_outbox (id, webhook_id, customer_id, event_id, event, payload, status, attempts,
			next_attempt_at, last_error, created_at) VALUES (77, ?, ?, 'ev_1', 'bounced', '{}', 'dead', 12, 0, 'answered 500', ?)`,
			h.ID, c.ID, store.Millis(time.Now()))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	out = e.ok(t, "webhook", "dead", c.ID)
	if rowIndex(out, "77") < 0 || !strings.Contains(out, "answered 500") {
		t.Fatalf("dead:\n%s", out)
	}
	e.ok(t, "webhook", "redeliver", c.ID, "77")
	if out := e.ok(t, "webhook", "dead", c.ID); rowIndex(out, "77") >= 0 {
		t.Fatalf("dead after redeliver:\n%s", out)
	}
	e.ok(t, "webhook", "delete", c.ID, h.ID)
	if out := e.ok(t, "webhook", "list", c.ID); rowIndex(out, h.ID) >= 0 {
		t.Fatalf("list after delete:\n%s", out)
	}
}
