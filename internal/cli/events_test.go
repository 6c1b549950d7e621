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

// TestTLSCommands: tls policies lists the cached MTA-STS policies with their mode, mx and expiry (an expired
// one marked), tls reports the reports sent, newest day first, filtered by --domain.
func TestTLSCommands(t *testing.T) {
	e := newCLIEnv(t)
	now := time.Now()
	err := e.db.Tx(context.Background(), func(tx *sql.Tx) error {
		for _, p := range []struct {
			domain, mode, mx string
			fetched          time.Time
		}{
			{"bank.example", "enforce", `["mx1.bank.example","*.bank.example"]`, now.Add(-time.Hour)},
			{"old.example", "testing", `["mx.old.example"]`, now.Add(-48 * time.Hour)},
		} {
			if _, err := tx.Exec(`INSERT INTO mta_sts_policies (domain, policy_id, mode, max_age, mx, body, fetched_at, expires_at)
				VALUES (?, 'id1', ?, 86400, ?, '', ?, ?)`, p.domain, p.mode, p.mx, store.Millis(p.fetched),
				store.Millis(p.fetched.Add(24*time.Hour))); err != nil {
				return err
			}
		}
		for _, r := range [][3]string{{"2030-03-01", "bank.example", "mailto:tlsrpt@bank.example: sent"},
			{"2030-03-02", "bank.example", "mailto:tlsrpt@bank.example: answered 550"}, {"2030-03-02", "old.example", "no report address: none"}} {
			if _, err := tx.Exec(`INSERT INTO tlsrpt_reports (day, policy_domain, report_id, rua, outcome, sent_at)
				VALUES (?, ?, 'rid', 'mailto:tlsrpt@bank.example', ?, ?)`, r[0], r[1], r[2], store.Millis(now)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	out := e.ok(t, "tls", "policies")
	if i := rowIndex(out, "bank.example"); i < 0 || !strings.Contains(out, "enforce") || !strings.Contains(out, "mx1.bank.example,*.bank.example") {
		t.Fatalf("policies:\n%s", out)
	}
	line := func(prefix string) string {
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, prefix+" ") {
				return l
			}
		}
		return ""
	}
	if !strings.Contains(line("old.example"), "(expired)") || strings.Contains(line("bank.example"), "(expired)") {
		t.Fatalf("expiry not marked:\n%s", out)
	}
	var reps []api.TLSReport
	if err := json.Unmarshal([]byte(e.ok(t, "tls", "reports", "--domain", "bank.example", "--json")), &reps); err != nil {
		t.Fatal(err)
	}
	if len(reps) != 2 || reps[0].Day != "2030-03-02" || reps[1].Day != "2030-03-01" || reps[0].Outcome != "mailto:tlsrpt@bank.example: answered 550" {
		t.Fatalf("reports %+v", reps)
	}
	if out := e.ok(t, "tls", "reports", "--limit", "1"); strings.Count(out, "2030-03-") != 1 {
		t.Fatalf("limit 1:\n%s", out)
	}
}
